package e2e

// The Runtime API (2018-06-01) as a runtime sees it, observed by
// testdata/gofn/rapiprobe, a bootstrap that speaks it with plain HTTP: the
// /next headers, the answers to responses and errors (202 {"status":"OK"},
// 400 InvalidRequestID, 403 InvalidStateTransition, 413
// RequestEntityTooLarge) and what the caller gets.

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// probeReport is what rapiprobe answers an invocation with.
type probeReport struct {
	NextStatus    int                    `json:"nextStatus"`
	Headers       map[string]string      `json:"headers"`
	Event         string                 `json:"event"`
	NowMs         int64                  `json:"nowMs"`
	Previous      map[string]probePosted `json:"previous"`
	UnknownIDPost probePosted            `json:"unknownIdPost"`
}

type probePosted struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// requireRuntimeAPIError checks a Runtime API error answer: the status and
// a body {"errorMessage": …, "errorType": typ}.
func requireRuntimeAPIError(t *testing.T, what string, p probePosted, status int, typ string) {
	t.Helper()
	var body struct {
		ErrorMessage *string `json:"errorMessage"`
		ErrorType    string  `json:"errorType"`
	}
	if p.Status != status || json.Unmarshal([]byte(p.Body), &body) != nil || body.ErrorType != typ || body.ErrorMessage == nil {
		t.Errorf("%s: answered %d %s, want %d {\"errorMessage\":…,\"errorType\":%q}", what, p.Status, p.Body, status, typ)
	}
}

func (ts *testServer) probe(t *testing.T, name, payload string, mods ...func(*lambda.InvokeInput)) (invokeResult, probeReport) {
	t.Helper()
	r := ts.invokeOK(t, name, payload, mods...)
	var rep probeReport
	if err := json.Unmarshal(r.Payload, &rep); err != nil {
		t.Fatalf("probe result: %v: %s", err, r.Payload)
	}
	return r, rep
}

func TestRuntimeAPI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createGo(t, "probe", "./rapiprobe")

	clientContext := `{"custom":{"k":"v"},"env":{"e":"1"},"client":{"app_title":"probe"}}`
	event := `{"some":"event","n":[1,2,3]}`
	r, rep := ts.probe(t, "probe", event, func(in *lambda.InvokeInput) {
		in.ClientContext = aws.String(base64.StdEncoding.EncodeToString([]byte(clientContext)))
	})
	if rep.NextStatus != 200 {
		t.Errorf("GET /next status %d, want 200", rep.NextStatus)
	}
	if rep.Event != event {
		t.Errorf("GET /next body %q, want the payload %q as sent", rep.Event, event)
	}
	h := rep.Headers
	if got := h["Lambda-Runtime-Aws-Request-Id"]; got != r.RequestID {
		t.Errorf("Lambda-Runtime-Aws-Request-Id = %q, want the request id %q", got, r.RequestID)
	}
	deadline, err := strconv.ParseInt(h["Lambda-Runtime-Deadline-Ms"], 10, 64)
	if err != nil {
		t.Errorf("Lambda-Runtime-Deadline-Ms = %q, want epoch milliseconds", h["Lambda-Runtime-Deadline-Ms"])
	} else if left := deadline - rep.NowMs; left <= 0 || left > 3000 {
		t.Errorf("Lambda-Runtime-Deadline-Ms is %d ms after /next returned, want in (0, 3000] (Timeout 3 s)", left)
	}
	if got := h["Lambda-Runtime-Invoked-Function-Arn"]; got != "arn:aws:lambda:us-east-1:000000000000:function:probe" {
		t.Errorf("Lambda-Runtime-Invoked-Function-Arn = %q", got)
	}
	if got := h["Lambda-Runtime-Trace-Id"]; !strings.HasPrefix(got, "Root=1-") {
		t.Errorf("Lambda-Runtime-Trace-Id = %q, want Root=1-…", got)
	}
	if got := h["Content-Type"]; got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	var gotCC, wantCC any
	_ = json.Unmarshal([]byte(clientContext), &wantCC)
	if err := json.Unmarshal([]byte(h["Lambda-Runtime-Client-Context"]), &gotCC); err != nil || !reflect.DeepEqual(gotCC, wantCC) {
		t.Errorf("Lambda-Runtime-Client-Context = %q, want the decoded JSON %s", h["Lambda-Runtime-Client-Context"], clientContext)
	}
	if _, ok := h["Lambda-Runtime-Cognito-Identity"]; ok {
		t.Errorf("Lambda-Runtime-Cognito-Identity is set without an identity: %q", h["Lambda-Runtime-Cognito-Identity"])
	}
	requireRuntimeAPIError(t, "POST /response for an unknown request id", rep.UnknownIDPost, 400, "InvalidRequestID")
	requireInvocationLog(t, r, "rapiprobe got "+r.RequestID)

	// The second invocation reports how the first one's POSTs were answered.
	r2, rep2 := ts.probe(t, "probe", "")
	if rep2.Event != "{}" {
		t.Errorf("event of an invocation without payload = %q, want {}", rep2.Event)
	}
	if _, ok := rep2.Headers["Lambda-Runtime-Client-Context"]; ok {
		t.Errorf("Lambda-Runtime-Client-Context is set without a client context: %q", rep2.Headers["Lambda-Runtime-Client-Context"])
	}
	if rep2.Headers["Lambda-Runtime-Aws-Request-Id"] != r2.RequestID || r2.RequestID == r.RequestID {
		t.Errorf("second request id %q (header %q), first %q", r2.RequestID, rep2.Headers["Lambda-Runtime-Aws-Request-Id"], r.RequestID)
	}
	if p := rep2.Previous["response"]; p.Status != 202 || strings.TrimSpace(p.Body) != `{"status":"OK"}` {
		t.Errorf("POST /response answered %d %q, want 202 {\"status\":\"OK\"}", p.Status, p.Body)
	}
	// As the emulator's state machine: an answered invocation takes no more.
	requireRuntimeAPIError(t, "a second POST /response for the same request", rep2.Previous["responseAgain"], 403, "InvalidStateTransition")
	if r2.cold(t) {
		t.Errorf("the probe's environment was not reused:\n%s", r2.Log)
	}

	// An error post: the caller gets its body as the payload.
	errBody := `{"errorMessage":"custom failure","errorType":"Function.CustomFailure","stackTrace":["a","b"]}`
	payload, _ := json.Marshal(map[string]string{"action": "error", "errorType": "Function.CustomFailure", "body": errBody})
	r3 := ts.invoke(t, "probe", string(payload))
	r3.functionError(t, "Function.CustomFailure")
	if string(r3.Payload) != errBody {
		t.Errorf("payload of a posted error = %s, want the posted body %s", r3.Payload, errBody)
	}
	_, rep4 := ts.probe(t, "probe", "")
	if p := rep4.Previous["error"]; p.Status != 202 || strings.TrimSpace(p.Body) != `{"status":"OK"}` {
		t.Errorf("POST /error answered %d %q, want 202 {\"status\":\"OK\"}", p.Status, p.Body)
	}

	// A response over the Runtime API's limit (6 MB + 100 bytes): 413 to the
	// runtime, Function.ResponseSizeTooLarge to the caller.
	r5 := ts.invoke(t, "probe", `{"action":"big","size":6291557}`)
	r5.functionError(t, "Function.ResponseSizeTooLarge")
	_, rep6 := ts.probe(t, "probe", "")
	requireRuntimeAPIError(t, "POST /response of 6291557 bytes", rep6.Previous["big"], 413, "RequestEntityTooLarge")
}
