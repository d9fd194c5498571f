package frontend

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/targets"
)

var (
	roleRE      = regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)
	handlerRE   = regexp.MustCompile(`^[^\s]+$`)
	envKeyRE    = regexp.MustCompile(`^[a-zA-Z]([a-zA-Z0-9_])+$`)
	layerARNRE  = regexp.MustCompile(`^arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+$`)
	targetARNRE = regexp.MustCompile(`^(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)?$`)
)

// configInput holds the configuration fields that CreateFunction and
// UpdateFunctionConfiguration share. A nil field was not given.
type configInput struct {
	Role             *string
	Handler          *string
	Description      *string
	Timeout          *int
	MemorySize       *int
	Environment      *lamina.Environment
	Runtime          *string
	DeadLetterConfig *lamina.DeadLetterConfig
	TracingConfig    *lamina.TracingConfig
	Layers           *[]string
	EphemeralStorage *lamina.EphemeralStorage
}

// validate checks every given field. Constraint violations of the model come
// back together as one ValidationException, as AWS reports them; semantic
// problems as InvalidParameterValueException.
func (in *configInput) validate() error {
	var v lamina.Violations
	if in.Role != nil && !roleRE.MatchString(*in.Role) {
		v.Add(*in.Role, "role", "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+")
	}
	if in.Handler != nil {
		if len(*in.Handler) > 128 {
			v.Add(*in.Handler, "handler", "Member must have length less than or equal to 128")
		} else if !handlerRE.MatchString(*in.Handler) {
			v.Add(*in.Handler, "handler", "Member must satisfy regular expression pattern: [^\\s]+")
		}
	}
	if in.Description != nil && len(*in.Description) > lamina.MaxDescription {
		v.Add(*in.Description, "description", fmt.Sprintf("Member must have length less than or equal to %d", lamina.MaxDescription))
	}
	if in.Timeout != nil {
		rangeCheck(&v, *in.Timeout, "timeout", lamina.MinTimeout, lamina.MaxTimeout)
	}
	if in.MemorySize != nil {
		rangeCheck(&v, *in.MemorySize, "memorySize", lamina.MinMemorySize, lamina.MaxMemorySize)
	}
	if in.EphemeralStorage != nil {
		rangeCheck(&v, in.EphemeralStorage.Size, "ephemeralStorage.size", lamina.MinEphemeralStorage, lamina.MaxEphemeralStorage)
	}
	if in.Environment != nil {
		for key := range in.Environment.Variables {
			if !envKeyRE.MatchString(key) {
				v.AddSensitive("environment.variables",
					"Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]")
				break
			}
		}
	}
	if in.DeadLetterConfig != nil && !targetARNRE.MatchString(in.DeadLetterConfig.TargetArn) {
		v.Add(in.DeadLetterConfig.TargetArn, "deadLetterConfig.targetArn", "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()")
	}
	if in.TracingConfig != nil && in.TracingConfig.Mode != "Active" && in.TracingConfig.Mode != "PassThrough" {
		v.Add(in.TracingConfig.Mode, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]")
	}
	if in.Layers != nil {
		for i, arn := range *in.Layers {
			if !layerARNRE.MatchString(arn) {
				v.Add(arn, fmt.Sprintf("layers.%d.member", i+1), "Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+")
			}
		}
	}
	if err := v.Err(); err != nil {
		return err
	}

	if in.Runtime != nil {
		if _, ok := lamina.RuntimeFamily(*in.Runtime); !ok {
			return lamina.ErrInvalidParameter("Value %s at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [%s] or be a valid ARN",
				*in.Runtime, strings.Join(lamina.SupportedRuntimes(), ", "))
		}
	}
	if in.Environment != nil {
		if err := validateEnvironment(in.Environment.Variables); err != nil {
			return err
		}
	}
	if in.Layers != nil && len(*in.Layers) > lamina.MaxLayers {
		return lamina.ErrInvalidParameter("Cannot reference more than %d layers.", lamina.MaxLayers)
	}
	return nil
}

// validateConfig checks configuration fields, including that a dead-letter
// target is one Lamina can deliver to.
func (f *Frontend) validateConfig(in *configInput) error {
	if err := in.validate(); err != nil {
		return err
	}
	if in.DeadLetterConfig != nil && in.DeadLetterConfig.TargetArn != "" {
		return f.checkTarget(in.DeadLetterConfig.TargetArn, targets.Queue, targets.Topic, targets.Function)
	}
	return nil
}

// rangeCheck adds a violation when n is outside [lo, hi].
func rangeCheck(v *lamina.Violations, n int, field string, lo, hi int) {
	switch {
	case n < lo:
		v.Add(n, field, fmt.Sprintf("Member must have value greater than or equal to %d", lo))
	case n > hi:
		v.Add(n, field, fmt.Sprintf("Member must have value less than or equal to %d", hi))
	}
}

// validateEnvironment applies AWS's checks on environment variables beyond
// the key pattern: no reserved keys, at most 4 KB in all.
func validateEnvironment(vars map[string]string) error {
	var reserved []string
	for key := range vars {
		if lamina.IsReservedEnvironmentKey(key) {
			reserved = append(reserved, key)
		}
	}
	if len(reserved) > 0 {
		return lamina.ErrInvalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s",
			strings.Join(reserved, ", "))
	}
	if measured := formatEnvironment(vars); len(measured) > lamina.MaxEnvironmentSize {
		return lamina.ErrInvalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %s", measured)
	}
	return nil
}

// formatEnvironment renders variables as the JSON object AWS measures against
// the 4 KB limit and quotes in its messages.
func formatEnvironment(vars map[string]string) string { return jsonString(vars) }

// jsonString renders v as JSON text; v must be of a type that always
// encodes (maps, slices and structs of plain values).
func jsonString(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(data)
}

// apply writes every given field into c.
func (in *configInput) apply(c *lamina.FunctionConfiguration) {
	if in.Role != nil {
		c.Role = *in.Role
	}
	if in.Handler != nil {
		c.Handler = *in.Handler
	}
	if in.Description != nil {
		c.Description = *in.Description
	}
	if in.Timeout != nil {
		c.Timeout = *in.Timeout
	}
	if in.MemorySize != nil {
		c.MemorySize = *in.MemorySize
	}
	if in.Environment != nil {
		c.Environment = nil
		if len(in.Environment.Variables) > 0 {
			c.Environment = &lamina.Environment{Variables: in.Environment.Variables}
		}
	}
	if in.Runtime != nil {
		c.Runtime = *in.Runtime
	}
	if in.DeadLetterConfig != nil {
		c.DeadLetterConfig = nil
		if in.DeadLetterConfig.TargetArn != "" {
			c.DeadLetterConfig = in.DeadLetterConfig
		}
	}
	if in.TracingConfig != nil {
		c.TracingConfig = in.TracingConfig
	}
	if in.Layers != nil {
		c.Layers = nil
		for _, arn := range *in.Layers {
			c.Layers = append(c.Layers, lamina.LayerReference{Arn: arn})
		}
	}
	if in.EphemeralStorage != nil {
		c.EphemeralStorage = in.EphemeralStorage
	}
}

// validateArchitectures checks the Architectures parameter: exactly one of
// x86_64 or arm64.
func validateArchitectures(archs []string) error {
	var v lamina.Violations
	switch {
	case len(archs) == 0:
		v.Add("[]", "architectures", "Member must have length greater than or equal to 1")
	case len(archs) > 1:
		v.Add("["+strings.Join(archs, ", ")+"]", "architectures", "Member must have length less than or equal to 1")
	case archs[0] != "x86_64" && archs[0] != "arm64":
		v.Add(archs[0], "architectures.1.member", "Member must satisfy enum value set: [x86_64, arm64]")
	}
	return v.Err()
}
