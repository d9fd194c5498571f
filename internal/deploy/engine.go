package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/lamina-project/lamina/internal/store"
)

// ResourceType is how Lamina makes, changes and removes one type of
// resource. Its Ref value is the physical ID Create returns.
type ResourceType struct {
	// Create makes the resource and returns its physical ID and attributes
	// (for Fn::GetAtt).
	Create func(ctx context.Context, r *Resolved) (string, map[string]any, error)
	// Update changes the resource in place to r.Properties from old, and
	// returns its attributes; nil means every change replaces it.
	Update func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error)
	// Delete removes the resource; one that is already gone is no error.
	Delete func(ctx context.Context, r *Resolved) error
	// Replace lists the properties whose change replaces the resource.
	Replace []string
}

// Resolved is a resource with its intrinsic functions resolved.
type Resolved struct {
	LogicalID  string
	Type       string
	StackName  string
	PhysicalID string // "" before Create
	Properties Props
	Attributes map[string]any
}

// replaces reports whether changing old to new needs a new resource.
func (t *ResourceType) replaces(old, new map[string]any) bool {
	if t.Update == nil {
		return true
	}
	for _, k := range t.Replace {
		if canonical(old[k]) != canonical(new[k]) {
			return true
		}
	}
	return false
}

// Engine deploys and removes stacks.
type Engine struct {
	Region, AccountID string
	Stacks            *store.Table[Stack]
	Types             map[string]*ResourceType
	// Clients are the APIs the types drive.
	Clients *Clients
	// Parameter answers template parameters of type
	// AWS::SSM::Parameter::Value<…>, by the parameter's name.
	Parameter func(ctx context.Context, name string) (string, error)
	Logger    *slog.Logger
}

// ErrNoChanges is the plan of a deploy that changes nothing, in
// CloudFormation's words.
var ErrNoChanges = errors.New("The submitted information didn't contain changes. Submit different information to create a change set.")

// ValidationError is a problem with what was submitted: a template, its
// parameters, or the stack's state.
type ValidationError struct{ Message string }

func (e *ValidationError) Error() string { return e.Message }

func validation(format string, args ...any) error {
	return &ValidationError{Message: fmt.Sprintf(format, args...)}
}

// StackARN returns a new stack's ID.
func (e *Engine) StackARN(name string) string {
	return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/%s", e.Region, e.AccountID, name, newID())
}

// Prepare parses a template, applies the SAM transform and checks that
// Lamina has every resource type it names.
func (e *Engine) Prepare(body string) (*Template, error) {
	t, err := Parse([]byte(body))
	if err != nil {
		return nil, &ValidationError{Message: err.Error()}
	}
	if err := transformSAM(t); err != nil {
		return nil, &ValidationError{Message: err.Error()}
	}
	var missing []string
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		if e.Types[r.Type] == nil {
			missing = append(missing, fmt.Sprintf("%s (%s, line %d)", r.Type, id, r.Line))
		}
	}
	if len(missing) > 0 {
		return nil, validation("Template format error: Unrecognized resource types: [%s]; Lamina does not have them", strings.Join(missing, ", "))
	}
	return t, nil
}

// Plan computes what deploying body with params to a stack (nil: a new
// one) would change.
func (e *Engine) Plan(ctx context.Context, stack *Stack, name, body string, params map[string]string) ([]Change, error) {
	d, err := e.newDeployment(ctx, stack, name, body, params)
	if err != nil {
		return nil, err
	}
	return d.plan()
}

// deployment is one run of a template against a stack's resources.
type deployment struct {
	e       *Engine
	name    string
	id      string
	tmpl    *Template
	params  map[string]string
	scope   *scope
	order   []string
	current map[string]*StackResource
	pending map[string]bool // planning: resources whose values are not known yet

	body         string // the template, kept on the stack once deployed
	capabilities []string
}

func (e *Engine) newDeployment(ctx context.Context, stack *Stack, name, body string, params map[string]string) (*deployment, error) {
	t, err := e.Prepare(body)
	if err != nil {
		return nil, err
	}
	d := &deployment{e: e, name: name, tmpl: t, current: map[string]*StackResource{}, pending: map[string]bool{}}
	if stack != nil {
		d.id = stack.ID
		for id, r := range stack.Resources {
			d.current[id] = r
		}
	} else {
		d.id = e.StackARN(name)
	}
	values, resolved, err := e.parameters(ctx, t, params)
	if err != nil {
		return nil, err
	}
	d.params = values
	d.scope = &scope{region: e.Region, accountID: e.AccountID, stackName: name, stackID: d.id, params: resolved,
		mappings: t.Mappings, conditions: t.Conditions, ref: d.ref, getAtt: d.getAtt}
	// Resources whose condition is false are not part of the stack.
	for id, r := range t.Resources {
		if r.Condition == "" {
			continue
		}
		ok, err := d.scope.condition(r.Condition)
		if err != nil {
			return nil, &ValidationError{Message: err.Error()}
		}
		if !ok {
			delete(t.Resources, id)
		}
	}
	if d.order, err = order(t.Resources); err != nil {
		return nil, err
	}
	return d, nil
}

// parameters resolves a template's parameters from the values given and
// the defaults: values as given, and as the template sees them.
func (e *Engine) parameters(ctx context.Context, t *Template, given map[string]string) (map[string]string, map[string]any, error) {
	values := map[string]string{}
	resolved := map[string]any{}
	for name := range given {
		if t.Parameters[name] == nil {
			return nil, nil, validation("Parameters: [%s] do not exist in the template", name)
		}
	}
	var missing []string
	for _, name := range sortedKeys(t.Parameters) {
		p := t.Parameters[name]
		v, ok := given[name]
		if !ok {
			if p.Default == nil {
				missing = append(missing, name)
				continue
			}
			v = str(p.Default)
		}
		if len(p.AllowedValues) > 0 && !slices.ContainsFunc(p.AllowedValues, func(a any) bool { return str(a) == v }) {
			return nil, nil, validation("Parameter '%s' must be one of AllowedValues", name)
		}
		values[name] = v
		typ := p.Type
		if inner, ok := strings.CutPrefix(typ, "AWS::SSM::Parameter::Value<"); ok {
			if e.Parameter == nil {
				return nil, nil, validation("Parameter %s: parameters from SSM are not available", name)
			}
			ssm, err := e.Parameter(ctx, v)
			if err != nil {
				return nil, nil, validation("Unable to fetch parameters [%s] from parameter store for this account: %v", v, err)
			}
			v, typ = ssm, strings.TrimSuffix(inner, ">")
		}
		if typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<") {
			var l []any
			for _, s := range strings.Split(v, ",") {
				l = append(l, strings.TrimSpace(s))
			}
			resolved[name] = l
		} else {
			resolved[name] = v
		}
	}
	if len(missing) > 0 {
		return nil, nil, validation("Parameters: [%s] must have values", strings.Join(missing, ", "))
	}
	return values, resolved, nil
}

// pendingValue stands, while planning, for a value that only a deploy
// makes.
func pendingValue(id string) string { return "{{pending:" + id + "}}" }

func (d *deployment) ref(id string) (any, error) {
	if d.pending[id] {
		return pendingValue(id), nil
	}
	r := d.current[id]
	if r == nil || d.tmpl.Resources[id] == nil {
		return nil, validation("Template format error: Unresolved resource dependencies [%s] in the Resources block of the template", id)
	}
	return r.PhysicalID, nil
}

func (d *deployment) getAtt(id, attr string) (any, error) {
	if d.pending[id] {
		return pendingValue(id + "." + attr), nil
	}
	r := d.current[id]
	if r == nil || d.tmpl.Resources[id] == nil {
		return nil, validation("Template error: instance of Fn::GetAtt references undefined resource %s", id)
	}
	v, ok := r.Attributes[attr]
	if !ok {
		return nil, validation("Template error: resource %s does not support attribute type %s in Fn::GetAtt", id, attr)
	}
	return v, nil
}

// resolve resolves a resource's properties.
func (d *deployment) resolve(id string) (map[string]any, error) {
	v, err := d.scope.resolve(d.tmpl.Resources[id].Properties)
	if err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			err = &ValidationError{Message: err.Error()}
		}
		return nil, err
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// step is what a deploy does to one resource of the template.
type step struct {
	id      string
	action  Action
	replace bool
	changed []string
	props   map[string]any
}

// decide works out the step of one resource from its resolved properties.
func (d *deployment) decide(id string) (*step, error) {
	r := d.tmpl.Resources[id]
	props, err := d.resolve(id)
	if err != nil {
		return nil, err
	}
	s := &step{id: id, props: props}
	old := d.current[id]
	switch {
	case old == nil:
		s.action = ActionAdd
	case old.Type != r.Type:
		s.action, s.replace = ActionModify, true
	default:
		s.changed = changedKeys(old.Properties, props)
		if len(s.changed) == 0 && !d.pending[id] {
			return nil, nil
		}
		s.action, s.replace = ActionModify, d.e.Types[r.Type].replaces(old.Properties, props)
	}
	return s, nil
}

// changedKeys lists the properties that differ between old and new.
func changedKeys(old, new map[string]any) []string {
	var keys []string
	for k, v := range new {
		if canonical(v) != canonical(old[k]) {
			keys = append(keys, k)
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// removed lists the stack's resources that left the template, dependents
// first.
func (d *deployment) removed() []*StackResource {
	var gone []*StackResource
	for _, id := range sortedKeys(d.current) {
		if d.tmpl.Resources[id] == nil {
			gone = append(gone, d.current[id])
		}
	}
	return deletionOrder(gone)
}

// deletionOrder sorts resources so that each comes before those it
// depends on.
func deletionOrder(rs []*StackResource) []*StackResource {
	byID := map[string]*StackResource{}
	for _, r := range rs {
		byID[r.LogicalID] = r
	}
	var out []*StackResource
	seen := map[string]bool{}
	var visit func(r *StackResource)
	visit = func(r *StackResource) {
		if seen[r.LogicalID] {
			return
		}
		seen[r.LogicalID] = true
		for _, other := range rs {
			if slices.Contains(other.DependsOn, r.LogicalID) {
				visit(other)
			}
		}
		out = append(out, r)
	}
	for _, r := range rs {
		visit(r)
	}
	return out
}

// plan lists the changes a deploy would make, without making them.
func (d *deployment) plan() ([]Change, error) {
	var changes []Change
	for _, id := range d.order {
		s, err := d.decide(id)
		if err != nil {
			return nil, err
		}
		if s == nil {
			continue
		}
		r := d.tmpl.Resources[id]
		c := Change{Action: s.action, LogicalID: id, Type: r.Type, Replacement: s.replace, ChangedProperties: s.changed, Line: r.Line}
		if old := d.current[id]; old != nil {
			c.PhysicalID = old.PhysicalID
		}
		if s.action == ActionAdd || s.replace {
			d.pending[id] = true
		}
		changes = append(changes, c)
	}
	for _, r := range d.removed() {
		changes = append(changes, Change{Action: ActionRemove, LogicalID: r.LogicalID, PhysicalID: r.PhysicalID, Type: r.Type})
	}
	return changes, nil
}

// dependencies returns the logical IDs a resource refers to.
func dependencies(r *Resource, resources map[string]*Resource) []string {
	set := map[string]bool{}
	for _, id := range r.DependsOn {
		set[id] = true
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for k, e := range x {
				switch k {
				case "Ref":
					set[str(e)] = true
				case "Fn::GetAtt":
					switch a := e.(type) {
					case []any:
						if len(a) > 0 {
							set[str(a[0])] = true
						}
					case string:
						id, _, _ := strings.Cut(a, ".")
						set[id] = true
					}
				case "Fn::Sub":
					tmpl := str(e)
					if l, ok := e.([]any); ok && len(l) > 0 {
						tmpl = str(l[0])
					}
					for _, name := range subNames(tmpl) {
						id, _, _ := strings.Cut(name, ".")
						set[id] = true
					}
				}
				walk(e)
			}
		}
	}
	walk(r.Properties)
	var out []string
	for id := range set {
		if resources[id] != nil {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// subNames lists the ${names} of an Fn::Sub template.
func subNames(tmpl string) []string {
	var names []string
	for {
		i := strings.Index(tmpl, "${")
		if i < 0 {
			return names
		}
		j := strings.Index(tmpl[i:], "}")
		if j < 0 {
			return names
		}
		if name := tmpl[i+2 : i+j]; !strings.HasPrefix(name, "!") {
			names = append(names, strings.TrimSpace(name))
		}
		tmpl = tmpl[i+j+1:]
	}
}

// order sorts resources so that each comes after those it depends on.
func order(resources map[string]*Resource) ([]string, error) {
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(id string, path []string) error
	visit = func(id string, path []string) error {
		switch state[id] {
		case 1:
			return validation("Circular dependency between resources: [%s]", strings.Join(append(path, id), ", "))
		case 2:
			return nil
		}
		state[id] = 1
		for _, dep := range resources[id].DependsOn {
			if resources[dep] == nil {
				return validation("Template format error: Unresolved resource dependencies [%s] in the Resources block of the template", dep)
			}
		}
		for _, dep := range dependencies(resources[id], resources) {
			if err := visit(dep, append(path, id)); err != nil {
				return err
			}
		}
		state[id] = 2
		out = append(out, id)
		return nil
	}
	for _, id := range sortedKeys(resources) {
		if err := visit(id, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// now is the time of a record.
func now() time.Time { return time.Now().UTC() }
