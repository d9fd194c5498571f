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
	// Stream, when set, receives the response as the function streams it
	// (InvokeWithResponseStream, function URLs in RESPONSE_STREAM mode).
	// It is not plain data: a remote worker relays what its own worker
	// writes to it (Start once, then each chunk in order) back to the
	// caller's Stream. Without it a streamed response is buffered as any
	// other, within MaxSyncPayload.
	Stream ResponseStream `json:"-"`
}

// ResponseStream receives a response the runtime streams, as it streams it.
// A worker calls Start once, then Write for each chunk in the order the
// runtime sent them, all from one goroutine, and nothing after the
// invocation has ended. A Write error means the caller has gone: the rest of
// the response is discarded, and the function runs on to its end, as on
// Lambda.
type ResponseStream interface {
	// Start announces the response and its content type, as the runtime
	// gave it ("application/vnd.awslambda.http-integration-response" for a
	// response that starts with an HTTP prelude).
	Start(contentType string)
	// Write passes on one chunk of the response.
	Write(chunk []byte) (int, error)
}

// MaxStreamedResponse is how many bytes of a streamed response reach the
// caller; the response is cut there and the invocation fails with
// Function.ResponseSizeTooLarge.
const MaxStreamedResponse = 20 << 20

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
	// Streamed reports that the response went to the invocation's Stream:
	// Payload is then empty, unless the function failed (its error JSON;
	// part of the response may have been streamed before).
	Streamed bool
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
