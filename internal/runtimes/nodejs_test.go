//go:build linux

package runtimes

// Tests of Lamina's Node.js runtime (nodejs/index.mjs) against AWS's own
// Runtime Interface Emulator (aws-lambda-rie), with the RIE helpers of
// python_test.go (rieBinary, writeTaskRoot, startProcess, rieFunction, ...),
// plus a fake Runtime API where RIE cannot show what the runtime sent.
//
// The interpreter is /usr/bin/node (else node on PATH); set LAMINA_TEST_NODE
// to run the tests with another one.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodeFunctionName is the AWS_LAMBDA_FUNCTION_NAME of every Node.js test
// function.
const nodeFunctionName = "nodefunc"

func nodeInterpreter(t *testing.T) string { return testInterpreter(t, "LAMINA_TEST_NODE", "node") }

// nodeRuntimeDir is the runtime's directory, LAMBDA_RUNTIME_DIR.
func nodeRuntimeDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("nodejs")
	if err != nil {
		t.Fatal(err)
	}
	// Reading the runtime here, in the test process, also ties go test's
	// result cache to its content: only the node processes run it.
	if _, err := os.ReadFile(filepath.Join(dir, "index.mjs")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nodeEnv is the environment Lamina's worker gives the runtime, minus
// AWS_LAMBDA_RUNTIME_API.
func nodeEnv(t *testing.T, taskRoot, handler string, extra []string) []string {
	runtimeDir := nodeRuntimeDir(t)
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"_HANDLER=" + handler,
		"LAMBDA_TASK_ROOT=" + taskRoot,
		"LAMBDA_RUNTIME_DIR=" + runtimeDir,
		"NODE_PATH=/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:" + runtimeDir + "/node_modules",
		"AWS_LAMBDA_FUNCTION_NAME=" + nodeFunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + nodeFunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=2026/11/25/[$LATEST]0123456789abcdef",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=30", // read by RIE
	}, extra...)
}

// startNodeFunction writes files into a new task root and starts RIE with
// `node index.mjs` as its bootstrap, the handler in _HANDLER and extra
// variables in the environment. It returns once RIE accepts connections;
// RIE starts the runtime (init) on the first invocation.
func startNodeFunction(t *testing.T, files map[string]string, handler string, extraEnv ...string) *rieFunction {
	t.Helper()
	taskRoot := writeTaskRoot(t, files)
	return startRIE(t, taskRoot, nodeEnv(t, taskRoot, handler, extraEnv), nodeInterpreter(t), filepath.Join(nodeRuntimeDir(t), "index.mjs"))
}

// nodeExpect invokes f and expects HTTP 200 with the body want.
func nodeExpect(t *testing.T, f *rieFunction, payload, want string) {
	t.Helper()
	status, body := f.invoke(t, payload, nil)
	if status != http.StatusOK || string(body) != want {
		t.Fatalf("got %d %s, want 200 %s\n%s", status, body, want, f.out)
	}
}

// nodeError is the Node.js runtime's error body; its stack lines are in
// "trace". Decoding fails on any other field.
type nodeError struct {
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	Trace        []string `json:"trace"`
}

func decodeNodeError(t *testing.T, body []byte) nodeError {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var got nodeError
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if got.Trace == nil {
		t.Errorf("error body %s has no trace", body)
	}
	return got
}

func TestNodeHandlerModules(t *testing.T) {
	t.Parallel()
	// Each module reports its name and whether it was loaded as CommonJS or
	// as an ES module.
	cjs := func(name string) string {
		return `exports.handler = async () => ({ name: "` + name + `", format: typeof require === "function" ? "commonjs" : "module" });` + "\n"
	}
	esm := func(name string) string {
		return `export const handler = async () => ({ name: "` + name + `", format: typeof require === "function" ? "commonjs" : "module" });` + "\n"
	}
	typeModule := `{"type": "module"}`
	tests := []struct {
		name    string
		files   map[string]string
		handler string
		want    string // the module's name
		format  string
	}{
		{"CommonJS", map[string]string{"index.js": cjs("index.js")}, "index.handler", "index.js", "commonjs"},
		{"ESModuleMjs", map[string]string{"app.mjs": esm("app.mjs")}, "app.handler", "app.mjs", "module"},
		{"ESModuleJsTypeModule", map[string]string{"package.json": typeModule, "app.js": esm("app.js")},
			"app.handler", "app.js", "module"},
		{"CommonJSCjs", map[string]string{"package.json": typeModule, "app.cjs": cjs("app.cjs")},
			"app.handler", "app.cjs", "commonjs"},
		{"JsBeforeMjs", map[string]string{"app.js": cjs("app.js"), "app.mjs": esm("app.mjs")},
			"app.handler", "app.js", "commonjs"},
		{"ExtensionlessFile", map[string]string{"main": cjs("main"), "main.js": cjs("main.js")},
			"main.handler", "main", "commonjs"},
		{"NestedDirectory", map[string]string{"src/app.js": cjs("src/app.js")}, "src/app.handler", "src/app.js", "commonjs"},
		{"NestedDirectoryTypeModule", map[string]string{"src/package.json": typeModule, "src/app.js": esm("src/app.js")},
			"src/app.handler", "src/app.js", "module"},
		{"NestedFunctionPath", map[string]string{"lib.js": `exports.api = { v1: { get: async () => ({ name: "lib.js api.v1.get", format: "commonjs" }) } };`},
			"lib.api.v1.get", "lib.js api.v1.get", "commonjs"},
		{"PackageInNodeModules", map[string]string{"node_modules/pkg/package.json": `{"main": "main.js"}`,
			"node_modules/pkg/main.js": cjs("node_modules/pkg/main.js")}, "pkg.handler", "node_modules/pkg/main.js", "commonjs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startNodeFunction(t, tc.files, tc.handler)
			var got struct{ Name, Format string }
			f.invokeJSON(t, `{}`, nil, &got)
			if got.Name != tc.want || got.Format != tc.format {
				t.Errorf("loaded %q as %s, want %q as %s", got.Name, got.Format, tc.want, tc.format)
			}
		})
	}
}

const nodeStylesModule = `
exports.async = async (event) => ({ style: "async", event });
exports.promise = (event) => Promise.resolve("promise");
exports.callback = (event, context, callback) => { setTimeout(() => callback(null, "callback"), 10); };
exports.syncValue = (event, context) => "a plain return value is ignored";
exports.asyncUndefined = async () => undefined;
exports.succeed = (event, context) => { context.succeed("succeed"); };
exports.done = (event, context) => { context.done(null, "done"); };
exports.firstCallWins = (event, context, callback) => {
  callback(null, "first");
  callback(null, "second");
  context.succeed("third");
};
`

const nodeCallbackWarning = "AWS Lambda plans to remove support for callback-based function handlers starting with Node.js 24."

func TestNodeHandlerStyles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		handler string
		want    string
	}{
		{"async", `{"style":"async","event":{"n":1}}`},
		{"promise", `"promise"`},
		{"callback", `"callback"`},
		// Not async, two parameters: the result is null once the event
		// loop is empty, whatever the handler returned.
		{"syncValue", `null`},
		{"asyncUndefined", `null`},
		{"succeed", `"succeed"`},
		{"done", `"done"`},
		{"firstCallWins", `"first"`},
	}
	for _, tc := range tests {
		t.Run(tc.handler, func(t *testing.T) {
			t.Parallel()
			f := startNodeFunction(t, map[string]string{"styles.js": nodeStylesModule}, "styles."+tc.handler)
			nodeExpect(t, f, `{"n":1}`, tc.want)
			nodeExpect(t, f, `{"n":1}`, tc.want)
			// Handlers with a callback parameter get AWS's deprecation warning at init.
			warning := `(?m)^` + logTime + `\tundefined\tWARN\t` + regexp.QuoteMeta(nodeCallbackWarning)
			if tc.handler == "callback" || tc.handler == "firstCallWins" {
				f.out.waitFor(t, warning)
			} else if out := f.out.String(); regexp.MustCompile(warning).MatchString(out) {
				t.Errorf("callback warning for a handler without a callback:\n%s", out)
			}
		})
	}
}

// With callbackWaitsForEmptyEventLoop (the default) the result of callback()
// is sent once the event loop is empty, so a timer set before the callback
// changes the result; without it the result is sent at once.
func TestNodeCallbackWaitsForEmptyEventLoop(t *testing.T) {
	t.Parallel()
	module := `
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  const result = { timerRan: false };
  setTimeout(() => { result.timerRan = true; }, 50);
  callback(null, result);
};
`
	f := startNodeFunction(t, map[string]string{"index.js": module}, "index.handler")
	nodeExpect(t, f, `{"wait": true}`, `{"timerRan":true}`)
	nodeExpect(t, f, `{"wait": false}`, `{"timerRan":false}`)
	nodeExpect(t, f, `{"wait": true}`, `{"timerRan":true}`)
}

func TestNodeWarmReuse(t *testing.T) {
	t.Parallel()
	f := startNodeFunction(t, map[string]string{"counter.mjs": `
let count = 0;
export const handler = async () => ({ count: ++count, pid: process.pid });
`}, "counter.handler")
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

type nodeContextReport struct {
	Keys                           []string        `json:"keys"`
	AwsRequestID                   string          `json:"awsRequestId"`
	InvokedFunctionArn             string          `json:"invokedFunctionArn"`
	FunctionName                   string          `json:"functionName"`
	FunctionVersion                string          `json:"functionVersion"`
	MemoryLimitInMB                any             `json:"memoryLimitInMB"`
	LogGroupName                   string          `json:"logGroupName"`
	LogStreamName                  string          `json:"logStreamName"`
	ClientContext                  json.RawMessage `json:"clientContext"`
	Identity                       json.RawMessage `json:"identity"`
	TenantID                       *string         `json:"tenantId"`
	CallbackWaitsForEmptyEventLoop bool            `json:"callbackWaitsForEmptyEventLoop"`
	Remaining                      float64         `json:"remaining"`
	TraceID                        *string         `json:"traceId"`
}

func TestNodeContext(t *testing.T) {
	t.Parallel()
	f := startNodeFunction(t, map[string]string{"ctx.js": `
exports.handler = async (event, context) => ({
  keys: Object.keys(context),
  awsRequestId: context.awsRequestId,
  invokedFunctionArn: context.invokedFunctionArn,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  memoryLimitInMB: context.memoryLimitInMB,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  clientContext: context.clientContext === undefined ? "undefined" : context.clientContext,
  identity: context.identity === undefined ? "undefined" : context.identity,
  tenantId: context.tenantId ?? null,
  callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
  remaining: context.getRemainingTimeInMillis(),
  traceId: process.env._X_AMZN_TRACE_ID ?? null,
});
`}, "ctx.handler")

	clientContext := `{"client":{"installation_id":"inst-1","app_title":"Lamina Test","app_version_name":"1.2.3","app_version_code":"123","app_package_name":"dev.lamina.test"},"custom":{"color":"blue"},"env":{"platform":"Android"}}`
	var got nodeContextReport
	f.invokeJSON(t, `{}`, map[string]string{
		"X-Amzn-RequestId":       "4a1b7e2c-0000-4000-8000-000000000001",
		"X-Amz-Client-Context":   base64.StdEncoding.EncodeToString([]byte(clientContext)),
		"X-Amz-Cognito-Identity": `{"cognitoIdentityId": "us-east-1:id-1", "cognitoIdentityPoolId": "us-east-1:pool-1"}`,
		"X-Amz-Tenant-Id":        "tenant-7",
	}, &got)

	// The keys, in AWS's order.
	wantKeys := []string{"callbackWaitsForEmptyEventLoop", "succeed", "fail", "done",
		"functionVersion", "functionName", "memoryLimitInMB", "logGroupName", "logStreamName",
		"clientContext", "identity", "invokedFunctionArn", "awsRequestId", "tenantId", "getRemainingTimeInMillis"}
	if !reflect.DeepEqual(got.Keys, wantKeys) {
		t.Errorf("context keys %q, want %q", got.Keys, wantKeys)
	}
	str := func(s string) *string { return &s }
	if got.AwsRequestID != "4a1b7e2c-0000-4000-8000-000000000001" ||
		got.InvokedFunctionArn != "arn:aws:lambda:us-east-1:012345678912:function:"+nodeFunctionName ||
		got.FunctionName != nodeFunctionName ||
		got.FunctionVersion != "$LATEST" ||
		got.MemoryLimitInMB != "128" || // a string, as in AWS's runtime
		got.LogGroupName != "/aws/lambda/"+nodeFunctionName ||
		got.LogStreamName != "2026/11/25/[$LATEST]0123456789abcdef" ||
		!reflect.DeepEqual(got.TenantID, str("tenant-7")) ||
		!got.CallbackWaitsForEmptyEventLoop ||
		got.Remaining <= 0 || got.Remaining > 30000 {
		t.Errorf("context attributes: %+v", got)
	}
	if string(got.ClientContext) != clientContext {
		t.Errorf("clientContext %s, want %s", got.ClientContext, clientContext)
	}
	if want := `{"cognitoIdentityId":"us-east-1:id-1","cognitoIdentityPoolId":"us-east-1:pool-1"}`; string(got.Identity) != want {
		t.Errorf("identity %s, want %s", got.Identity, want)
	}

	// Without those headers: no client context, identity or tenant. (RIE
	// never sends a trace ID; TestNodeRuntimeAPIClient covers it.)
	got = nodeContextReport{}
	f.invokeJSON(t, `{}`, nil, &got)
	if string(got.ClientContext) != `"undefined"` || string(got.Identity) != `"undefined"` ||
		got.TenantID != nil || got.TraceID != nil || got.AwsRequestID == "" {
		t.Errorf("context without optional headers: %+v", got)
	}
}

func TestNodeInitErrors(t *testing.T) {
	t.Parallel()
	const module = "exports.handler = async () => 'ok';\nexports.value = 1;\n"
	tests := []struct {
		name    string
		files   map[string]string
		handler string
		errType string
		message string // a prefix
	}{
		{"ImportModuleError", map[string]string{"index.js": module}, "missing.handler",
			"Runtime.ImportModuleError", "Error: Cannot find module 'missing'\nRequire stack:\n- "},
		{"ImportModuleErrorInDependency", map[string]string{"index.js": "require('not-installed');\n" + module}, "index.handler",
			"Runtime.ImportModuleError", "Error: Cannot find module 'not-installed'\nRequire stack:\n- "},
		{"UserCodeSyntaxError", map[string]string{"index.js": "exports.handler = async () => {\n"}, "index.handler",
			"Runtime.UserCodeSyntaxError", "SyntaxError: "},
		{"UserCodeSyntaxErrorESM", map[string]string{"index.mjs": "export const handler = async () => {\n"}, "index.handler",
			"Runtime.UserCodeSyntaxError", "SyntaxError: "},
		{"HandlerNotFound", map[string]string{"index.js": module}, "index.nope",
			"Runtime.HandlerNotFound", "index.nope is undefined or not exported"},
		{"HandlerNotAFunction", map[string]string{"index.js": module}, "index.value",
			"Runtime.HandlerNotFound", "index.value is not a function"},
		{"MalformedHandlerNameDots", map[string]string{"index.js": module}, "../index.handler",
			"Runtime.MalformedHandlerName",
			"'../index.handler' is not a valid handler name. Use absolute paths when specifying root directories in handler names."},
		{"MalformedHandlerNameNoDot", map[string]string{"index.js": module}, "index",
			"Runtime.MalformedHandlerName", "Bad handler"},
		// An exception thrown by the module's own code keeps its type.
		{"ModuleThrows", map[string]string{"index.js": "throw new RangeError('init failed');\n"}, "index.handler",
			"RangeError", "init failed"},
		// A type that cannot be an HTTP header value is still reported.
		{"NonLatinErrorType", map[string]string{"index.js": "class E extends Error { name = 'Ошибка' }\nthrow new E('init failed');\n"},
			"index.handler", "Ошибка", "init failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startNodeFunction(t, tc.files, tc.handler)
			status, body := f.invoke(t, `{}`, nil)
			// RIE answers an init failure with 502 and the runtime's error body.
			if status != http.StatusBadGateway {
				t.Fatalf("status %d, want 502; body %s\n%s", status, body, f.out)
			}
			got := decodeNodeError(t, body)
			if got.ErrorType != tc.errType || !strings.HasPrefix(got.ErrorMessage, tc.message) {
				t.Errorf("got %s: %q, want %s: %q...", got.ErrorType, got.ErrorMessage, tc.errType, tc.message)
			}
			// The trace is the error's stack, split into lines.
			wantFirst := tc.errType + ": " + strings.SplitN(got.ErrorMessage, "\n", 2)[0]
			if len(got.Trace) < 2 || got.Trace[0] != wantFirst {
				t.Errorf("trace %q, want it to start with %q", got.Trace, wantFirst)
			}
			// Logged before any invocation, as AWS's runtime logs it.
			f.out.waitFor(t, `(?m)^`+logTime+`\tundefined\tERROR\tUncaught Exception \t\{"errorType":"`+
				regexp.QuoteMeta(tc.errType)+`","errorMessage":`)
		})
	}
}

const nodeErrorsModule = `
class ValidationError extends Error {
  constructor(message) { super(message); this.name = "ValidationError"; this.code = "E_BAD"; }
}
function fail(message) {
  throw new ValidationError(message);
}
exports.handler = async (event, context) => {
  switch (event.case) {
    case "throw": fail("bad input");
    case "string": throw "boom";
    case "object": throw { reason: "x" };
    case "circular": { const o = {}; o.self = o; return o; }
    case "bigint": return { n: 1n };
  }
  return "ok";
};
exports.callbackError = (event, context, callback) => callback(new TypeError("from callback"));
exports.failEmpty = (event, context) => context.fail();
`

func TestNodeInvokeErrors(t *testing.T) {
	t.Parallel()
	f := startNodeFunction(t, map[string]string{"app.js": nodeErrorsModule}, "app.handler")
	const requestID = "4a1b7e2c-0000-4000-8000-0000000000e1"
	invokeError := func(t *testing.T, payload string) nodeError {
		t.Helper()
		status, body := f.invoke(t, payload, map[string]string{"X-Amzn-RequestId": requestID})
		// RIE passes a function error through with status 200.
		if status != http.StatusOK {
			t.Fatalf("got %d %s\n%s", status, body, f.out)
		}
		return decodeNodeError(t, body)
	}

	t.Run("Error", func(t *testing.T) {
		got := invokeError(t, `{"case": "throw"}`)
		app := filepath.Join(f.taskRoot, "app.js")
		if got.ErrorType != "ValidationError" || got.ErrorMessage != "bad input" || len(got.Trace) < 3 ||
			got.Trace[0] != "ValidationError: bad input" ||
			got.Trace[1] != "    at fail ("+app+":6:9)" ||
			!strings.HasPrefix(got.Trace[2], "    at exports.handler (") {
			t.Errorf("got %+v", got)
		}
		// Logged with the error's own properties and its stack as lines.
		f.out.waitFor(t, `(?m)^`+logTime+`\t`+requestID+`\tERROR\tInvoke Error \t`+
			regexp.QuoteMeta(`{"errorType":"ValidationError","errorMessage":"bad input","code":"E_BAD","name":"ValidationError","stack":["ValidationError: bad input","    at fail (`+app+`:6:9)",`))
	})

	tests := []struct {
		name, payload string
		want          nodeError
	}{
		// A thrown value that is not an Error is described by its type.
		{"String", `{"case": "string"}`, nodeError{"string", "boom", []string{}}},
		{"Object", `{"case": "object"}`, nodeError{"object", "[object Object]", []string{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := invokeError(t, tc.payload); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}

	// A result JSON cannot encode is an error.
	for _, c := range []string{"circular", "bigint"} {
		t.Run("Unserialisable_"+c, func(t *testing.T) {
			got := invokeError(t, `{"case": "`+c+`"}`)
			if got.ErrorType != "Error" || got.ErrorMessage != "Unable to stringify response body" {
				t.Errorf("got %+v", got)
			}
		})
	}

	// The runtime keeps serving after errors.
	nodeExpect(t, f, `{}`, `"ok"`)
}

func TestNodeCallbackErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		handler          string
		errType, message string
	}{
		{"callbackError", "TypeError", "from callback"},
		// context.fail() without an error still fails.
		{"failEmpty", "string", "handled"},
	}
	for _, tc := range tests {
		t.Run(tc.handler, func(t *testing.T) {
			t.Parallel()
			f := startNodeFunction(t, map[string]string{"app.js": nodeErrorsModule}, "app."+tc.handler)
			status, body := f.invoke(t, `{}`, nil)
			got := decodeNodeError(t, body)
			if status != http.StatusOK || got.ErrorType != tc.errType || got.ErrorMessage != tc.message {
				t.Errorf("got %d %+v, want %s: %s", status, got, tc.errType, tc.message)
			}
		})
	}
}

// Errors that end the process: the runtime reports them for the invocation
// in progress, then exits, so RIE answers 502.
func TestNodeFatalErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, module     string
		status           int
		errType, message string
		logged           string // the title of the ERROR log line
	}{
		{"UncaughtException", `exports.handler = async () => {
  setTimeout(() => { throw new Error("thrown later"); }, 10);
  return new Promise(() => {});
};`, http.StatusBadGateway, "Error", "thrown later", "Uncaught Exception"},
		{"UnhandledPromiseRejection", `exports.handler = async () => {
  Promise.reject(new Error("nobody handles this"));
  return new Promise(() => {});
};`, http.StatusBadGateway, "Runtime.UnhandledPromiseRejection", "Error: nobody handles this", "Unhandled Promise Rejection"},
		// An async handler whose promise can no longer settle: the event loop
		// empties. The invocation fails; the process goes on.
		{"NodeJsExit", `exports.handler = async () => new Promise(() => {});`,
			http.StatusOK, "Runtime.NodeJsExit", "The Lambda runtime client detected an unexpected Node.js exit code.", "Invoke Error"},
		// process.exit() is the platform's to report.
		{"ProcessExit", `exports.handler = async () => { console.log("exiting"); process.exit(3); };`,
			http.StatusBadGateway, "Runtime.ExitError", "RequestId: ", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startNodeFunction(t, map[string]string{"index.js": tc.module}, "index.handler")
			status, body := f.invoke(t, `{}`, nil)
			var got nodeError
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if status != tc.status || got.ErrorType != tc.errType || !strings.HasPrefix(got.ErrorMessage, tc.message) {
				t.Fatalf("got %d %+v, want %d %s: %s...\n%s", status, got, tc.status, tc.errType, tc.message, f.out)
			}
			if tc.logged != "" {
				f.out.waitFor(t, `(?m)^`+logTime+`\t[0-9a-f-]{36}\tERROR\t`+tc.logged+` \t\{"errorType":"`+regexp.QuoteMeta(tc.errType)+`"`)
			}
		})
	}
}

func TestNodeLogging(t *testing.T) {
	t.Parallel()
	files := map[string]string{"logs.js": `
console.log("init log");
exports.handler = async () => {
  console.log("hello %s, %d", "world", 42, { a: 1 });
  console.log("two\nlines");
  console.info("info line");
  console.warn("warn line");
  console.error("error line", new Error("oops"));
  console.debug("debug line");
  console.trace("trace line");
  console.fatal("fatal line");
  process.stdout.write("raw stdout\n");
  return "ok";
};
`}
	const requestID = "4a1b7e2c-0000-4000-8000-0000000000a1"
	header := map[string]string{"X-Amzn-RequestId": requestID}

	t.Run("Text", func(t *testing.T) {
		t.Parallel()
		f := startNodeFunction(t, files, "logs.handler")
		if status, body := f.invoke(t, `{}`, header); status != http.StatusOK || string(body) != `"ok"` {
			t.Fatalf("got %d %s", status, body)
		}
		out := f.out.waitFor(t, `(?m)^raw stdout$`)
		prefix := `(?m)^` + logTime + `\t` + requestID + `\t`
		for _, re := range []string{
			`(?m)^` + logTime + `\tundefined\tINFO\tinit log$`, // no request ID during init
			prefix + `INFO\thello world, 42 \{ a: 1 \}$`,
			prefix + "INFO\ttwo\rlines$", // one line per call: newlines become \r
			prefix + `INFO\tinfo line$`,
			prefix + `WARN\twarn line$`,
			prefix + `ERROR\terror line Error: oops\r    at exports.handler \(`,
			prefix + `DEBUG\tdebug line$`,
			prefix + `TRACE\ttrace line$`,
			prefix + `FATAL\tfatal line$`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("output does not match %q:\n%s", re, out)
			}
		}
	})

	t.Run("JSONWithLevel", func(t *testing.T) {
		t.Parallel()
		f := startNodeFunction(t, files, "logs.handler", "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=INFO")
		if status, body := f.invoke(t, `{}`, header); status != http.StatusOK || string(body) != `"ok"` {
			t.Fatalf("got %d %s", status, body)
		}
		out := f.out.waitFor(t, `(?m)^raw stdout$`)
		records := map[string]map[string]any{} // by message
		for _, line := range strings.Split(out, "\n") {
			var record map[string]any
			if json.Unmarshal([]byte(line), &record) != nil || record["level"] == nil {
				continue
			}
			ts, _ := record["timestamp"].(string)
			if !regexp.MustCompile(`^` + logTime + `$`).MatchString(ts) {
				t.Errorf("timestamp %q in %s", ts, line)
			}
			delete(record, "timestamp")
			delete(record, "stackTrace")
			records[fmt.Sprint(record["message"])] = record
		}
		want := map[string]map[string]any{
			"init log":  {"level": "INFO", "message": "init log"}, // no requestId during init
			"info line": {"level": "INFO", "message": "info line", "requestId": requestID},
			"warn line": {"level": "WARN", "message": "warn line", "requestId": requestID},
			// Several arguments are formatted into one message; an Error
			// among them is described at the top level.
			"hello world, 42 { a: 1 }": {"level": "INFO", "message": "hello world, 42 { a: 1 }", "requestId": requestID},
			"fatal line":               {"level": "FATAL", "message": "fatal line", "requestId": requestID},
		}
		for message, w := range want {
			if got := records[message]; !reflect.DeepEqual(got, w) {
				t.Errorf("record for %q: %v, want %v", message, got, w)
			}
		}
		var errorRecord map[string]any
		for message, record := range records {
			if strings.HasPrefix(message, "error line Error: oops") {
				errorRecord = record
			}
		}
		if errorRecord["level"] != "ERROR" || errorRecord["errorType"] != "Error" || errorRecord["errorMessage"] != "oops" {
			t.Errorf("error record %v", errorRecord)
		}
		// Below AWS_LAMBDA_LOG_LEVEL: dropped.
		for _, dropped := range []string{"debug line", "trace line"} {
			if strings.Contains(out, dropped) {
				t.Errorf("%q logged at level INFO:\n%s", dropped, out)
			}
		}
	})
}

// The runtime against a fake Runtime API: the trace ID goes to
// _X_AMZN_TRACE_ID, a rejected result (413) does not stop the runtime, and a
// keep-alive connection the server closes is replaced.
func TestNodeRuntimeAPIClient(t *testing.T) {
	t.Parallel()
	const traceID = "Root=1-5e1b4151-5ac6c58f3375aa3c7c6b73c9;Parent=8a3c60f7d188f8fa;Sampled=1"
	api := newFakeRuntimeAPI(t, []fakeEvent{
		{id: "id-1", contentType: "application/json", body: `{"text": "caf\u00e9"}`, traceID: traceID,
			postStatus: http.StatusRequestEntityTooLarge},
		{id: "id-2", contentType: "application/json", body: `[1, 2]`, postStatus: http.StatusAccepted, closeAfter: true},
		{id: "id-3", contentType: "application/json", body: `null`, postStatus: http.StatusAccepted},
	})
	taskRoot := writeTaskRoot(t, map[string]string{"index.mjs": `
export const handler = async (event) => ({ event, trace: process.env._X_AMZN_TRACE_ID ?? null });
`})
	cmd := exec.Command(nodeInterpreter(t), filepath.Join(nodeRuntimeDir(t), "index.mjs"))
	cmd.Dir = taskRoot
	cmd.Env = nodeEnv(t, taskRoot, "index.handler", []string{
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(api.srv.URL, "http://"),
	})
	out := &syncBuffer{}
	startProcess(t, cmd, out)

	want := []fakePost{
		{"/2018-06-01/runtime/invocation/id-1/response", "application/json", `{"event":{"text":"café"},"trace":"` + traceID + `"}`},
		{"/2018-06-01/runtime/invocation/id-2/response", "application/json", `{"event":[1,2],"trace":null}`},
		{"/2018-06-01/runtime/invocation/id-3/response", "application/json", `{"event":null,"trace":null}`},
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
}

// Everything an invocation writes reaches stdout before its result is
// posted, even when the pipe is full: the worker attributes output to an
// invocation only until the result arrives. The runtime is stopped the
// moment its POST arrives; everything it wrote must then be in the pipe.
func TestNodeOutputFlushedBeforeResult(t *testing.T) {
	t.Parallel()
	api := newFakeRuntimeAPI(t, []fakeEvent{
		{id: "id-1", contentType: "application/json", body: `{}`, postStatus: http.StatusAccepted},
	})
	taskRoot := writeTaskRoot(t, map[string]string{"index.js": `
exports.handler = async () => {
  process.stdout.write("x".repeat(4 << 20) + "\n");
  console.log("last line");
  return "ok";
};
`})
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd := exec.Command(nodeInterpreter(t), filepath.Join(nodeRuntimeDir(t), "index.mjs"))
	cmd.Dir = taskRoot
	cmd.Env = nodeEnv(t, taskRoot, "index.handler", []string{
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(api.srv.URL, "http://"),
	})
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = w, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})

	// Read the pipe slowly, so that the runtime's writes back up.
	reading := make(chan struct{})
	stopReading := make(chan struct{})
	var read []byte
	go func() {
		defer close(reading)
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stopReading:
				return
			case <-time.After(time.Millisecond):
			}
			stdout.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			n, err := stdout.Read(buf)
			read = append(read, buf[:n]...)
			if err != nil && !os.IsTimeout(err) {
				return
			}
		}
	}()

	post := api.nextPost(t, stderr)
	syscall.Kill(cmd.Process.Pid, syscall.SIGSTOP)
	close(stopReading)
	<-reading
	// Whatever the stopped runtime wrote is in the pipe: read it all.
	stdout.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	rest, _ := io.ReadAll(stdout)
	read = append(read, rest...)
	syscall.Kill(cmd.Process.Pid, syscall.SIGCONT)

	if post.path != "/2018-06-01/runtime/invocation/id-1/response" || post.body != `"ok"` {
		t.Fatalf("POST %+v", post)
	}
	if !regexp.MustCompile(`\tid-1\tINFO\tlast line\n$`).Match(read) {
		tail := read[max(0, len(read)-200):]
		t.Errorf("%d bytes of output before the result, ending %q", len(read), tail)
	}
}

// nodeStreamingModule's handlers stream their responses.
const nodeStreamingModule = `
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";

export const text = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType("text/plain");
  responseStream.write("hello ");
  responseStream.write({ json: context.functionName });
  responseStream.end(" bye");
});

export const functionURL = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream = awslambda.HttpResponseStream.from(responseStream, { statusCode: 201, headers: { "x-custom": "yes" } });
  await pipeline(Readable.from(["one ", "two"]), responseStream);
});

export const fails = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write("partial");
  await new Promise((resolve) => setTimeout(resolve, 10));
  throw new Error("failed mid-stream");
});
`

func TestNodeStreamingResponse(t *testing.T) {
	t.Parallel()
	// RIE buffers a streamed response and answers with it as a whole.
	tests := []struct{ handler, want string }{
		{"text", `hello {"json":"` + nodeFunctionName + `"} bye`},
		{"functionURL", `{"statusCode":201,"headers":{"x-custom":"yes"}}` + strings.Repeat("\x00", 8) + "one two"},
	}
	for _, tc := range tests {
		t.Run(tc.handler, func(t *testing.T) {
			t.Parallel()
			f := startNodeFunction(t, map[string]string{"stream.mjs": nodeStreamingModule}, "stream."+tc.handler)
			nodeExpect(t, f, `{}`, tc.want)
			nodeExpect(t, f, `{}`, tc.want)
		})
	}

	// What the runtime sends: RIE does not show headers and trailers.
	t.Run("ErrorTrailers", func(t *testing.T) {
		t.Parallel()
		type streamedPost struct {
			header, trailer http.Header
			body            string
		}
		posts := make(chan streamedPost, 1)
		event := make(chan struct{}, 1) // one event, then none
		event <- struct{}{}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-event:
			case <-r.Context().Done():
				return
			}
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", "id-s")
			w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(time.Minute).UnixMilli()))
			io.WriteString(w, `{}`)
		})
		mux.HandleFunc("POST /2018-06-01/runtime/invocation/id-s/response", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusAccepted)
			posts <- streamedPost{header: r.Header, trailer: r.Trailer, body: string(body)}
		})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)

		taskRoot := writeTaskRoot(t, map[string]string{"stream.mjs": nodeStreamingModule})
		cmd := exec.Command(nodeInterpreter(t), filepath.Join(nodeRuntimeDir(t), "index.mjs"))
		cmd.Dir = taskRoot
		cmd.Env = nodeEnv(t, taskRoot, "stream.fails", []string{"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(srv.URL, "http://")})
		out := &syncBuffer{}
		startProcess(t, cmd, out)

		var got streamedPost
		select {
		case got = <-posts:
		case <-time.After(10 * time.Second):
			t.Fatalf("no response POST\n%s", out)
		}
		if got.header.Get("Lambda-Runtime-Function-Response-Mode") != "streaming" ||
			got.header.Get("Content-Type") != "application/octet-stream" || got.body != "partial" {
			t.Errorf("POST headers %v, body %q", got.header, got.body)
		}
		if typ := got.trailer.Get("Lambda-Runtime-Function-Error-Type"); typ != "Error" {
			t.Errorf("error type trailer %q", typ)
		}
		errBody, err := base64.StdEncoding.DecodeString(got.trailer.Get("Lambda-Runtime-Function-Error-Body"))
		if err != nil {
			t.Fatalf("error body trailer: %v", err)
		}
		if e := decodeNodeError(t, errBody); e.ErrorType != "Error" || e.ErrorMessage != "failed mid-stream" ||
			len(e.Trace) == 0 || e.Trace[0] != "Error: failed mid-stream" {
			t.Errorf("error body trailer %s", errBody)
		}
	})
}
