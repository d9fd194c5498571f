package cloudformation

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/deploy"
	"github.com/lamina-project/lamina/internal/store"
)

// Parameter is a stack parameter, given or shown.
type Parameter struct {
	ParameterKey     string
	ParameterValue   string `json:",omitempty"`
	UsePreviousValue bool   `json:",omitempty" query:"-"`
}

// Tag is a stack tag.
type Tag struct{ Key, Value string }

// stackInput is CreateStack's and UpdateStack's input.
type stackInput struct {
	StackName           string
	TemplateBody        string
	TemplateURL         string
	UsePreviousTemplate bool
	Parameters          []Parameter
	Capabilities        []string
	Tags                []Tag
}

type stackIDOutput struct{ StackId string }

func (s *Service) createStack(c *awsproto.Call, in *stackInput) (*stackIDOutput, error) {
	if in.StackName == "" {
		return nil, validationError("1 validation error detected: Value null at 'stackName' failed to satisfy constraint: Member must not be null")
	}
	if st, err := s.engine.Stacks.Get(c.Context(), in.StackName); err == nil && st.Status != deploy.StatusReviewInProgress {
		return nil, awsproto.Errorf(400, "AlreadyExistsException", "Stack [%s] already exists", in.StackName)
	}
	body, err := s.template(c.Context(), in.TemplateBody, in.TemplateURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := detached(c.Context())
	defer cancel()
	st, err := s.engine.Deploy(ctx, in.StackName, body, params(in.Parameters, nil), in.Capabilities)
	if st == nil {
		return nil, apiError(err)
	}
	return &stackIDOutput{StackId: st.ID}, nil
}

func (s *Service) updateStack(c *awsproto.Call, in *stackInput) (*stackIDOutput, error) {
	st, err := s.stack(c.Context(), in.StackName)
	if err != nil {
		return nil, err
	}
	body := st.Template
	if !in.UsePreviousTemplate {
		if body, err = s.template(c.Context(), in.TemplateBody, in.TemplateURL); err != nil {
			return nil, err
		}
	}
	values := params(in.Parameters, st.Parameters)
	changes, err := s.engine.Plan(c.Context(), st, st.Name, body, values)
	if err != nil {
		return nil, apiError(err)
	}
	if len(changes) == 0 {
		return nil, validationError("No updates are to be performed.")
	}
	ctx, cancel := detached(c.Context())
	defer cancel()
	got, err := s.engine.Deploy(ctx, st.Name, body, values, in.Capabilities)
	if got == nil {
		return nil, apiError(err)
	}
	return &stackIDOutput{StackId: got.ID}, nil
}

type stackNameInput struct {
	StackName         string
	LogicalResourceId string
	NextToken         string
	TemplateStage     string
	ChangeSetName     string
}

func (s *Service) deleteStack(c *awsproto.Call, in *stackNameInput) (*awsproto.Empty, error) {
	st, err := s.stack(c.Context(), in.StackName)
	if err != nil {
		var ae *awsproto.Error
		if errors.As(err, &ae) && ae.Code == "ValidationError" {
			return &awsproto.Empty{}, nil // deleting what is gone succeeds
		}
		return nil, err
	}
	ctx, cancel := detached(c.Context())
	defer cancel()
	// A resource that cannot be deleted leaves the stack DELETE_FAILED,
	// which DescribeStacks shows.
	if err := s.engine.Delete(ctx, st.Name); err != nil {
		var ve *deploy.ValidationError
		if errors.As(err, &ve) {
			return nil, apiError(err)
		}
	}
	return &awsproto.Empty{}, nil
}

// stackOutput is a stack, as DescribeStacks shows it.
type stackOutput struct {
	StackId                     string
	StackName                   string
	Description                 string      `json:",omitempty"`
	Parameters                  []Parameter `query:"Parameters,empty"`
	CreationTime                string
	LastUpdatedTime             string `json:",omitempty"`
	StackStatus                 string
	StackStatusReason           string `json:",omitempty"`
	Capabilities                []string
	Outputs                     []deploy.StackOutput
	Tags                        []Tag
	DisableRollback             bool
	EnableTerminationProtection bool
}

func (s *Service) stackOut(st *deploy.Stack) stackOutput {
	out := stackOutput{StackId: st.ID, StackName: st.Name, Description: st.Description, CreationTime: isoTime(st.Created),
		LastUpdatedTime: isoTime(st.Updated), StackStatus: st.Status, StackStatusReason: st.StatusReason,
		Capabilities: st.Capabilities, Outputs: st.Outputs}
	tmpl, _ := deploy.Parse([]byte(st.Template))
	for _, k := range sortedKeys(st.Parameters) {
		v := st.Parameters[k]
		if tmpl != nil && tmpl.Parameters[k] != nil && tmpl.Parameters[k].NoEcho {
			v = "****"
		}
		out.Parameters = append(out.Parameters, Parameter{ParameterKey: k, ParameterValue: v})
	}
	for _, k := range sortedKeys(st.Tags) {
		out.Tags = append(out.Tags, Tag{Key: k, Value: st.Tags[k]})
	}
	return out
}

type describeStacksOutput struct {
	Stacks []stackOutput
}

func (s *Service) describeStacks(c *awsproto.Call, in *stackNameInput) (*describeStacksOutput, error) {
	out := &describeStacksOutput{}
	if in.StackName != "" {
		st, err := s.stack(c.Context(), in.StackName)
		if err != nil {
			return nil, err
		}
		out.Stacks = append(out.Stacks, s.stackOut(st))
		return out, nil
	}
	for _, st := range s.engine.Stacks.List("", nil) {
		out.Stacks = append(out.Stacks, s.stackOut(st))
	}
	return out, nil
}

type stackSummary struct {
	StackId, StackName, StackStatus, CreationTime string
	LastUpdatedTime                               string `json:",omitempty"`
	StackStatusReason                             string `json:",omitempty"`
}

type listStacksOutput struct{ StackSummaries []stackSummary }

func (s *Service) listStacks(c *awsproto.Call, _ *awsproto.Empty) (*listStacksOutput, error) {
	out := &listStacksOutput{}
	for _, st := range s.engine.Stacks.List("", nil) {
		out.StackSummaries = append(out.StackSummaries, stackSummary{StackId: st.ID, StackName: st.Name, StackStatus: st.Status,
			CreationTime: isoTime(st.Created), LastUpdatedTime: isoTime(st.Updated), StackStatusReason: st.StatusReason})
	}
	return out, nil
}

type stackEvent struct {
	StackId, EventId, StackName, LogicalResourceId string
	PhysicalResourceId                             string `json:",omitempty"`
	ResourceType, Timestamp, ResourceStatus        string
	ResourceStatusReason                           string `json:",omitempty"`
}

type eventsOutput struct{ StackEvents []stackEvent }

// describeStackEvents lists a stack's events, newest first.
func (s *Service) describeStackEvents(c *awsproto.Call, in *stackNameInput) (*eventsOutput, error) {
	st, err := s.stack(c.Context(), in.StackName)
	if err != nil {
		return nil, err
	}
	out := &eventsOutput{}
	for _, ev := range slices.Backward(st.Events) {
		out.StackEvents = append(out.StackEvents, stackEvent{StackId: st.ID, EventId: ev.EventID, StackName: st.Name,
			LogicalResourceId: ev.LogicalResourceID, PhysicalResourceId: ev.PhysicalResourceID, ResourceType: ev.ResourceType,
			Timestamp: isoTime(ev.Timestamp), ResourceStatus: ev.ResourceStatus, ResourceStatusReason: ev.ResourceStatusReason})
	}
	return out, nil
}

type stackResource struct {
	StackName            string `json:",omitempty"`
	StackId              string `json:",omitempty"`
	LogicalResourceId    string
	PhysicalResourceId   string
	ResourceType         string
	Timestamp            string `json:",omitempty"`
	LastUpdatedTimestamp string `json:",omitempty"`
	ResourceStatus       string
	ResourceStatusReason string `json:",omitempty"`
}

func (s *Service) resources(st *deploy.Stack, only string) []stackResource {
	var out []stackResource
	for _, id := range sortedKeys(st.Resources) {
		r := st.Resources[id]
		if only != "" && id != only {
			continue
		}
		out = append(out, stackResource{StackName: st.Name, StackId: st.ID, LogicalResourceId: id, PhysicalResourceId: r.PhysicalID,
			ResourceType: r.Type, Timestamp: isoTime(r.Updated), ResourceStatus: r.Status, ResourceStatusReason: r.StatusReason})
	}
	return out
}

type describeResourcesOutput struct{ StackResources []stackResource }

func (s *Service) describeStackResources(c *awsproto.Call, in *stackNameInput) (*describeResourcesOutput, error) {
	st, err := s.stack(c.Context(), in.StackName)
	if err != nil {
		return nil, err
	}
	return &describeResourcesOutput{StackResources: s.resources(st, in.LogicalResourceId)}, nil
}

type describeResourceOutput struct{ StackResourceDetail stackResource }

func (s *Service) describeStackResource(c *awsproto.Call, in *stackNameInput) (*describeResourceOutput, error) {
	st, err := s.stack(c.Context(), in.StackName)
	if err != nil {
		return nil, err
	}
	rs := s.resources(st, in.LogicalResourceId)
	if len(rs) == 0 {
		return nil, validationError("Resource %s does not exist for stack %s", in.LogicalResourceId, st.Name)
	}
	rs[0].LastUpdatedTimestamp, rs[0].Timestamp = rs[0].Timestamp, ""
	return &describeResourceOutput{StackResourceDetail: rs[0]}, nil
}

type listResourcesOutput struct{ StackResourceSummaries []stackResource }

func (s *Service) listStackResources(c *awsproto.Call, in *stackNameInput) (*listResourcesOutput, error) {
	st, err := s.stack(c.Context(), in.StackName)
	if err != nil {
		return nil, err
	}
	out := &listResourcesOutput{}
	for _, r := range s.resources(st, "") {
		r.StackName, r.StackId, r.LastUpdatedTimestamp, r.Timestamp = "", "", r.Timestamp, ""
		out.StackResourceSummaries = append(out.StackResourceSummaries, r)
	}
	return out, nil
}

type getTemplateOutput struct {
	TemplateBody    string
	StagesAvailable []string
}

// getTemplate returns the template as submitted (Original), or after the
// SAM transform (Processed), of the stack or of one of its change sets.
func (s *Service) getTemplate(c *awsproto.Call, in *stackNameInput) (*getTemplateOutput, error) {
	st, err := s.stack(c.Context(), in.StackName)
	if err != nil {
		return nil, err
	}
	body := st.Template
	if in.ChangeSetName != "" {
		cs := st.ChangeSet(in.ChangeSetName)
		if cs == nil {
			return nil, changeSetNotFound(in.ChangeSetName)
		}
		body = cs.Template
	}
	if in.TemplateStage == "Processed" {
		t, err := s.engine.Prepare(body)
		if err != nil {
			return nil, apiError(err)
		}
		data, err := json.MarshalIndent(processed(t), "", "  ")
		if err != nil {
			return nil, err
		}
		body = string(data)
	}
	return &getTemplateOutput{TemplateBody: body, StagesAvailable: []string{"Original", "Processed"}}, nil
}

// processed is a transformed template as JSON.
func processed(t *deploy.Template) map[string]any {
	resources := map[string]any{}
	for id, r := range t.Resources {
		m := map[string]any{"Type": r.Type, "Properties": r.Properties}
		if len(r.DependsOn) > 0 {
			m["DependsOn"] = r.DependsOn
		}
		if r.Condition != "" {
			m["Condition"] = r.Condition
		}
		resources[id] = m
	}
	out := map[string]any{"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}
	if t.Description != "" {
		out["Description"] = t.Description
	}
	if len(t.Conditions) > 0 {
		out["Conditions"] = t.Conditions
	}
	if len(t.Outputs) > 0 {
		out["Outputs"] = t.Outputs
	}
	return out
}

type templateInput struct {
	StackName    string
	TemplateBody string
	TemplateURL  string
}

type templateParameter struct {
	ParameterKey  string
	DefaultValue  string `json:",omitempty"`
	ParameterType string `json:",omitempty"`
	NoEcho        bool
	Description   string `json:",omitempty"`
}

type templateSummaryOutput struct {
	Parameters         []templateParameter `query:"Parameters,empty"`
	Description        string              `json:",omitempty"`
	Capabilities       []string            `query:"Capabilities,empty"`
	ResourceTypes      []string
	Version            string
	DeclaredTransforms []string
}

func (s *Service) summary(c *awsproto.Call, in *templateInput) (*templateSummaryOutput, error) {
	body := in.TemplateBody
	if in.StackName != "" && body == "" && in.TemplateURL == "" {
		st, err := s.stack(c.Context(), in.StackName)
		if err != nil {
			return nil, err
		}
		body = st.Template
	} else {
		var err error
		if body, err = s.template(c.Context(), in.TemplateBody, in.TemplateURL); err != nil {
			return nil, err
		}
	}
	t, err := deploy.Parse([]byte(body))
	if err != nil {
		return nil, validationError("%s", err.Error())
	}
	out := &templateSummaryOutput{Description: t.Description, Version: "2010-09-09", DeclaredTransforms: t.Transform}
	for _, k := range sortedKeys(t.Parameters) {
		p := t.Parameters[k]
		tp := templateParameter{ParameterKey: k, ParameterType: p.Type, NoEcho: p.NoEcho, Description: p.Description}
		if p.Default != nil {
			tp.DefaultValue = defaultString(p.Default)
		}
		out.Parameters = append(out.Parameters, tp)
	}
	types := map[string]bool{}
	for _, r := range t.Resources {
		types[r.Type] = true
		if strings.HasPrefix(r.Type, "AWS::IAM::") || r.Type == "AWS::Serverless::Function" {
			out.Capabilities = []string{"CAPABILITY_IAM"}
		}
	}
	out.ResourceTypes = sortedKeys(types)
	return out, nil
}

func defaultString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	default:
		data, _ := json.Marshal(x)
		return strings.Trim(string(data), `"`)
	}
}

func (s *Service) getTemplateSummary(c *awsproto.Call, in *templateInput) (*templateSummaryOutput, error) {
	return s.summary(c, in)
}

type validateOutput struct {
	Parameters         []templateParameter `query:"Parameters,empty"`
	Description        string              `json:",omitempty"`
	Capabilities       []string            `query:"Capabilities,empty"`
	DeclaredTransforms []string
}

// validateTemplate checks a template as a deploy would: its syntax, the
// SAM transform, and that Lamina has its resource types.
func (s *Service) validateTemplate(c *awsproto.Call, in *templateInput) (*validateOutput, error) {
	sum, err := s.summary(c, in)
	if err != nil {
		return nil, err
	}
	body, _ := s.template(c.Context(), in.TemplateBody, in.TemplateURL)
	if _, err := s.engine.Prepare(body); err != nil {
		return nil, apiError(err)
	}
	for i := range sum.Parameters {
		sum.Parameters[i].ParameterType = ""
	}
	return &validateOutput{Parameters: sum.Parameters, Description: sum.Description, Capabilities: sum.Capabilities,
		DeclaredTransforms: sum.DeclaredTransforms}, nil
}

func changeSetNotFound(name string) error {
	return awsproto.Errorf(404, "ChangeSetNotFound", "ChangeSet [%s] does not exist", name)
}

type createChangeSetInput struct {
	stackInput
	ChangeSetName string
	ChangeSetType string
	Description   string
}

type createChangeSetOutput struct{ Id, StackId string }

// createChangeSet plans a deploy and keeps the plan (with its template and
// parameters) on the stack; a new stack waits in REVIEW_IN_PROGRESS.
func (s *Service) createChangeSet(c *awsproto.Call, in *createChangeSetInput) (*createChangeSetOutput, error) {
	ctx := c.Context()
	if in.StackName == "" || in.ChangeSetName == "" {
		return nil, validationError("StackName and ChangeSetName are required")
	}
	st, err := s.engine.Stacks.Get(ctx, in.StackName)
	if errors.Is(err, store.ErrNotFound) {
		st = nil
	} else if err != nil {
		return nil, err
	}
	typ := in.ChangeSetType
	if typ == "" {
		typ = "UPDATE"
	}
	switch {
	case typ == "CREATE" && st != nil && st.Status != deploy.StatusReviewInProgress:
		return nil, validationError("Stack [%s] already exists and cannot be created again with the changeSet [%s].", in.StackName, in.ChangeSetName)
	case typ == "UPDATE" && (st == nil || st.Status == deploy.StatusReviewInProgress):
		return nil, stackNotFound(in.StackName)
	case typ != "CREATE" && typ != "UPDATE":
		return nil, validationError("ChangeSetType %s is not supported by Lamina (CREATE or UPDATE)", typ)
	}
	body := ""
	var previous map[string]string
	if st != nil {
		previous = st.Parameters
		body = st.Template
	}
	if !in.UsePreviousTemplate {
		if body, err = s.template(ctx, in.TemplateBody, in.TemplateURL); err != nil {
			return nil, err
		}
	}
	values := params(in.Parameters, previous)
	planned := st
	if typ == "CREATE" {
		planned = nil
	}
	cs := &deploy.ChangeSet{Name: in.ChangeSetName, ID: s.changeSetARN(in.ChangeSetName), Type: typ, Template: body,
		Parameters: values, Description: in.Description, Created: time.Now().UTC(), Status: "CREATE_COMPLETE", ExecutionStatus: "AVAILABLE"}
	name := in.StackName
	changes, err := s.engine.Plan(ctx, planned, name, body, values)
	if err != nil {
		var ve *deploy.ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		// A template that cannot be planned makes a FAILED change set, as
		// in CloudFormation; clients read why from DescribeChangeSet.
		cs.Status, cs.StatusReason, cs.ExecutionStatus = "FAILED", ve.Message, "UNAVAILABLE"
	} else if len(changes) == 0 && typ == "UPDATE" {
		cs.Status, cs.StatusReason, cs.ExecutionStatus = "FAILED", deploy.ErrNoChanges.Error(), "UNAVAILABLE"
	}
	cs.Changes = changes
	add := func(stack *deploy.Stack) error {
		if stack.ChangeSet(cs.Name) != nil {
			return awsproto.Errorf(400, "AlreadyExistsException", "ChangeSet %s already exists", cs.Name)
		}
		if len(stack.ChangeSets) >= deploy.MaxChangeSets {
			return awsproto.Errorf(400, "LimitExceededException", "Stack %s has %d change sets; delete some first", stack.Name, deploy.MaxChangeSets)
		}
		stack.ChangeSets = append(stack.ChangeSets, cs)
		return nil
	}
	if st == nil {
		stack := &deploy.Stack{Name: name, ID: s.engine.StackARN(name), Status: deploy.StatusReviewInProgress, Created: time.Now().UTC(),
			Resources: map[string]*deploy.StackResource{}}
		for _, t := range in.Tags {
			if stack.Tags == nil {
				stack.Tags = map[string]string{}
			}
			stack.Tags[t.Key] = t.Value
		}
		_ = add(stack)
		if err := s.engine.Stacks.Create(ctx, name, stack); errors.Is(err, store.ErrExists) {
			return nil, awsproto.Errorf(400, "AlreadyExistsException", "Stack [%s] already exists", name)
		} else if err != nil {
			return nil, err
		}
		return &createChangeSetOutput{Id: cs.ID, StackId: stack.ID}, nil
	}
	stack, err := s.engine.Stacks.Update(ctx, name, func(stack *deploy.Stack) error {
		if stack.ID != st.ID {
			return stackNotFound(name)
		}
		return add(stack)
	})
	if err != nil {
		return nil, err
	}
	return &createChangeSetOutput{Id: cs.ID, StackId: stack.ID}, nil
}

// changeSet finds a change set by ARN, or by name within a stack.
func (s *Service) changeSet(ctx context.Context, name, stackName string) (*deploy.Stack, *deploy.ChangeSet, error) {
	if stackName == "" && strings.HasPrefix(name, "arn:") {
		for _, st := range s.engine.Stacks.List("", nil) {
			if cs := st.ChangeSet(name); cs != nil {
				return st, cs, nil
			}
		}
		return nil, nil, changeSetNotFound(name)
	}
	st, err := s.stack(ctx, stackName)
	if err != nil {
		return nil, nil, changeSetNotFound(name)
	}
	cs := st.ChangeSet(name)
	if cs == nil {
		return nil, nil, changeSetNotFound(name)
	}
	return st, cs, nil
}

type resourceChange struct {
	Action             string
	LogicalResourceId  string
	PhysicalResourceId string `json:",omitempty"`
	ResourceType       string
	Replacement        string `json:",omitempty"`
	Scope              []string
}

type change struct {
	Type           string
	ResourceChange resourceChange
}

type describeChangeSetOutput struct {
	ChangeSetName   string
	ChangeSetId     string
	StackId         string
	StackName       string
	Description     string `json:",omitempty"`
	Parameters      []Parameter
	CreationTime    string
	ExecutionStatus string
	Status          string
	StatusReason    string `json:",omitempty"`
	Changes         []change
}

func (s *Service) describeChangeSet(c *awsproto.Call, in *stackNameInput) (*describeChangeSetOutput, error) {
	st, cs, err := s.changeSet(c.Context(), in.ChangeSetName, in.StackName)
	if err != nil {
		return nil, err
	}
	out := &describeChangeSetOutput{ChangeSetName: cs.Name, ChangeSetId: cs.ID, StackId: st.ID, StackName: st.Name,
		Description: cs.Description, CreationTime: isoTime(cs.Created), ExecutionStatus: cs.ExecutionStatus, Status: cs.Status,
		StatusReason: cs.StatusReason}
	for _, k := range sortedKeys(cs.Parameters) {
		out.Parameters = append(out.Parameters, Parameter{ParameterKey: k, ParameterValue: cs.Parameters[k]})
	}
	for _, ch := range cs.Changes {
		rc := resourceChange{Action: string(ch.Action), LogicalResourceId: ch.LogicalID, PhysicalResourceId: ch.PhysicalID,
			ResourceType: ch.Type}
		if ch.Action == deploy.ActionModify {
			rc.Replacement = "False"
			if ch.Replacement {
				rc.Replacement = "True"
			}
			rc.Scope = []string{"Properties"}
		}
		out.Changes = append(out.Changes, change{Type: "Resource", ResourceChange: rc})
	}
	return out, nil
}

func (s *Service) executeChangeSet(c *awsproto.Call, in *stackNameInput) (*emptyResult, error) {
	st, cs, err := s.changeSet(c.Context(), in.ChangeSetName, in.StackName)
	if err != nil {
		return nil, err
	}
	if cs.ExecutionStatus != "AVAILABLE" {
		return nil, awsproto.Errorf(400, "InvalidChangeSetStatus", "ChangeSet [%s] cannot be executed in its current status of [%s]", cs.ID, cs.Status)
	}
	// A change set is executed once; the others of the stack are obsolete.
	if _, err := s.engine.Stacks.Update(c.Context(), st.Name, func(stack *deploy.Stack) error {
		stack.ChangeSets = nil
		return nil
	}); err != nil {
		return nil, err
	}
	ctx, cancel := detached(c.Context())
	defer cancel()
	got, err := s.engine.Deploy(ctx, st.Name, cs.Template, cs.Parameters, nil)
	if got == nil && err != nil {
		return nil, apiError(err)
	}
	return &emptyResult{}, nil
}

// deleteChangeSet deletes a change set. As CloudFormation, it succeeds
// when a stack that exists has no change set of that name (CDK deletes the
// name it is about to create before every deploy).
func (s *Service) deleteChangeSet(c *awsproto.Call, in *stackNameInput) (*emptyResult, error) {
	st, cs, err := s.changeSet(c.Context(), in.ChangeSetName, in.StackName)
	if err != nil {
		if in.StackName != "" && !strings.HasPrefix(in.ChangeSetName, "arn:") {
			if _, serr := s.stack(c.Context(), in.StackName); serr == nil {
				return &emptyResult{}, nil
			}
		}
		return nil, err
	}
	_, err = s.engine.Stacks.Update(c.Context(), st.Name, func(stack *deploy.Stack) error {
		stack.ChangeSets = slices.DeleteFunc(stack.ChangeSets, func(x *deploy.ChangeSet) bool { return x.ID == cs.ID })
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A stack that only waited for this change set goes with it.
	if st.Status == deploy.StatusReviewInProgress {
		_, _ = s.engine.Stacks.Remove(c.Context(), st.Name, func(stack *deploy.Stack) bool {
			return stack.Status == deploy.StatusReviewInProgress && len(stack.ChangeSets) == 0
		})
	}
	return &emptyResult{}, nil
}

// emptyResult is the output of an operation whose reply has an empty
// Result element (the SDKs' query deserializers expect it).
type emptyResult struct{}

type changeSetSummary struct {
	ChangeSetId, ChangeSetName, StackId, StackName, Status, ExecutionStatus, CreationTime string
}

type listChangeSetsOutput struct{ Summaries []changeSetSummary }

func (s *Service) listChangeSets(c *awsproto.Call, in *stackNameInput) (*listChangeSetsOutput, error) {
	st, err := s.stack(c.Context(), in.StackName)
	if err != nil {
		return nil, err
	}
	out := &listChangeSetsOutput{}
	for _, cs := range st.ChangeSets {
		out.Summaries = append(out.Summaries, changeSetSummary{ChangeSetId: cs.ID, ChangeSetName: cs.Name, StackId: st.ID,
			StackName: st.Name, Status: cs.Status, ExecutionStatus: cs.ExecutionStatus, CreationTime: isoTime(cs.Created)})
	}
	return out, nil
}

type terminationInput struct {
	StackName                   string
	EnableTerminationProtection bool
}

// updateTerminationProtection is accepted (CDK calls it) and refused when
// it would turn protection on, which Lamina does not have.
func (s *Service) updateTerminationProtection(c *awsproto.Call, in *terminationInput) (*stackIDOutput, error) {
	st, err := s.stack(c.Context(), in.StackName)
	if err != nil {
		return nil, err
	}
	if in.EnableTerminationProtection {
		return nil, validationError("Lamina does not support termination protection")
	}
	return &stackIDOutput{StackId: st.ID}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
