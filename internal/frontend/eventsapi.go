package frontend

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/eventbus"
	"github.com/lamina-project/lamina/internal/schedule"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/lamina-project/lamina/internal/targets"
)

// Amazon EventBridge's API (JSON 1.1, X-Amz-Target AWSEvents.*, service
// "events"): rules — schedule rules on the default bus, event-pattern rules
// on any bus — and their targets here; buses and PutEvents in
// internal/eventbus.

const (
	maxTargetsPerRule = 5
	maxInputSize      = 8192
	maxInputPaths     = 100
)

var ruleNameRE = regexp.MustCompile(`^[\.\-_A-Za-z0-9]{1,64}$`)

// eventsService is the EventBridge subset on its wire protocol.
func (f *Frontend) eventsService() *awsproto.Service {
	s := &awsproto.Service{SigningName: serviceEvents, TargetPrefix: "AWSEvents", JSONVersion: "1.1"}
	for name, handle := range map[string]func(*request) error{
		"PutRule":               f.putRule,
		"DescribeRule":          f.describeRule,
		"ListRules":             f.listRules,
		"EnableRule":            f.enableRule,
		"DisableRule":           f.disableRule,
		"DeleteRule":            f.deleteRule,
		"PutTargets":            f.putTargets,
		"RemoveTargets":         f.removeTargets,
		"ListTargetsByRule":     f.listTargetsByRule,
		"ListRuleNamesByTarget": f.listRuleNamesByTarget,
	} {
		s.Handle(targetOperation(name, handle))
	}
	if f.events != nil {
		s.Handle(f.events.Operations()...)
	}
	return s
}

func eventsValidation(msg string) error {
	return &lamina.Error{Status: http.StatusBadRequest, Code: "ValidationException", Message: msg}
}

func ruleNotFound(name, bus string) error {
	return &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceNotFoundException",
		Message: "Rule " + name + " does not exist on EventBus " + bus + "."}
}

// eventBus returns the name of the bus a request's EventBusName names (the
// default bus when empty), or ResourceNotFoundException.
func (f *Frontend) eventBus(rq *request, nameOrARN string) (string, error) {
	if f.events == nil {
		if nameOrARN == "" || nameOrARN == eventbus.DefaultBus {
			return eventbus.DefaultBus, nil
		}
		return "", &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceNotFoundException", Message: "Event bus " + nameOrARN + " does not exist."}
	}
	return f.events.BusName(rq.r.Context(), nameOrARN)
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
	ScheduleExpression string `json:",omitempty"`
	EventPattern       string `json:",omitempty"`
	State              string
	Description        string `json:",omitempty"`
	RoleArn            string `json:",omitempty"`
	EventBusName       string
	CreatedBy          string
}

func ruleOut(r *lamina.Rule) ruleOutput {
	return ruleOutput{Name: r.Name, Arn: r.Arn, ScheduleExpression: r.ScheduleExpression, EventPattern: r.EventPattern, State: r.State,
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
	bus, err := f.eventBus(rq, in.EventBusName)
	if err != nil {
		return err
	}
	switch {
	case in.EventPattern == "" && in.ScheduleExpression == "":
		return eventsValidation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
	case in.ScheduleExpression != "" && bus != eventbus.DefaultBus:
		return eventsValidation("ScheduleExpression is supported only on the default event bus.")
	}
	if in.ScheduleExpression != "" {
		if _, err := schedule.Parse(in.ScheduleExpression); err != nil {
			return eventsValidation(err.Error())
		}
	}
	if in.EventPattern != "" {
		if f.events == nil {
			return eventsValidation("Event patterns are not served by this node.")
		}
		if _, err := f.events.Pattern(in.EventPattern); err != nil {
			return err
		}
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
	key := eventbus.RuleKey(bus, in.Name)
	rule := &lamina.Rule{
		Name: in.Name, Arn: lamina.RuleARN(f.cfg.Region, f.cfg.AccountID, key),
		ScheduleExpression: in.ScheduleExpression, EventPattern: in.EventPattern, State: state, Description: in.Description, RoleArn: in.RoleArn,
		EventBusName: bus, CreatedBy: f.cfg.AccountID, Created: time.Now().UnixMilli(),
	}
	err = f.store.CreateRule(ctx, key, rule)
	if errors.Is(err, store.ErrExists) { // PutRule updates an existing rule
		_, err = f.store.UpdateRule(ctx, key, func(r *lamina.Rule) error {
			if r.ScheduleExpression != in.ScheduleExpression {
				r.ScheduleExpression, r.Created = in.ScheduleExpression, time.Now().UnixMilli()
			}
			r.EventPattern, r.State, r.Description, r.RoleArn = in.EventPattern, state, in.Description, in.RoleArn
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

// namedRule reads a request naming a rule and returns the rule and its
// store key.
func (f *Frontend) namedRule(rq *request) (*ruleNameInput, *lamina.Rule, string, error) {
	var in ruleNameInput
	if err := rq.decode(&in); err != nil {
		return nil, nil, "", err
	}
	rule, key, err := f.rule(rq, in.EventBusName, in.Name)
	return &in, rule, key, err
}

// rule returns the rule called name on a bus, and its store key.
func (f *Frontend) rule(rq *request, busName, name string) (*lamina.Rule, string, error) {
	bus, err := f.eventBus(rq, busName)
	if err != nil {
		return nil, "", err
	}
	key := eventbus.RuleKey(bus, name)
	rule, err := f.store.GetRule(rq.r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, key, ruleNotFound(name, bus)
	}
	return rule, key, err
}

func (f *Frontend) describeRule(rq *request) error {
	_, rule, _, err := f.namedRule(rq)
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
	bus, err := f.eventBus(rq, in.EventBusName)
	if err != nil {
		return err
	}
	rules := []ruleOutput{}
	for _, r := range f.store.ListRules(rq.r.Context(), eventbus.RuleKey(bus, in.NamePrefix)) {
		if r.EventBusName == bus && (in.NextToken == "" || r.Name > in.NextToken) {
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
	_, _, key, err := f.namedRule(rq)
	if err != nil {
		return err
	}
	if _, err := f.store.UpdateRule(rq.r.Context(), key, func(r *lamina.Rule) error {
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
	in, rule, key, err := f.namedRule(rq)
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
	if err := f.store.DeleteRule(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := f.store.DeleteScheduleState(ctx, key); err != nil {
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
	out := targetsOutput{FailedEntries: []failedEntry{}}
	var valid []lamina.Target
	for _, t := range in.Targets {
		if err := f.checkRuleTarget(t); err != nil {
			out.FailedEntries = append(out.FailedEntries, failedEntry{t.Id, "ValidationException", err.Error()})
			continue
		}
		valid = append(valid, t)
	}
	return f.changeTargets(rq, in.EventBusName, in.Rule, &out, func(r *lamina.Rule) error {
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

// checkRuleTarget checks a target's ARN and input.
func (f *Frontend) checkRuleTarget(t lamina.Target) error {
	inputs := 0
	for _, set := range []bool{t.Input != "", t.InputPath != "", t.InputTransformer != nil} {
		if set {
			inputs++
		}
	}
	switch {
	case !ruleNameRE.MatchString(t.Id):
		return errors.New("Target Id is not valid.")
	case inputs > 1:
		return errors.New("Only one of Input, InputPath, or InputTransformer must be provided.")
	case len(t.Input) > maxInputSize || (t.Input != "" && !json.Valid([]byte(t.Input))):
		return errors.New("Input is not a valid JSON text of at most 8192 characters.")
	case t.InputPath != "" && !strings.HasPrefix(t.InputPath, "$"):
		return errors.New("InputPath is not a valid JSONPath.")
	case t.InputTransformer != nil && (len(t.InputTransformer.InputTemplate) > maxInputSize || len(t.InputTransformer.InputPathsMap) > maxInputPaths):
		return errors.New("InputTransformer's InputTemplate may have 8192 characters and its InputPathsMap 100 entries at most.")
	}
	if t.InputTransformer != nil {
		for name, path := range t.InputTransformer.InputPathsMap {
			if !strings.HasPrefix(path, "$") || strings.HasPrefix(name, "aws.") {
				return errors.New("InputTransformer's InputPathsMap entry " + name + " is not valid.")
			}
		}
	}
	if err := f.checkTarget(t.Arn, targets.Function, targets.Queue, targets.Topic, targets.Bus); err != nil {
		return err
	}
	return nil
}

// changeTargets applies change to a rule atomically and answers with the
// entries it could not apply.
func (f *Frontend) changeTargets(rq *request, busName, name string, out *targetsOutput, change func(*lamina.Rule) error) error {
	_, key, err := f.rule(rq, busName, name)
	if err != nil {
		return err
	}
	_, err = f.store.UpdateRule(rq.r.Context(), key, change)
	if errors.Is(err, store.ErrNotFound) {
		return ruleNotFound(name, busName)
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
	out := targetsOutput{FailedEntries: []failedEntry{}}
	return f.changeTargets(rq, in.EventBusName, in.Rule, &out, func(r *lamina.Rule) error {
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
	rule, _, err := f.rule(rq, in.EventBusName, in.Rule)
	if err != nil {
		return err
	}
	list := rule.Targets
	if list == nil {
		list = []lamina.Target{}
	}
	return rq.json(http.StatusOK, struct{ Targets []lamina.Target }{list})
}

func (f *Frontend) listRuleNamesByTarget(rq *request) error {
	var in struct {
		TargetArn    string
		EventBusName string
		NextToken    string
		Limit        int
	}
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.TargetArn == "" {
		return eventsValidation("1 validation error detected: Value null at 'targetArn' failed to satisfy constraint: Member must not be null")
	}
	bus, err := f.eventBus(rq, in.EventBusName)
	if err != nil {
		return err
	}
	names := []string{}
	for _, r := range f.store.ListRules(rq.r.Context(), "") {
		if r.EventBusName != bus || (in.NextToken != "" && r.Name <= in.NextToken) {
			continue
		}
		if slices.ContainsFunc(r.Targets, func(t lamina.Target) bool { return t.Arn == in.TargetArn }) {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	out := struct {
		RuleNames []string
		NextToken string `json:",omitempty"`
	}{RuleNames: names}
	if in.Limit > 0 && len(names) > in.Limit {
		out.RuleNames, out.NextToken = names[:in.Limit], names[in.Limit-1]
	}
	return rq.json(http.StatusOK, out)
}
