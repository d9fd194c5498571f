package eventbus

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lamina-project/lamina"
)

// Input is what a rule's target receives for an event (event, decoded
// with numbers kept exact; data, its JSON): the target's constant Input,
// the part of the event its InputPath selects, the rendering of its
// InputTransformer, or else the whole event.
func Input(t lamina.Target, event any, data []byte, rule *lamina.Rule, ingested time.Time) ([]byte, error) {
	switch {
	case t.Input != "":
		return []byte(t.Input), nil
	case t.InputPath != "":
		v, ok := Path(event, t.InputPath)
		if !ok {
			return []byte("null"), nil
		}
		return json.Marshal(v)
	case t.InputTransformer != nil:
		vars := map[string]any{}
		for name, path := range t.InputTransformer.InputPathsMap {
			if v, ok := Path(event, path); ok {
				vars[name] = v
			}
		}
		reserved := map[string]any{
			"aws.events.rule-arn":             rule.Arn,
			"aws.events.rule-name":            rule.Name,
			"aws.events.event.ingestion-time": ingested.UTC().Format("2006-01-02T15:04:05Z"),
			"aws.events.event.json":           json.RawMessage(data),
		}
		if obj, ok := event.(map[string]any); ok {
			without := make(map[string]any, len(obj))
			for k, v := range obj {
				if k != "detail" {
					without[k] = v
				}
			}
			reserved["aws.events.event"] = without
		}
		for name, v := range reserved {
			if _, taken := vars[name]; !taken {
				vars[name] = v
			}
		}
		return []byte(Render(t.InputTransformer.InputTemplate, vars)), nil
	}
	return data, nil
}

// Path returns the value a JSONPath ($, $.a.b, $.a[0], $['a']) selects in
// v, and whether there is one.
func Path(v any, path string) (any, bool) {
	rest, ok := strings.CutPrefix(path, "$")
	if !ok {
		return nil, false
	}
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "['") || strings.HasPrefix(rest, `["`):
			end := strings.Index(rest[2:], rest[1:2]+"]")
			if end < 0 {
				return nil, false
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = obj[rest[2:2+end]]; !ok {
				return nil, false
			}
			rest = rest[2+end+2:]
		case strings.HasPrefix(rest, "["):
			end := strings.IndexByte(rest, ']')
			i, err := strconv.Atoi(rest[1:max(end, 1)])
			list, ok := v.([]any)
			if end < 0 || err != nil || !ok || i < 0 || i >= len(list) {
				return nil, false
			}
			v, rest = list[i], rest[end+1:]
		case strings.HasPrefix(rest, "."):
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = obj[rest[:end]]; !ok {
				return nil, false
			}
			rest = rest[end:]
		default:
			return nil, false
		}
	}
	return v, true
}

// Render fills an InputTemplate's <name> placeholders with vars, as
// EventBridge does: outside a JSON string a variable becomes its JSON value
// (a string quoted); inside one, its text (a string's characters, escaped
// for the string; another value's JSON). A placeholder of no variable
// becomes null outside a string and nothing inside one; text that names no
// variable name (<, a key in a JSON object) stays as it is.
func Render(template string, vars map[string]any) string {
	var b strings.Builder
	inString := false
	for i := 0; i < len(template); i++ {
		c := template[i]
		switch {
		case c == '\\' && inString && i+1 < len(template):
			b.WriteByte(c)
			b.WriteByte(template[i+1])
			i++
			continue
		case c == '"':
			inString = !inString
		case c == '<':
			end := strings.IndexByte(template[i:], '>')
			if end > 1 {
				name := template[i+1 : i+end]
				if validVariable(name) {
					v, ok := vars[name]
					b.WriteString(renderValue(v, ok, inString))
					i += end
					continue
				}
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// validVariable reports whether name can name a variable.
func validVariable(name string) bool {
	for _, r := range name {
		if !(r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return name != ""
}

// renderValue is a variable's text in a template.
func renderValue(v any, ok, inString bool) string {
	if !ok {
		if inString {
			return ""
		}
		return "null"
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if s, isString := v.(string); isString && inString {
		quoted, _ := json.Marshal(s) // a string always encodes
		return string(quoted[1 : len(quoted)-1])
	}
	return string(data)
}
