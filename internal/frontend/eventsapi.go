package frontend

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/schedule"
	"github.com/lamina-project/lamina/internal/store"
)

// The subset of Amazon EventBridge's API (JSON 1.1, X-Amz-Target
// AWSEvents.*, service "events") that manages schedule rules on the default
// event bus and their function targets, as `aws events` speaks it.

const (
	defaultEventBus   = "default"
	maxTargetsPerRule = 5
)

var ruleNameRE = regexp.MustCompile(`^[\.\-_A-Za-z0-9]{1,64}$`)

// eventsService is the EventBridge subset on its wire protocol.
func (f *Frontend) eventsService() *awsproto.Service {
	s := &awsproto.Service{SigningName: serviceEvents, TargetPrefix: "AWSEvents", JSONVersion: "1.1"}
	for name, handle := range map[string]func(*request) error{
		"PutRule":           f.putRule,
		"DescribeRule":      f.describeRule,
		"ListRules":         f.listRules,
		"EnableRule":        f.enableRule,
		"DisableRule":       f.disableRule,
		"DeleteRule":        f.deleteRule,
		"PutTargets":        f.putTargets,
		"RemoveTargets":     f.removeTargets,
		"ListTargetsByRule": f.listTargetsByRule,
	} {
		s.Handle(targetOperation(name, handle))
	}
	return s
}

func eventsValidation(msg string) error {
	return &lamina.Error{Status: http.StatusBadRequest, Code: "ValidationException", Message: msg}
}

func ruleNotFound(name string) error {
	return &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceNotFoundException",
		Message: "Rule " + name + " does not exist on EventBus default."}
}

// checkEventBus accepts the default event bus, the only one Lamina has.
func checkEventBus(name string) error {
	if name != "" && name != defaultEventBus && name != "arn:aws:events:::event-bus/default" {
		return &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceNotFoundException", Message: "Event bus " + name + " does not exist."}
	}
	return nil
}

type ruleInput struct {
	Name               string
	ScheduleExpression string
	EventPattern       string
	State              string
	Description        string
	RoleArn            string
	EventBusName       string
}

// ruleOutput is DescribeRule's answer and an entry of ListRules.
type ruleOutput struct {
	Name               string
	Arn                string
	ScheduleExpression string
	State              string
	Description        string `json:",omitempty"`
	RoleArn            string `json:",omitempty"`
	EventBusName       string
	CreatedBy          string
}

func ruleOut(r *lamina.Rule) ruleOutput {
	return ruleOutput{Name: r.Name, Arn: r.Arn, ScheduleExpression: r.ScheduleExpression, State: r.State,
		Description: r.Description, RoleArn: r.RoleArn, EventBusName: r.EventBusName, CreatedBy: r.CreatedBy}
}

func (f *Frontend) putRule(rq *request) error {
	var in ruleInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if !ruleNameRE.MatchString(in.Name) {
		return eventsValidation("1 validation error detected: Value '" + in.Name + "' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+")
	}
	if err := checkEventBus(in.EventBusName); err != nil {
		return err
	}
	switch {
	case in.EventPattern != "":
		return eventsValidation("Lamina supports schedule rules only (ScheduleExpression); event patterns are not supported yet.")
	case in.ScheduleExpression == "":
		return eventsValidation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
	}
	if _, err := schedule.Parse(in.ScheduleExpression); err != nil {
		return eventsValidation(err.Error())
	}
	state := in.State
	switch state {
	case "":
		state = "ENABLED"
	case "ENABLED", "DISABLED":
	default:
		return eventsValidation("1 validation error detected: Value '" + state + "' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]")
	}
	ctx := rq.r.Context()
	rule := &lamina.Rule{
		Name: in.Name, Arn: lamina.RuleARN(f.cfg.Region, f.cfg.AccountID, in.Name),
		ScheduleExpression: in.ScheduleExpression, State: state, Description: in.Description, RoleArn: in.RoleArn,
		EventBusName: defaultEventBus, CreatedBy: f.cfg.AccountID, Created: time.Now().UnixMilli(),
	}
	err := f.store.CreateRule(ctx, rule)
	if errors.Is(err, store.ErrExists) { // PutRule updates an existing rule
		_, err = f.store.UpdateRule(ctx, in.Name, func(r *lamina.Rule) error {
			if r.ScheduleExpression != in.ScheduleExpression {
				r.ScheduleExpression, r.Created = in.ScheduleExpression, time.Now().UnixMilli()
			}
			r.State, r.Description, r.RoleArn = state, in.Description, in.RoleArn
			return nil
		})
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{ RuleArn string }{rule.Arn})
}

type ruleNameInput struct {
	Name         string
	EventBusName string
	Force        bool
}

// namedRule reads a request naming a rule and returns the rule.
func (f *Frontend) namedRule(rq *request) (*ruleNameInput, *lamina.Rule, error) {
	var in ruleNameInput
	if err := rq.decode(&in); err != nil {
		return nil, nil, err
	}
	if err := checkEventBus(in.EventBusName); err != nil {
		return nil, nil, err
	}
	rule, err := f.store.GetRule(rq.r.Context(), in.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ruleNotFound(in.Name)
	}
	return &in, rule, err
}

func (f *Frontend) describeRule(rq *request) error {
	_, rule, err := f.namedRule(rq)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, ruleOut(rule))
}

func (f *Frontend) listRules(rq *request) error {
	var in struct {
		NamePrefix   string
		EventBusName string
		NextToken    string
		Limit        int
	}
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := checkEventBus(in.EventBusName); err != nil {
		return err
	}
	rules := []ruleOutput{}
	for _, r := range f.store.ListRules(rq.r.Context(), in.NamePrefix) {
		if in.NextToken == "" || r.Name > in.NextToken {
			rules = append(rules, ruleOut(r))
		}
	}
	out := struct {
		Rules     []ruleOutput
		NextToken string `json:",omitempty"`
	}{Rules: rules}
	if in.Limit > 0 && len(rules) > in.Limit {
		out.Rules, out.NextToken = rules[:in.Limit], rules[in.Limit-1].Name
	}
	return rq.json(http.StatusOK, out)
}

// setRuleState enables or disables a rule.
func (f *Frontend) setRuleState(rq *request, state string) error {
	in, _, err := f.namedRule(rq)
	if err != nil {
		return err
	}
	if _, err := f.store.UpdateRule(rq.r.Context(), in.Name, func(r *lamina.Rule) error {
		r.State = state
		return nil
	}); err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{}{})
}

func (f *Frontend) enableRule(rq *request) error  { return f.setRuleState(rq, "ENABLED") }
func (f *Frontend) disableRule(rq *request) error { return f.setRuleState(rq, "DISABLED") }

func (f *Frontend) deleteRule(rq *request) error {
	in, rule, err := f.namedRule(rq)
	var le *lamina.Error
	if errors.As(err, &le) && le.Code == "ResourceNotFoundException" {
		return rq.json(http.StatusOK, struct{}{}) // deleting a missing rule succeeds, as on AWS
	}
	if err != nil {
		return err
	}
	if len(rule.Targets) > 0 && !in.Force {
		return eventsValidation("Rule can't be deleted since it has targets.")
	}
	ctx := rq.r.Context()
	if err := f.store.DeleteRule(ctx, in.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := f.store.DeleteScheduleState(ctx, in.Name); err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{}{})
}

// failedEntry is one entry PutTargets or RemoveTargets could not apply.
type failedEntry struct {
	TargetId     string
	ErrorCode    string
	ErrorMessage string
}

type targetsOutput struct {
	FailedEntryCount int
	FailedEntries    []failedEntry
}

func (f *Frontend) putTargets(rq *request) error {
	var in struct {
		Rule         string
		EventBusName string
		Targets      []lamina.Target
	}
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := checkEventBus(in.EventBusName); err != nil {
		return err
	}
	out := targetsOutput{FailedEntries: []failedEntry{}}
	var valid []lamina.Target
	for _, t := range in.Targets {
		switch {
		case !ruleNameRE.MatchString(t.Id):
			out.FailedEntries = append(out.FailedEntries, failedEntry{t.Id, "ValidationException", "Target Id is not valid."})
		case f.checkTarget(t.Arn) != nil:
			out.FailedEntries = append(out.FailedEntries, failedEntry{t.Id, "ValidationException",
				"Lamina rules can target Lamina functions only; " + t.Arn + " is not one."})
		default:
			valid = append(valid, t)
		}
	}
	return f.changeTargets(rq, in.Rule, &out, func(r *lamina.Rule) error {
		for _, t := range valid {
			r.Targets = slices.DeleteFunc(r.Targets, func(x lamina.Target) bool { return x.Id == t.Id })
			r.Targets = append(r.Targets, t)
		}
		if len(r.Targets) > maxTargetsPerRule {
			return &lamina.Error{Status: http.StatusBadRequest, Code: "LimitExceededException",
				Message: "The requested resource exceeds the maximum number allowed."}
		}
		return nil
	})
}

// changeTargets applies change to a rule atomically and answers with the
// entries it could not apply.
func (f *Frontend) changeTargets(rq *request, rule string, out *targetsOutput, change func(*lamina.Rule) error) error {
	_, err := f.store.UpdateRule(rq.r.Context(), rule, change)
	if errors.Is(err, store.ErrNotFound) {
		return ruleNotFound(rule)
	}
	if err != nil {
		return err
	}
	out.FailedEntryCount = len(out.FailedEntries)
	return rq.json(http.StatusOK, out)
}

func (f *Frontend) removeTargets(rq *request) error {
	var in struct {
		Rule         string
		EventBusName string
		Ids          []string
	}
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := checkEventBus(in.EventBusName); err != nil {
		return err
	}
	out := targetsOutput{FailedEntries: []failedEntry{}}
	return f.changeTargets(rq, in.Rule, &out, func(r *lamina.Rule) error {
		out.FailedEntries = out.FailedEntries[:0]
		for _, id := range in.Ids {
			n := len(r.Targets)
			r.Targets = slices.DeleteFunc(r.Targets, func(t lamina.Target) bool { return t.Id == id })
			if len(r.Targets) == n {
				out.FailedEntries = append(out.FailedEntries, failedEntry{id, "ResourceNotFoundException", "Target " + id + " does not exist."})
			}
		}
		return nil
	})
}

func (f *Frontend) listTargetsByRule(rq *request) error {
	var in struct {
		Rule         string
		EventBusName string
	}
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := checkEventBus(in.EventBusName); err != nil {
		return err
	}
	rule, err := f.store.GetRule(rq.r.Context(), in.Rule)
	if errors.Is(err, store.ErrNotFound) {
		return ruleNotFound(in.Rule)
	}
	if err != nil {
		return err
	}
	targets := rule.Targets
	if targets == nil {
		targets = []lamina.Target{}
	}
	return rq.json(http.StatusOK, struct{ Targets []lamina.Target }{targets})
}
