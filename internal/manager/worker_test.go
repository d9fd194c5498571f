package manager

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
)

// roundTrip encodes v to JSON and decodes it into a new value of its type.
func roundTrip[T any](t *testing.T, v *T) *T {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%T does not encode: %v", v, err)
	}
	out := new(T)
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("%T does not decode: %v", v, err)
	}
	return out
}

// TestWorkerContractIsPlainData: everything that crosses the Worker seam
// encodes to JSON and back unchanged, errors included, so that a worker on
// another node can be the same contract over NATS request-reply.
func TestWorkerContractIsPlainData(t *testing.T) {
	t.Parallel()
	fn := &lamina.Function{
		Configuration: lamina.FunctionConfiguration{
			FunctionName: "f", Version: "3", RevisionId: "rev", Runtime: "python3.12", Handler: "app.handler",
			MemorySize: 256, Timeout: 30, Environment: &lamina.Environment{Variables: map[string]string{"K": "v"}},
			EphemeralStorage: &lamina.EphemeralStorage{Size: 1024}, Architectures: []string{"x86_64"},
		},
		CodeDigest: "abc", CodeUnzippedSize: 10,
		Layers: []lamina.LayerContent{{Arn: "arn:aws:lambda:us-east-1:000000000000:layer:l:1", Digest: "def", UnzippedSize: 5}},
	}
	values := []any{
		&lamina.Invocation{RequestID: "id", Function: fn, InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:f:live",
			Payload: []byte(`{"a":1}`), ClientContext: `{"c":1}`, CognitoIdentity: `{"i":1}`, TraceID: "Root=1-x", Tail: true},
		&lamina.InvocationResult{Payload: []byte{0, 1, 0xff}, ContentType: "application/json", FunctionError: "Unhandled",
			ErrorType: "Runtime.ExitError", ExecutedVersion: "3", LogTail: []byte("END"), Duration: 1500 * time.Microsecond, InitDuration: time.Second},
		&Provision{Config: ProvisionedKey("f", "live"), Function: fn, Count: 2},
		&Provision{Config: ProvisionedKey("f", "live")},
		&WorkerState{MemoryBudgetMB: 1024, MemoryUsedMB: 384, Environments: 3, Idle: 1,
			Provisioned: map[string]ProvisionedState{"f:live": {Version: "3", RevisionId: "rev", Allocated: 2, Available: 1}}},
		lamina.ErrTooManyRequests(ReasonAccount),
		lamina.ErrService("the worker is shutting down"),
	}
	for _, v := range values {
		var got any
		switch v := v.(type) {
		case *lamina.Invocation:
			got = roundTrip(t, v)
		case *lamina.InvocationResult:
			got = roundTrip(t, v)
		case *Provision:
			got = roundTrip(t, v)
		case *WorkerState:
			got = roundTrip(t, v)
		case *lamina.Error:
			got = roundTrip(t, v)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%T changed on the way: %+v, want %+v", v, got, v)
		}
	}
}
