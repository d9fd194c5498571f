package e2e

// Synchronous Invoke end to end: results of Python, Node.js and Go (aws-
// lambda-go) functions, the seed handler, the Tail log, the variables and
// context object a function sees, and the request's limits and validation.

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// requireInvocationLog checks the Tail log of an invocation: (INIT_START on
// a cold start,) START, the function's output, END and a REPORT line, in
// that order, with this invocation's request ID; and wantOutput lines
// between START and END. It returns the output lines.
func requireInvocationLog(t *testing.T, r invokeResult, wantOutput ...string) []string {
	t.Helper()
	if !r.HasLog {
		t.Fatal("no X-Amz-Log-Result")
	}
	if !strings.HasSuffix(r.Log, "\n") {
		t.Errorf("log does not end with a newline: %q", r.Log)
	}
	ls := strings.Split(strings.TrimSuffix(r.Log, "\n"), "\n")
	start := slices.Index(ls, "START RequestId: "+r.RequestID+" Version: $LATEST")
	end := slices.Index(ls, "END RequestId: "+r.RequestID)
	if start < 0 || end < 0 || end < start {
		t.Fatalf("log lacks START/END of %s in order:\n%s", r.RequestID, r.Log)
	}
	if end != len(ls)-2 || !strings.HasPrefix(ls[len(ls)-1], "REPORT RequestId: "+r.RequestID+"\t") {
		t.Errorf("log does not end with END then REPORT of %s:\n%s", r.RequestID, r.Log)
	}
	report := r.report(t)
	_, cold := report.Fields["Init Duration"]
	if cold {
		// Output of init (module import) goes between INIT_START and START.
		if !strings.HasPrefix(ls[0], "INIT_START Runtime Version: ") {
			t.Errorf("cold start log does not begin with INIT_START:\n%s", r.Log)
		}
	} else if start != 0 {
		t.Errorf("warm log does not begin with START:\n%s", r.Log)
	}
	output := ls[start+1 : end]
	for _, w := range wantOutput {
		found := false
		for _, l := range output {
			if strings.Contains(l, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line with %q between START and END:\n%s", w, r.Log)
		}
	}
	return output
}

func TestInvokeResults(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	t.Run("python", func(t *testing.T) {
		t.Parallel()
		ts.createPy(t, "py-echo", "echo")
		r := ts.invokeOK(t, "py-echo", `{"a":1,"s":"héllo"}`)
		m := r.object(t)
		if want := map[string]any{"a": 1.0, "s": "héllo"}; !reflect.DeepEqual(m["echo"], want) {
			t.Errorf("echo = %v, want %v", m["echo"], want)
		}
		if r.ExecutedVersion != "$LATEST" {
			t.Errorf("ExecutedVersion = %q, want $LATEST", r.ExecutedVersion)
		}
		requireInvocationLog(t, r, `python saw {"a": 1, "s": "h\u00e9llo"}`)

		// No payload: the event is {}.
		r = ts.invokeOK(t, "py-echo", "")
		if m := r.object(t); !reflect.DeepEqual(m["echo"], map[string]any{}) {
			t.Errorf("echo of an empty payload = %v, want {}", m["echo"])
		}
		// A JSON scalar is passed as it is.
		r = ts.invokeOK(t, "py-echo", `"just a string"`)
		if m := r.object(t); m["echo"] != "just a string" {
			t.Errorf("echo of a string payload = %v", m["echo"])
		}

		// On the wire: the headers the reference lists.
		resp := ts.do(t, "POST", "/2015-03-31/functions/py-echo/invocations", []byte(`{"wire":1}`))
		if resp.Status != http.StatusOK {
			t.Fatalf("raw Invoke: %d %s", resp.Status, resp.Body)
		}
		for k, want := range map[string]string{"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("raw Invoke: %s = %q, want %q", k, got, want)
			}
		}
		for _, k := range []string{"X-Amzn-Requestid", "X-Amzn-Trace-Id"} {
			if resp.Header.Get(k) == "" {
				t.Errorf("raw Invoke: no %s header", k)
			}
		}
		for _, k := range []string{"X-Amz-Function-Error", "X-Amz-Log-Result"} {
			if v, ok := resp.Header[k]; ok {
				t.Errorf("raw Invoke of a successful call without Tail: %s = %q", k, v)
			}
		}

		// None is null; output without a final newline is still this
		// invocation's.
		ts.createPy(t, "py-none", "nothing")
		r = ts.invokeOK(t, "py-none", `{}`)
		if string(r.Payload) != "null" {
			t.Errorf("payload of a handler returning None = %q, want null", r.Payload)
		}
		requireInvocationLog(t, r, "context.log without a newline")
		r2 := ts.invokeOK(t, "py-none", `{}`)
		if out := requireInvocationLog(t, r2, "context.log without a newline"); len(out) != 1 {
			t.Errorf("second call's output is %q, want its one line", out)
		}
	})

	t.Run("node esm", func(t *testing.T) {
		t.Parallel()
		ts.createNode(t, "node-esm", "index.handler")
		r := ts.invokeOK(t, "node-esm", `{"b":[1,2]}`)
		m := r.object(t)
		if want := map[string]any{"b": []any{1.0, 2.0}}; !reflect.DeepEqual(m["echo"], want) {
			t.Errorf("echo = %v, want %v", m["echo"], want)
		}
		if got := str(t, m, "requestId"); got != r.RequestID {
			t.Errorf("context.awsRequestId = %q, want the request id %q", got, r.RequestID)
		}
		if got := str(t, m, "functionName"); got != "node-esm" {
			t.Errorf("context.functionName = %q", got)
		}
		if got := str(t, m, "memory"); got != "128" {
			t.Errorf("context.memoryLimitInMB = %q, want \"128\"", got)
		}
		if got := str(t, m, "arn"); got != "arn:aws:lambda:us-east-1:000000000000:function:node-esm" {
			t.Errorf("context.invokedFunctionArn = %q", got)
		}
		if rem := num(t, m, "remaining"); rem <= 0 || rem > 3000 {
			t.Errorf("context.getRemainingTimeInMillis() = %v, want in (0, 3000]", rem)
		}
		requireInvocationLog(t, r, `node saw {"b":[1,2]}`)
		r2 := ts.invokeOK(t, "node-esm", `{}`)
		if m2 := r2.object(t); num(t, m2, "count") != 2 || m2["env"] != m["env"] {
			t.Errorf("second call: count %v env %v, want 2 and the same environment %v", m2["count"], m2["env"], m["env"])
		}
	})

	t.Run("node cjs callback", func(t *testing.T) {
		t.Parallel()
		ts.createNode(t, "node-cjs", "cjs.handler")
		r := ts.invokeOK(t, "node-cjs", `{"c":true}`)
		m := r.object(t)
		if m["cjs"] != true || !reflect.DeepEqual(m["echo"], map[string]any{"c": true}) || m["requestId"] != r.RequestID {
			t.Errorf("result = %s", r.Payload)
		}
		requireInvocationLog(t, r, `cjs saw {"c":true}`)
	})

	t.Run("go", func(t *testing.T) {
		t.Parallel()
		ts.createGo(t, "go-fn", ".")
		r := ts.invokeOK(t, "go-fn", `{"message":"hi from the test"}`)
		m := r.object(t)
		if got := str(t, m, "message"); got != "hi from the test" {
			t.Errorf("message = %q", got)
		}
		if got := str(t, m, "requestId"); got != r.RequestID {
			t.Errorf("lambdacontext AwsRequestID = %q, want %q", got, r.RequestID)
		}
		if got := str(t, m, "invokedArn"); got != "arn:aws:lambda:us-east-1:000000000000:function:go-fn" {
			t.Errorf("InvokedFunctionArn = %q", got)
		}
		if str(t, m, "functionName") != "go-fn" || num(t, m, "memoryMB") != 128 || str(t, m, "version") != "$LATEST" {
			t.Errorf("lambdacontext globals: %s", r.Payload)
		}
		if !logStreamRE.MatchString(str(t, m, "logStream")) {
			t.Errorf("LogStreamName = %q, want %s", m["logStream"], logStreamRE)
		}
		if rem := num(t, m, "remainingMs"); rem <= 0 || rem > 3000 {
			t.Errorf("time to the context's deadline = %vms, want in (0, 3000]", rem)
		}
		if !r.cold(t) {
			t.Errorf("first call has no Init Duration:\n%s", r.Log)
		}
		requireInvocationLog(t, r, `gofn got action="" message="hi from the test"`)
		env := str(t, m, "env")

		// A returned error: Unhandled, the error's type and message; the
		// environment stays.
		r = ts.invoke(t, "go-fn", `{"action":"error","message":"e1"}`)
		e := r.functionError(t, "errorString")
		if str(t, e, "errorMessage") != "gofn error: e1" {
			t.Errorf("errorMessage = %q", e["errorMessage"])
		}
		r = ts.invokeOK(t, "go-fn", `{"message":"again"}`)
		if m := r.object(t); m["env"] != env || num(t, m, "count") != 3 {
			t.Errorf("after a returned error: env %v count %v, want the same environment %s and count 3", m["env"], m["count"], env)
		}

		// A panic: reported as the error, then the runtime exits; the next
		// call runs in a new environment.
		r = ts.invoke(t, "go-fn", `{"action":"panic","message":"p1"}`)
		if r.FunctionError != "Unhandled" {
			t.Fatalf("panic: FunctionError = %q, payload %s", r.FunctionError, r.Payload)
		}
		e = r.object(t)
		if !strings.Contains(str(t, e, "errorMessage"), "gofn panic: p1") {
			t.Errorf("panic: errorMessage = %q, want the panic value", e["errorMessage"])
		}
		requireInvocationLog(t, r, `gofn got action="panic" message="p1"`)
		r = ts.invokeOK(t, "go-fn", `{"message":"after the panic"}`)
		m = r.object(t)
		if m["env"] == env || num(t, m, "count") != 1 || m["message"] != "after the panic" {
			t.Errorf("after a panic: env %v count %v, want a new environment (not %s) and count 1", m["env"], m["count"], env)
		}
		if !r.cold(t) {
			t.Errorf("the call after a panic has no Init Duration:\n%s", r.Log)
		}
	})

	t.Run("seed handler", func(t *testing.T) {
		t.Parallel()
		code, err := os.ReadFile(filepath.Join("testdata", "seed", "seed_handler.py"))
		if err != nil {
			t.Fatal(err)
		}
		event, err := os.ReadFile(filepath.Join("testdata", "seed", "s3_put_event.json"))
		if err != nil {
			t.Fatal(err)
		}
		ts.createFunction(t, "seed", zipFiles(t, map[string]string{"seed_handler.py": string(code)}), func(in *lambda.CreateFunctionInput) {
			in.Handler = aws.String("seed_handler.lambda_handler")
		})
		r := ts.invokeOK(t, "seed", string(event))
		if got, want := string(r.Payload), `{"statusCode": 200, "body": "\"photos\""}`; got != want {
			t.Errorf("payload = %s, want %s", got, want)
		}
		output := requireInvocationLog(t, r, "'eventSource': 'aws:s3'", "'name': 'photos'", "'key': '2026/cat.jpg'")
		// print(event), print(remaining ms), print(memory_limit_in_mb)
		if len(output) != 3 {
			t.Fatalf("seed handler printed %d lines, want 3:\n%s", len(output), r.Log)
		}
		if !strings.HasPrefix(output[0], "{'Records': [{") {
			t.Errorf("first line is not the event: %q", output[0])
		}
		if ms, err := strconv.Atoi(output[1]); err != nil || ms <= 0 || ms > 3000 {
			t.Errorf("remaining time line = %q, want milliseconds in (0, 3000]", output[1])
		}
		if output[2] != "128" {
			t.Errorf("memory line = %q, want 128", output[2])
		}
	})
}

func TestTailLog(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createPy(t, "tail", "echo")
	ts.createPy(t, "chatty", "chatty")

	t.Run("cold and warm", func(t *testing.T) {
		r := ts.invokeOK(t, "tail", `{"n":1}`)
		output := requireInvocationLog(t, r, `python saw {"n": 1}`, "to stderr")
		// logging's Lambda format: [LEVEL]\t<time>\t<request id>\t<message>
		re := regexp.MustCompile(`^\[WARNING\]\t[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z\t` + regexp.QuoteMeta(r.RequestID) + `\tlogged warning 1$`)
		found := false
		for _, l := range output {
			found = found || re.MatchString(l)
		}
		if !found {
			t.Errorf("no logging line matching %s:\n%s", re, r.Log)
		}
		rep := r.report(t)
		if _, ok := rep.Fields["Init Duration"]; !ok {
			t.Errorf("cold start REPORT has no Init Duration: %q", rep.Line)
		}
		// Output of init (the module's import) is in the cold start's log,
		// before START.
		if i := strings.Index(r.Log, "app.py imported\n"); i < 0 || i > strings.Index(r.Log, "START RequestId: ") {
			t.Errorf("the import's output is not before START in the cold start's log:\n%s", r.Log)
		}
		if rep.Fields["Memory Size"] != "128 MB" {
			t.Errorf("Memory Size = %q, want 128 MB", rep.Fields["Memory Size"])
		}
		if rep.ms(t, "Max Memory Used") < 1 {
			t.Errorf("Max Memory Used = %q, want at least 1 MB", rep.Fields["Max Memory Used"])
		}
		if _, ok := rep.Fields["Status"]; ok {
			t.Errorf("a successful invocation's REPORT has a Status: %q", rep.Line)
		}

		r2 := ts.invokeOK(t, "tail", `{"n":2}`)
		requireInvocationLog(t, r2, `python saw {"n": 2}`)
		if r2.RequestID == r.RequestID {
			t.Errorf("two invocations have the same request id %s", r.RequestID)
		}
		if rep := r2.report(t); rep.Fields["Init Duration"] != "" {
			t.Errorf("warm REPORT has an Init Duration: %q", rep.Line)
		}
		if strings.Contains(r2.Log, r.RequestID) || strings.Contains(r2.Log, `{"n": 1}`) || strings.Contains(r2.Log, "app.py imported") {
			t.Errorf("the second invocation's log has the first one's lines:\n%s", r2.Log)
		}
	})

	t.Run("without Tail", func(t *testing.T) {
		r, err := ts.tryInvoke(t, "tail", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if r.HasLog {
			t.Errorf("LogResult without X-Amz-Log-Type: Tail: %q", r.Log)
		}
		r, err = ts.tryInvoke(t, "tail", `{}`, func(in *lambda.InvokeInput) { in.LogType = types.LogTypeNone })
		if err != nil {
			t.Fatal(err)
		}
		if r.HasLog {
			t.Errorf("LogResult with X-Amz-Log-Type: None: %q", r.Log)
		}
	})

	t.Run("last 4 KB", func(t *testing.T) {
		r := ts.invokeOK(t, "chatty", `{}`)
		if len(r.Log) != 4096 {
			t.Errorf("log of a ~10 KB invocation is %d bytes, want the last 4096", len(r.Log))
		}
		if strings.Contains(r.Log, "FIRST-LINE") || strings.Contains(r.Log, "START RequestId") {
			t.Errorf("the log's beginning was not cut:\n%s", r.Log)
		}
		if !strings.Contains(r.Log, "LAST-LINE\nEND RequestId: "+r.RequestID+"\nREPORT RequestId: "+r.RequestID+"\t") {
			t.Errorf("the log's end is not LAST-LINE, END, REPORT:\n%s", r.Log)
		}
		if !strings.HasSuffix(r.Log, "\t\n") {
			t.Errorf("the log does not end with the REPORT line's tab and a newline: %q", r.Log[max(0, len(r.Log)-100):])
		}
	})
}

func TestRuntimeEnvironment(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	t.Run("variables", func(t *testing.T) {
		t.Parallel()
		ts.createPy(t, "env-fn", "environ", withEnvironment(map[string]string{"MY_VAR": "my value", "WITH_EQUALS": "a=b=c"}))
		r := ts.invokeOK(t, "env-fn", `{}`)
		m := r.object(t)
		raw, ok := m["environ"].(map[string]any)
		if !ok {
			t.Fatalf("environ = %v", m["environ"])
		}
		env := map[string]string{}
		for k, v := range raw {
			env[k], _ = v.(string)
		}
		for k, want := range map[string]string{
			"AWS_LAMBDA_FUNCTION_NAME":        "env-fn",
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
			"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
			"_HANDLER":                        "app.environ",
			"AWS_REGION":                      "us-east-1",
			"AWS_DEFAULT_REGION":              "us-east-1",
			"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/env-fn",
			"AWS_EXECUTION_ENV":               "AWS_Lambda_python3.12",
			"MY_VAR":                          "my value",
			"WITH_EQUALS":                     "a=b=c",
		} {
			if got, ok := env[k]; !ok || got != want {
				t.Errorf("%s = %q (set: %v), want %q", k, got, ok, want)
			}
		}
		for _, k := range []string{"AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ"} {
			if env[k] == "" {
				t.Errorf("%s is not set", k)
			}
		}
		if api := env["AWS_LAMBDA_RUNTIME_API"]; strings.Contains(api, "://") || !regexp.MustCompile(`^[^:/]+:[0-9]+$`).MatchString(api) {
			t.Errorf("AWS_LAMBDA_RUNTIME_API = %q, want host:port", api)
		}
		// The task root holds the function's code and is the working
		// directory (whatever path the sandbox shows it at).
		if m["taskRootHasCode"] != true || m["cwdIsTaskRoot"] != true {
			t.Errorf("LAMBDA_TASK_ROOT %q: has app.py %v, is the working directory %v; want both", env["LAMBDA_TASK_ROOT"], m["taskRootHasCode"], m["cwdIsTaskRoot"])
		}
		if got := str(t, m, "utcoffset"); got != "+0000" {
			t.Errorf("the function's local time zone has offset %q, want UTC", got)
		}
		if s := env["AWS_LAMBDA_LOG_STREAM_NAME"]; !logStreamRE.MatchString(s) {
			t.Errorf("AWS_LAMBDA_LOG_STREAM_NAME = %q, want %s", s, logStreamRE)
		}
		// ...and it is the stream the invocation's log went to.
		for _, e := range ts.waitLogEvents(t, "env-fn", "REPORT RequestId: "+r.RequestID) {
			if got := aws.ToString(e.LogStreamName); got != env["AWS_LAMBDA_LOG_STREAM_NAME"] {
				t.Errorf("event %q is in stream %q, want AWS_LAMBDA_LOG_STREAM_NAME %q", aws.ToString(e.Message), got, env["AWS_LAMBDA_LOG_STREAM_NAME"])
			}
		}
		for _, k := range []string{"_LAMBDA_SERVER_PORT", "AWS_LAMBDA_MAX_CONCURRENCY", "_LAMBDA_TELEMETRY_LOG_FD"} {
			if v, ok := env[k]; ok {
				t.Errorf("%s is set (%q); it must never be", k, v)
			}
		}
		// Nothing of the server's own environment (its admin secret) leaks.
		for k, v := range env {
			if strings.HasPrefix(k, "LAMINA_") || strings.Contains(v, testSecretAccessKey) {
				t.Errorf("the function sees the server's %s=%q", k, v)
			}
		}
	})

	t.Run("context", func(t *testing.T) {
		t.Parallel()
		ts.createPy(t, "ctx-fn", "ctx", withTimeout(7))
		cc := `{"client":{"installation_id":"inst-1","app_title":"e2e app","app_version_name":"1.0","app_version_code":"1","app_package_name":"e2e.pkg"},"custom":{"k":"v","n":1},"env":{"platform":"test"}}`
		r := ts.invokeOK(t, "ctx-fn", `{}`, func(in *lambda.InvokeInput) {
			in.ClientContext = aws.String(base64.StdEncoding.EncodeToString([]byte(cc)))
		})
		m := r.object(t)
		for k, want := range map[string]string{
			"aws_request_id":       r.RequestID,
			"function_name":        "ctx-fn",
			"function_version":     "$LATEST",
			"memory_limit_in_mb":   "128",
			"invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:ctx-fn",
			"log_group_name":       "/aws/lambda/ctx-fn",
		} {
			if got := str(t, m, k); got != want {
				t.Errorf("context.%s = %q, want %q", k, got, want)
			}
		}
		if !logStreamRE.MatchString(str(t, m, "log_stream_name")) {
			t.Errorf("context.log_stream_name = %q", m["log_stream_name"])
		}
		if rem := num(t, m, "remaining"); rem <= 0 || rem > 7000 {
			t.Errorf("get_remaining_time_in_millis() = %v, want in (0, 7000]", rem)
		}
		want := map[string]any{"custom": map[string]any{"k": "v", "n": 1.0}, "env": map[string]any{"platform": "test"}, "app_title": "e2e app"}
		if !reflect.DeepEqual(m["client_context"], want) {
			t.Errorf("client_context = %v, want %v", m["client_context"], want)
		}
		if tr, _ := m["trace_id"].(string); !strings.HasPrefix(tr, "Root=1-") {
			t.Errorf("_X_AMZN_TRACE_ID = %v, want Root=1-…", m["trace_id"])
		}

		// Without a client context, none; with a qualifier, the ARN as invoked.
		r = ts.invokeOK(t, "ctx-fn", `{}`, func(in *lambda.InvokeInput) { in.Qualifier = aws.String("$LATEST") })
		m = r.object(t)
		if m["client_context"] != nil {
			t.Errorf("client_context without X-Amz-Client-Context = %v, want None", m["client_context"])
		}
		if got := str(t, m, "invoked_function_arn"); got != "arn:aws:lambda:us-east-1:000000000000:function:ctx-fn:$LATEST" {
			t.Errorf("invoked_function_arn with Qualifier $LATEST = %q", got)
		}
		if got := str(t, m, "aws_request_id"); got != r.RequestID {
			t.Errorf("aws_request_id = %q, want %q", got, r.RequestID)
		}
	})
}

func TestInvokeRequestLimits(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createPy(t, "size", "size")
	ts.createPy(t, "big", "big")
	ts.createPy(t, "dry", "echo")
	const sixMB = 6 * 1024 * 1024

	t.Run("6 MB request accepted", func(t *testing.T) {
		payload := `"` + strings.Repeat("a", sixMB-2) + `"`
		r := ts.invokeOK(t, "size", payload)
		if m := r.object(t); m["type"] != "str" || num(t, m, "len") != sixMB-2 {
			t.Errorf("the function saw %s, want a str of %d characters", r.Payload, sixMB-2)
		}
	})

	t.Run("request over 6 MB", func(t *testing.T) {
		payload := `"` + strings.Repeat("a", sixMB-1) + `"`
		_, err := ts.tryInvoke(t, "size", payload)
		requireAPIError(t, err, "RequestTooLargeException", http.StatusRequestEntityTooLarge)
		requireTyped[*types.RequestTooLargeException](t, err)
	})

	t.Run("response over 6 MB", func(t *testing.T) {
		r := ts.invoke(t, "big", `{}`)
		e := r.functionError(t, "Function.ResponseSizeTooLarge")
		if got := str(t, e, "errorMessage"); !strings.Contains(got, "Response payload size exceeded maximum allowed payload size (6291556 bytes)") {
			t.Errorf("errorMessage = %q", got)
		}
		if len(r.Payload) > 1024 {
			t.Errorf("the error payload is %d bytes: the oversized result leaked", len(r.Payload))
		}
	})

	t.Run("body not JSON", func(t *testing.T) {
		for _, body := range []string{"not json", `{"a":`, "{'a': 1}"} {
			_, err := ts.tryInvoke(t, "size", body)
			requireAPIError(t, err, "InvalidRequestContentException", http.StatusBadRequest, "Could not parse request body into json")
			requireTyped[*types.InvalidRequestContentException](t, err)
		}
	})

	t.Run("missing function", func(t *testing.T) {
		_, err := ts.tryInvoke(t, "no-such-function", `{}`)
		requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
		requireTyped[*types.ResourceNotFoundException](t, err)
		_, err = ts.tryInvoke(t, "no-such-function", `{}`, func(in *lambda.InvokeInput) { in.InvocationType = types.InvocationTypeDryRun })
		requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
		_, err = ts.tryInvoke(t, "size", `{}`, func(in *lambda.InvokeInput) { in.Qualifier = aws.String("42") })
		requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	})

	t.Run("DryRun", func(t *testing.T) {
		r, err := ts.tryInvoke(t, "dry", `{"dry":true}`, func(in *lambda.InvokeInput) { in.InvocationType = types.InvocationTypeDryRun })
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode != http.StatusNoContent || len(r.Payload) != 0 || r.FunctionError != "" {
			t.Errorf("DryRun: status %d, payload %q, FunctionError %q; want 204 and nothing", r.StatusCode, r.Payload, r.FunctionError)
		}
		// A real invocation afterwards: once its log is visible, anything
		// the DryRun had logged before it would be visible too.
		real := ts.invokeOK(t, "dry", `{"real":true}`)
		if !real.cold(t) {
			t.Errorf("the first real invocation after a DryRun is not a cold start: the DryRun started an environment?\n%s", real.Log)
		}
		if m := real.object(t); num(t, m, "count") != 1 {
			t.Errorf("count = %v after a DryRun and one invocation, want 1", m["count"])
		}
		events := ts.waitLogEvents(t, "dry", "REPORT RequestId: "+real.RequestID)
		if n := countMessages(events, "START RequestId: "); n != 1 {
			t.Errorf("%d START lines after a DryRun and one invocation, want 1:\n%s", n, messagesText(events))
		}
		if missing := missingMessages(events, []string{`"dry": true`}); len(missing) == 0 {
			t.Errorf("the DryRun's event reached the function:\n%s", messagesText(events))
		}
	})
}
