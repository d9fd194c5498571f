package frontend

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
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
	LoggingConfig    *lamina.LoggingConfig
	unsupportedSettings
}

// unsupportedSettings are configuration fields of AWS's model that Lamina
// cannot honour. Their empty or default values are accepted (tools send
// them); anything else is refused, naming why, rather than dropped.
type unsupportedSettings struct {
	VpcConfig *struct {
		SubnetIds        []string
		SecurityGroupIds []string
	}
	KMSKeyArn         string
	FileSystemConfigs []json.RawMessage
	ImageConfig       json.RawMessage
	SnapStart         *lamina.SnapStart
	// Lambda Managed Instances, durable functions and tenant isolation.
	CapacityProviderConfig json.RawMessage
	DurableConfig          json.RawMessage
	TenancyConfig          json.RawMessage
}

// check refuses every setting given with a value Lamina cannot honour.
func (u *unsupportedSettings) check() error {
	given := func(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" && string(raw) != "{}" }
	switch {
	case u.VpcConfig != nil && (len(u.VpcConfig.SubnetIds) > 0 || len(u.VpcConfig.SecurityGroupIds) > 0):
		return lamina.ErrInvalidParameter("VpcConfig is not supported: Lamina has no VPCs; a function reaches the network through its sandbox's own network namespace (see --function-network).")
	case u.KMSKeyArn != "":
		return lamina.ErrInvalidParameter("KMSKeyArn is not supported: Lamina has no KMS to encrypt environment variables with; they are stored as the rest of the function's configuration.")
	case len(u.FileSystemConfigs) > 0:
		return lamina.ErrInvalidParameter("FileSystemConfigs is not supported: Lamina has no EFS access points to mount.")
	case given(u.ImageConfig):
		return lamina.ErrInvalidParameter("ImageConfig is not supported: Lamina runs .zip deployment packages only.")
	case u.SnapStart != nil && u.SnapStart.ApplyOn != "" && u.SnapStart.ApplyOn != "None":
		return lamina.ErrInvalidParameter("SnapStart ApplyOn %s is not supported: Lamina does not snapshot execution environments; use provisioned concurrency to keep environments initialised.", u.SnapStart.ApplyOn)
	case given(u.CapacityProviderConfig):
		return lamina.ErrInvalidParameter("CapacityProviderConfig is not supported: Lamina runs every function on its own nodes; there are no Lambda Managed Instances capacity providers.")
	case given(u.DurableConfig):
		return lamina.ErrInvalidParameter("DurableConfig is not supported: Lamina does not run durable functions.")
	case given(u.TenancyConfig):
		return lamina.ErrInvalidParameter("TenancyConfig is not supported: Lamina has no tenant isolation mode.")
	}
	return nil
}

// Log levels LoggingConfig accepts.
var (
	applicationLogLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	systemLogLevels      = []string{"DEBUG", "INFO", "WARN"}
	logGroupRE           = regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]+$`)
)

// validateLoggingConfig checks a LoggingConfig parameter's fields against
// the model.
func validateLoggingConfig(v *lamina.Violations, c *lamina.LoggingConfig) {
	if c.LogFormat != "" && c.LogFormat != lamina.LogFormatJSON && c.LogFormat != lamina.LogFormatText {
		v.Add(c.LogFormat, "loggingConfig.logFormat", "Member must satisfy enum value set: [JSON, Text]")
	}
	if c.ApplicationLogLevel != "" && !slices.Contains(applicationLogLevels, c.ApplicationLogLevel) {
		v.Add(c.ApplicationLogLevel, "loggingConfig.applicationLogLevel", "Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]")
	}
	if c.SystemLogLevel != "" && !slices.Contains(systemLogLevels, c.SystemLogLevel) {
		v.Add(c.SystemLogLevel, "loggingConfig.systemLogLevel", "Member must satisfy enum value set: [DEBUG, INFO, WARN]")
	}
	if c.LogGroup != "" {
		if len(c.LogGroup) > 512 {
			v.Add(c.LogGroup, "loggingConfig.logGroup", "Member must have length less than or equal to 512")
		} else if !logGroupRE.MatchString(c.LogGroup) {
			v.Add(c.LogGroup, "loggingConfig.logGroup", "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")
		}
	}
}

// mergeLoggingConfig applies a LoggingConfig parameter to the current one
// (nil for a new function) as Lambda does: given fields replace, the format
// defaults to Text and the group to /aws/lambda/NAME; JSON brings levels
// (INFO unless given), and levels without JSON are refused.
func mergeLoggingConfig(current *lamina.LoggingConfig, given *lamina.LoggingConfig, function string) (*lamina.LoggingConfig, error) {
	c := lamina.LoggingConfig{LogFormat: lamina.LogFormatText, LogGroup: lamina.LogGroup(function)}
	if current != nil {
		c = *current
	}
	if given != nil {
		if given.LogFormat != "" {
			c.LogFormat = given.LogFormat
		}
		if given.ApplicationLogLevel != "" {
			c.ApplicationLogLevel = given.ApplicationLogLevel
		}
		if given.SystemLogLevel != "" {
			c.SystemLogLevel = given.SystemLogLevel
		}
		if given.LogGroup != "" {
			c.LogGroup = given.LogGroup
		}
	}
	if c.LogFormat == lamina.LogFormatText {
		if given != nil && (given.ApplicationLogLevel != "" || given.SystemLogLevel != "") {
			return nil, lamina.ErrInvalidParameter("ApplicationLogLevel and SystemLogLevel can only be set when LogFormat is JSON.")
		}
		c.ApplicationLogLevel, c.SystemLogLevel = "", ""
		return &c, nil
	}
	if c.ApplicationLogLevel == "" {
		c.ApplicationLogLevel = "INFO"
	}
	if c.SystemLogLevel == "" {
		c.SystemLogLevel = "INFO"
	}
	return &c, nil
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
	if in.LoggingConfig != nil {
		validateLoggingConfig(&v, in.LoggingConfig)
	}
	if err := v.Err(); err != nil {
		return err
	}
	if err := in.unsupportedSettings.check(); err != nil {
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
func (in *configInput) apply(c *lamina.FunctionConfiguration) error {
	logging, err := mergeLoggingConfig(c.LoggingConfig, in.LoggingConfig, c.FunctionName)
	if err != nil {
		return err
	}
	c.LoggingConfig = logging
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
	return nil
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
