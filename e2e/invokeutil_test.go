package e2e

// Helpers of the execution tests (invoke_test.go, runtimes_test.go,
// environments_test.go, logs_test.go): invoking with the SDK and reading
// what came back, the test functions' code, parsing platform log lines and
// reading the CloudWatch Logs API.

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lamina-project/lamina/internal/sdkhttp"
)

// logsPollTimeout bounds how long a test waits for log events to become
// visible through the Logs API (they are stored asynchronously).
const logsPollTimeout = 20 * time.Second

// ---------------------------------------------------------------------------
// Invoking

// invokeResult is what an Invoke returned, as the tests look at it.
type invokeResult struct {
	RequestID       string // x-amzn-RequestId
	StatusCode      int32
	FunctionError   string // X-Amz-Function-Error, "" when absent
	ExecutedVersion string
	Payload         []byte
	Log             string // decoded X-Amz-Log-Result, "" without Tail
	HasLog          bool   // X-Amz-Log-Result was present
}

// withTail asks for the invocation's log (X-Amz-Log-Type: Tail).
func withTail(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail }

// tryInvoke invokes name with payload ("" sends none) and returns the result
// or the SDK's error. It may run outside the test's goroutine.
func (ts *testServer) tryInvoke(t *testing.T, name, payload string, mods ...func(*lambda.InvokeInput)) (invokeResult, error) {
	t.Helper()
	in := &lambda.InvokeInput{FunctionName: aws.String(name)}
	if payload != "" {
		in.Payload = []byte(payload)
	}
	for _, m := range mods {
		m(in)
	}
	out, err := ts.Lambda().Invoke(context.Background(), in)
	if err != nil {
		return invokeResult{}, err
	}
	res := invokeResult{
		StatusCode:      out.StatusCode,
		FunctionError:   aws.ToString(out.FunctionError),
		ExecutedVersion: aws.ToString(out.ExecutedVersion),
		Payload:         out.Payload,
	}
	res.RequestID, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if out.LogResult != nil {
		res.HasLog = true
		data, err := base64.StdEncoding.DecodeString(*out.LogResult)
		if err != nil {
			return res, fmt.Errorf("Invoke %s: LogResult is not base64: %v (%q)", name, err, *out.LogResult)
		}
		res.Log = string(data)
	}
	return res, nil
}

// invoke invokes name with payload and the log tail, failing the test on an
// error. A function error is a result, not an error.
func (ts *testServer) invoke(t *testing.T, name, payload string, mods ...func(*lambda.InvokeInput)) invokeResult {
	t.Helper()
	res, err := ts.tryInvoke(t, name, payload, append([]func(*lambda.InvokeInput){withTail}, mods...)...)
	if err != nil {
		t.Fatalf("Invoke %s: %v", name, err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("Invoke %s: StatusCode %d, want 200", name, res.StatusCode)
	}
	if res.RequestID == "" {
		t.Fatalf("Invoke %s: no x-amzn-RequestId", name)
	}
	return res
}

// invokeOK is invoke that also requires the function to have succeeded.
func (ts *testServer) invokeOK(t *testing.T, name, payload string, mods ...func(*lambda.InvokeInput)) invokeResult {
	t.Helper()
	res := ts.invoke(t, name, payload, mods...)
	if res.FunctionError != "" {
		t.Fatalf("Invoke %s: FunctionError %q, payload %s\nlog:\n%s", name, res.FunctionError, res.Payload, res.Log)
	}
	return res
}

// object decodes the payload as a JSON object.
func (r invokeResult) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Payload, &m); err != nil {
		t.Fatalf("payload is not a JSON object: %v: %s", err, r.Payload)
	}
	return m
}

// functionError requires an Unhandled function error with errorType typ and
// returns the error payload.
func (r invokeResult) functionError(t *testing.T, typ string) map[string]any {
	t.Helper()
	if r.FunctionError != "Unhandled" {
		t.Fatalf("FunctionError = %q, want Unhandled; payload %s\nlog:\n%s", r.FunctionError, r.Payload, r.Log)
	}
	m := r.object(t)
	if got := m["errorType"]; got != typ {
		t.Errorf("errorType = %v, want %q; payload %s\nlog:\n%s", got, typ, r.Payload, r.Log)
	}
	return m
}

// report returns the REPORT line of this invocation in its log tail.
func (r invokeResult) report(t *testing.T) reportLine {
	t.Helper()
	for _, l := range strings.Split(r.Log, "\n") {
		if strings.HasPrefix(l, "REPORT RequestId: "+r.RequestID+"\t") {
			return parseReport(t, l)
		}
	}
	t.Fatalf("no REPORT line for %s in the log:\n%s", r.RequestID, r.Log)
	return reportLine{}
}

// cold reports whether the invocation's REPORT has an Init Duration.
func (r invokeResult) cold(t *testing.T) bool {
	t.Helper()
	_, ok := r.report(t).Fields["Init Duration"]
	return ok
}

// str returns m[key] as a string, failing when it is not one.
func str(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%q = %#v, want a string (in %v)", key, m[key], m)
	}
	return s
}

// num returns m[key] as a number, failing when it is not one.
func num(t *testing.T, m map[string]any, key string) float64 {
	t.Helper()
	f, ok := m[key].(float64)
	if !ok {
		t.Fatalf("%q = %#v, want a number (in %v)", key, m[key], m)
	}
	return f
}

// parallelInvoke runs n invocations of name at once and returns each
// result or error, in start order.
func (ts *testServer) parallelInvoke(t *testing.T, n int, name, payload string) ([]invokeResult, []error) {
	t.Helper()
	results := make([]invokeResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = ts.tryInvoke(t, name, payload, withTail)
		}()
	}
	close(start)
	wg.Wait()
	return results, errs
}

// ---------------------------------------------------------------------------
// Platform log lines

// reportLine is a parsed REPORT line.
type reportLine struct {
	Line   string
	Fields map[string]string // "Duration" → "12.34 ms", "Status" → "timeout", …
}

var (
	msRE = regexp.MustCompile(`^[0-9]+\.[0-9]{2} ms$`)
	// Billed Duration is whole milliseconds, the MB figures whole MB.
	wholeMsRE = regexp.MustCompile(`^[0-9]+ ms$`)
	mbRE      = regexp.MustCompile(`^[0-9]+ MB$`)
)

// parseReport checks a REPORT line against the reference's format
// ("REPORT RequestId: <id>\tDuration: 1.23 ms\tBilled Duration: 2 ms\t
// Memory Size: 128 MB\tMax Memory Used: 40 MB\t[Init Duration: 5.67 ms\t]
// [Status: …\t[Error Type: …\t]]", ending with a tab) and returns its fields.
func parseReport(t *testing.T, line string) reportLine {
	t.Helper()
	r := reportLine{Line: line, Fields: map[string]string{}}
	if !strings.HasSuffix(line, "\t") {
		t.Errorf("REPORT line does not end with a tab: %q", line)
	}
	parts := strings.Split(strings.TrimSuffix(line, "\t"), "\t")
	var order []string
	for i, p := range parts {
		k, v, ok := strings.Cut(p, ": ")
		if !ok {
			t.Errorf("REPORT field %d %q is not \"Key: value\" in %q", i, p, line)
			continue
		}
		if i == 0 {
			if k != "REPORT RequestId" {
				t.Errorf("REPORT line starts with %q: %q", k, line)
			}
			k = "RequestId"
		}
		r.Fields[k] = v
		order = append(order, k)
	}
	want := []string{"RequestId", "Duration", "Billed Duration", "Memory Size", "Max Memory Used"}
	if len(order) < len(want) || !slices.Equal(order[:len(want)], want) {
		t.Errorf("REPORT fields are %q, want them to start with %q: %q", order, want, line)
	}
	rest := order[min(len(want), len(order)):]
	if len(rest) > 0 && rest[0] == "Init Duration" {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] == "Status" {
		rest = rest[1:]
		if len(rest) > 0 && rest[0] == "Error Type" {
			rest = rest[1:]
		}
	}
	if len(rest) > 0 {
		t.Errorf("REPORT has unexpected or misplaced fields %q: %q", rest, line)
	}
	check := func(key string, re *regexp.Regexp) {
		if v, ok := r.Fields[key]; ok && !re.MatchString(v) {
			t.Errorf("REPORT %s = %q, want %s: %q", key, v, re, line)
		}
	}
	check("Duration", msRE)
	check("Init Duration", msRE)
	check("Billed Duration", wholeMsRE)
	check("Memory Size", mbRE)
	check("Max Memory Used", mbRE)
	// Billed Duration is the duration rounded up (plus init, on a cold start).
	if d, b := r.ms(t, "Duration"), r.ms(t, "Billed Duration"); b+0.01 < d {
		t.Errorf("Billed Duration %v < Duration %v: %q", b, d, line)
	}
	return r
}

// ms returns a "N ms" or "N.NN ms" field as a number (0 when absent).
func (r reportLine) ms(t *testing.T, key string) float64 {
	t.Helper()
	v, ok := r.Fields[key]
	if !ok {
		return 0
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSuffix(v, " MB"), " ms"), 64)
	if err != nil {
		t.Errorf("REPORT %s = %q is not a number", key, v)
	}
	return f
}

// logStreamRE is a log stream name as Lambda forms them:
// YYYY/MM/DD/[$LATEST]<32 hex digits>.
var logStreamRE = regexp.MustCompile(`^[0-9]{4}/[0-9]{2}/[0-9]{2}/\[\$LATEST\][0-9a-f]{32}$`)

// ---------------------------------------------------------------------------
// Test functions

// pyApp is a Python module (app.py) with one handler per behaviour the tests
// need. COUNT counts the invocations its process has served and ENV_ID names
// the process: both tell environments apart.
const pyApp = `import json
import logging
import os
import sys
import time

COUNT = 0
ENV_ID = os.urandom(16).hex()
IMPORTED_MARK = os.environ.get("MARK", "")
CODE_MARK = "code-v1"
print("app.py imported")


def _count():
    global COUNT
    COUNT += 1
    return COUNT


def echo(event, context):
    n = _count()
    print("python saw " + json.dumps(event, sort_keys=True))
    logging.getLogger().warning("logged warning %d", n)
    sys.stderr.write("to stderr\n")
    return {"echo": event, "count": n, "env": ENV_ID, "mark": os.environ.get("MARK", ""),
            "importedMark": IMPORTED_MARK, "code": CODE_MARK}


def sleep(event, context):
    n = _count()
    print("sleeping %s s" % event.get("seconds", 1))
    time.sleep(event.get("seconds", 1))
    return {"env": ENV_ID, "count": n}


def environ(event, context):
    root = os.environ.get("LAMBDA_TASK_ROOT", "")
    return {"environ": dict(os.environ),
            "taskRootHasCode": os.path.isfile(os.path.join(root, "app.py")),
            "cwdIsTaskRoot": os.path.samefile(os.getcwd(), root) if root else False,
            "utcoffset": time.strftime("%z")}


def ctx(event, context):
    cc = context.client_context
    ident = context.identity
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "client_context": None if cc is None else {
            "custom": cc.custom,
            "env": cc.env,
            "app_title": cc.client.app_title if cc.client is not None else None,
        },
        "identity": None if ident is None else ident.cognito_identity_id,
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
    }


def fail(event, context):
    print("about to fail")
    raise ValueError("boom " + str(event.get("why")))


def marshal(event, context):
    return {"a set": {1, 2}}


def crash(event, context):
    print("about to exit", flush=True)
    os._exit(3)


def chatty(event, context):
    print("FIRST-LINE")
    for i in range(200):
        print("line %03d %s" % (i, "x" * 40))
    print("LAST-LINE")
    return "done"


def big(event, context):
    return "x" * (6 * 1024 * 1024 + 200)


def nothing(event, context):
    context.log("context.log without a newline")
    return None


def size(event, context):
    return {"type": type(event).__name__, "len": len(event)}
`

// pyAppZip is pyApp as a deployment package.
func pyAppZip(t *testing.T) []byte {
	t.Helper()
	return zipFiles(t, map[string]string{"app.py": pyApp})
}

// createPy creates a python3.12 function running pyApp's handler fn.
func (ts *testServer) createPy(t *testing.T, name, fn string, mods ...func(*lambda.CreateFunctionInput)) {
	t.Helper()
	ts.createFunction(t, name, pyAppZip(t), append([]func(*lambda.CreateFunctionInput){func(in *lambda.CreateFunctionInput) {
		in.Handler = aws.String("app." + fn)
	}}, mods...)...)
}

// withTimeout sets a function's Timeout in seconds.
func withTimeout(seconds int32) func(*lambda.CreateFunctionInput) {
	return func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(seconds) }
}

// withEnvironment sets a function's environment variables.
func withEnvironment(vars map[string]string) func(*lambda.CreateFunctionInput) {
	return func(in *lambda.CreateFunctionInput) { in.Environment = &types.Environment{Variables: vars} }
}

// nodeApp is a Node.js package: an ES module (index.mjs, async handlers)
// and a CommonJS module (cjs.js, a callback handler).
var nodeApp = map[string]string{
	"index.mjs": `let count = 0;
const envId = Math.random().toString(16).slice(2) + Date.now().toString(16);

export const handler = async (event, context) => {
  count++;
  console.log('node saw ' + JSON.stringify(event));
  return {
    echo: event,
    count,
    env: envId,
    requestId: context.awsRequestId,
    functionName: context.functionName,
    memory: context.memoryLimitInMB,
    arn: context.invokedFunctionArn,
    remaining: context.getRemainingTimeInMillis(),
  };
};

export const fail = async () => {
  console.log('node about to throw');
  throw new Error('node boom');
};
`,
	"cjs.js": `exports.handler = function (event, context, callback) {
  console.log('cjs saw ' + JSON.stringify(event));
  callback(null, { cjs: true, echo: event, requestId: context.awsRequestId });
};
`,
}

// createNode creates a nodejs20.x function with nodeApp and handler.
func (ts *testServer) createNode(t *testing.T, name, handler string) {
	t.Helper()
	ts.createFunction(t, name, zipFiles(t, nodeApp), func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeNodejs20x
		in.Handler = aws.String(handler)
	})
}

// goBuilds caches the Go programs built by goBinary, by package.
var goBuilds struct {
	mu    sync.Mutex
	byPkg map[string]*goBuild
}

type goBuild struct {
	once sync.Once
	bin  []byte
	err  error
}

// goFunctionZip returns the deployment package of a Go test function: pkg
// is a package of the module in testdata/gofn ("." for gofn itself,
// "./rapiprobe") built by goBinary, as a provided.al2023 `bootstrap` at the
// zip's root.
func goFunctionZip(t *testing.T, pkg string) []byte {
	t.Helper()
	data, err := zipBootstrap(goBinary(t, pkg))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// goBinary returns the executable of pkg, a package of the module in
// testdata/gofn, built once per test binary (CGO_ENABLED=0, -tags
// lambda.norpc).
func goBinary(t *testing.T, pkg string) []byte {
	t.Helper()
	goBuilds.mu.Lock()
	if goBuilds.byPkg == nil {
		goBuilds.byPkg = map[string]*goBuild{}
	}
	b := goBuilds.byPkg[pkg]
	if b == nil {
		b = &goBuild{}
		goBuilds.byPkg[pkg] = b
	}
	goBuilds.mu.Unlock()
	b.once.Do(func() {
		out, err := os.MkdirTemp(workDir, "gofn-")
		if err != nil {
			b.err = err
			return
		}
		out = filepath.Join(out, "bootstrap")
		// testdata/gofn is a module of its own, so that the main module
		// need not require aws-lambda-go.
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, pkg)
		cmd.Dir = filepath.Join("testdata", "gofn")
		cmd.Env = append(hermeticEnv(), "CGO_ENABLED=0")
		if output, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s in testdata/gofn: %v\n%s", pkg, err, output)
			return
		}
		b.bin, b.err = os.ReadFile(out)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// zipBootstrap is a zip holding one executable, bootstrap, at its root.
func zipBootstrap(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	hdr.SetMode(0o755)
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// createGo creates a provided.al2023 function running the Go test function
// pkg (see goFunctionZip).
func (ts *testServer) createGo(t *testing.T, name, pkg string) {
	t.Helper()
	ts.createFunction(t, name, goFunctionZip(t, pkg), func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeProvidedal2023
		in.Handler = aws.String("bootstrap")
	})
}

// ---------------------------------------------------------------------------
// CloudWatch Logs

// Logs returns a CloudWatch Logs client for the server, with the admin
// credentials and no retries.
func (ts *testServer) Logs() *cloudwatchlogs.Client {
	id, secret := ts.Credentials()
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:           ts.region(),
		BaseEndpoint:     aws.String(ts.Endpoint()),
		Credentials:      staticCredentials(id, secret),
		RetryMaxAttempts: 1,
		HTTPClient:       sdkhttp.Client(),
	})
}

// filterLogEvents returns every event of a function's log group matching
// pattern ("" for all), following nextToken.
func (ts *testServer) filterLogEvents(t *testing.T, function, pattern string) []logtypes.FilteredLogEvent {
	t.Helper()
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + function)}
	if pattern != "" {
		in.FilterPattern = aws.String(pattern)
	}
	var events []logtypes.FilteredLogEvent
	pages := cloudwatchlogs.NewFilterLogEventsPaginator(ts.Logs(), in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatalf("FilterLogEvents %s %q: %v", function, pattern, err)
		}
		events = append(events, page.Events...)
	}
	return events
}

// waitLogEvents polls FilterLogEvents until every one of want occurs in
// some event's message, and returns all events. Logs are stored
// asynchronously; the deadline only bounds a broken server.
func (ts *testServer) waitLogEvents(t *testing.T, function string, want ...string) []logtypes.FilteredLogEvent {
	t.Helper()
	return ts.waitLogEventsFunc(t, function, fmt.Sprintf("lines with %q", want), func(events []logtypes.FilteredLogEvent) bool {
		return len(missingMessages(events, want)) == 0
	})
}

// waitLogEventsFunc polls FilterLogEvents until done accepts the events
// (what describes the wait for a failure), and returns them.
func (ts *testServer) waitLogEventsFunc(t *testing.T, function, what string, done func([]logtypes.FilteredLogEvent) bool) []logtypes.FilteredLogEvent {
	t.Helper()
	deadline := time.Now().Add(logsPollTimeout)
	for {
		events := ts.filterLogEvents(t, function, "")
		if done(events) {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the log of %s still lacks %s; it has:\n%s", logsPollTimeout, function, what, messagesText(events))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// missingMessages returns the strings of want that no event contains.
func missingMessages(events []logtypes.FilteredLogEvent, want []string) []string {
	var missing []string
	for _, w := range want {
		found := false
		for _, e := range events {
			if strings.Contains(aws.ToString(e.Message), w) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, w)
		}
	}
	return missing
}

// messagesText is the events' messages, one a line, for failure output.
func messagesText(events []logtypes.FilteredLogEvent) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "%s\t%q\n", aws.ToString(e.LogStreamName), aws.ToString(e.Message))
	}
	return b.String()
}

// countMessages counts the events whose message starts with prefix.
func countMessages(events []logtypes.FilteredLogEvent, prefix string) int {
	n := 0
	for _, e := range events {
		if strings.HasPrefix(aws.ToString(e.Message), prefix) {
			n++
		}
	}
	return n
}

// requireTyped requires err to be (or wrap) an error of type *E and returns
// it.
func requireTyped[E error](t *testing.T, err error) E {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("got %T %v, want %T", err, err, target)
	}
	return target
}
