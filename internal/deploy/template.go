// Package deploy is Lamina's CloudFormation: it reads templates (YAML with
// CloudFormation's short-form tags, or JSON), applies the SAM transform,
// resolves intrinsic functions, plans a stack's changes (create, update,
// replace, delete per resource) and applies them in dependency order,
// rolling a failed deploy back to the stack's previous state. Stacks are
// records in the store. Each resource type is a Handler that drives
// Lamina's own APIs (Lambda, S3, SQS, EventBridge, HTTP APIs) as their
// clients do.
package deploy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxTemplateBody bounds a template's size, as CloudFormation's TemplateBody
// (51,200 bytes) and TemplateURL (1 MB) limits do; Lamina takes 1 MiB from
// either.
const MaxTemplateBody = 1 << 20

// MaxResources bounds the resources of one stack (CloudFormation's 500).
const MaxResources = 500

// Template is a parsed template. Values are what encoding/json produces
// (map[string]any, []any, string, float64, bool, nil), with short-form tags
// rewritten to their long forms (!Ref x is {"Ref": "x"}).
type Template struct {
	Description string
	Transform   []string
	Parameters  map[string]*Parameter
	Mappings    map[string]any
	Conditions  map[string]any
	Globals     map[string]any
	Resources   map[string]*Resource
	Outputs     map[string]*Output
	Rules       map[string]any
}

// Parameter is one of a template's parameters.
type Parameter struct {
	Type          string
	Default       any
	AllowedValues []any
	NoEcho        bool
	Description   string
}

// Resource is one of a template's resources.
type Resource struct {
	Type       string
	Properties map[string]any
	DependsOn  []string
	Condition  string
	Metadata   map[string]any
	// Line is where the resource is declared in the template (0 when the
	// SAM transform made it).
	Line int
	// From is the logical ID of the SAM resource the transform made this
	// one from.
	From string
}

// Output is one of a template's outputs.
type Output struct {
	Value       any
	Description string
	Condition   string
	Export      map[string]any
}

// Parse reads a template in YAML or JSON.
func Parse(body []byte) (*Template, error) {
	if len(body) > MaxTemplateBody {
		return nil, fmt.Errorf("Template may not exceed %d bytes in size", MaxTemplateBody)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("Template format error: %v", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("Template format error: a template is a YAML or JSON object")
	}
	root := doc.Content[0]
	t := &Template{Parameters: map[string]*Parameter{}, Resources: map[string]*Resource{}, Outputs: map[string]*Output{}}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, node := root.Content[i].Value, root.Content[i+1]
		v, err := value(node)
		if err != nil {
			return nil, err
		}
		switch key {
		case "AWSTemplateFormatVersion":
		case "Description":
			t.Description, _ = v.(string)
		case "Transform":
			switch tv := v.(type) {
			case string:
				t.Transform = []string{tv}
			case []any:
				for _, x := range tv {
					s, _ := x.(string)
					t.Transform = append(t.Transform, s)
				}
			}
		case "Parameters":
			params, _ := v.(map[string]any)
			for name, p := range params {
				pm, _ := p.(map[string]any)
				t.Parameters[name] = &Parameter{Type: str(pm["Type"]), Default: pm["Default"], NoEcho: truthy(pm["NoEcho"]),
					Description: str(pm["Description"])}
				t.Parameters[name].AllowedValues, _ = pm["AllowedValues"].([]any)
			}
		case "Mappings":
			t.Mappings, _ = v.(map[string]any)
		case "Conditions":
			t.Conditions, _ = v.(map[string]any)
		case "Globals":
			t.Globals, _ = v.(map[string]any)
		case "Rules":
			t.Rules, _ = v.(map[string]any)
		case "Outputs":
			outs, _ := v.(map[string]any)
			for name, o := range outs {
				om, _ := o.(map[string]any)
				out := &Output{Value: om["Value"], Description: str(om["Description"]), Condition: str(om["Condition"])}
				out.Export, _ = om["Export"].(map[string]any)
				t.Outputs[name] = out
			}
		case "Resources":
			if node.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("Template format error: Resources must be an object")
			}
			for j := 0; j+1 < len(node.Content); j += 2 {
				id := node.Content[j].Value
				rv, err := value(node.Content[j+1])
				if err != nil {
					return nil, err
				}
				rm, ok := rv.(map[string]any)
				if !ok || str(rm["Type"]) == "" {
					return nil, fmt.Errorf("Template format error: [/Resources/%s] (line %d) Every Resources object must contain a Type member.", id, node.Content[j].Line)
				}
				r := &Resource{Type: str(rm["Type"]), Condition: str(rm["Condition"]), Line: node.Content[j].Line}
				r.Properties, _ = rm["Properties"].(map[string]any)
				if r.Properties == nil {
					r.Properties = map[string]any{}
				}
				r.Metadata, _ = rm["Metadata"].(map[string]any)
				switch d := rm["DependsOn"].(type) {
				case string:
					r.DependsOn = []string{d}
				case []any:
					for _, x := range d {
						r.DependsOn = append(r.DependsOn, str(x))
					}
				}
				t.Resources[id] = r
			}
		case "Metadata", "Hooks":
		default:
			return nil, fmt.Errorf("Template format error: Invalid template property or properties [%s] (line %d)", key, root.Content[i].Line)
		}
	}
	if len(t.Resources) == 0 {
		return nil, fmt.Errorf("Template format error: At least one Resources member must be defined.")
	}
	if len(t.Resources) > MaxResources {
		return nil, fmt.Errorf("Template format error: Number of resources, %d, is greater than the maximum allowed, %d", len(t.Resources), MaxResources)
	}
	return t, nil
}

// value converts a YAML node to a JSON-like value, rewriting short-form
// tags (!Ref, !GetAtt, !Sub…) to their long forms.
func value(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.AliasNode:
		return value(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "<<" {
				return nil, fmt.Errorf("Template format error: YAML merge keys are not supported (line %d)", n.Content[i].Line)
			}
			x, err := value(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = x
		}
		v = m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			x, err := value(c)
			if err != nil {
				return nil, err
			}
			l = append(l, x)
		}
		v = l
	case yaml.ScalarNode:
		v = scalar(n)
	}
	tag := n.Tag
	if !strings.HasPrefix(tag, "!") || strings.HasPrefix(tag, "!!") {
		return v, nil
	}
	name := tag[1:]
	if n.Kind == yaml.ScalarNode {
		v = n.Value // a tagged scalar is a string: !Ref 1 names "1"
	}
	switch name {
	case "Ref":
		return map[string]any{"Ref": v}, nil
	case "Condition":
		return map[string]any{"Condition": v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, ok := strings.Cut(s, ".")
			if !ok {
				return nil, fmt.Errorf("Template format error: !GetAtt %s (line %d) must be Resource.Attribute", s, n.Line)
			}
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	case "Base64", "Cidr", "FindInMap", "GetAZs", "ImportValue", "Join", "Select", "Split", "Sub", "Transform",
		"And", "Equals", "If", "Not", "Or", "ToJsonString", "Length":
		return map[string]any{"Fn::" + name: v}, nil
	}
	return nil, fmt.Errorf("Template format error: unknown tag !%s (line %d)", name, n.Line)
}

// scalar is a plain scalar's value: YAML 1.1's booleans CloudFormation
// takes, numbers, null, or the string.
func scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return float64(i)
		}
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return f
		}
	case "!!bool":
		return strings.EqualFold(n.Value, "true")
	case "!!null":
		return nil
	}
	return n.Value
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	}
	return false
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
