package e2e

// Function errors end to end, as the reference says the caller sees them
// (StatusCode 200, X-Amz-Function-Error: Unhandled, the error JSON as the
// payload) and as the log shows them: the managed runtimes' init and handler
// errors, timeouts, crashes, and a provided function without bootstrap.

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// requireErrorReport requires the invocation's REPORT to carry
// "Status: error" and "Error Type: typ".
func requireErrorReport(t *testing.T, r invokeResult, typ string) {
	t.Helper()
	rep := r.report(t)
	if rep.Fields["Status"] != "error" || rep.Fields["Error Type"] != typ {
		t.Errorf("REPORT Status %q Error Type %q, want error and %s: %q", rep.Fields["Status"], rep.Fields["Error Type"], typ, rep.Line)
	}
}

// stackTrace returns the payload's stackTrace (Python) or trace (Node) as
// strings.
func stackTrace(t *testing.T, e map[string]any, key string) []string {
	t.Helper()
	raw, ok := e[key].([]any)
	if !ok {
		t.Fatalf("%s = %#v, want a list (payload %v)", key, e[key], e)
	}
	out := make([]string, len(raw))
	for i, v := range raw {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("%s[%d] = %#v, want a string", key, i, v)
		}
		out[i] = s
	}
	return out
}

func TestPythonErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	// Init errors: the caller gets the runtime's init error body (request
	// id "") and the environment is not reused: every call fails the same way.
	initErrors := []struct {
		name, handler string
		files         map[string]string
		errorType     string
		message       string
	}{
		{"py-import", "missing_mod.handler", map[string]string{"app.py": pyApp},
			"Runtime.ImportModuleError", "Unable to import module 'missing_mod': No module named 'missing_mod'"},
		{"py-import-dep", "dep.handler", map[string]string{"dep.py": "import not_installed_anywhere\n\ndef handler(e, c):\n    return 1\n"},
			"Runtime.ImportModuleError", "Unable to import module 'dep': No module named 'not_installed_anywhere'"},
		{"py-notfound", "app.nope", map[string]string{"app.py": pyApp},
			"Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"},
		{"py-syntax", "bad.handler", map[string]string{"bad.py": "def handler(event, context)\n    return 1\n"},
			"Runtime.UserCodeSyntaxError", "Syntax error in module 'bad'"},
		{"py-malformed", "nodot", map[string]string{"app.py": pyApp},
			"Runtime.MalformedHandlerName", "Bad handler 'nodot'"},
		{"py-init-raise", "boom.handler", map[string]string{"boom.py": "raise RuntimeError('init went wrong')\n\ndef handler(e, c):\n    return 1\n"},
			"RuntimeError", "init went wrong"},
	}
	for _, tc := range initErrors {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts.createFunction(t, tc.name, zipFiles(t, tc.files), func(in *lambda.CreateFunctionInput) { in.Handler = aws.String(tc.handler) })
			for i := range 2 {
				r := ts.invoke(t, tc.name, `{}`)
				e := r.functionError(t, tc.errorType)
				if got := str(t, e, "errorMessage"); !strings.Contains(got, tc.message) {
					t.Errorf("call %d: errorMessage = %q, want it to contain %q", i+1, got, tc.message)
				}
				if got, ok := e["requestId"]; !ok || got != "" {
					t.Errorf("call %d: requestId = %#v, want \"\" (an init error)", i+1, got)
				}
				stackTrace(t, e, "stackTrace")
				if !r.cold(t) {
					t.Errorf("call %d after an init error is not a cold start:\n%s", i+1, r.Log)
				}
				if strings.HasPrefix(tc.errorType, "Runtime.") {
					requireErrorReport(t, r, tc.errorType)
				}
				if !strings.Contains(r.Log, "START RequestId: "+r.RequestID) || !strings.Contains(r.Log, "END RequestId: "+r.RequestID) {
					t.Errorf("call %d: the log lacks START/END:\n%s", i+1, r.Log)
				}
				if !strings.Contains(r.Log, "[ERROR] "+tc.errorType+": ") {
					t.Errorf("call %d: the log lacks the runtime's [ERROR] %s line:\n%s", i+1, tc.errorType, r.Log)
				}
			}
		})
	}

	t.Run("exception", func(t *testing.T) {
		t.Parallel()
		ts.createPy(t, "py-fail", "fail")
		r := ts.invoke(t, "py-fail", `{"why":"because"}`)
		e := r.functionError(t, "ValueError")
		if got := str(t, e, "errorMessage"); got != "boom because" {
			t.Errorf("errorMessage = %q, want %q", got, "boom because")
		}
		if got := e["requestId"]; got != r.RequestID {
			t.Errorf("requestId = %v, want %s", got, r.RequestID)
		}
		trace := stackTrace(t, e, "stackTrace")
		if len(trace) == 0 || !strings.Contains(strings.Join(trace, ""), `app.py", line`) || !strings.Contains(strings.Join(trace, ""), "in fail") {
			t.Errorf("stackTrace = %q, want the handler's frame in app.py", trace)
		}
		if strings.Contains(strings.Join(trace, ""), "bootstrap.py") {
			t.Errorf("stackTrace shows the runtime's own frames: %q", trace)
		}
		requireInvocationLog(t, r, "about to fail", "[ERROR] ValueError: boom because")
		// A handler exception is the function's error, not the runtime's:
		// the environment is kept.
		if !r.cold(t) {
			t.Errorf("first call is not a cold start")
		}
		resp := ts.do(t, "POST", "/2015-03-31/functions/py-fail/invocations", []byte(`{"why":"raw"}`))
		if resp.Status != 200 || resp.Header.Get("X-Amz-Function-Error") != "Unhandled" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("raw Invoke of a failing function: status %d, X-Amz-Function-Error %q, Content-Type %q; want 200, Unhandled, application/json",
				resp.Status, resp.Header.Get("X-Amz-Function-Error"), resp.Header.Get("Content-Type"))
		}
		r2 := ts.invoke(t, "py-fail", `{"why":"again"}`)
		r2.functionError(t, "ValueError")
		if r2.cold(t) {
			t.Errorf("the environment was not reused after a handler exception:\n%s", r2.Log)
		}
	})

	t.Run("marshal error", func(t *testing.T) {
		t.Parallel()
		ts.createPy(t, "py-marshal", "marshal")
		r := ts.invoke(t, "py-marshal", `{}`)
		e := r.functionError(t, "Runtime.MarshalError")
		if got := str(t, e, "errorMessage"); !strings.Contains(got, "Unable to marshal response") || !strings.Contains(got, "set") {
			t.Errorf("errorMessage = %q", got)
		}
		requireInvocationLog(t, r, "[ERROR] Runtime.MarshalError: Unable to marshal response")
	})
}

func TestNodeErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	for _, tc := range []struct {
		name, handler string
		files         map[string]string
		errorType     string
		message       string
	}{
		{"node-import", "missing.handler", nodeApp, "Runtime.ImportModuleError", "Cannot find module 'missing'"},
		{"node-notfound", "index.nope", nodeApp, "Runtime.HandlerNotFound", "index.nope is undefined or not exported"},
		{"node-syntax", "bad.handler", map[string]string{"bad.js": "exports.handler = async (event => {\n"}, "Runtime.UserCodeSyntaxError", "SyntaxError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts.createFunction(t, tc.name, zipFiles(t, tc.files), func(in *lambda.CreateFunctionInput) {
				in.Runtime = types.RuntimeNodejs20x
				in.Handler = aws.String(tc.handler)
			})
			r := ts.invoke(t, tc.name, `{}`)
			e := r.functionError(t, tc.errorType)
			if got := str(t, e, "errorMessage"); !strings.Contains(got, tc.message) {
				t.Errorf("errorMessage = %q, want it to contain %q", got, tc.message)
			}
			stackTrace(t, e, "trace")
			requireErrorReport(t, r, tc.errorType)
		})
	}

	t.Run("thrown error", func(t *testing.T) {
		t.Parallel()
		ts.createNode(t, "node-fail", "index.fail")
		r := ts.invoke(t, "node-fail", `{}`)
		e := r.functionError(t, "Error")
		if got := str(t, e, "errorMessage"); got != "node boom" {
			t.Errorf("errorMessage = %q, want node boom", got)
		}
		trace := stackTrace(t, e, "trace")
		if len(trace) < 2 || trace[0] != "Error: node boom" || !strings.Contains(strings.Join(trace, "\n"), "index.mjs") {
			t.Errorf("trace = %q, want \"Error: node boom\" then frames of index.mjs", trace)
		}
		for k := range e {
			if k != "errorType" && k != "errorMessage" && k != "trace" {
				t.Errorf("Node error payload has key %q; want errorType, errorMessage, trace only: %s", k, r.Payload)
			}
		}
		requireInvocationLog(t, r, "node about to throw")
	})
}

func TestTimeoutsAndCrashes(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		ts.createPy(t, "py-timeout", "sleep", withTimeout(1))
		r := ts.invoke(t, "py-timeout", `{"seconds":3}`)
		e := r.functionError(t, "Sandbox.Timedout")
		want := map[string]any{
			"errorType":    "Sandbox.Timedout",
			"errorMessage": "RequestId: " + r.RequestID + " Error: Task timed out after 1.00 seconds",
		}
		if !reflect.DeepEqual(e, want) {
			t.Errorf("payload = %s, want %v", r.Payload, want)
		}
		rep := r.report(t)
		if rep.Fields["Status"] != "timeout" {
			t.Errorf("REPORT has no Status: timeout: %q", rep.Line)
		}
		if rep.Fields["Duration"] != "1000.00 ms" {
			t.Errorf("REPORT of a timeout: Duration %q, want the timeout, 1000.00 ms", rep.Fields["Duration"])
		}
		timedOut := regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z ` + regexp.QuoteMeta(r.RequestID) + ` Task timed out after 1\.00 seconds$`)
		found := false
		for _, l := range strings.Split(r.Log, "\n") {
			found = found || timedOut.MatchString(l)
		}
		if !found {
			t.Errorf("no line matching %s in the log:\n%s", timedOut, r.Log)
		}
		if !strings.Contains(r.Log, "START RequestId: "+r.RequestID) || !strings.Contains(r.Log, "END RequestId: "+r.RequestID) || !strings.Contains(r.Log, "sleeping 3 s") {
			t.Errorf("the log lacks START, the function's output or END:\n%s", r.Log)
		}
		// The timed-out environment was stopped: the next call is a cold
		// start in a new process.
		r2 := ts.invokeOK(t, "py-timeout", `{"seconds":0}`)
		if m := r2.object(t); num(t, m, "count") != 1 {
			t.Errorf("count after a timeout = %v, want 1 (a new environment)", m["count"])
		}
		if !r2.cold(t) {
			t.Errorf("the call after a timeout is not a cold start:\n%s", r2.Log)
		}
	})

	t.Run("init timeout", func(t *testing.T) {
		t.Parallel()
		// Init is bounded by 10 s, then retried once inside the invocation,
		// bounded by the function's timeout: an import that takes 12 s fails
		// both times.
		ts.createFunction(t, "slow-init", zipFiles(t, map[string]string{"app.py": `import time
print("slow import starts", flush=True)
time.sleep(12)


def handler(event, context):
    return "never"
`}), withTimeout(2))
		r := ts.invoke(t, "slow-init", `{}`)
		r.functionError(t, "Sandbox.Timedout")
		if n := strings.Count(r.Log, "INIT_START "); n != 2 {
			t.Errorf("%d INIT_START lines, want 2 (init, then its retry):\n%s", n, r.Log)
		}
		// (The retry, under a 2 s bound and a small CPU share, may not get
		// as far as the print on a busy machine.)
		if !strings.Contains(r.Log, "slow import starts") {
			t.Errorf("the import's output is not in the log:\n%s", r.Log)
		}
		if !strings.Contains(r.Log, "REPORT RequestId: "+r.RequestID) {
			t.Errorf("no REPORT:\n%s", r.Log)
		}
	})

	t.Run("crash", func(t *testing.T) {
		t.Parallel()
		ts.createFunction(t, "py-crash", zipFiles(t, map[string]string{"app.py": `import os

COUNT = 0


def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("exit") is not None:
        print("about to exit", flush=True)
        os._exit(event["exit"])
    if event.get("kill"):
        os.kill(os.getpid(), 9)
    return {"count": COUNT}
`}))
		ts.invokeOK(t, "py-crash", `{}`)
		r := ts.invoke(t, "py-crash", `{"exit":3}`)
		e := r.functionError(t, "Runtime.ExitError")
		if got, want := str(t, e, "errorMessage"), "RequestId: "+r.RequestID+" Error: Runtime exited with error: exit status 3"; got != want {
			t.Errorf("errorMessage = %q, want %q", got, want)
		}
		requireInvocationLog(t, r, "about to exit", "RequestId: "+r.RequestID+" Error: Runtime exited with error: exit status 3", "Runtime.ExitError")
		requireErrorReport(t, r, "Runtime.ExitError")

		r2 := ts.invokeOK(t, "py-crash", `{}`)
		if m := r2.object(t); num(t, m, "count") != 1 {
			t.Errorf("count after a crash = %v, want 1 (a new environment)", m["count"])
		}
		if !r2.cold(t) {
			t.Errorf("the call after a crash is not a cold start:\n%s", r2.Log)
		}

		// Killed by a signal.
		r = ts.invoke(t, "py-crash", `{"kill":true}`)
		e = r.functionError(t, "Runtime.ExitError")
		if got, want := str(t, e, "errorMessage"), "RequestId: "+r.RequestID+" Error: Runtime exited with error: signal: killed"; got != want {
			t.Errorf("errorMessage = %q, want %q", got, want)
		}
		if r3 := ts.invokeOK(t, "py-crash", `{}`); !r3.cold(t) {
			t.Errorf("the call after a kill is not a cold start:\n%s", r3.Log)
		}
	})

	t.Run("provided without bootstrap", func(t *testing.T) {
		t.Parallel()
		ts.createFunction(t, "no-bootstrap", zipFiles(t, map[string]string{"readme.txt": "no bootstrap here\n", "main": "not executable"}), func(in *lambda.CreateFunctionInput) {
			in.Runtime = types.RuntimeProvidedal2023
			in.Handler = aws.String("main")
		})
		r := ts.invoke(t, "no-bootstrap", `{}`)
		r.functionError(t, "Runtime.InvalidEntrypoint")
		if !strings.Contains(r.Log, "START RequestId: "+r.RequestID) || !strings.Contains(r.Log, "REPORT RequestId: "+r.RequestID) {
			t.Errorf("the log lacks START/REPORT:\n%s", r.Log)
		}
	})

	t.Run("provided bootstrap exits during init", func(t *testing.T) {
		t.Parallel()
		code := zipEntries(t, zipEntry{Name: "bootstrap", Body: "#!/bin/sh\necho bootstrap giving up\nexit 2\n", Mode: 0o755})
		ts.createFunction(t, "bootstrap-exits", code, func(in *lambda.CreateFunctionInput) {
			in.Runtime = types.RuntimeProvidedal2023
			in.Handler = aws.String("x")
		})
		r := ts.invoke(t, "bootstrap-exits", `{}`)
		e := r.functionError(t, "Runtime.ExitError")
		if got := str(t, e, "errorMessage"); !strings.Contains(got, "exit status 2") {
			t.Errorf("errorMessage = %q, want the exit status", got)
		}
		if !strings.Contains(r.Log, "bootstrap giving up") {
			t.Errorf("the bootstrap's output is not in the log:\n%s", r.Log)
		}
	})
}
