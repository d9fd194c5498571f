package sandboxtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lamina-project/lamina/internal/sandbox"
)

// Runtime is what a Script plays the runtime with: the environment the
// worker started it with, a Runtime API client on one keep-alive connection
// (as AWS's runtimes keep theirs), its output, and ways to end. Every call
// waits while the sandbox is frozen, and ends the script (runtime.Goexit)
// once the sandbox is destroyed or exited from outside, as a killed
// process goes no further.
type Runtime struct {
	sb     *Sandbox
	env    map[string]string
	base   string
	client *http.Client
	out    io.Writer
}

func newRuntime(sb *Sandbox, p sandbox.Process) *Runtime {
	env := map[string]string{}
	for _, kv := range p.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var out io.Writer = io.Discard
	if p.Output != nil {
		out = p.Output
	}
	return &Runtime{
		sb:     sb,
		env:    env,
		base:   "http://" + env["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime",
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}},
		out:    out,
	}
}

// Getenv returns a variable of the runtime's environment, e.g. "_HANDLER"
// or "AWS_LAMBDA_FUNCTION_NAME".
func (rt *Runtime) Getenv(name string) string { return rt.env[name] }

// Event is an invocation as /next hands it to the runtime.
type Event struct {
	RequestID  string
	Payload    []byte
	Deadline   time.Time
	InvokedARN string
	TraceID    string
	// ClientContext and CognitoIdentity are the JSON the invocation
	// carries, or empty.
	ClientContext   string
	CognitoIdentity string
}

// Next asks for the next event and waits for it.
func (rt *Runtime) Next() (*Event, error) {
	resp, body := rt.do(http.MethodGet, "/invocation/next", nil, nil)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /next: %d %s", resp.StatusCode, body)
	}
	h := resp.Header
	ev := &Event{
		RequestID:       h.Get("Lambda-Runtime-Aws-Request-Id"),
		Payload:         body,
		InvokedARN:      h.Get("Lambda-Runtime-Invoked-Function-Arn"),
		TraceID:         h.Get("Lambda-Runtime-Trace-Id"),
		ClientContext:   h.Get("Lambda-Runtime-Client-Context"),
		CognitoIdentity: h.Get("Lambda-Runtime-Cognito-Identity"),
	}
	if ms, err := strconv.ParseInt(h.Get("Lambda-Runtime-Deadline-Ms"), 10, 64); err == nil {
		ev.Deadline = time.UnixMilli(ms)
	}
	return ev, nil
}

// Respond posts the response to an event.
func (rt *Runtime) Respond(requestID string, payload []byte) error {
	return rt.post("/invocation/"+requestID+"/response", payload, nil)
}

// Fail posts an error for an event, as the runtimes report a handler's
// error: errorType (e.g. "Runtime.HandlerError") and message.
func (rt *Runtime) Fail(requestID, errorType, message string) error {
	return rt.post("/invocation/"+requestID+"/error", errorBody(errorType, message),
		map[string]string{"Lambda-Runtime-Function-Error-Type": errorType})
}

// InitError posts an init error (before the first /next).
func (rt *Runtime) InitError(errorType, message string) error {
	return rt.post("/init/error", errorBody(errorType, message),
		map[string]string{"Lambda-Runtime-Function-Error-Type": errorType})
}

func errorBody(errorType, message string) []byte {
	data, _ := json.Marshal(map[string]string{"errorType": errorType, "errorMessage": message})
	return data
}

// post posts body to path and requires 202 Accepted.
func (rt *Runtime) post(path string, body []byte, header map[string]string) error {
	resp, answer := rt.do(http.MethodPost, path, body, header)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, answer)
	}
	return nil
}

// do makes one Runtime API call. It waits while the sandbox is frozen
// (before the call, and before the runtime sees the answer) and ends the
// script when the sandbox is killed.
func (rt *Runtime) do(method, path string, body []byte, header map[string]string) (*http.Response, []byte) {
	rt.alive()
	req, err := http.NewRequestWithContext(rt.sb.killed, method, rt.base+path, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := rt.client.Do(req)
	if err != nil {
		rt.alive()
		// The worker closed the Runtime API without the sandbox being
		// destroyed: a runtime would crash on that.
		rt.Exit(1)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	rt.alive()
	if err != nil {
		rt.Exit(1)
	}
	return resp, data
}

// alive waits while the sandbox is frozen, and ends the script if it was
// killed.
func (rt *Runtime) alive() {
	if !rt.sb.waitThawed() {
		rt.client.CloseIdleConnections()
		runtime.Goexit()
	}
}

// Printf writes a line of output (stdout) as the runtime's process would;
// it becomes part of the log of the phase it was written in.
func (rt *Runtime) Printf(format string, args ...any) {
	rt.alive()
	fmt.Fprintf(rt.out, format+"\n", args...)
}

// Sleep waits for d, as a slow init or handler does; it ends the script if
// the sandbox is killed meanwhile.
func (rt *Runtime) Sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-rt.sb.killed.Done():
	}
	rt.alive()
}

// SetMemoryPeak sets what the sandbox reports as its memory peak.
func (rt *Runtime) SetMemoryPeak(bytes int64) { rt.sb.peak.Store(bytes) }

// Exit ends the runtime's process with status code, and the script with
// it.
func (rt *Runtime) Exit(code int) {
	var err error
	if code != 0 {
		err = &sandbox.ExitError{Code: code}
	}
	rt.end(err)
}

// OutOfMemory ends the runtime as the memory limit kills it: with SIGKILL,
// and the sandbox reporting OutOfMemory.
func (rt *Runtime) OutOfMemory() {
	rt.sb.oom.Store(true)
	rt.end(&sandbox.ExitError{Signal: syscall.SIGKILL})
}

func (rt *Runtime) end(err error) {
	rt.client.CloseIdleConnections()
	rt.sb.exit(err)
	runtime.Goexit()
}

// Context is done once the sandbox is destroyed (or exited from outside):
// for scripts that wait on something of their own.
func (rt *Runtime) Context() context.Context { return rt.sb.killed }

// Echo is a runtime that answers every event with its payload.
func Echo(rt *Runtime) {
	for {
		ev, err := rt.Next()
		if err != nil {
			return
		}
		if err := rt.Respond(ev.RequestID, ev.Payload); err != nil {
			return
		}
	}
}
