package deploy

import (
	"context"
	"errors"
	"fmt"
	"github.com/aws/smithy-go"
	"maps"
	"slices"

	"github.com/lamina-project/lamina/internal/store"
)

// Deploy applies a template to the stack called name, creating the stack
// when it does not exist (or when it waits in REVIEW_IN_PROGRESS for its
// first change set). It returns once the stack rests: complete, or rolled
// back to its previous state, in which case the error says why. Only one
// deploy or delete of a stack runs at a time.
func (e *Engine) Deploy(ctx context.Context, name, body string, params map[string]string, capabilities []string) (*Stack, error) {
	// A template that cannot be planned changes nothing.
	existing, err := e.Stacks.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && existing.Status == StatusReviewInProgress) {
		existing, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := e.newDeployment(ctx, existing, name, body, params); err != nil {
		return nil, err
	}
	stack, creating, err := e.begin(ctx, name)
	if err != nil {
		return nil, err
	}
	var old *Stack
	if !creating {
		old = stack
	}
	d, err := e.newDeployment(ctx, old, name, body, params)
	if err != nil {
		final := StatusUpdateRollbackComplete
		if creating {
			final = StatusRollbackComplete
		}
		e.finish(ctx, name, final, err.Error(), nil)
		return nil, err
	}
	d.id, d.scope.stackID, d.body, d.capabilities = stack.ID, stack.ID, body, capabilities
	if err := d.apply(ctx, creating); err != nil {
		s, _ := e.Stacks.Get(ctx, name)
		return s, err
	}
	return e.Stacks.Get(ctx, name)
}

// begin marks the stack as being deployed, or refuses when it is busy.
func (e *Engine) begin(ctx context.Context, name string) (*Stack, bool, error) {
	creating := false
	var prior *Stack
	stack, err := e.Stacks.Update(ctx, name, func(s *Stack) error {
		prior = cloneStack(s)
		switch s.Status {
		case StatusReviewInProgress:
			creating = true
			s.Status = StatusCreateInProgress
		case StatusRollbackComplete, StatusRollbackFailed, StatusDeleteFailed, StatusUpdateRollbackFailed:
			return validation("Stack:%s is in %s state and can not be updated.", s.ID, s.Status)
		default:
			if !Complete(s.Status) {
				return validation("Stack:%s is in %s state and can not be updated.", s.ID, s.Status)
			}
			s.Status = StatusUpdateInProgress
			s.Updated = now()
		}
		s.StatusReason = "User Initiated"
		s.addEvent(Event{LogicalResourceID: s.Name, PhysicalResourceID: s.ID, ResourceType: "AWS::CloudFormation::Stack",
			ResourceStatus: s.Status, ResourceStatusReason: "User Initiated"})
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		creating = true
		s := &Stack{Name: name, ID: e.StackARN(name), Status: StatusCreateInProgress, Created: now(), Resources: map[string]*StackResource{}}
		s.addEvent(Event{LogicalResourceID: name, PhysicalResourceID: s.ID, ResourceType: "AWS::CloudFormation::Stack",
			ResourceStatus: StatusCreateInProgress, ResourceStatusReason: "User Initiated"})
		if err := e.Stacks.Create(ctx, name, s); errors.Is(err, store.ErrExists) {
			return nil, false, validation("Stack [%s] already exists", name)
		} else if err != nil {
			return nil, false, err
		}
		stack = s
	} else if err != nil {
		return nil, false, err
	}
	if creating || prior == nil {
		return stack, true, nil
	}
	// What is deployed is the prior stack; the record now says it is busy.
	prior.Status = stack.Status
	return prior, false, nil
}

func cloneStack(s *Stack) *Stack {
	c := *s
	c.Resources = maps.Clone(s.Resources)
	return &c
}

// applied is one change a deploy made, for its rollback.
type applied struct {
	id      string
	old     *StackResource // nil when created
	new     *StackResource
	replace bool
}

// apply makes the template's resources, then removes what left it; when a
// step fails it undoes what it did.
func (d *deployment) apply(ctx context.Context, creating bool) error {
	var done []applied
	var retired []*StackResource
	fail := func(err error) error {
		d.rollback(ctx, creating, done, err)
		return err
	}
	for _, id := range d.order {
		s, err := d.decide(id)
		if err != nil {
			return fail(err)
		}
		if s == nil {
			continue
		}
		r := d.tmpl.Resources[id]
		typ := d.e.Types[r.Type]
		old := d.current[id]
		res := &Resolved{LogicalID: id, Type: r.Type, StackName: d.name, Properties: s.props}
		rec := &StackResource{LogicalID: id, Type: r.Type, Properties: s.props, DependsOn: dependencies(r, d.tmpl.Resources),
			Line: r.Line, From: r.From}
		verb := "CREATE"
		if old != nil && !s.replace {
			verb = "UPDATE"
			res.PhysicalID, res.Attributes = old.PhysicalID, old.Attributes
		}
		d.event(ctx, rec, verb+"_IN_PROGRESS", "")
		var attrs map[string]any
		if verb == "CREATE" {
			res.PhysicalID, attrs, err = typ.Create(ctx, res)
		} else {
			attrs, err = typ.Update(ctx, res, old.Properties)
		}
		rec.PhysicalID, rec.Attributes = res.PhysicalID, attrs
		if err != nil {
			err = plainError(err)
			d.event(ctx, rec, verb+"_FAILED", err.Error())
			return fail(fmt.Errorf("%s %s (%s): %w", r.Type, id, lineOf(id, r), err))
		}
		d.current[id] = rec
		done = append(done, applied{id: id, old: old, new: rec, replace: s.replace})
		if s.replace && old != nil {
			retired = append(retired, old)
		}
		d.event(ctx, rec, verb+"_COMPLETE", "")
	}
	outputs, err := d.outputs()
	if err != nil {
		return fail(err)
	}
	if !creating {
		d.e.setStatus(ctx, d.name, StatusUpdateCleanupInProgress, "")
	}
	// Old resources go only after the new ones work: replaced ones, and
	// those that left the template.
	for _, r := range append(d.removed(), retired...) {
		d.remove(ctx, r)
		if d.tmpl.Resources[r.LogicalID] == nil {
			delete(d.current, r.LogicalID)
		}
	}
	final := StatusUpdateComplete
	if creating {
		final = StatusCreateComplete
	}
	d.e.finish(ctx, d.name, final, "", func(s *Stack) {
		s.Resources = d.current
		s.Outputs = outputs
		s.Parameters = d.params
		s.Description = d.tmpl.Description
		s.Template = d.body
		s.Capabilities = d.capabilities
	})
	return nil
}

// lineOf says where a resource comes from in the template.
func lineOf(id string, r *Resource) string {
	if r.From != "" && r.From != id {
		return fmt.Sprintf("made from %s, line %d", r.From, r.Line)
	}
	return fmt.Sprintf("line %d", r.Line)
}

// remove deletes one resource, recording the outcome.
func (d *deployment) remove(ctx context.Context, r *StackResource) error {
	d.event(ctx, r, StatusDeleteInProgress, "")
	err := d.e.Types[r.Type].Delete(ctx, &Resolved{LogicalID: r.LogicalID, Type: r.Type, StackName: d.name,
		PhysicalID: r.PhysicalID, Properties: r.Properties, Attributes: r.Attributes})
	if err != nil {
		err = plainError(err)
		d.event(ctx, r, StatusDeleteFailed, err.Error())
		return err
	}
	d.event(ctx, r, StatusDeleteComplete, "")
	return nil
}

// rollback undoes a failed deploy's changes, newest first, and leaves the
// stack as it was.
func (d *deployment) rollback(ctx context.Context, creating bool, done []applied, cause error) {
	ctx = context.WithoutCancel(ctx)
	inProgress, final, failed := StatusUpdateRollbackInProgress, StatusUpdateRollbackComplete, StatusUpdateRollbackFailed
	if creating {
		inProgress, final, failed = StatusRollbackInProgress, StatusRollbackComplete, StatusRollbackFailed
	}
	d.e.setStatus(ctx, d.name, inProgress, cause.Error())
	ok := true
	for _, a := range slices.Backward(done) {
		if a.old == nil || a.replace {
			if err := d.remove(ctx, a.new); err != nil {
				ok = false
				continue
			}
			if a.old == nil {
				delete(d.current, a.id)
			} else {
				d.current[a.id] = a.old
			}
			continue
		}
		d.event(ctx, a.old, "UPDATE_IN_PROGRESS", "rolling back")
		res := &Resolved{LogicalID: a.id, Type: a.old.Type, StackName: d.name, PhysicalID: a.old.PhysicalID,
			Properties: a.old.Properties, Attributes: a.old.Attributes}
		if _, err := d.e.Types[a.old.Type].Update(ctx, res, a.new.Properties); err != nil {
			d.event(ctx, a.old, "UPDATE_FAILED", err.Error())
			ok = false
			d.current[a.id] = a.new
			continue
		}
		d.current[a.id] = a.old
		d.event(ctx, a.old, "UPDATE_COMPLETE", "")
	}
	status := final
	if !ok {
		status = failed
	}
	d.e.finish(ctx, d.name, status, cause.Error(), func(s *Stack) { s.Resources = d.current })
}

// outputs resolves the template's outputs.
func (d *deployment) outputs() ([]StackOutput, error) {
	var outs []StackOutput
	for _, key := range sortedKeys(d.tmpl.Outputs) {
		o := d.tmpl.Outputs[key]
		if o.Condition != "" {
			if ok, err := d.scope.condition(o.Condition); err != nil || !ok {
				continue
			}
		}
		v, err := d.scope.resolve(o.Value)
		if err != nil {
			return nil, fmt.Errorf("Output %s: %w", key, err)
		}
		out := StackOutput{OutputKey: key, OutputValue: str(v), Description: o.Description}
		if l, ok := v.([]any); ok {
			parts := make([]string, len(l))
			for i, e := range l {
				parts[i] = str(e)
			}
			out.OutputValue = joinComma(parts)
		}
		if o.Export != nil {
			name, err := d.scope.resolve(o.Export["Name"])
			if err != nil {
				return nil, fmt.Errorf("Output %s: %w", key, err)
			}
			out.ExportName = str(name)
		}
		outs = append(outs, out)
	}
	return outs, nil
}

func joinComma(parts []string) string {
	s := ""
	for i, p := range parts {
		if i > 0 {
			s += ","
		}
		s += p
	}
	return s
}

// event records a resource's status on the stack.
func (d *deployment) event(ctx context.Context, r *StackResource, status, reason string) {
	r.Status, r.StatusReason, r.Updated = status, reason, now()
	d.e.update(ctx, d.name, func(s *Stack) {
		s.addEvent(Event{LogicalResourceID: r.LogicalID, PhysicalResourceID: r.PhysicalID, ResourceType: r.Type,
			ResourceStatus: status, ResourceStatusReason: reason})
	})
	if d.e.Logger != nil {
		d.e.Logger.Debug("stack resource", "stack", d.name, "resource", r.LogicalID, "type", r.Type, "status", status, "reason", reason)
	}
}

// update changes the stack's record; the record is what other requests
// see, so a failure to write it is logged, and the deploy goes on.
func (e *Engine) update(ctx context.Context, name string, change func(*Stack)) {
	_, err := e.Stacks.Update(context.WithoutCancel(ctx), name, func(s *Stack) error { change(s); return nil })
	if err != nil && e.Logger != nil {
		e.Logger.Warn("cannot record a stack's progress", "stack", name, "err", err)
	}
}

func (e *Engine) setStatus(ctx context.Context, name, status, reason string) {
	e.update(ctx, name, func(s *Stack) {
		s.Status, s.StatusReason = status, reason
		s.addEvent(Event{LogicalResourceID: s.Name, PhysicalResourceID: s.ID, ResourceType: "AWS::CloudFormation::Stack",
			ResourceStatus: status, ResourceStatusReason: reason})
	})
}

// finish records the stack's resting state, after change.
func (e *Engine) finish(ctx context.Context, name, status, reason string, change func(*Stack)) {
	e.update(ctx, name, func(s *Stack) {
		if change != nil {
			change(s)
		}
		s.Status, s.StatusReason = status, reason
		s.addEvent(Event{LogicalResourceID: s.Name, PhysicalResourceID: s.ID, ResourceType: "AWS::CloudFormation::Stack",
			ResourceStatus: status, ResourceStatusReason: reason})
	})
}

// Delete removes a stack and its resources, dependents first. A resource
// that cannot be removed leaves the stack DELETE_FAILED with the resources
// that remain.
func (e *Engine) Delete(ctx context.Context, name string) error {
	stack, err := e.Stacks.Update(ctx, name, func(s *Stack) error {
		if !Complete(s.Status) {
			return validation("Stack %s is in %s state and can not be deleted.", s.ID, s.Status)
		}
		s.Status, s.StatusReason = StatusDeleteInProgress, "User Initiated"
		s.addEvent(Event{LogicalResourceID: s.Name, PhysicalResourceID: s.ID, ResourceType: "AWS::CloudFormation::Stack",
			ResourceStatus: StatusDeleteInProgress, ResourceStatusReason: "User Initiated"})
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleting a stack that does not exist succeeds, as in CloudFormation
	}
	if err != nil {
		return err
	}
	d := &deployment{e: e, name: name, tmpl: &Template{Resources: map[string]*Resource{}}, current: maps.Clone(stack.Resources)}
	var rs []*StackResource
	for _, id := range sortedKeys(stack.Resources) {
		rs = append(rs, stack.Resources[id])
	}
	var failed []string
	for _, r := range deletionOrder(rs) {
		if err := d.remove(ctx, r); err != nil {
			failed = append(failed, r.LogicalID)
			continue
		}
		delete(d.current, r.LogicalID)
	}
	if len(failed) > 0 {
		reason := fmt.Sprintf("The following resource(s) failed to delete: [%s].", joinComma(failed))
		e.finish(ctx, name, StatusDeleteFailed, reason, func(s *Stack) { s.Resources = d.current })
		return errors.New(reason)
	}
	_, err = e.Stacks.Remove(context.WithoutCancel(ctx), name, func(s *Stack) bool { return s.ID == stack.ID })
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	return err
}

// plainError is an API's error as "Code: message", without the SDK's
// account of the request.
func plainError(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}
