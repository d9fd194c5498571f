package e2e

// Tests of asynchronous invocation (issue 5): Invoke with InvocationType
// Event and the legacy InvokeAsync, the event invoke config API, retries,
// maximum event age, destinations, dead-letter targets, `lamina async`, and
// that no accepted event is lost when the server is killed.
//
// The servers run with --async-time-scale 0.01: the retry waits of 1 and 2
// minutes become 0.6 and 1.2 s, a maximum event age of 60 s becomes 0.6 s.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// asyncTimeScale compresses every async timing of the servers of these
// tests.
const asyncTimeScale = "0.01"

// asyncPollTimeout bounds how long a test waits for an asynchronous effect
// (a record, a counter). It only bounds a broken server.
const asyncPollTimeout = 30 * time.Second

// asyncPy is the code of the functions of the async tests (app.py).
const asyncPy = `import json
import os
import time


def echo(event, context):
    print("EVENT " + json.dumps(event, sort_keys=True))
    return {"echo": event, "requestId": context.aws_request_id}


def size(event, context):
    print("SIZE %s %d" % (type(event).__name__, len(event)))


def record(event, context):
    # A destination or dead-letter target: prints what it received.
    print("RECORD " + json.dumps(event, sort_keys=True))


def summarize(event, context):
    # A destination for big records: prints the record with its payloads
    # replaced by their sizes.
    out = dict(event)
    for key in ("requestPayload", "responsePayload"):
        if key in out:
            out[key] = "%d bytes" % len(json.dumps(out[key]))
    print("RECORD " + json.dumps(out, sort_keys=True))


def mirror(event, context):
    return event


def fail(event, context):
    raise ValueError("always fails: " + json.dumps(event, sort_keys=True))


def flaky(event, context):
    # Fails event["fails"] times per event id, then succeeds. Attempts are
    # counted in a host directory, whatever environment runs them.
    path = os.path.join(os.environ["COUNT_DIR"], event["id"])
    with open(path, "a") as f:
        f.write("x")
    attempt = os.path.getsize(path)
    if attempt <= event["fails"]:
        raise RuntimeError("attempt %d of %s fails" % (attempt, event["id"]))
    return {"id": event["id"], "attempt": attempt}


def sleepy(event, context):
    time.sleep(event.get("seconds", 1))
    return {"slept": event.get("seconds", 1)}


def crash(event, context):
    os._exit(3)


def span(event, context):
    # Records when each invocation starts and ends, in a host file.
    def note(what):
        with open(os.environ["SPAN_FILE"], "a") as f:
            f.write("%s %s %.6f\n" % (what, event["n"], time.time()))
    note("start")
    time.sleep(event.get("seconds", 0.5))
    note("end")
    return {"n": event["n"]}


def append(event, context):
    # Records the event's n in a host file, one line per run.
    fd = os.open(os.environ["SEEN_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"%d\n" % event["n"])
        os.fsync(fd)
    finally:
        os.close(fd)
    time.sleep(0.003)
`

// createAsyncPy creates a python3.12 function running asyncPy's handler fn.
func (ts *testServer) createAsyncPy(t *testing.T, name, fn string, mods ...func(*lambda.CreateFunctionInput)) {
	t.Helper()
	ts.createFunction(t, name, zipFiles(t, map[string]string{"app.py": asyncPy}), append([]func(*lambda.CreateFunctionInput){
		func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app." + fn) },
	}, mods...)...)
}

// startAsyncServer starts a server whose async timings are compressed.
func startAsyncServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	return startServer(t, withArgs(append([]string{"--async-time-scale", asyncTimeScale}, args...)...))
}

// invokeEvent invokes name asynchronously (InvocationType Event) and
// requires a 202 with an empty payload; it returns the request ID.
func (ts *testServer) invokeEvent(t *testing.T, name, payload string, mods ...func(*lambda.InvokeInput)) string {
	t.Helper()
	r, err := ts.tryInvoke(t, name, payload, append([]func(*lambda.InvokeInput){withInvocationEvent}, mods...)...)
	if err != nil {
		t.Fatalf("Invoke %s (Event): %v", name, err)
	}
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("Invoke %s (Event): StatusCode %d, want 202", name, r.StatusCode)
	}
	if len(r.Payload) != 0 || r.FunctionError != "" {
		t.Errorf("Invoke %s (Event): payload %q, FunctionError %q; want neither", name, r.Payload, r.FunctionError)
	}
	if r.RequestID == "" {
		t.Fatalf("Invoke %s (Event): no x-amzn-RequestId", name)
	}
	return r.RequestID
}

// withInvocationEvent makes an invocation asynchronous.
func withInvocationEvent(in *lambda.InvokeInput) { in.InvocationType = types.InvocationTypeEvent }

// putEventInvokeConfig puts a function's event invoke config, failing the
// test on error.
func (ts *testServer) putEventInvokeConfig(t *testing.T, in *lambda.PutFunctionEventInvokeConfigInput) *lambda.PutFunctionEventInvokeConfigOutput {
	t.Helper()
	out, err := ts.Lambda().PutFunctionEventInvokeConfig(t.Context(), in)
	if err != nil {
		t.Fatalf("PutFunctionEventInvokeConfig %s: %v", aws.ToString(in.FunctionName), err)
	}
	return out
}

// destinationConfig builds a DestinationConfig; "" leaves a side unset.
func destinationConfig(onSuccess, onFailure string) *types.DestinationConfig {
	d := &types.DestinationConfig{}
	if onSuccess != "" {
		d.OnSuccess = &types.OnSuccess{Destination: aws.String(onSuccess)}
	}
	if onFailure != "" {
		d.OnFailure = &types.OnFailure{Destination: aws.String(onFailure)}
	}
	return d
}

// printedObjects returns the JSON objects that lines "PREFIX {...}" of the
// events hold, in log order.
func printedObjects(t *testing.T, events []logtypes.FilteredLogEvent, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range events {
		msg := strings.TrimSpace(aws.ToString(e.Message))
		rest, ok := strings.CutPrefix(msg, prefix+" ")
		if !ok {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(rest), &m); err != nil {
			t.Fatalf("a %s line is not a JSON object: %v: %q", prefix, err, msg)
		}
		out = append(out, m)
	}
	return out
}

// waitRecord polls the log of recorder (a function running asyncPy's
// record) until it printed an object that match accepts, and returns it.
func (ts *testServer) waitRecord(t *testing.T, recorder, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(asyncPollTimeout)
	for {
		events := ts.pollLogEvents(t, recorder)
		for _, m := range printedObjects(t, events, "RECORD") {
			if match(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v %s has not received %s; its log:\n%s", asyncPollTimeout, recorder, what, messagesText(events))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRecordFor waits for the invocation record of request requestID.
func (ts *testServer) waitRecordFor(t *testing.T, recorder, requestID string) map[string]any {
	t.Helper()
	return ts.waitRecord(t, recorder, "the record of "+requestID, func(m map[string]any) bool {
		rc, _ := m["requestContext"].(map[string]any)
		return rc != nil && rc["requestId"] == requestID
	})
}

// jsonField returns m[key] as a JSON object, failing when it is not one.
func jsonField(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	o, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%q = %#v, want an object (in %v)", key, m[key], m)
	}
	return o
}

// parseJSONValue decodes s, failing the test when it is not JSON.
func parseJSONValue(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v: %q", err, s)
	}
	return v
}

// checkInvocationRecord checks the parts of an invocation record every condition
// shares: version, timestamp, the request context, the request payload.
func checkInvocationRecord(t *testing.T, rec map[string]any, requestID, function, condition string, invokeCount int, event string) {
	t.Helper()
	if rec["version"] != "1.0" {
		t.Errorf("record version = %v, want \"1.0\"", rec["version"])
	}
	if ts, err := time.Parse(time.RFC3339Nano, str(t, rec, "timestamp")); err != nil {
		t.Errorf("record timestamp %q: %v", rec["timestamp"], err)
	} else if d := time.Since(ts); d < -time.Minute || d > 5*time.Minute {
		t.Errorf("record timestamp %v is not about now", ts)
	}
	rc := jsonField(t, rec, "requestContext")
	if got := str(t, rc, "requestId"); got != requestID {
		t.Errorf("requestContext.requestId = %q, want %q", got, requestID)
	}
	if got, want := str(t, rc, "functionArn"), functionARN(function)+":$LATEST"; got != want {
		t.Errorf("requestContext.functionArn = %q, want %q", got, want)
	}
	if got := str(t, rc, "condition"); got != condition {
		t.Errorf("requestContext.condition = %q, want %q (record %v)", got, condition, rec)
	}
	if got := num(t, rc, "approximateInvokeCount"); got != float64(invokeCount) {
		t.Errorf("requestContext.approximateInvokeCount = %v, want %d", got, invokeCount)
	}
	if got, want := rec["requestPayload"], parseJSONValue(t, event); !reflect.DeepEqual(got, want) {
		t.Errorf("requestPayload = %#v, want the original event %s", got, event)
	}
}

// countStarts waits until function's log shows at least want START lines of
// requestID and returns how many there are.
func (ts *testServer) countStarts(t *testing.T, function, requestID string, want int) int {
	t.Helper()
	prefix := "START RequestId: " + requestID
	events := ts.waitLogsUntil(t, function, fmt.Sprintf("%d lines %q", want, prefix), func(events []logtypes.FilteredLogEvent) bool {
		return countMessages(events, prefix) >= want
	})
	return countMessages(events, prefix)
}

// pollingLogs is a Logs client for polling. Unlike Logs() it lets the SDK
// retry: with no retries, a race of the SDK's HTTP client
// (aws/aws-sdk-go-v2#2737: the request body is closed while the transport
// still writes it, which closes the connection under a 200 response) shows
// now and then as "deserialization failed … use of closed network
// connection" when requests follow each other quickly.
func (ts *testServer) pollingLogs() *cloudwatchlogs.Client {
	id, secret := ts.Credentials()
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:           ts.region(),
		BaseEndpoint:     aws.String(ts.Endpoint()),
		Credentials:      staticCredentials(id, secret),
		RetryMaxAttempts: 5,
	})
}

// pollLogEvents returns every event of function's log group.
func (ts *testServer) pollLogEvents(t *testing.T, function string) []logtypes.FilteredLogEvent {
	t.Helper()
	var events []logtypes.FilteredLogEvent
	pages := cloudwatchlogs.NewFilterLogEventsPaginator(ts.pollingLogs(), &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String("/aws/lambda/" + function),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatalf("FilterLogEvents %s: %v", function, err)
		}
		events = append(events, page.Events...)
	}
	return events
}

// waitLogsUntil polls function's log until done accepts its events.
func (ts *testServer) waitLogsUntil(t *testing.T, function, what string, done func([]logtypes.FilteredLogEvent) bool) []logtypes.FilteredLogEvent {
	t.Helper()
	deadline := time.Now().Add(asyncPollTimeout)
	for {
		events := ts.pollLogEvents(t, function)
		if done(events) {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the log of %s still lacks %s; it has:\n%s", asyncPollTimeout, function, what, messagesText(events))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLogLines waits until function's log has every one of want.
func (ts *testServer) waitLogLines(t *testing.T, function string, want ...string) []logtypes.FilteredLogEvent {
	t.Helper()
	return ts.waitLogsUntil(t, function, fmt.Sprintf("lines with %q", want), func(events []logtypes.FilteredLogEvent) bool {
		return len(missingMessages(events, want)) == 0
	})
}

// asyncQueueStatus is what `lamina async NAME -o json` prints.
type asyncQueueStatus struct {
	Function  string
	Depth     int
	InRetry   int
	OldestAge time.Duration
	Counts    struct {
		Received, Succeeded, Retried, Postponed, Dropped, DeadLettered, FailedToDestination int64
	}
	RecentFailures []asyncFailure
}

type asyncFailure struct {
	Time      time.Time
	RequestID string
	Condition string
	Attempts  int
	ErrorType string
	SentTo    string
}

// asyncStatus runs `lamina async name -o json`.
func (ts *testServer) asyncStatus(t *testing.T, name string) asyncQueueStatus {
	t.Helper()
	stdout, stderr, code := ts.Run("async", name, "-o", "json")
	if code != 0 {
		t.Fatalf("lamina async %s: exit code %d\nstdout:\n%s\nstderr:\n%s", name, code, stdout, stderr)
	}
	var st asyncQueueStatus
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("lamina async %s -o json: %v\n%s", name, err, stdout)
	}
	return st
}

// waitAsyncStatus polls `lamina async name` until done accepts it.
func (ts *testServer) waitAsyncStatus(t *testing.T, name, what string, done func(asyncQueueStatus) bool) asyncQueueStatus {
	t.Helper()
	deadline := time.Now().Add(asyncPollTimeout)
	for {
		st := ts.asyncStatus(t, name)
		if done(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v `lamina async %s` still does not show %s: %+v", asyncPollTimeout, name, what, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------

// TestAsyncInvoke: Event invocations and InvokeAsync answer 202 once the
// event is stored, and the function then runs; payload limits; bad bodies;
// `lamina invoke --async`.
func TestAsyncInvoke(t *testing.T) {
	t.Parallel()
	ts := startAsyncServer(t)
	ts.createAsyncPy(t, "echo", "echo")
	ts.createAsyncPy(t, "size", "size")

	t.Run("Event answers 202 and the function runs", func(t *testing.T) {
		t.Parallel()
		marker := fmt.Sprintf("event-%d", time.Now().UnixNano())
		id := ts.invokeEvent(t, "echo", `{"marker": "`+marker+`"}`)
		ts.waitLogLines(t, "echo", "START RequestId: "+id, `EVENT {"marker": "`+marker+`"}`, "REPORT RequestId: "+id)
	})

	t.Run("InvokeAsync answers 202 and the function runs", func(t *testing.T) {
		t.Parallel()
		marker := fmt.Sprintf("legacy-%d", time.Now().UnixNano())
		out, err := ts.Lambda().InvokeAsync(t.Context(), &lambda.InvokeAsyncInput{
			FunctionName: aws.String("echo"),
			InvokeArgs:   strings.NewReader(`{"marker": "` + marker + `"}`),
		})
		if err != nil {
			t.Fatalf("InvokeAsync: %v", err)
		}
		if out.Status != http.StatusAccepted {
			t.Errorf("InvokeAsync Status = %d, want 202", out.Status)
		}
		id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		if id == "" {
			t.Fatal("InvokeAsync: no x-amzn-RequestId")
		}
		ts.waitLogLines(t, "echo", "START RequestId: "+id, `EVENT {"marker": "`+marker+`"}`)
	})

	t.Run("payload limits", func(t *testing.T) {
		t.Parallel()
		const mb, kb256 = 1 << 20, 256 << 10
		jsonString := func(size int) string { return `"` + strings.Repeat("a", size-2) + `"` }

		// Exactly 1 MB is accepted, and runs.
		var ran []string
		if r, err := ts.tryInvoke(t, "size", jsonString(mb), withInvocationEvent); err != nil {
			t.Errorf("Event of exactly 1 MB: %v; want 202", err)
		} else if r.StatusCode != http.StatusAccepted {
			t.Errorf("Event of exactly 1 MB: StatusCode %d, want 202", r.StatusCode)
		} else {
			ran = append(ran, fmt.Sprintf("SIZE str %d", mb-2))
		}
		// One byte more is not.
		_, err := ts.tryInvoke(t, "size", jsonString(mb+1), withInvocationEvent)
		requireAPIError(t, err, "RequestTooLargeException", http.StatusRequestEntityTooLarge)
		requireTyped[*types.RequestTooLargeException](t, err)

		// InvokeAsync: 256 KB.
		out, err := ts.Lambda().InvokeAsync(t.Context(), &lambda.InvokeAsyncInput{
			FunctionName: aws.String("size"), InvokeArgs: strings.NewReader(jsonString(kb256)),
		})
		if err != nil || out.Status != http.StatusAccepted {
			t.Errorf("InvokeAsync of exactly 256 KB: %v, want Status 202", err)
		} else {
			ran = append(ran, fmt.Sprintf("SIZE str %d", kb256-2))
		}
		_, err = ts.Lambda().InvokeAsync(t.Context(), &lambda.InvokeAsyncInput{
			FunctionName: aws.String("size"), InvokeArgs: strings.NewReader(jsonString(kb256 + 1)),
		})
		requireAPIError(t, err, "RequestTooLargeException", http.StatusRequestEntityTooLarge)

		// The accepted events ran; the rejected ones did not.
		if len(ran) > 0 {
			ts.waitLogLines(t, "size", ran...)
		}
		// Give a wrongly accepted event the time to run too.
		time.Sleep(500 * time.Millisecond)
		if events := ts.pollLogEvents(t, "size"); countMessages(events, "SIZE ") != len(ran) {
			t.Errorf("size ran %d times, want %d (the accepted events):\n%s", countMessages(events, "SIZE "), len(ran), messagesText(events))
		}
	})

	t.Run("body not JSON", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{"not json", `{"a":`} {
			_, err := ts.tryInvoke(t, "echo", body, withInvocationEvent)
			requireAPIError(t, err, "InvalidRequestContentException", http.StatusBadRequest, "Could not parse request body into json")
			requireTyped[*types.InvalidRequestContentException](t, err)

			_, err = ts.Lambda().InvokeAsync(t.Context(), &lambda.InvokeAsyncInput{
				FunctionName: aws.String("echo"), InvokeArgs: strings.NewReader(body),
			})
			requireAPIError(t, err, "InvalidRequestContentException", http.StatusBadRequest)
		}
	})

	t.Run("missing function", func(t *testing.T) {
		t.Parallel()
		_, err := ts.tryInvoke(t, "no-such-function", `{}`, withInvocationEvent)
		requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
		requireTyped[*types.ResourceNotFoundException](t, err)
		_, err = ts.Lambda().InvokeAsync(t.Context(), &lambda.InvokeAsyncInput{
			FunctionName: aws.String("no-such-function"), InvokeArgs: strings.NewReader(`{}`),
		})
		requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	})

	t.Run("lamina invoke --async", func(t *testing.T) {
		t.Parallel()
		marker := fmt.Sprintf("cli-%d", time.Now().UnixNano())
		stdout, stderr, code := ts.Run("invoke", "--async", "echo", `{"marker": "`+marker+`"}`)
		if code != 0 {
			t.Fatalf("lamina invoke --async: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		m := regexp.MustCompile(`^Queued \(request ([0-9a-f-]{36})\)\n$`).FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("lamina invoke --async printed %q, want \"Queued (request <id>)\"", stdout)
		}
		ts.waitLogLines(t, "echo", "START RequestId: "+m[1], `EVENT {"marker": "`+marker+`"}`)
	})
}

// TestAsyncEventInvokeConfig: the event invoke config API's round trip,
// shapes, validation and life cycle.
func TestAsyncEventInvokeConfig(t *testing.T) {
	t.Parallel()
	ts := startAsyncServer(t)
	ctx := t.Context()
	l := ts.Lambda()
	for _, name := range []string{"target", "dest-ok", "dest-fail"} {
		ts.createAsyncPy(t, name, "echo")
	}
	okARN, failARN := functionARN("dest-ok"), functionARN("dest-fail")
	latestARN := functionARN("target") + ":$LATEST"

	// check compares a config to the expected fields; nil pointers mean
	// unset.
	type configOut struct {
		FunctionArn          *string
		LastModified         *time.Time
		MaximumRetryAttempts *int32
		MaximumEventAge      *int32
		Destinations         *types.DestinationConfig
	}
	check := func(t *testing.T, what string, got configOut, arn string, retries, age *int32, onSuccess, onFailure string) {
		t.Helper()
		if aws.ToString(got.FunctionArn) != arn {
			t.Errorf("%s: FunctionArn = %q, want %q", what, aws.ToString(got.FunctionArn), arn)
		}
		if got.LastModified == nil || time.Since(*got.LastModified) > 5*time.Minute || time.Until(*got.LastModified) > time.Minute {
			t.Errorf("%s: LastModified = %v, want about now", what, got.LastModified)
		}
		if !reflect.DeepEqual(got.MaximumRetryAttempts, retries) {
			t.Errorf("%s: MaximumRetryAttempts = %v, want %v", what, optionalInt(got.MaximumRetryAttempts), optionalInt(retries))
		}
		if !reflect.DeepEqual(got.MaximumEventAge, age) {
			t.Errorf("%s: MaximumEventAgeInSeconds = %v, want %v", what, optionalInt(got.MaximumEventAge), optionalInt(age))
		}
		var gotOK, gotFail string
		if d := got.Destinations; d != nil {
			if d.OnSuccess != nil {
				gotOK = aws.ToString(d.OnSuccess.Destination)
			}
			if d.OnFailure != nil {
				gotFail = aws.ToString(d.OnFailure.Destination)
			}
		} else {
			t.Errorf("%s: no DestinationConfig", what)
		}
		if gotOK != onSuccess || gotFail != onFailure {
			t.Errorf("%s: destinations OnSuccess %q OnFailure %q, want %q and %q", what, gotOK, gotFail, onSuccess, onFailure)
		}
	}
	get := func(t *testing.T) configOut {
		t.Helper()
		out, err := l.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("target")})
		if err != nil {
			t.Fatalf("GetFunctionEventInvokeConfig: %v", err)
		}
		return configOut{out.FunctionArn, out.LastModified, out.MaximumRetryAttempts, out.MaximumEventAgeInSeconds, out.DestinationConfig}
	}

	// None yet.
	_, err := l.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("target")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	requireTyped[*types.ResourceNotFoundException](t, err)
	_, err = l.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("target"), MaximumRetryAttempts: aws.Int32(1)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	list, err := l.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("target")})
	if err != nil {
		t.Fatalf("ListFunctionEventInvokeConfigs: %v", err)
	}
	if len(list.FunctionEventInvokeConfigs) != 0 {
		t.Errorf("ListFunctionEventInvokeConfigs before any Put: %d configs", len(list.FunctionEventInvokeConfigs))
	}

	// Put, then Get and List show it.
	put := ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:             aws.String("target"),
		MaximumRetryAttempts:     aws.Int32(1),
		MaximumEventAgeInSeconds: aws.Int32(120),
		DestinationConfig:        destinationConfig(okARN, failARN),
	})
	check(t, "Put", configOut{put.FunctionArn, put.LastModified, put.MaximumRetryAttempts, put.MaximumEventAgeInSeconds, put.DestinationConfig},
		latestARN, aws.Int32(1), aws.Int32(120), okARN, failARN)
	check(t, "Get after Put", get(t), latestARN, aws.Int32(1), aws.Int32(120), okARN, failARN)
	list, err = l.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("target")})
	if err != nil {
		t.Fatalf("ListFunctionEventInvokeConfigs: %v", err)
	}
	if len(list.FunctionEventInvokeConfigs) != 1 {
		t.Fatalf("ListFunctionEventInvokeConfigs: %d configs, want 1", len(list.FunctionEventInvokeConfigs))
	}
	c := list.FunctionEventInvokeConfigs[0]
	check(t, "List", configOut{c.FunctionArn, c.LastModified, c.MaximumRetryAttempts, c.MaximumEventAgeInSeconds, c.DestinationConfig},
		latestARN, aws.Int32(1), aws.Int32(120), okARN, failARN)

	// The wire shape: AWS's member names, LastModified as epoch seconds.
	raw := ts.do(t, http.MethodGet, "/2019-09-25/functions/target/event-invoke-config", nil)
	if raw.Status != http.StatusOK {
		t.Fatalf("GET event-invoke-config: %d %s", raw.Status, raw.Body)
	}
	var wire map[string]any
	if err := json.Unmarshal(raw.Body, &wire); err != nil {
		t.Fatalf("GET event-invoke-config: %v: %s", err, raw.Body)
	}
	if _, ok := wire["LastModified"].(float64); !ok {
		t.Errorf("LastModified on the wire is %#v, want epoch seconds: %s", wire["LastModified"], raw.Body)
	}
	if dc, ok := wire["DestinationConfig"].(map[string]any); !ok {
		t.Errorf("no DestinationConfig object on the wire: %s", raw.Body)
	} else if onSuccess, _ := dc["OnSuccess"].(map[string]any); onSuccess["Destination"] != okARN {
		t.Errorf("DestinationConfig.OnSuccess.Destination on the wire: %s", raw.Body)
	}

	// Update changes only what it names.
	upd, err := l.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("target"), MaximumRetryAttempts: aws.Int32(0)})
	if err != nil {
		t.Fatalf("UpdateFunctionEventInvokeConfig: %v", err)
	}
	check(t, "Update of MaximumRetryAttempts", configOut{upd.FunctionArn, upd.LastModified, upd.MaximumRetryAttempts, upd.MaximumEventAgeInSeconds, upd.DestinationConfig},
		latestARN, aws.Int32(0), aws.Int32(120), okARN, failARN)
	_, err = l.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("target"), DestinationConfig: destinationConfig("", okARN)})
	if err != nil {
		t.Fatalf("UpdateFunctionEventInvokeConfig: %v", err)
	}
	check(t, "Get after an Update of OnFailure", get(t), latestARN, aws.Int32(0), aws.Int32(120), okARN, okARN)

	// Validation; a rejected request changes nothing.
	for _, tc := range []struct {
		what    string
		in      lambda.PutFunctionEventInvokeConfigInput
		code    string
		message string
	}{
		{"MaximumRetryAttempts 3", lambda.PutFunctionEventInvokeConfigInput{MaximumRetryAttempts: aws.Int32(3)}, "ValidationException", "maximumRetryAttempts"},
		{"MaximumRetryAttempts -1", lambda.PutFunctionEventInvokeConfigInput{MaximumRetryAttempts: aws.Int32(-1)}, "ValidationException", "maximumRetryAttempts"},
		{"MaximumEventAgeInSeconds 59", lambda.PutFunctionEventInvokeConfigInput{MaximumEventAgeInSeconds: aws.Int32(59)}, "ValidationException", "maximumEventAgeInSeconds"},
		{"MaximumEventAgeInSeconds 21601", lambda.PutFunctionEventInvokeConfigInput{MaximumEventAgeInSeconds: aws.Int32(21601)}, "ValidationException", "maximumEventAgeInSeconds"},
		{"a bucket as destination", lambda.PutFunctionEventInvokeConfigInput{DestinationConfig: destinationConfig("", "arn:aws:s3:::failures")}, "InvalidParameterValueException", ""},
		{"a queue of another region as destination", lambda.PutFunctionEventInvokeConfigInput{DestinationConfig: destinationConfig("", "arn:aws:sqs:eu-west-3:000000000000:failures")}, "InvalidParameterValueException", ""},
		{"a topic of another account as destination", lambda.PutFunctionEventInvokeConfigInput{DestinationConfig: destinationConfig("arn:aws:sns:us-east-1:111111111111:done", "")}, "InvalidParameterValueException", ""},
	} {
		in := tc.in
		in.FunctionName = aws.String("target")
		_, err := l.PutFunctionEventInvokeConfig(ctx, &in)
		var want []string
		if tc.message != "" {
			want = append(want, tc.message)
		}
		requireAPIError(t, err, tc.code, http.StatusBadRequest, want...)
		uin := lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("target"), MaximumRetryAttempts: in.MaximumRetryAttempts,
			MaximumEventAgeInSeconds: in.MaximumEventAgeInSeconds, DestinationConfig: in.DestinationConfig}
		_, err = l.UpdateFunctionEventInvokeConfig(ctx, &uin)
		requireAPIError(t, err, tc.code, http.StatusBadRequest, want...)
	}
	check(t, "Get after rejected requests", get(t), latestARN, aws.Int32(0), aws.Int32(120), okARN, okARN)

	// Put replaces the whole config.
	put = ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("target"), MaximumEventAgeInSeconds: aws.Int32(60)})
	check(t, "Put replacing", configOut{put.FunctionArn, put.LastModified, put.MaximumRetryAttempts, put.MaximumEventAgeInSeconds, put.DestinationConfig},
		latestARN, nil, aws.Int32(60), "", "")
	check(t, "Get after a replacing Put", get(t), latestARN, nil, aws.Int32(60), "", "")

	// A config of a version is separate from $LATEST's.
	if _, err := l.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("target")}); err != nil {
		t.Fatalf("PublishVersion: %v", err)
	}
	v1 := ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("target"), Qualifier: aws.String("1"), MaximumRetryAttempts: aws.Int32(2)})
	if got, want := aws.ToString(v1.FunctionArn), functionARN("target")+":1"; got != want {
		t.Errorf("FunctionArn of version 1's config = %q, want %q", got, want)
	}
	list, err = l.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("target")})
	if err != nil {
		t.Fatalf("ListFunctionEventInvokeConfigs: %v", err)
	}
	var arns []string
	for _, c := range list.FunctionEventInvokeConfigs {
		arns = append(arns, aws.ToString(c.FunctionArn))
	}
	if len(arns) != 2 || !strings.Contains(strings.Join(arns, " "), latestARN) || !strings.Contains(strings.Join(arns, " "), functionARN("target")+":1") {
		t.Errorf("ListFunctionEventInvokeConfigs with a $LATEST and a version 1 config: %q", arns)
	}
	check(t, "Get of $LATEST beside version 1", get(t), latestARN, nil, aws.Int32(60), "", "")

	// A function that does not exist has no config.
	_, err = l.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("no-such-function"), MaximumRetryAttempts: aws.Int32(1)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = l.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("no-such-function")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)

	// Delete.
	if _, err := l.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("target")}); err != nil {
		t.Fatalf("DeleteFunctionEventInvokeConfig: %v", err)
	}
	_, err = l.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("target")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = l.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("target")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	if _, err := l.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("target"), Qualifier: aws.String("1")}); err != nil {
		t.Errorf("deleting $LATEST's config removed version 1's: %v", err)
	}

	// The configs disappear with the function.
	ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("target"), MaximumRetryAttempts: aws.Int32(1)})
	if _, err := l.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("target")}); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	ts.createAsyncPy(t, "target", "echo")
	_, err = l.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("target")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	list, err = l.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("target")})
	if err != nil {
		t.Fatalf("ListFunctionEventInvokeConfigs: %v", err)
	}
	if len(list.FunctionEventInvokeConfigs) != 0 {
		t.Errorf("a function re-created after DeleteFunction has %d event invoke configs, want 0", len(list.FunctionEventInvokeConfigs))
	}
}

// optionalInt shows an optional number.
func optionalInt(p *int32) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(int(*p))
}

// TestAsyncRetriesAndDestinations: function errors are retried exactly
// MaximumRetryAttempts times; records of successes and failures reach the
// destinationConfig in AWS's shape; event age expiry; the dead-letter target;
// dropped events; `lamina async`.
func TestAsyncRetriesAndDestinations(t *testing.T) {
	t.Parallel()
	// Plain processes: the flaky function counts its attempts in a host
	// directory.
	ts := startAsyncServer(t, "--sandbox", "process")
	counts := t.TempDir()
	ts.createAsyncPy(t, "recorder", "record")
	recorderARN := functionARN("recorder")

	t.Run("fails N times then succeeds", func(t *testing.T) {
		t.Parallel()
		ts.createAsyncPy(t, "flaky", "flaky", withEnvironment(map[string]string{"COUNT_DIR": counts}))
		ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{
			FunctionName: aws.String("flaky"), DestinationConfig: destinationConfig(recorderARN, ""),
		})
		events := map[int]string{0: `{"id": "flaky-0", "fails": 0}`, 1: `{"id": "flaky-1", "fails": 1}`, 2: `{"id": "flaky-2", "fails": 2}`}
		ids := map[int]string{}
		for n, ev := range events {
			ids[n] = ts.invokeEvent(t, "flaky", ev)
		}
		for n, ev := range events {
			rec := ts.waitRecordFor(t, "recorder", ids[n])
			checkInvocationRecord(t, rec, ids[n], "flaky", "Success", n+1, ev)
			want := map[string]any{"id": fmt.Sprintf("flaky-%d", n), "attempt": float64(n + 1)}
			if got := rec["responsePayload"]; !reflect.DeepEqual(got, want) {
				t.Errorf("event failing %d times: responsePayload = %v, want %v", n, got, want)
			}
			if got := ts.countStarts(t, "flaky", ids[n], n+1); got != n+1 {
				t.Errorf("event failing %d times ran %d times, want %d", n, got, n+1)
			}
		}
		st := ts.waitAsyncStatus(t, "flaky", "3 successes", func(st asyncQueueStatus) bool { return st.Counts.Succeeded >= 3 })
		if c := st.Counts; c.Received != 3 || c.Succeeded != 3 || c.Retried != 3 || c.Dropped != 0 || c.DeadLettered != 0 || c.FailedToDestination != 0 {
			t.Errorf("counters after 3 events failing 0, 1 and 2 times: %+v; want 3 received, 3 succeeded, 3 retried", c)
		}
		if st.Depth != 0 || st.InRetry != 0 || len(st.RecentFailures) != 0 {
			t.Errorf("queue after every event succeeded: %+v", st)
		}
	})

	t.Run("retries exhausted go to the failure destination", func(t *testing.T) {
		t.Parallel()
		ts.createAsyncPy(t, "always-fails", "fail")
		ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{
			FunctionName: aws.String("always-fails"), MaximumRetryAttempts: aws.Int32(2), DestinationConfig: destinationConfig("", recorderARN),
		})
		ev := `{"id": "exhausted", "nested": {"list": [1, 2, 3]}}`
		id := ts.invokeEvent(t, "always-fails", ev)
		rec := ts.waitRecordFor(t, "recorder", id)
		checkInvocationRecord(t, rec, id, "always-fails", "RetriesExhausted", 3, ev)
		rc := jsonField(t, rec, "responseContext")
		if num(t, rc, "statusCode") != 200 || rc["executedVersion"] != "$LATEST" || rc["functionError"] != "Unhandled" {
			t.Errorf("responseContext = %v, want statusCode 200, executedVersion $LATEST, functionError Unhandled", rc)
		}
		rp := jsonField(t, rec, "responsePayload")
		if rp["errorType"] != "ValueError" || !strings.Contains(str(t, rp, "errorMessage"), "always fails") {
			t.Errorf("responsePayload = %v, want the function's ValueError", rp)
		}
		if got := ts.countStarts(t, "always-fails", id, 3); got != 3 {
			t.Errorf("with MaximumRetryAttempts 2 the function ran %d times, want 3", got)
		}
		st := ts.waitAsyncStatus(t, "always-fails", "the failure", func(st asyncQueueStatus) bool { return len(st.RecentFailures) > 0 })
		if c := st.Counts; c.Retried != 2 || c.FailedToDestination != 1 || c.Succeeded != 0 || c.Dropped != 0 {
			t.Errorf("counters: %+v; want 2 retried, 1 to the failure destination", c)
		}
		if f := st.RecentFailures[0]; f.RequestID != id || f.Condition != "RetriesExhausted" || f.Attempts != 3 || f.SentTo != recorderARN || f.ErrorType != "ValueError" {
			t.Errorf("recent failure %+v, want %s RetriesExhausted after 3 attempts, ValueError, sent to %s", f, id, recorderARN)
		}
	})

	t.Run("no retries", func(t *testing.T) {
		t.Parallel()
		ts.createAsyncPy(t, "fails-once", "fail")
		ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{
			FunctionName: aws.String("fails-once"), MaximumRetryAttempts: aws.Int32(0), DestinationConfig: destinationConfig("", recorderARN),
		})
		ev := `{"id": "no-retries"}`
		id := ts.invokeEvent(t, "fails-once", ev)
		rec := ts.waitRecordFor(t, "recorder", id)
		checkInvocationRecord(t, rec, id, "fails-once", "RetriesExhausted", 1, ev)
		if rc := jsonField(t, rec, "responseContext"); rc["functionError"] != "Unhandled" {
			t.Errorf("responseContext = %v, want functionError Unhandled", rc)
		}
		if got := ts.countStarts(t, "fails-once", id, 1); got != 1 {
			t.Errorf("with MaximumRetryAttempts 0 the function ran %d times, want 1", got)
		}
	})

	t.Run("on success", func(t *testing.T) {
		t.Parallel()
		ts.createAsyncPy(t, "succeeds", "echo")
		ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{
			FunctionName: aws.String("succeeds"), DestinationConfig: destinationConfig(recorderARN, ""),
		})
		ev := `{"id": "success", "values": [true, null, 1.5, "s"]}`
		id := ts.invokeEvent(t, "succeeds", ev)
		rec := ts.waitRecordFor(t, "recorder", id)
		checkInvocationRecord(t, rec, id, "succeeds", "Success", 1, ev)
		rc := jsonField(t, rec, "responseContext")
		if num(t, rc, "statusCode") != 200 || rc["executedVersion"] != "$LATEST" {
			t.Errorf("responseContext = %v, want statusCode 200 and executedVersion $LATEST", rc)
		}
		if _, ok := rc["functionError"]; ok {
			t.Errorf("responseContext of a success has a functionError: %v", rc)
		}
		want := map[string]any{"echo": parseJSONValue(t, ev), "requestId": id}
		if got := rec["responsePayload"]; !reflect.DeepEqual(got, want) {
			t.Errorf("responsePayload = %#v, want the function's result %#v", got, want)
		}
	})

	t.Run("crashes and timeouts are function errors", func(t *testing.T) {
		t.Parallel()
		ts.createAsyncPy(t, "crasher", "crash")
		ts.createAsyncPy(t, "slowpoke", "sleepy", withTimeout(1))
		for _, name := range []string{"crasher", "slowpoke"} {
			ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{
				FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(1), DestinationConfig: destinationConfig("", recorderARN),
			})
		}
		for name, errorType := range map[string]string{"crasher": "Runtime.ExitError", "slowpoke": "Sandbox.Timedout"} {
			ev := `{"id": "` + name + `", "seconds": 3}`
			id := ts.invokeEvent(t, name, ev)
			rec := ts.waitRecordFor(t, "recorder", id)
			checkInvocationRecord(t, rec, id, name, "RetriesExhausted", 2, ev)
			if rc := jsonField(t, rec, "responseContext"); rc["functionError"] != "Unhandled" {
				t.Errorf("%s: responseContext = %v, want functionError Unhandled", name, rc)
			}
			if rp := jsonField(t, rec, "responsePayload"); rp["errorType"] != errorType {
				t.Errorf("%s: responsePayload = %v, want errorType %s", name, rp, errorType)
			}
			if got := ts.countStarts(t, name, id, 2); got != 2 {
				t.Errorf("%s ran %d times with MaximumRetryAttempts 1, want 2", name, got)
			}
		}
	})

	t.Run("a version's own config", func(t *testing.T) {
		t.Parallel()
		ts.createAsyncPy(t, "versioned", "echo")
		if _, err := ts.Lambda().PublishVersion(t.Context(), &lambda.PublishVersionInput{FunctionName: aws.String("versioned")}); err != nil {
			t.Fatal(err)
		}
		ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{
			FunctionName: aws.String("versioned"), Qualifier: aws.String("1"), DestinationConfig: destinationConfig(recorderARN, ""),
		})
		ev := `{"id": "version-1"}`
		id := ts.invokeEvent(t, "versioned", ev, func(in *lambda.InvokeInput) { in.Qualifier = aws.String("1") })
		rec := ts.waitRecordFor(t, "recorder", id)
		rc := jsonField(t, rec, "requestContext")
		if got, want := rc["functionArn"], functionARN("versioned")+":1"; got != want {
			t.Errorf("requestContext.functionArn = %v, want %s", got, want)
		}
		if rc["condition"] != "Success" {
			t.Errorf("condition = %v, want Success", rc["condition"])
		}
		if got := jsonField(t, rec, "responseContext")["executedVersion"]; got != "1" {
			t.Errorf("responseContext.executedVersion = %v, want \"1\"", got)
		}
	})

	t.Run("a success whose record is large runs once", func(t *testing.T) {
		t.Parallel()
		ts.createAsyncPy(t, "summary", "summarize")
		ts.createAsyncPy(t, "big-result", "mirror")
		ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{
			FunctionName: aws.String("big-result"), DestinationConfig: destinationConfig(functionARN("summary"), ""),
		})
		// A 700 KB event, returned as the result: the record holds both.
		id := ts.invokeEvent(t, "big-result", `{"blob": "`+strings.Repeat("b", 700<<10)+`"}`)
		prefix := "START RequestId: " + id
		deadline := time.Now().Add(asyncPollTimeout)
		var rec map[string]any
		for rec == nil {
			if n := countMessages(ts.pollLogEvents(t, "big-result"), prefix); n > 1 {
				st := ts.asyncStatus(t, "big-result")
				t.Fatalf("the function succeeded, yet ran %d times (the record for the on-success destination is over 1 MB); queue: %+v", n, st)
			}
			for _, m := range printedObjects(t, ts.pollLogEvents(t, "summary"), "RECORD") {
				if rc, _ := m["requestContext"].(map[string]any); rc != nil && rc["requestId"] == id {
					rec = m
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v no record of %s reached the on-success destination; queue: %+v", asyncPollTimeout, id, ts.asyncStatus(t, "big-result"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if rc := jsonField(t, rec, "requestContext"); rc["condition"] != "Success" || num(t, rc, "approximateInvokeCount") != 1 {
			t.Errorf("record's requestContext = %v, want condition Success and approximateInvokeCount 1", rc)
		}
		if n := countMessages(ts.pollLogEvents(t, "big-result"), prefix); n != 1 {
			t.Errorf("the function ran %d times, want 1", n)
		}
	})

	t.Run("event age exceeded", func(t *testing.T) {
		t.Parallel()
		ts.createAsyncPy(t, "throttled", "echo")
		// Reserved concurrency 0 throttles every call: the event is put
		// back with backoff until it is older than 60 s (0.6 s here).
		if _, err := ts.Lambda().PutFunctionConcurrency(t.Context(), &lambda.PutFunctionConcurrencyInput{
			FunctionName: aws.String("throttled"), ReservedConcurrentExecutions: aws.Int32(0),
		}); err != nil {
			t.Fatalf("PutFunctionConcurrency: %v", err)
		}
		ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{
			FunctionName: aws.String("throttled"), MaximumEventAgeInSeconds: aws.Int32(60), DestinationConfig: destinationConfig("", recorderARN),
		})
		ev := `{"id": "too-old"}`
		id := ts.invokeEvent(t, "throttled", ev)
		rec := ts.waitRecordFor(t, "recorder", id)
		rc := jsonField(t, rec, "requestContext")
		if rc["condition"] != "EventAgeExceeded" {
			t.Errorf("condition = %v, want EventAgeExceeded (record %v)", rc["condition"], rec)
		}
		if got, want := rec["requestPayload"], parseJSONValue(t, ev); !reflect.DeepEqual(got, want) {
			t.Errorf("requestPayload = %#v, want %s", got, ev)
		}
		if _, ok := rec["responseContext"]; ok {
			t.Errorf("the record of an event that never ran has a responseContext: %v", rec)
		}
		if _, ok := rec["responsePayload"]; ok {
			t.Errorf("the record of an event that never ran has a responsePayload: %v", rec)
		}
		st := ts.waitAsyncStatus(t, "throttled", "the failure", func(st asyncQueueStatus) bool { return len(st.RecentFailures) > 0 })
		if st.Counts.Postponed == 0 || st.Counts.Succeeded != 0 || st.Counts.FailedToDestination != 1 {
			t.Errorf("counters: %+v; want postponements, no success, 1 to the failure destination", st.Counts)
		}
		if f := st.RecentFailures[0]; f.RequestID != id || f.Condition != "EventAgeExceeded" || f.SentTo != recorderARN {
			t.Errorf("recent failure %+v, want %s EventAgeExceeded sent to %s", f, id, recorderARN)
		}
		if events := ts.pollLogEvents(t, "throttled"); countMessages(events, "START") != 0 {
			t.Errorf("a function with reserved concurrency 0 ran:\n%s", messagesText(events))
		}
	})

	t.Run("dead-letter target", func(t *testing.T) {
		t.Parallel()
		ts.createAsyncPy(t, "dlq", "record")
		dlqARN := functionARN("dlq")
		ts.createAsyncPy(t, "dead-letters", "fail", func(in *lambda.CreateFunctionInput) {
			in.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String(dlqARN)}
		})
		cfg, err := ts.Lambda().GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("dead-letters")})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DeadLetterConfig == nil || aws.ToString(cfg.DeadLetterConfig.TargetArn) != dlqARN {
			t.Errorf("DeadLetterConfig = %+v, want TargetArn %s", cfg.DeadLetterConfig, dlqARN)
		}
		ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("dead-letters"), MaximumRetryAttempts: aws.Int32(1)})
		ev := `{"id": "dead-letter", "n": 42}`
		id := ts.invokeEvent(t, "dead-letters", ev)
		// The target receives the original event, not a record.
		got := ts.waitRecord(t, "dlq", "the dead-lettered event", func(m map[string]any) bool { return m["id"] == "dead-letter" })
		if want := parseJSONValue(t, ev); !reflect.DeepEqual(got, want) {
			t.Errorf("the dead-letter target received %v, want the original event %s", got, ev)
		}
		if n := ts.countStarts(t, "dead-letters", id, 2); n != 2 {
			t.Errorf("with MaximumRetryAttempts 1 the function ran %d times, want 2", n)
		}
		st := ts.waitAsyncStatus(t, "dead-letters", "the dead-lettered event", func(st asyncQueueStatus) bool { return st.Counts.DeadLettered > 0 })
		if c := st.Counts; c.DeadLettered != 1 || c.Dropped != 0 || c.FailedToDestination != 0 || c.Retried != 1 {
			t.Errorf("counters: %+v; want 1 retried, 1 dead-lettered", c)
		}
		if len(st.RecentFailures) != 1 {
			t.Fatalf("recent failures: %+v, want 1", st.RecentFailures)
		}
		if f := st.RecentFailures[0]; f.RequestID != id || f.SentTo != dlqARN || f.Condition != "RetriesExhausted" || f.Attempts != 2 {
			t.Errorf("recent failure %+v, want %s RetriesExhausted after 2 attempts sent to %s", f, id, dlqARN)
		}
		// The text form says it too.
		stdout, _, code := ts.Run("async", "dead-letters")
		if code != 0 || !strings.Contains(stdout, id) || !strings.Contains(stdout, dlqARN) || !strings.Contains(stdout, "1 dead-lettered") {
			t.Errorf("lamina async dead-letters (exit code %d) does not show the dead-lettered event:\n%s", code, stdout)
		}
	})

	t.Run("dropped without destination or dead-letter target", func(t *testing.T) {
		t.Parallel()
		ts.createAsyncPy(t, "drops", "fail")
		ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("drops"), MaximumRetryAttempts: aws.Int32(0)})
		id := ts.invokeEvent(t, "drops", `{"id": "dropped"}`)
		st := ts.waitAsyncStatus(t, "drops", "the dropped event", func(st asyncQueueStatus) bool { return st.Counts.Dropped > 0 })
		if c := st.Counts; c.Received != 1 || c.Dropped != 1 || c.DeadLettered != 0 || c.FailedToDestination != 0 || c.Succeeded != 0 {
			t.Errorf("counters: %+v; want 1 received, 1 dropped", c)
		}
		if len(st.RecentFailures) != 1 {
			t.Fatalf("recent failures: %+v, want 1", st.RecentFailures)
		}
		if f := st.RecentFailures[0]; f.RequestID != id || f.SentTo != "" || f.Condition != "RetriesExhausted" || f.Attempts != 1 {
			t.Errorf("recent failure %+v, want %s RetriesExhausted after 1 attempt, sent nowhere", f, id)
		}
		if st.Depth != 0 || st.InRetry != 0 {
			t.Errorf("queue after the event was dropped: depth %d, in retry %d", st.Depth, st.InRetry)
		}
		stdout, _, _ := ts.Run("async", "drops")
		if !strings.Contains(stdout, id) || !strings.Contains(stdout, "dropped") {
			t.Errorf("lamina async drops does not show the dropped event:\n%s", stdout)
		}
	})
}

// TestAsyncBacklogLeavesRoomForSyncCalls: a function's async events run at
// most --async-concurrency at a time, so a backlog leaves the rest of the
// function's concurrency to synchronous callers; `lamina async` shows the
// backlog.
func TestAsyncBacklogLeavesRoomForSyncCalls(t *testing.T) {
	t.Parallel()
	spans := filepath.Join(t.TempDir(), "spans.txt")
	ts := startAsyncServer(t, "--sandbox", "process", "--async-concurrency", "2")
	ts.createAsyncPy(t, "busy", "span", withEnvironment(map[string]string{"SPAN_FILE": spans}), withTimeout(10))
	if _, err := ts.Lambda().PutFunctionConcurrency(t.Context(), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String("busy"), ReservedConcurrentExecutions: aws.Int32(4),
	}); err != nil {
		t.Fatal(err)
	}
	const events = 12
	for n := range events {
		ts.invokeEvent(t, "busy", fmt.Sprintf(`{"n": %d, "seconds": 0.5}`, n))
	}
	// The backlog is visible.
	st := ts.asyncStatus(t, "busy")
	if st.Depth < events/2 || st.OldestAge <= 0 || st.Counts.Received != events {
		t.Errorf("lamina async right after queueing %d events of 0.5 s: depth %d, oldest %v, received %d", events, st.Depth, st.OldestAge, st.Counts.Received)
	}
	// Synchronous calls still find room (4 reserved, at most 2 async).
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := ts.tryInvoke(t, "busy", fmt.Sprintf(`{"n": "sync-%d", "seconds": 0.1}`, i))
			if err != nil {
				t.Errorf("a synchronous call during the async backlog: %v", err)
			} else if r.FunctionError != "" {
				t.Errorf("a synchronous call during the async backlog failed: %s", r.Payload)
			}
		}()
	}
	wg.Wait()
	if st := ts.asyncStatus(t, "busy"); st.Depth == 0 {
		t.Logf("the backlog was gone before the synchronous calls ended: the check above proved little")
	}
	st = ts.waitAsyncStatus(t, "busy", "every event done", func(st asyncQueueStatus) bool { return st.Counts.Succeeded == events && st.Depth == 0 })
	if st.OldestAge != 0 || st.InRetry != 0 {
		t.Errorf("an empty queue shows oldest age %v, %d in retry", st.OldestAge, st.InRetry)
	}
	// At most 2 async invocations overlapped.
	data, err := os.ReadFile(spans)
	if err != nil {
		t.Fatal(err)
	}
	type edge struct {
		at    float64
		delta int
	}
	var edges []edge
	for _, line := range lines(string(data)) {
		f := strings.Fields(line)
		if len(f) != 3 || strings.HasPrefix(f[1], "sync-") {
			continue
		}
		at, _ := strconv.ParseFloat(f[2], 64)
		if f[0] == "start" {
			edges = append(edges, edge{at, 1})
		} else {
			edges = append(edges, edge{at, -1})
		}
	}
	if len(edges) != 2*events {
		t.Fatalf("%d start/end lines of async events, want %d:\n%s", len(edges), 2*events, data)
	}
	slices.SortFunc(edges, func(a, b edge) int { // ends before starts at the same instant
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		return a.delta - b.delta
	})
	running, most := 0, 0
	for _, e := range edges {
		running += e.delta
		most = max(most, running)
	}
	if most != 2 {
		t.Errorf("at most %d async invocations ran at once, want 2 (--async-concurrency 2)", most)
	}
}

// TestAsyncNothingLostOnKill: every event that got a 202 runs at least once
// although the server is killed with SIGKILL in the middle of a burst
// (issue 5, item 5).
func TestAsyncNothingLostOnKill(t *testing.T) {
	t.Parallel()
	seen := filepath.Join(t.TempDir(), "seen.txt")
	ts := startAsyncServer(t, "--sandbox", "process", "--async-concurrency", "8")
	ts.createAsyncPy(t, "burst", "append", withEnvironment(map[string]string{"SEEN_FILE": seen}), withTimeout(10))

	const total, senders = 3000, 12
	killAfter := int64(total / 2)
	accepted := make([]bool, total)
	var next, nAccepted, nFailed atomic.Int64
	var killed atomic.Bool
	client := ts.Lambda()
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !killed.Load() {
				n := next.Add(1) - 1
				if n >= total {
					return
				}
				out, err := client.Invoke(t.Context(), &lambda.InvokeInput{
					FunctionName:   aws.String("burst"),
					InvocationType: types.InvocationTypeEvent,
					Payload:        []byte(fmt.Sprintf(`{"n": %d}`, n)),
				})
				if err == nil && out.StatusCode == http.StatusAccepted {
					accepted[n] = true
					nAccepted.Add(1)
				} else {
					// In flight at the kill, or after it: not accepted.
					nFailed.Add(1)
				}
			}
		}()
	}
	for nAccepted.Load() < killAfter && next.Load() < total {
		time.Sleep(time.Millisecond)
	}
	ts.Kill()
	killed.Store(true)
	wg.Wait()
	sent := min(next.Load(), total)
	t.Logf("killed the server %v into the burst: %d events sent, %d accepted, %d failed", time.Since(start).Round(time.Millisecond), sent, nAccepted.Load(), nFailed.Load())
	if nAccepted.Load() < killAfter {
		t.Fatalf("only %d events were accepted before the kill", nAccepted.Load())
	}
	ranBeforeKill := len(readBurstFile(t, seen, total))

	ts.Restart()
	restarted := time.Now()
	var runs map[int]int
	deadline := time.Now().Add(3 * time.Minute)
	for {
		runs = readBurstFile(t, seen, total)
		missing := 0
		for n, ok := range accepted {
			if ok && runs[n] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			var some []int
			for n, ok := range accepted {
				if ok && runs[n] == 0 && len(some) < 20 {
					some = append(some, n)
				}
			}
			t.Fatalf("%v after the restart %d accepted events have not run (e.g. %v)", time.Since(restarted).Round(time.Millisecond), missing, some)
		}
		time.Sleep(100 * time.Millisecond)
	}
	twice, unaccepted := 0, 0
	for n, c := range runs {
		if !accepted[n] {
			unaccepted++
		} else if c > 1 {
			twice++
		}
	}
	t.Logf("all %d accepted events ran (%d had run before the kill) within %v of the restart; %d ran more than once; %d events whose request failed at the kill ran too",
		nAccepted.Load(), ranBeforeKill, time.Since(restarted).Round(time.Millisecond), twice, unaccepted)
	for n := range runs {
		if int64(n) >= sent {
			t.Errorf("event %d ran but was never sent", n)
		}
	}
	// The queue drains.
	ts.waitAsyncStatus(t, "burst", "an empty queue", func(st asyncQueueStatus) bool { return st.Depth == 0 })
}

// readBurstFile reads the burst function's file: how many times each n ran.
func readBurstFile(t *testing.T, path string, total int) map[int]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return map[int]int{}
	}
	if err != nil {
		t.Fatal(err)
	}
	runs := map[int]int{}
	// A line being written may be incomplete: only complete lines count.
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		n, err := strconv.Atoi(line)
		if err != nil || n < 0 || n >= total {
			t.Fatalf("%s has a line %q that no event wrote", path, line)
		}
		runs[n]++
	}
	return runs
}
