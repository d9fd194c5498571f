// Package eventpattern matches JSON events against AWS event patterns, the
// language of EventBridge rules and of Lambda event source mappings'
// FilterCriteria: a pattern is a JSON object whose leaves are arrays of
// what a field may be. A field matches when its value (or, for an array,
// one of its elements) is one of the array's entries:
//
//	"a"  3  true  null                 that exact value
//	{"prefix": "x"}  {"suffix": "x"}   a string's start or end ({"prefix":
//	                                   {"equals-ignore-case": "x"}} too)
//	{"equals-ignore-case": "x"}        a string, case ignored
//	{"wildcard": "a*b"}                a string, * matching any run
//	{"anything-but": v}                anything but v (a value, a list, or
//	                                   {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": …})
//	{"numeric": [">", 0, "<=", 5]}     a number in range (=, <, <=, >, >=)
//	{"exists": true|false}             the field is there, or not
//	{"cidr": "10.0.0.0/24"}            an IP address in the block
//
// Fields of the event the pattern does not name are ignored, and every
// field it names must match. "$or": [p1, p2…] in an object matches when
// one of its patterns does.
package eventpattern

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"path"
	"strings"
)

// Pattern is a compiled event pattern.
type Pattern struct {
	root map[string]any
}

// maxPatternSize bounds a pattern's JSON, as Lambda does for a filter.
const maxPatternSize = 4096

// Compile parses and checks a pattern of at most 4096 characters (Lambda's
// and EventBridge's bound).
func Compile(pattern string) (*Pattern, error) { return CompileSize(pattern, maxPatternSize) }

// CompileSize parses and checks a pattern of at most maxSize characters
// (SNS filter policies may be 256 KB).
func CompileSize(pattern string, maxSize int) (*Pattern, error) {
	if len(pattern) > maxSize {
		return nil, fmt.Errorf("the pattern is longer than %d characters", maxSize)
	}
	d := json.NewDecoder(strings.NewReader(pattern))
	d.UseNumber()
	var root map[string]any
	if err := d.Decode(&root); err != nil || root == nil {
		return nil, fmt.Errorf("the pattern is not a JSON object")
	}
	if err := check(root); err != nil {
		return nil, err
	}
	return &Pattern{root: root}, nil
}

// check verifies a pattern object's shape.
func check(obj map[string]any) error {
	if len(obj) == 0 {
		return fmt.Errorf("a pattern object must name a field")
	}
	for key, v := range obj {
		if key == "$or" {
			alts, ok := v.([]any)
			if !ok || len(alts) < 2 {
				return fmt.Errorf("$or takes an array of two patterns or more")
			}
			for _, a := range alts {
				o, ok := a.(map[string]any)
				if !ok {
					return fmt.Errorf("$or takes pattern objects")
				}
				if err := check(o); err != nil {
					return err
				}
			}
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			if err := check(v); err != nil {
				return err
			}
		case []any:
			if len(v) == 0 {
				return fmt.Errorf("the values of %q are an empty array", key)
			}
			for _, m := range v {
				if err := checkMatcher(m); err != nil {
					return fmt.Errorf("%q: %w", key, err)
				}
			}
		default:
			return fmt.Errorf("the value of %q must be an object or an array", key)
		}
	}
	return nil
}

// checkMatcher verifies one entry of a leaf array.
func checkMatcher(m any) error {
	op, ok := m.(map[string]any)
	if !ok {
		return nil // an exact value
	}
	if len(op) != 1 {
		return fmt.Errorf("a matcher object has one key")
	}
	for name, arg := range op {
		switch name {
		case "prefix", "suffix":
			if _, ok := arg.(string); ok {
				return nil
			}
			if o, ok := arg.(map[string]any); ok {
				if _, ok := o["equals-ignore-case"].(string); ok && len(o) == 1 {
					return nil
				}
			}
			return fmt.Errorf("%s takes a string", name)
		case "equals-ignore-case", "wildcard":
			if _, ok := arg.(string); !ok {
				return fmt.Errorf("%s takes a string", name)
			}
		case "exists":
			if _, ok := arg.(bool); !ok {
				return fmt.Errorf("exists takes true or false")
			}
		case "cidr":
			s, _ := arg.(string)
			if _, err := netip.ParsePrefix(s); err != nil {
				return fmt.Errorf("cidr takes an IP block")
			}
		case "numeric":
			if _, err := numericRange(arg); err != nil {
				return err
			}
		case "anything-but":
			switch a := arg.(type) {
			case []any:
				for _, x := range a {
					if _, ok := x.(map[string]any); ok {
						return fmt.Errorf("anything-but takes values")
					}
				}
			case map[string]any:
				if len(a) != 1 {
					return fmt.Errorf("anything-but takes one matcher")
				}
				for k := range a {
					if k != "prefix" && k != "suffix" && k != "equals-ignore-case" && k != "wildcard" {
						return fmt.Errorf("anything-but does not take %s", k)
					}
				}
				return checkMatcher(a)
			}
		default:
			return fmt.Errorf("unknown matcher %q", name)
		}
	}
	return nil
}

// comparison is one bound of a numeric range.
type comparison struct {
	op string
	n  float64
}

// numericRange reads ["op", n, "op", n…].
func numericRange(arg any) ([]comparison, error) {
	list, ok := arg.([]any)
	if !ok || len(list) == 0 || len(list)%2 != 0 || len(list) > 4 {
		return nil, fmt.Errorf("numeric takes one or two comparisons")
	}
	var out []comparison
	for i := 0; i < len(list); i += 2 {
		op, _ := list[i].(string)
		num, ok := list[i+1].(json.Number)
		n, err := num.Float64()
		if !ok || err != nil {
			return nil, fmt.Errorf("numeric compares with numbers")
		}
		switch op {
		case "=", "<", "<=", ">", ">=":
		default:
			return nil, fmt.Errorf("numeric operator %q is not one of = < <= > >=", op)
		}
		out = append(out, comparison{op, n})
	}
	return out, nil
}

// Match reports whether an event, a JSON value decoded with UseNumber
// (see Decode), matches the pattern.
func (p *Pattern) Match(event any) bool {
	return matchObject(p.root, event)
}

// Decode decodes JSON for Match, numbers kept exact.
func Decode(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func matchObject(pattern map[string]any, event any) bool {
	obj, _ := event.(map[string]any)
	for key, want := range pattern {
		if key == "$or" {
			ok := false
			for _, alt := range want.([]any) {
				if matchObject(alt.(map[string]any), event) {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
			continue
		}
		value, present := obj[key]
		switch want := want.(type) {
		case map[string]any:
			if !present || !matchNested(want, value) {
				return false
			}
		case []any:
			if !matchLeaf(want, value, present) {
				return false
			}
		}
	}
	return true
}

// matchNested matches a sub-pattern against an object, or any object of an
// array.
func matchNested(pattern map[string]any, value any) bool {
	if list, ok := value.([]any); ok {
		for _, v := range list {
			if matchObject(pattern, v) {
				return true
			}
		}
		return false
	}
	return matchObject(pattern, value)
}

// matchLeaf matches a field against the matchers of a leaf.
func matchLeaf(matchers []any, value any, present bool) bool {
	values := []any{value}
	if list, ok := value.([]any); ok {
		values = list
	}
	for _, m := range matchers {
		if op, ok := m.(map[string]any); ok {
			if e, ok := op["exists"]; ok {
				if e.(bool) == (present && (len(values) > 0)) {
					return true
				}
				continue
			}
		}
		if !present {
			continue
		}
		for _, v := range values {
			if matchOne(m, v) {
				return true
			}
		}
	}
	return false
}

// matchOne matches one value against one matcher.
func matchOne(m, v any) bool {
	op, ok := m.(map[string]any)
	if !ok {
		return equal(m, v)
	}
	for name, arg := range op {
		s, isString := v.(string)
		switch name {
		case "prefix", "suffix":
			if !isString {
				return false
			}
			want, ok := arg.(string)
			if !ok {
				want = arg.(map[string]any)["equals-ignore-case"].(string)
				s, want = strings.ToLower(s), strings.ToLower(want)
			}
			if name == "prefix" {
				return strings.HasPrefix(s, want)
			}
			return strings.HasSuffix(s, want)
		case "equals-ignore-case":
			return isString && strings.EqualFold(s, arg.(string))
		case "wildcard":
			return isString && wildcard(arg.(string), s)
		case "cidr":
			addr, err := netip.ParseAddr(s)
			prefix, _ := netip.ParsePrefix(arg.(string))
			return isString && err == nil && prefix.Contains(addr)
		case "numeric":
			n, ok := v.(json.Number)
			f, err := n.Float64()
			if !ok || err != nil {
				return false
			}
			bounds, _ := numericRange(arg)
			for _, b := range bounds {
				if !compare(f, b) {
					return false
				}
			}
			return true
		case "anything-but":
			switch a := arg.(type) {
			case []any:
				for _, x := range a {
					if equal(x, v) {
						return false
					}
				}
				return true
			case map[string]any:
				return isString && !matchOne(a, v)
			default:
				return !equal(a, v)
			}
		}
	}
	return false
}

func compare(f float64, c comparison) bool {
	switch c.op {
	case "=":
		return f == c.n
	case "<":
		return f < c.n
	case "<=":
		return f <= c.n
	case ">":
		return f > c.n
	default:
		return f >= c.n
	}
}

// equal compares an exact value of a pattern with an event's: numbers by
// value.
func equal(want, v any) bool {
	if a, ok := want.(json.Number); ok {
		b, ok := v.(json.Number)
		if !ok {
			return false
		}
		x, err1 := a.Float64()
		y, err2 := b.Float64()
		return err1 == nil && err2 == nil && x == y
	}
	return want == v
}

// wildcard matches s against a pattern where * matches any run of
// characters (and \* a star).
func wildcard(pattern, s string) bool {
	// path.Match's only other specials are ? [ and \; escape them.
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\' && i+1 < len(pattern) && pattern[i+1] == '*':
			b.WriteString(`\*`)
			i++
		case c == '?' || c == '[' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	// path.Match's * stops at '/'; match segment by segment otherwise.
	return wildcardMatch(b.String(), s)
}

// wildcardMatch is path.Match where * also matches '/'.
func wildcardMatch(pattern, s string) bool {
	const slash = "\x00"
	ok, err := path.Match(strings.ReplaceAll(pattern, "/", slash), strings.ReplaceAll(s, "/", slash))
	return err == nil && ok
}
