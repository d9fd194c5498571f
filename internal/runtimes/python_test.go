//go:build linux

package runtimes

// Tests of Lamina's Python runtime (python/bootstrap.py) against AWS's own
// Runtime Interface Emulator (aws-lambda-rie), plus a fake Runtime API for
// what RIE cannot produce (non-JSON events, a 413 answer, a dropped
// keep-alive connection).
//
// The interpreter is /usr/bin/python3 (else python3 on PATH); set
// LAMINA_TEST_PYTHON to run the tests with another one.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const rieInstall = "go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// testFunctionName is the AWS_LAMBDA_FUNCTION_NAME of every test function.
const testFunctionName = "pyfunc"

// logTime matches the UTC timestamp of the runtime's text log lines.
const logTime = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`

func pythonInterpreter(t *testing.T) string {
	return testInterpreter(t, "LAMINA_TEST_PYTHON", "python3")
}

// testInterpreter returns the interpreter the tests run a runtime on: the
// one env names, else /usr/bin/<name>, else <name> on PATH; it skips the test
// when there is none.
func testInterpreter(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/" + name); err == nil {
		return "/usr/bin/" + name
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("no %s interpreter: neither /usr/bin/%s nor %s on PATH", name, name, name)
	}
	return p
}

func pythonBootstrap(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("python", "bootstrap.py"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	compiledOnce sync.Once
	compiledDir  string // removed by TestMain
	compiled     string
	compileErr   error
)

// pythonBytecode returns the Python runtime compiled by the test
// interpreter as Lamina compiles it for functions (compileBootstrap), the
// form functions run: the tests run it unless they say otherwise.
func pythonBytecode(t *testing.T) string {
	t.Helper()
	python, src := pythonInterpreter(t), pythonBootstrap(t)
	compiledOnce.Do(func() {
		if compiledDir, compileErr = os.MkdirTemp("", "lamina-pyc-"); compileErr != nil {
			return
		}
		compiled = filepath.Join(compiledDir, "bootstrap.test.pyc")
		compileErr = compileBootstrap(python, src, compiled, src)
	})
	if compileErr != nil {
		t.Fatal(compileErr)
	}
	return compiled
}

// pythonScripts are both forms of the Python runtime, by name: its source
// and its bytecode.
func pythonScripts(t *testing.T) map[string]string {
	return map[string]string{"source": pythonBootstrap(t), "bytecode": pythonBytecode(t)}
}

// rieBinary finds aws-lambda-rie on PATH or in $(go env GOPATH)/bin.
func rieBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "aws-lambda-rie")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Skip("aws-lambda-rie not found on PATH or in $(go env GOPATH)/bin; install it with: " + rieInstall)
	return ""
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor returns the output once it matches re; output is copied from pipes
// asynchronously, so it may trail the invocation's response a little.
func (b *syncBuffer) waitFor(t *testing.T, re string) string {
	t.Helper()
	pattern := regexp.MustCompile(re)
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := b.String()
		if pattern.MatchString(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("output does not match %q:\n%s", re, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeTaskRoot writes files (slash-separated name → content) into a new
// directory and returns it.
func writeTaskRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// runtimeEnv is the environment Lamina's worker gives the runtime, minus
// AWS_LAMBDA_RUNTIME_API.
func runtimeEnv(t *testing.T, taskRoot, handler string, extra []string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"_HANDLER=" + handler,
		"LAMBDA_TASK_ROOT=" + taskRoot,
		"LAMBDA_RUNTIME_DIR=" + filepath.Dir(pythonBootstrap(t)),
		"AWS_LAMBDA_FUNCTION_NAME=" + testFunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + testFunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=2026/11/25/[$LATEST]0123456789abcdef",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=30", // read by RIE
	}, extra...)
}

// startProcess starts cmd in its own process group, with its output in out,
// and kills the group when the test ends.
func startProcess(t *testing.T, cmd *exec.Cmd, out *syncBuffer) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
}

// rieFunction is one Python function served by its own RIE.
type rieFunction struct {
	taskRoot string
	url      string
	out      *syncBuffer // RIE's stdout and stderr, which include the runtime's
}

// startPythonFunction writes files into a new task root and starts RIE with
// Lamina's Python runtime as its bootstrap, the handler in _HANDLER and extra
// variables in the environment. It returns once RIE accepts connections;
// RIE starts the runtime (init) on the first invocation.
func startPythonFunction(t *testing.T, files map[string]string, handler string, extraEnv ...string) *rieFunction {
	t.Helper()
	return startPythonFunctionFrom(t, pythonBytecode(t), files, handler, extraEnv...)
}

// startPythonFunctionFrom is startPythonFunction with the runtime run from
// script, its source or its bytecode.
func startPythonFunctionFrom(t *testing.T, script string, files map[string]string, handler string, extraEnv ...string) *rieFunction {
	t.Helper()
	taskRoot := writeTaskRoot(t, files)
	return startRIE(t, taskRoot, runtimeEnv(t, taskRoot, handler, extraEnv), pythonInterpreter(t), "-s", script)
}

// startRIE starts AWS's Runtime Interface Emulator on free ports with the
// runtime command argv, in taskRoot with env, and returns once it accepts
// connections.
func startRIE(t *testing.T, taskRoot string, env []string, argv ...string) *rieFunction {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(rieBinary(t), append([]string{
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", freeAddr(t),
	}, argv...)...)
	cmd.Dir = taskRoot
	cmd.Env = env
	out := &syncBuffer{}
	startProcess(t, cmd, out)

	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RIE does not answer on %s: %v\n%s", addr, err, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &rieFunction{
		taskRoot: taskRoot,
		url:      "http://" + addr + "/2015-03-31/functions/function/invocations",
		out:      out,
	}
}

// invoke sends one synchronous invocation and returns RIE's status and body.
func (f *rieFunction) invoke(t *testing.T, payload string, header map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url, strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("invoke: %v\n%s", err, f.out)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// invokeJSON invokes and decodes the response into v, expecting HTTP 200.
func (f *rieFunction) invokeJSON(t *testing.T, payload string, header map[string]string, v any) {
	t.Helper()
	status, body := f.invoke(t, payload, header)
	if status != http.StatusOK {
		t.Fatalf("status %d, body %s\n%s", status, body, f.out)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("response %q: %v\n%s", body, err, f.out)
	}
}

// lambdaError is the Python runtime's error body.
type lambdaError struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	RequestID    *string  `json:"requestId"`
	StackTrace   []string `json:"stackTrace"`
}

func TestPythonSeedHandler(t *testing.T) {
	t.Parallel()
	handler, err := os.ReadFile("../../../shared/examples/seed_handler.py")
	if err != nil {
		t.Skipf("seed example not available: %v", err)
	}
	event, err := os.ReadFile("../../../shared/examples/s3_put_event.json")
	if err != nil {
		t.Skipf("seed event not available: %v", err)
	}
	f := startPythonFunction(t, map[string]string{"seed_handler.py": string(handler)}, "seed_handler.lambda_handler")

	status, body := f.invoke(t, string(event), nil)
	if want := `{"statusCode": 200, "body": "\"photos\""}`; status != http.StatusOK || string(body) != want {
		t.Fatalf("got %d %s, want 200 %s\n%s", status, body, want, f.out)
	}
	// The handler prints the event, the remaining time and the memory size.
	f.out.waitFor(t, `(?m)^\{'Records': \[\{'eventVersion': '2.1'.*\n\d+\n128\n`)
}

func TestPythonHandlerInPackage(t *testing.T) {
	t.Parallel()
	f := startPythonFunction(t, map[string]string{
		"handlers/__init__.py": "",
		"handlers/api.py": `import os, sys

def function(event, context):
    return {"module": __name__, "path": sys.path[:3],
            "runtime_dir_on_path": os.environ["LAMBDA_RUNTIME_DIR"] in sys.path}
`,
	}, "handlers/api.function")

	var got struct {
		Module           string   `json:"module"`
		Path             []string `json:"path"`
		RuntimeDirOnPath bool     `json:"runtime_dir_on_path"`
	}
	f.invokeJSON(t, `{}`, nil, &got)
	if got.Module != "handlers.api" {
		t.Errorf("module %q, want handlers.api", got.Module)
	}
	// sys.path starts with the task root, then the layer directories.
	python := pythonInterpreter(t)
	version, err := exec.Command(python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	if err != nil {
		t.Fatal(err)
	}
	wantPath := []string{f.taskRoot, "/opt/python/lib/python" + strings.TrimSpace(string(version)) + "/site-packages", "/opt/python"}
	if !reflect.DeepEqual(got.Path, wantPath) {
		t.Errorf("sys.path starts %q, want %q", got.Path, wantPath)
	}
	if got.RuntimeDirOnPath {
		t.Error("the runtime's directory is on sys.path")
	}
}

// A user module named like the runtime's own file is the one imported.
func TestPythonUserModuleNamedBootstrap(t *testing.T) {
	t.Parallel()
	f := startPythonFunction(t, map[string]string{
		"bootstrap.py": "def handler(event, context):\n    return 'user bootstrap'\n",
	}, "bootstrap.handler")
	status, body := f.invoke(t, `{}`, nil)
	if status != http.StatusOK || string(body) != `"user bootstrap"` {
		t.Fatalf("got %d %s\n%s", status, body, f.out)
	}
}

func TestPythonWarmReuse(t *testing.T) {
	t.Parallel()
	f := startPythonFunction(t, map[string]string{
		"counter.py": `import os

count = 0
pid = os.getpid()

def handler(event, context):
    global count
    count += 1
    return {"count": count, "pid": pid}
`,
	}, "counter.handler")

	var firstPID int
	for i := 1; i <= 3; i++ {
		var got struct{ Count, PID int }
		f.invokeJSON(t, `{}`, nil, &got)
		if got.Count != i {
			t.Fatalf("invocation %d: count %d", i, got.Count)
		}
		if i == 1 {
			firstPID = got.PID
		} else if got.PID != firstPID {
			t.Fatalf("invocation %d ran in process %d, not %d", i, got.PID, firstPID)
		}
	}
}

const contextHandler = `def handler(event, context):
    cc = context.client_context
    client = None
    if cc is not None and cc.client is not None:
        client = {k: getattr(cc.client, k) for k in (
            "installation_id", "app_title", "app_version_name",
            "app_version_code", "app_package_name")}
    remaining = context.get_remaining_time_in_millis()
    return {
        "type": type(context).__name__,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": remaining,
        "remaining_type": type(remaining).__name__,
        "identity": [context.identity.cognito_identity_id,
                     context.identity.cognito_identity_pool_id],
        "client_context": None if cc is None else {
            "client": client, "custom": cc.custom, "env": cc.env},
        "tenant_id": context.tenant_id,
        "log_is_callable": callable(context.log),
    }
`

type contextReport struct {
	Type               string    `json:"type"`
	AwsRequestID       string    `json:"aws_request_id"`
	FunctionName       string    `json:"function_name"`
	FunctionVersion    string    `json:"function_version"`
	InvokedFunctionArn string    `json:"invoked_function_arn"`
	MemoryLimitInMB    any       `json:"memory_limit_in_mb"`
	LogGroupName       string    `json:"log_group_name"`
	LogStreamName      string    `json:"log_stream_name"`
	Remaining          int64     `json:"remaining"`
	RemainingType      string    `json:"remaining_type"`
	Identity           []*string `json:"identity"`
	ClientContext      *struct {
		Client map[string]any `json:"client"`
		Custom map[string]any `json:"custom"`
		Env    map[string]any `json:"env"`
	} `json:"client_context"`
	TenantID      *string `json:"tenant_id"`
	LogIsCallable bool    `json:"log_is_callable"`
}

func TestPythonContext(t *testing.T) {
	t.Parallel()
	f := startPythonFunction(t, map[string]string{"ctx.py": contextHandler}, "ctx.handler")

	clientContext := `{"client": {"installation_id": "inst-1", "app_title": "Lamina Test",
		"app_version_name": "1.2.3", "app_version_code": "123", "app_package_name": "dev.lamina.test"},
		"custom": {"color": "blue"}, "env": {"platform": "Android"}}`
	var got contextReport
	f.invokeJSON(t, `{}`, map[string]string{
		"X-Amzn-RequestId":       "4a1b7e2c-0000-4000-8000-000000000001",
		"X-Amz-Client-Context":   base64.StdEncoding.EncodeToString([]byte(clientContext)),
		"X-Amz-Cognito-Identity": `{"cognitoIdentityId": "us-east-1:id-1", "cognitoIdentityPoolId": "us-east-1:pool-1"}`,
		"X-Amz-Tenant-Id":        "tenant-7",
	}, &got)

	str := func(s string) *string { return &s }
	if got.Type != "LambdaContext" ||
		got.AwsRequestID != "4a1b7e2c-0000-4000-8000-000000000001" ||
		got.FunctionName != testFunctionName ||
		got.FunctionVersion != "$LATEST" ||
		got.InvokedFunctionArn != "arn:aws:lambda:us-east-1:012345678912:function:"+testFunctionName ||
		got.MemoryLimitInMB != "128" || // a str, as in AWS's runtime
		got.LogGroupName != "/aws/lambda/"+testFunctionName ||
		got.LogStreamName != "2026/11/25/[$LATEST]0123456789abcdef" ||
		got.RemainingType != "int" || got.Remaining <= 0 || got.Remaining > 30000 ||
		!reflect.DeepEqual(got.Identity, []*string{str("us-east-1:id-1"), str("us-east-1:pool-1")}) ||
		!reflect.DeepEqual(got.TenantID, str("tenant-7")) ||
		!got.LogIsCallable {
		t.Errorf("context attributes: %+v", got)
	}
	if cc := got.ClientContext; cc == nil ||
		!reflect.DeepEqual(cc.Client, map[string]any{"installation_id": "inst-1", "app_title": "Lamina Test",
			"app_version_name": "1.2.3", "app_version_code": "123", "app_package_name": "dev.lamina.test"}) ||
		!reflect.DeepEqual(cc.Custom, map[string]any{"color": "blue"}) ||
		!reflect.DeepEqual(cc.Env, map[string]any{"platform": "Android"}) {
		t.Errorf("client_context: %+v", got.ClientContext)
	}

	// Without those headers: no client context and an identity of Nones.
	got = contextReport{}
	f.invokeJSON(t, `{}`, nil, &got)
	if got.ClientContext != nil || got.TenantID != nil ||
		!reflect.DeepEqual(got.Identity, []*string{nil, nil}) || got.AwsRequestID == "" {
		t.Errorf("context without optional headers: %+v", got)
	}
}

func TestPythonInitErrors(t *testing.T) {
	t.Parallel()
	const module = "def handler(event, context):\n    return 'ok'\n"
	tests := []struct {
		name    string
		files   map[string]string
		handler string
		errType string
		message string // a prefix for UserCodeSyntaxError, whose text varies by Python version
		trace   func(taskRoot string) []string
	}{
		{
			name: "MalformedHandlerName", files: map[string]string{"m.py": module}, handler: "handler",
			errType: "Runtime.MalformedHandlerName",
			message: "Bad handler 'handler': not enough values to unpack (expected 2, got 1)",
		},
		{
			name: "ImportModuleError", files: map[string]string{"m.py": module}, handler: "missing.handler",
			errType: "Runtime.ImportModuleError",
			message: "Unable to import module 'missing': No module named 'missing'",
		},
		{
			name:  "ImportModuleErrorInDependency",
			files: map[string]string{"m.py": "import not_installed_dependency\n" + module}, handler: "m.handler",
			errType: "Runtime.ImportModuleError",
			message: "Unable to import module 'm': No module named 'not_installed_dependency'",
		},
		{
			name:  "UserCodeSyntaxError",
			files: map[string]string{"syn.py": "def handler(event, context)\n    return 1\n"}, handler: "syn.handler",
			errType: "Runtime.UserCodeSyntaxError",
			message: "Syntax error in module 'syn': ",
			trace: func(root string) []string {
				return []string{`  File "` + root + `/syn.py" Line 1` + "\n    def handler(event, context)\n"}
			},
		},
		{
			name: "HandlerNotFound", files: map[string]string{"m.py": module}, handler: "m.nope",
			errType: "Runtime.HandlerNotFound",
			message: "Handler 'nope' missing on module 'm'",
		},
		{
			name: "BuiltInModuleConflict", files: map[string]string{"m.py": module}, handler: "sys.handler",
			errType: "Runtime.BuiltInModuleConflict",
			message: "Cannot use built-in module sys as a handler module",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startPythonFunction(t, tc.files, tc.handler)
			status, body := f.invoke(t, `{}`, nil)
			// RIE answers an init failure with 502 and the runtime's error body.
			if status != http.StatusBadGateway {
				t.Fatalf("status %d, want 502; body %s\n%s", status, body, f.out)
			}
			var got lambdaError
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if got.ErrorType != tc.errType || !strings.HasPrefix(got.ErrorMessage, tc.message) ||
				got.RequestID == nil || *got.RequestID != "" {
				t.Errorf("got %+v, want type %s, message %q, requestId \"\"", got, tc.errType, tc.message)
			}
			wantTrace := []string{}
			if tc.trace != nil {
				wantTrace = tc.trace(f.taskRoot)
			}
			if !reflect.DeepEqual(got.StackTrace, wantTrace) {
				t.Errorf("stackTrace %q, want %q", got.StackTrace, wantTrace)
			}
			// Logged as one event: lines joined by \r.
			f.out.waitFor(t, `(?m)^\[ERROR\] `+regexp.QuoteMeta(tc.errType+": "+got.ErrorMessage)+
				`\rTraceback \(most recent call last\):`)
		})
	}
}

// An exception raised by the module's top-level code is an init error with
// the exception's own type and the module's frames.
func TestPythonInitException(t *testing.T) {
	t.Parallel()
	for form, script := range pythonScripts(t) {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			testPythonInitException(t, script)
		})
	}
}

// testPythonInitException checks the error of an init that raises, with the
// runtime run from script.
func testPythonInitException(t *testing.T, script string) {
	f := startPythonFunctionFrom(t, script, map[string]string{
		"boom.py": "raise RuntimeError('init failed')\n",
	}, "boom.handler")
	status, body := f.invoke(t, `{}`, nil)
	var got lambdaError
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if status != http.StatusBadGateway || got.ErrorType != "RuntimeError" || got.ErrorMessage != "init failed" {
		t.Fatalf("got %d %+v\n%s", status, got, f.out)
	}
	wantLast := `  File "` + f.taskRoot + `/boom.py", line 1, in <module>` + "\n    raise RuntimeError('init failed')\n"
	if n := len(got.StackTrace); n == 0 || got.StackTrace[n-1] != wantLast {
		t.Errorf("stackTrace %q, want it to end with %q", got.StackTrace, wantLast)
	}
	for _, frame := range got.StackTrace {
		if strings.Contains(frame, "bootstrap.py") {
			t.Errorf("stackTrace shows the runtime's frames: %q", got.StackTrace)
		}
	}
}

const appHandler = `import decimal

def fail(message):
    raise ValueError(message)

def handler(event, context):
    case = event.get("case")
    if case == "exception":
        fail("boom " + event["detail"])
    if case == "set":
        return {"items": {1, 2}}
    if case == "decimal":
        return {"price": decimal.Decimal("19.90"), "big": decimal.Decimal("1E+3"),
                "nan": decimal.Decimal("NaN"), "raw": b"bytes", "text": "caf\u00e9"}
    if case == "bytes":
        return b"\x00\xffraw"
    return event
`

func TestPythonInvokeErrors(t *testing.T) {
	t.Parallel()
	for form, script := range pythonScripts(t) {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			testPythonInvokeErrors(t, script)
		})
	}
}

// testPythonInvokeErrors checks the errors of invocations, with the runtime
// run from script.
func testPythonInvokeErrors(t *testing.T, script string) {
	f := startPythonFunctionFrom(t, script, map[string]string{"app.py": appHandler}, "app.handler")
	const requestID = "4a1b7e2c-0000-4000-8000-0000000000e1"
	invokeError := func(t *testing.T, payload string, header map[string]string) lambdaError {
		t.Helper()
		if header == nil {
			header = map[string]string{}
		}
		header["X-Amzn-RequestId"] = requestID
		status, body := f.invoke(t, payload, header)
		var got lambdaError
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		// RIE passes a function error through with status 200.
		if status != http.StatusOK || got.RequestID == nil || *got.RequestID != requestID {
			t.Fatalf("got %d %s", status, body)
		}
		return got
	}

	t.Run("Exception", func(t *testing.T) {
		got := invokeError(t, `{"case": "exception", "detail": "here"}`, nil)
		app := f.taskRoot + "/app.py"
		want := lambdaError{
			ErrorMessage: "boom here",
			ErrorType:    "ValueError",
			RequestID:    got.RequestID,
			StackTrace: []string{
				`  File "` + app + `", line 9, in handler` + "\n" + `    fail("boom " + event["detail"])` + "\n",
				`  File "` + app + `", line 4, in fail` + "\n    raise ValueError(message)\n",
			},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
		// One log event: \r between lines, indentation as no-break spaces.
		nbsp := "\u00a0"
		f.out.waitFor(t, regexp.QuoteMeta("[ERROR] ValueError: boom here\rTraceback (most recent call last):\r"+
			strings.Repeat(nbsp, 2)+`File "`+app+`", line 9, in handler`+"\r"+
			strings.Repeat(nbsp, 4)+`fail("boom " + event["detail"])`+"\r"+
			strings.Repeat(nbsp, 2)+`File "`+app+`", line 4, in fail`+"\r"+
			strings.Repeat(nbsp, 4)+"raise ValueError(message)\n"))
	})

	t.Run("MarshalError", func(t *testing.T) {
		got := invokeError(t, `{"case": "set"}`, nil)
		if got.ErrorType != "Runtime.MarshalError" ||
			got.ErrorMessage != "Unable to marshal response: Object of type set is not JSON serializable" ||
			len(got.StackTrace) != 0 {
			t.Errorf("got %+v", got)
		}
	})

	t.Run("UnmarshalError", func(t *testing.T) {
		got := invokeError(t, `{not json`, nil)
		if got.ErrorType != "Runtime.UnmarshalError" ||
			!strings.HasPrefix(got.ErrorMessage, "Unable to unmarshal input: Expecting property name") {
			t.Errorf("got %+v", got)
		}
	})

	t.Run("LambdaContextUnmarshalError", func(t *testing.T) {
		got := invokeError(t, `{}`, map[string]string{
			"X-Amz-Client-Context": base64.StdEncoding.EncodeToString([]byte("{not json")),
		})
		if got.ErrorType != "Runtime.LambdaContextUnmarshalError" ||
			!strings.HasPrefix(got.ErrorMessage, "Unable to parse Client Context JSON: ") {
			t.Errorf("got %+v", got)
		}
	})

	// The runtime keeps serving after errors.
	status, body := f.invoke(t, `{"echo": 1}`, nil)
	if status != http.StatusOK || string(body) != `{"echo": 1}` {
		t.Errorf("after errors: got %d %s", status, body)
	}
}

func TestPythonResponseEncoding(t *testing.T) {
	t.Parallel()
	f := startPythonFunction(t, map[string]string{"app.py": appHandler}, "app.handler")

	// Decimal keeps its exact text, NaN is allowed, nested bytes become
	// strings, and non-ASCII is escaped (AWS_EXECUTION_ENV is not python3.12+).
	status, body := f.invoke(t, `{"case": "decimal"}`, nil)
	want := `{"price": 19.90, "big": 1E+3, "nan": NaN, "raw": "bytes", "text": "caf\u00e9"}`
	if status != http.StatusOK || string(body) != want {
		t.Errorf("decimal: got %d %s, want %s", status, body, want)
	}

	// A bytes result is the response body as it is.
	status, body = f.invoke(t, `{"case": "bytes"}`, nil)
	if status != http.StatusOK || string(body) != "\x00\xffraw" {
		t.Errorf("bytes: got %d %q", status, body)
	}
}

func TestPythonLogging(t *testing.T) {
	t.Parallel()
	files := map[string]string{"logs.py": `import logging, sys

print("init print")
logging.warning("init warning")

def handler(event, context):
    print("hello from print")
    sys.stderr.write("hello from stderr\n")
    logging.getLogger().warning("warn %s", "arg")
    logging.getLogger("app").info("info line")
    context.log("context log line\n")
    return "ok"
`}
	const requestID = "4a1b7e2c-0000-4000-8000-0000000000a1"
	header := map[string]string{"X-Amzn-RequestId": requestID}

	t.Run("Text", func(t *testing.T) {
		t.Parallel()
		f := startPythonFunction(t, files, "logs.handler")
		if status, body := f.invoke(t, `{}`, header); status != http.StatusOK || string(body) != `"ok"` {
			t.Fatalf("got %d %s", status, body)
		}
		out := f.out.waitFor(t, `(?m)^context log line$`)
		for _, re := range []string{
			`(?m)^init print$`,
			`(?m)^\[WARNING\]\t` + logTime + `\t\tinit warning$`, // no request ID during init
			`(?m)^hello from print$`,
			`(?m)^hello from stderr$`,
			`(?m)^\[WARNING\]\t` + logTime + `\t` + requestID + `\twarn arg$`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("output does not match %q:\n%s", re, out)
			}
		}
		// The root logger keeps Python's default level, WARNING.
		if strings.Contains(out, "info line") {
			t.Errorf("INFO logged at the default level:\n%s", out)
		}
	})

	t.Run("JSONWithLevel", func(t *testing.T) {
		t.Parallel()
		f := startPythonFunction(t, files, "logs.handler",
			"AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=INFO")
		if status, body := f.invoke(t, `{}`, header); status != http.StatusOK || string(body) != `"ok"` {
			t.Fatalf("got %d %s", status, body)
		}
		out := f.out.waitFor(t, `info line`)
		var record map[string]any
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "info line") {
				if err := json.Unmarshal([]byte(line), &record); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
			}
		}
		ts, _ := record["timestamp"].(string)
		delete(record, "timestamp")
		want := map[string]any{"level": "INFO", "message": "info line", "logger": "app", "requestId": requestID}
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(ts) || !reflect.DeepEqual(record, want) {
			t.Errorf("JSON log record %v (timestamp %q), want %v", record, ts, want)
		}
		if !regexp.MustCompile(`(?m)^hello from print$`).MatchString(out) {
			t.Errorf("print output changed in JSON mode:\n%s", out)
		}
	})
}

// fakeRuntimeAPI serves the Runtime API to a runtime started directly, for
// what RIE cannot do: events with another Content-Type, a 413 answer to a
// response, and closing an idle keep-alive connection.
type fakeRuntimeAPI struct {
	srv    *httptest.Server
	events chan fakeEvent // served by /next, in order
	posts  chan fakePost  // every POST received

	mu            sync.Mutex
	conns         int  // connections opened by the runtime
	closeWhenIdle bool // close the connection when it next goes idle
}

type fakeEvent struct {
	id, contentType, body string
	traceID               string
	postStatus            int  // answer to the runtime's POST for this event
	closeAfter            bool // then drop the keep-alive connection
}

type fakePost struct {
	path, contentType, body string
}

func newFakeRuntimeAPI(t *testing.T, events []fakeEvent) *fakeRuntimeAPI {
	api := &fakeRuntimeAPI{events: make(chan fakeEvent, len(events)), posts: make(chan fakePost, len(events))}
	byID := map[string]fakeEvent{}
	for _, e := range events {
		api.events <- e
		byID[e.id] = e
	}
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case e := <-api.events:
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", e.id)
			w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(time.Minute).UnixMilli()))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:"+testFunctionName)
			w.Header().Set("Content-Type", e.contentType)
			if e.traceID != "" {
				w.Header().Set("Lambda-Runtime-Trace-Id", e.traceID)
			}
			io.WriteString(w, e.body)
		case <-done:
		}
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/{kind}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e := byID[r.PathValue("id")]
		api.mu.Lock()
		api.closeWhenIdle = e.closeAfter
		api.mu.Unlock()
		w.WriteHeader(e.postStatus)
		if e.postStatus == http.StatusRequestEntityTooLarge {
			io.WriteString(w, `{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}`)
		}
		api.posts <- fakePost{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), body: string(body)}
	})
	api.srv = httptest.NewUnstartedServer(mux)
	api.srv.Config.ConnState = func(c net.Conn, state http.ConnState) {
		api.mu.Lock()
		defer api.mu.Unlock()
		switch {
		case state == http.StateNew:
			api.conns++
		case state == http.StateIdle && api.closeWhenIdle:
			api.closeWhenIdle = false
			c.Close()
		}
	}
	api.srv.Start()
	t.Cleanup(func() {
		close(done)
		api.srv.Close()
	})
	return api
}

func (api *fakeRuntimeAPI) nextPost(t *testing.T, out *syncBuffer) fakePost {
	t.Helper()
	select {
	case p := <-api.posts:
		return p
	case <-time.After(10 * time.Second):
		t.Fatalf("no POST from the runtime\n%s", out)
		return fakePost{}
	}
}

func (api *fakeRuntimeAPI) connections() int {
	api.mu.Lock()
	defer api.mu.Unlock()
	return api.conns
}

func TestPythonRuntimeAPIClient(t *testing.T) {
	t.Parallel()
	const traceID = "Root=1-5e1b4151-5ac6c58f3375aa3c7c6b73c9;Parent=8a3c60f7d188f8fa;Sampled=1"
	api := newFakeRuntimeAPI(t, []fakeEvent{
		// Not application/json: the handler gets the raw bytes; it returns
		// them, so they are posted as application/unknown. The 413 answer is
		// logged and the runtime goes on.
		{id: "id-raw", contentType: "application/octet-stream", body: "\x00\x01raw", postStatus: http.StatusRequestEntityTooLarge},
		// Same connection; then the server closes it while idle.
		{id: "id-json", contentType: "application/json", body: `{"text": "caf\u00e9"}`, traceID: traceID,
			postStatus: http.StatusAccepted, closeAfter: true},
		// The runtime reconnects. No trace ID: _X_AMZN_TRACE_ID is removed.
		{id: "id-last", contentType: "application/json", body: `[1, 2]`, postStatus: http.StatusAccepted},
	})
	taskRoot := writeTaskRoot(t, map[string]string{"echo.py": `import os

def handler(event, context):
    if isinstance(event, bytes):
        return event
    return {"event": event, "trace": os.environ.get("_X_AMZN_TRACE_ID")}
`})
	cmd := exec.Command(pythonInterpreter(t), "-s", pythonBytecode(t))
	cmd.Dir = taskRoot
	cmd.Env = runtimeEnv(t, taskRoot, "echo.handler", []string{
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(api.srv.URL, "http://"),
		"AWS_EXECUTION_ENV=AWS_Lambda_python3.12", // non-ASCII stays as it is
	})
	out := &syncBuffer{}
	startProcess(t, cmd, out)

	want := []fakePost{
		{"/2018-06-01/runtime/invocation/id-raw/response", "application/unknown", "\x00\x01raw"},
		{"/2018-06-01/runtime/invocation/id-json/response", "application/json", `{"event": {"text": "café"}, "trace": "` + traceID + `"}`},
		{"/2018-06-01/runtime/invocation/id-last/response", "application/json", `{"event": [1, 2], "trace": null}`},
	}
	for i, w := range want {
		if got := api.nextPost(t, out); got != w {
			t.Errorf("POST %d: got %+v, want %+v", i, got, w)
		}
		if i == 1 && api.connections() != 1 {
			t.Errorf("%d connections for the first two invocations, want 1 (keep-alive)", api.connections())
		}
	}
	if n := api.connections(); n != 2 {
		t.Errorf("%d connections in all, want 2 (one reconnect)", n)
	}
	out.waitFor(t, regexp.QuoteMeta("POST /2018-06-01/runtime/invocation/id-raw/response answered HTTP 413"))
}
