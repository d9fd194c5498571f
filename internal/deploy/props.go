package deploy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Props are a resource's resolved properties.
type Props map[string]any

// Str returns a string property, "" when absent.
func (p Props) Str(key string) string { return str(p[key]) }

// Strs returns a list of strings.
func (p Props) Strs(key string) []string {
	l, _ := p[key].([]any)
	out := make([]string, 0, len(l))
	for _, v := range l {
		out = append(out, str(v))
	}
	return out
}

// Int returns an integer property (CloudFormation takes "5" for 5).
func (p Props) Int(key string) (int32, bool) {
	f, err := strconv.ParseFloat(str(p[key]), 64)
	if err != nil {
		return 0, false
	}
	return int32(f), true
}

// Map returns an object property.
func (p Props) Map(key string) Props {
	m, _ := p[key].(map[string]any)
	return m
}

// List returns a list of objects.
func (p Props) List(key string) []Props {
	l, _ := p[key].([]any)
	var out []Props
	for _, v := range l {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// decode fills out, a struct of an API's input (an aws-sdk-go-v2 input, or
// Lamina's own), from the properties that share its fields' names, taking
// CloudFormation's liberties with types ("128" for 128, "true" for true).
// Properties in handled are the caller's to apply; any other that is not
// one of its fields is refused by name, never dropped.
func (p Props) decode(typ string, out any, handled ...string) error {
	t := reflect.TypeOf(out).Elem()
	m := map[string]any{}
	for k, v := range p {
		if slices.Contains(handled, k) {
			continue
		}
		f, ok := t.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, k) })
		if !ok || !f.IsExported() {
			return fmt.Errorf("property %s of %s is not supported by Lamina", k, typ)
		}
		m[f.Name] = coerce(v, f.Type)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("properties of %s: %v", typ, err)
	}
	return nil
}

// coerce converts v to the JSON encoding/json reads into a t.
func coerce(v any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if s, ok := v.(string); ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				return f
			}
		}
	case reflect.Bool:
		if s, ok := v.(string); ok {
			return strings.EqualFold(s, "true")
		}
	case reflect.String:
		switch x := v.(type) {
		case float64, bool:
			return str(x)
		}
	case reflect.Struct:
		if m, ok := v.(map[string]any); ok {
			out := map[string]any{}
			for k, e := range m {
				if f, ok := t.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, k) }); ok && f.IsExported() {
					out[f.Name] = coerce(e, f.Type)
				}
			}
			return out
		}
	case reflect.Slice:
		if l, ok := v.([]any); ok && t.Elem().Kind() != reflect.Uint8 {
			out := make([]any, len(l))
			for i, e := range l {
				out[i] = coerce(e, t.Elem())
			}
			return out
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			out := map[string]any{}
			for k, e := range m {
				out[k] = coerce(e, t.Elem())
			}
			return out
		}
	}
	return v
}

// physicalName makes the name of a resource its template leaves unnamed,
// as CloudFormation does: stack-logicalID-SUFFIX within max characters.
func physicalName(stack, id string, max int, lower bool) string {
	suffix := strings.ToUpper(newID()[:12])
	prefix := stack + "-" + id
	if len(prefix)+13 > max {
		prefix = prefix[:max-13]
	}
	name := prefix + "-" + suffix
	if lower {
		name = strings.ToLower(name)
	}
	return name
}
