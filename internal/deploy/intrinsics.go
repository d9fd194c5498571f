package deploy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// noValue is what AWS::NoValue resolves to: the property or list element
// that holds it is removed.
type noValueType struct{}

var noValue = noValueType{}

// scope resolves intrinsic functions for one stack.
type scope struct {
	region, accountID, stackName, stackID string
	params                                map[string]any // resolved: string, or []any for list types
	mappings                              map[string]any
	conditions                            map[string]any // as written
	evaluated                             map[string]bool
	// ref and getAtt answer Ref and Fn::GetAtt of a resource.
	ref    func(id string) (any, error)
	getAtt func(id, attr string) (any, error)
}

// pseudo returns a pseudo parameter's value.
func (s *scope) pseudo(name string) (any, bool) {
	switch name {
	case "AWS::Region":
		return s.region, true
	case "AWS::AccountId":
		return s.accountID, true
	case "AWS::StackName":
		return s.stackName, true
	case "AWS::StackId":
		return s.stackID, true
	case "AWS::Partition":
		return "aws", true
	case "AWS::URLSuffix":
		return "amazonaws.com", true
	case "AWS::NoValue":
		return noValue, true
	case "AWS::NotificationARNs":
		return []any{}, true
	}
	return nil, false
}

// lookup resolves a name as Ref does: a parameter, a pseudo parameter, or
// a resource.
func (s *scope) lookup(name string) (any, error) {
	if v, ok := s.params[name]; ok {
		return v, nil
	}
	if v, ok := s.pseudo(name); ok {
		return v, nil
	}
	return s.ref(name)
}

// condition evaluates a named condition.
func (s *scope) condition(name string) (bool, error) {
	if v, ok := s.evaluated[name]; ok {
		return v, nil
	}
	expr, ok := s.conditions[name]
	if !ok {
		return false, fmt.Errorf("Template error: unresolved condition dependency %s", name)
	}
	if s.evaluated == nil {
		s.evaluated = map[string]bool{}
	}
	v, err := s.boolean(expr)
	if err != nil {
		return false, err
	}
	s.evaluated[name] = v
	return v, nil
}

// boolean evaluates a condition expression.
func (s *scope) boolean(expr any) (bool, error) {
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		if b, ok := expr.(bool); ok {
			return b, nil
		}
		return false, fmt.Errorf("Template error: a condition must be Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition")
	}
	for fn, arg := range m {
		switch fn {
		case "Condition":
			return s.condition(str(arg))
		case "Fn::Equals":
			l, _ := arg.([]any)
			if len(l) != 2 {
				return false, fmt.Errorf("Template error: Fn::Equals takes two values")
			}
			a, err := s.resolve(l[0])
			if err != nil {
				return false, err
			}
			b, err := s.resolve(l[1])
			if err != nil {
				return false, err
			}
			return canonical(a) == canonical(b), nil
		case "Fn::Not":
			l, _ := arg.([]any)
			if len(l) != 1 {
				return false, fmt.Errorf("Template error: Fn::Not takes one condition")
			}
			v, err := s.boolean(l[0])
			return !v, err
		case "Fn::And", "Fn::Or":
			l, _ := arg.([]any)
			and := fn == "Fn::And"
			for _, c := range l {
				v, err := s.boolean(c)
				if err != nil {
					return false, err
				}
				if v != and {
					return v, nil
				}
			}
			return and, nil
		}
		return false, fmt.Errorf("Template error: %s is not a condition function", fn)
	}
	return false, nil
}

// resolve evaluates every intrinsic function in v.
func (s *scope) resolve(v any) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			r, err := s.resolve(e)
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out = append(out, r)
			}
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for fn, arg := range x {
				if fn == "Ref" || strings.HasPrefix(fn, "Fn::") {
					return s.function(fn, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := s.resolve(e)
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out[k] = r
			}
		}
		return out, nil
	}
	return v, nil
}

func (s *scope) function(fn string, arg any) (any, error) {
	args := func(n int) ([]any, error) {
		l, ok := arg.([]any)
		if !ok || (n > 0 && len(l) != n) {
			return nil, fmt.Errorf("Template error: %s takes a list of %d values", fn, n)
		}
		return l, nil
	}
	switch fn {
	case "Ref":
		return s.lookup(str(arg))
	case "Fn::GetAtt":
		var res, attr string
		switch a := arg.(type) {
		case string:
			res, attr, _ = strings.Cut(a, ".")
		case []any:
			if len(a) != 2 {
				return nil, fmt.Errorf("Template error: Fn::GetAtt takes [resource, attribute]")
			}
			res = str(a[0])
			av, err := s.resolve(a[1])
			if err != nil {
				return nil, err
			}
			attr = str(av)
		}
		return s.getAtt(res, attr)
	case "Fn::Sub":
		var tmpl string
		vars := map[string]any{}
		switch a := arg.(type) {
		case string:
			tmpl = a
		case []any:
			if len(a) != 2 {
				return nil, fmt.Errorf("Template error: Fn::Sub takes a string or [string, {variables}]")
			}
			tmpl = str(a[0])
			m, _ := a[1].(map[string]any)
			for k, e := range m {
				r, err := s.resolve(e)
				if err != nil {
					return nil, err
				}
				vars[k] = r
			}
		default:
			return nil, fmt.Errorf("Template error: Fn::Sub takes a string or [string, {variables}]")
		}
		return s.sub(tmpl, vars)
	case "Fn::Join":
		l, err := args(2)
		if err != nil {
			return nil, err
		}
		list, err := s.resolve(l[1])
		if err != nil {
			return nil, err
		}
		items, ok := list.([]any)
		if !ok {
			return nil, fmt.Errorf("Template error: Fn::Join's second value must be a list")
		}
		parts := make([]string, len(items))
		for i, e := range items {
			parts[i] = str(e)
		}
		return strings.Join(parts, str(l[0])), nil
	case "Fn::Select":
		l, err := args(2)
		if err != nil {
			return nil, err
		}
		iv, err := s.resolve(l[0])
		if err != nil {
			return nil, err
		}
		i, err := strconv.Atoi(str(iv))
		if err != nil {
			return nil, fmt.Errorf("Template error: Fn::Select's index must be a number")
		}
		list, err := s.resolve(l[1])
		if err != nil {
			return nil, err
		}
		items, _ := list.([]any)
		if i < 0 || i >= len(items) {
			return nil, fmt.Errorf("Template error: Fn::Select cannot select nonexistent value at index %d", i)
		}
		return items[i], nil
	case "Fn::Split":
		l, err := args(2)
		if err != nil {
			return nil, err
		}
		sv, err := s.resolve(l[1])
		if err != nil {
			return nil, err
		}
		var out []any
		for _, p := range strings.Split(str(sv), str(l[0])) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::If":
		l, err := args(3)
		if err != nil {
			return nil, err
		}
		ok, err := s.condition(str(l[0]))
		if err != nil {
			return nil, err
		}
		if ok {
			return s.resolve(l[1])
		}
		return s.resolve(l[2])
	case "Fn::FindInMap":
		l, err := args(3)
		if err != nil {
			return nil, err
		}
		keys := make([]string, 3)
		for i, e := range l {
			r, err := s.resolve(e)
			if err != nil {
				return nil, err
			}
			keys[i] = str(r)
		}
		m, _ := s.mappings[keys[0]].(map[string]any)
		m2, _ := m[keys[1]].(map[string]any)
		v, ok := m2[keys[2]]
		if !ok {
			return nil, fmt.Errorf("Template error: Unable to get mapping for %s::%s::%s", keys[0], keys[1], keys[2])
		}
		return v, nil
	case "Fn::GetAZs":
		return []any{s.region + "a", s.region + "b", s.region + "c"}, nil
	case "Fn::Base64":
		v, err := s.resolve(arg)
		if err != nil {
			return nil, err
		}
		return base64.StdEncoding.EncodeToString([]byte(str(v))), nil
	case "Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not":
		return s.boolean(map[string]any{fn: arg})
	}
	return nil, fmt.Errorf("Template error: %s is not supported by Lamina", fn)
}

// sub substitutes ${Name}, ${Resource.Attribute} and ${!Literal} in tmpl.
func (s *scope) sub(tmpl string, vars map[string]any) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "${")
		if i < 0 {
			b.WriteString(tmpl)
			return b.String(), nil
		}
		b.WriteString(tmpl[:i])
		j := strings.Index(tmpl[i:], "}")
		if j < 0 {
			b.WriteString(tmpl[i:])
			return b.String(), nil
		}
		name := tmpl[i+2 : i+j]
		tmpl = tmpl[i+j+1:]
		if strings.HasPrefix(name, "!") {
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		name = strings.TrimSpace(name)
		var v any
		var err error
		if vv, ok := vars[name]; ok {
			v = vv
		} else if res, attr, ok := strings.Cut(name, "."); ok && s.params[name] == nil {
			v, err = s.getAtt(res, attr)
		} else {
			v, err = s.lookup(name)
		}
		if err != nil {
			return "", err
		}
		if l, ok := v.([]any); ok {
			parts := make([]string, len(l))
			for k, e := range l {
				parts[k] = str(e)
			}
			v = strings.Join(parts, ",")
		}
		b.WriteString(str(v))
	}
}

// canonical is a value's JSON, with map keys sorted: equal values have
// equal canonical forms.
func canonical(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}
