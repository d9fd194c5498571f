package lamina

import "time"

// Invocation is one call of a function version, as the frontend hands it to
// the manager and the manager to a worker. It is plain data so that the hops
// can be carried over NATS in a cluster.
type Invocation struct {
	RequestID string
	// Function is the resolved version to run.
	Function *Function
	// InvokedARN is the ARN as the caller named the function, qualifier
	// included (Lambda-Runtime-Invoked-Function-Arn).
	InvokedARN string
	Payload    []byte
	// ClientContext is the decoded JSON of X-Amz-Client-Context, or empty.
	ClientContext string
	// CognitoIdentity is the identity JSON, or empty.
	CognitoIdentity string
	TraceID         string
	// Tail asks for the last 4 KB of the invocation's log in the result.
	Tail bool
}

// Invocation errors a runtime or the platform reports, as errorType values.
const (
	ErrorTypeTimeout           = "Sandbox.Timedout"
	ErrorTypeExit              = "Runtime.ExitError"
	ErrorTypeOutOfMemory       = "Runtime.OutOfMemory"
	ErrorTypeResponseTooLarge  = "Function.ResponseSizeTooLarge"
	ErrorTypeSandboxFailure    = "Sandbox.Failure"
	ErrorTypeInvalidEntrypoint = "Runtime.InvalidEntrypoint"
)

// FunctionErrorUnhandled is the X-Amz-Function-Error value of every function
// failure on modern runtimes.
const FunctionErrorUnhandled = "Unhandled"

// InvocationResult is how an invocation ended.
type InvocationResult struct {
	// Payload is the function's response, or the error JSON when
	// FunctionError is set.
	Payload []byte
	// ContentType is the content type the runtime gave its response;
	// "application/vnd.awslambda.http-integration-response" marks a
	// streamed HTTP response with its prelude.
	ContentType string
	// FunctionError is "Unhandled" when the function failed (an error, a
	// timeout, a crash), else empty.
	FunctionError string
	// ErrorType is the errorType of a failure (e.g. "Sandbox.Timedout"), for
	// logs and metrics.
	ErrorType       string
	ExecutedVersion string
	// LogTail is the end of the invocation's log (at most 4 KB), when Tail was
	// asked.
	LogTail []byte
	// Duration is the invoke phase; InitDuration the cold start's init, zero
	// when the environment was warm.
	Duration     time.Duration
	InitDuration time.Duration
}
