package lamina

import (
	"slices"
	"strings"
	"time"
)

// Limits that AWS Lambda documents and Lamina enforces.
const (
	MinMemorySize     = 128   // MB
	MaxMemorySize     = 10240 // MB
	DefaultMemorySize = 128   // MB
	MinTimeout        = 1     // seconds
	MaxTimeout        = 900   // seconds
	DefaultTimeout    = 3     // seconds

	MinEphemeralStorage     = 512   // MB
	MaxEphemeralStorage     = 10240 // MB
	DefaultEphemeralStorage = 512   // MB

	MaxZippedCodeSize   = 52428800  // bytes of a zip uploaded directly
	MaxUnzippedCodeSize = 262144000 // bytes of code plus layers, unzipped
	MaxEnvironmentSize  = 4096      // bytes of all environment variables
	MaxDescription      = 256       // characters
	MaxLayers           = 5         // layers per function
	MaxTags             = 50        // tags per function

	// MaxCodeUploadRequest is the largest CreateFunction or
	// UpdateFunctionCode request body AWS accepts (a 50 MB zip in base64 plus
	// the rest of the JSON).
	MaxCodeUploadRequest = 70167211

	// MaxSyncPayload is the limit of a synchronous Invoke request and response.
	MaxSyncPayload = 6 * 1024 * 1024
	// MaxRuntimeAPIPayload is the limit the Runtime API applies, both ways.
	MaxRuntimeAPIPayload = 6*1024*1024 + 100
	// MaxAsyncPayload is the limit of an Invoke with InvocationType Event.
	MaxAsyncPayload = 1024 * 1024
)

// Runtime family names, which select a managed runtime.
const (
	FamilyPython   = "python"
	FamilyNode     = "nodejs"
	FamilyProvided = "provided"
)

// supportedRuntimes maps each supported runtime identifier to its family.
var supportedRuntimes = map[string]string{
	"python3.9": FamilyPython, "python3.10": FamilyPython, "python3.11": FamilyPython,
	"python3.12": FamilyPython, "python3.13": FamilyPython,
	"nodejs18.x": FamilyNode, "nodejs20.x": FamilyNode, "nodejs22.x": FamilyNode,
	"provided": FamilyProvided, "provided.al2": FamilyProvided, "provided.al2023": FamilyProvided,
}

// RuntimeFamily returns the family of a runtime identifier ("python",
// "nodejs" or "provided") and whether Lamina supports it.
func RuntimeFamily(runtime string) (string, bool) {
	f, ok := supportedRuntimes[runtime]
	return f, ok
}

// SupportedRuntimes returns every runtime identifier Lamina accepts, sorted.
func SupportedRuntimes() []string {
	ids := make([]string, 0, len(supportedRuntimes))
	for id := range supportedRuntimes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// FunctionConfiguration is a function version's configuration as the Lambda
// API returns it. Field names are AWS's JSON names.
type FunctionConfiguration struct {
	FunctionName     string
	FunctionArn      string
	Runtime          string `json:",omitempty"`
	Role             string
	Handler          string `json:",omitempty"`
	CodeSize         int64
	Description      string
	Timeout          int
	MemorySize       int
	LastModified     string
	CodeSha256       string
	Version          string
	Environment      *Environment      `json:",omitempty"`
	DeadLetterConfig *DeadLetterConfig `json:",omitempty"`
	TracingConfig    *TracingConfig    `json:",omitempty"`
	RevisionId       string
	Layers           []LayerReference `json:",omitempty"`
	State            string
	LastUpdateStatus string
	PackageType      string
	Architectures    []string
	EphemeralStorage *EphemeralStorage
	SnapStart        *SnapStart
	LoggingConfig    *LoggingConfig
}

// Environment holds a function's own environment variables.
type Environment struct {
	Variables map[string]string
}

// DeadLetterConfig names where failed asynchronous events go.
type DeadLetterConfig struct {
	TargetArn string `json:",omitempty"`
}

// TracingConfig is the X-Ray tracing mode ("PassThrough" or "Active").
type TracingConfig struct {
	Mode string
}

// LayerReference is a layer version a function uses.
type LayerReference struct {
	Arn      string
	CodeSize int64
}

// EphemeralStorage is the size of /tmp in MB.
type EphemeralStorage struct {
	Size int
}

// SnapStart is shown for completeness; Lamina does not snapshot.
type SnapStart struct {
	ApplyOn            string
	OptimizationStatus string
}

// LoggingConfig says where and how a function's logs go: the format of
// its log lines ("Text" or "JSON"), the levels below which application and
// platform lines are dropped (JSON only) and the log group they go to.
type LoggingConfig struct {
	LogFormat           string
	ApplicationLogLevel string `json:",omitempty"`
	SystemLogLevel      string `json:",omitempty"`
	LogGroup            string
}

// Log formats of LoggingConfig.LogFormat.
const (
	LogFormatText = "Text"
	LogFormatJSON = "JSON"
)

// LogGroupName returns the log group the function's logs go to: its
// LoggingConfig's, else /aws/lambda/NAME.
func (c *FunctionConfiguration) LogGroupName() string {
	if c.LoggingConfig != nil && c.LoggingConfig.LogGroup != "" {
		return c.LoggingConfig.LogGroup
	}
	return LogGroup(c.FunctionName)
}

// JSONLogs reports whether the function's logs are JSON records.
func (c *FunctionConfiguration) JSONLogs() bool {
	return c.LoggingConfig != nil && c.LoggingConfig.LogFormat == LogFormatJSON
}

// Function is the stored record of one function version: its configuration,
// its code and layers, and, on $LATEST, what belongs to the function as a
// whole (tags, reserved concurrency, the version counter).
type Function struct {
	Configuration FunctionConfiguration
	// CodeDigest is the lowercase hex SHA-256 of the code zip; it names the
	// zip in the code store.
	CodeDigest string
	// CodeUnzippedSize is the code's size once unpacked.
	CodeUnzippedSize int64 `json:",omitempty"`
	// Layers are the contents of the layers in Configuration.Layers, in the
	// same order. A function keeps using a layer version after it is
	// deleted, so the content is referenced here, not looked up.
	Layers []LayerContent    `json:",omitempty"`
	Tags   map[string]string `json:",omitempty"`
	// ReservedConcurrency is the function's reserved concurrency, nil when
	// it has none.
	ReservedConcurrency *int `json:",omitempty"`
	// LastVersion is the number of the last published version (on $LATEST).
	LastVersion int `json:",omitempty"`
	// CodeSigningConfigArn is the code signing config attached to the
	// function (on $LATEST), "" for none.
	CodeSigningConfigArn string `json:",omitempty"`
	// RuntimeManagement is the version's runtime management config; nil
	// means Auto.
	RuntimeManagement *RuntimeManagementConfig `json:",omitempty"`
	// RecursiveLoop is the function's recursive loop detection setting
	// (on $LATEST, for all its versions): RecursiveLoopAllow, or
	// RecursiveLoopTerminate, which "" means too.
	RecursiveLoop string `json:",omitempty"`
}

// StopsLoops reports whether Lamina stops a recursive loop through the
// function (its RecursiveLoop is not Allow).
func (f *Function) StopsLoops() bool { return f.RecursiveLoop != RecursiveLoopAllow }

// RuntimeManagementConfig says when a function's runtime is updated:
// "Auto", "FunctionUpdate" or "Manual" with a RuntimeVersionArn.
type RuntimeManagementConfig struct {
	UpdateRuntimeOn   string
	RuntimeVersionArn string `json:",omitempty"`
}

// LayerContent is the content of one layer version a function uses.
type LayerContent struct {
	Arn          string
	Digest       string // lowercase hex SHA-256 of the layer zip
	UnzippedSize int64
}

// UnzippedSize returns the size of the code and layers once unpacked.
func (f *Function) UnzippedSize() int64 {
	n := f.CodeUnzippedSize
	for _, l := range f.Layers {
		n += l.UnzippedSize
	}
	return n
}

// Family returns the runtime family of the function ("python", "nodejs",
// "provided").
func (f *Function) Family() string {
	fam, _ := RuntimeFamily(f.Configuration.Runtime)
	return fam
}

// RuntimeVersionARN is the runtime version ARN Lamina shows (INIT_START,
// runtime management configs): one version of every runtime, the one it
// runs.
func RuntimeVersionARN(region string) string {
	return "arn:aws:lambda:" + region + "::runtime:" + strings.Repeat("0", 64)
}

// LogGroup returns the log group of a function, "/aws/lambda/NAME".
func LogGroup(functionName string) string { return "/aws/lambda/" + functionName }

// FormatLastModified formats a time as the Lambda API shows LastModified,
// e.g. "2024-01-01T12:00:00.000+0000".
func FormatLastModified(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000-0700")
}

// reservedEnvironmentKeys are the variables the platform sets, which a
// function may not set itself (AWS's list of reserved keys).
var reservedEnvironmentKeys = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// IsReservedEnvironmentKey reports whether key is one the platform sets and a
// function may not override.
func IsReservedEnvironmentKey(key string) bool { return reservedEnvironmentKeys[key] }
