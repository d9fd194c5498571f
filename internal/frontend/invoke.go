package frontend

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/async"
	"github.com/lamina-project/lamina/internal/store"
)

// maxClientContext is the largest X-Amz-Client-Context AWS accepts (base64).
const maxClientContext = 3583

// emptyEvent is the event of an invocation without payload.
var emptyEvent = []byte("{}")

// invokeTooLarge is the error for an invocation payload over its limit.
func invokeTooLarge(limit int64, op string) *lamina.Error {
	if op == "Invoke" {
		op = "InvokeFunction"
	}
	return lamina.ErrRequestTooLarge("Request must be smaller than %d bytes for the %s operation", limit, op)
}

func (f *Frontend) invoke(rq *request) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	h := rq.r.Header
	invocationType := h.Get("X-Amz-Invocation-Type")
	switch invocationType {
	case "", "RequestResponse", "DryRun", "Event":
	default:
		var v lamina.Violations
		v.Add(invocationType, "invocationType", "Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
		return v.Err()
	}
	logType := h.Get("X-Amz-Log-Type")
	if logType != "" && logType != "None" && logType != "Tail" {
		var v lamina.Violations
		v.Add(logType, "logType", "Member must satisfy enum value set: [None, Tail]")
		return v.Err()
	}
	fn, err := f.manager.Resolve(rq.r.Context(), ref.Name, ref.Qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	}
	if err != nil {
		return err
	}
	if invocationType == "DryRun" {
		return rq.noContent(http.StatusNoContent)
	}
	payload, err := eventPayload(rq.body)
	if err != nil {
		return err
	}
	if invocationType == "Event" {
		if len(payload) > lamina.MaxAsyncPayload {
			return lamina.ErrRequestTooLarge("Request must be smaller than %d bytes for the InvokeFunction operation", lamina.MaxAsyncPayload)
		}
		return f.submitEvent(rq, ref, payload, http.StatusAccepted, nil)
	}
	clientContext, err := decodeClientContext(h.Get("X-Amz-Client-Context"))
	if err != nil {
		return err
	}
	invokedARN := f.functionARN(ref.Name)
	if ref.Qualifier != "" {
		invokedARN += ":" + ref.Qualifier
	}
	traceID := h.Get("X-Amzn-Trace-Id")
	if traceID == "" {
		traceID = lamina.NewTraceID()
	}
	res, err := f.manager.Invoke(rq.r.Context(), &lamina.Invocation{
		RequestID:     rq.requestID,
		Function:      fn,
		InvokedARN:    invokedARN,
		Payload:       payload,
		ClientContext: clientContext,
		TraceID:       traceID,
		Tail:          logType == "Tail",
	})
	if err != nil {
		return err
	}
	out := rq.w.Header()
	out["Content-Type"] = []string{"application/json"}
	out["X-Amz-Executed-Version"] = []string{res.ExecutedVersion}
	out["X-Amzn-Trace-Id"] = []string{traceID}
	out["Content-Length"] = []string{strconv.Itoa(len(res.Payload))}
	if res.FunctionError != "" {
		out["X-Amz-Function-Error"] = []string{res.FunctionError}
	}
	if logType == "Tail" {
		out["X-Amz-Log-Result"] = []string{base64.StdEncoding.EncodeToString(res.LogTail)}
	}
	rq.w.WriteHeader(http.StatusOK)
	_, _ = rq.w.Write(res.Payload)
	return nil
}

// eventPayload checks an invocation's body, which must be JSON; an empty
// body is the event {}.
func eventPayload(body []byte) ([]byte, error) {
	if len(body) == 0 {
		return emptyEvent, nil
	}
	if !json.Valid(body) {
		var probe any
		err := json.Unmarshal(body, &probe)
		return nil, lamina.ErrInvalidRequestContent("Could not parse request body into json: Could not parse payload into json: %v", err)
	}
	return body, nil
}

// submitEvent queues an asynchronous invocation and answers with status
// (and body, if any) once it is durably stored.
func (f *Frontend) submitEvent(rq *request, ref lamina.FunctionRef, payload []byte, status int, body any) error {
	err := f.async.Submit(rq.r.Context(), &async.Event{
		RequestID: rq.requestID,
		Function:  ref.Name,
		Qualifier: ref.Qualifier,
		Payload:   payload,
		TraceID:   rq.r.Header.Get("X-Amzn-Trace-Id"),
	})
	if err != nil {
		return err
	}
	if body != nil {
		return rq.json(status, body)
	}
	return rq.noContent(status)
}

// invokeAsync is the deprecated InvokeAsync operation: an Event invocation
// of at most 256 KB that answers {"Status": 202}.
func (f *Frontend) invokeAsync(rq *request) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	if _, err := f.getFunctionVersion(rq.r.Context(), ref); err != nil {
		return err
	}
	payload, err := eventPayload(rq.body)
	if err != nil {
		return err
	}
	return f.submitEvent(rq, ref, payload, http.StatusAccepted, map[string]int{"Status": http.StatusAccepted})
}

// decodeClientContext decodes X-Amz-Client-Context (base64 of a JSON object)
// into the JSON text the runtime receives.
func decodeClientContext(b64 string) (string, error) {
	if b64 == "" {
		return "", nil
	}
	if len(b64) > maxClientContext {
		return "", lamina.ErrInvalidParameter("Client context must be at most %d bytes of base64", maxClientContext)
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !json.Valid(data) {
		return "", lamina.ErrInvalidRequestContent("Client context must be a valid Base64-encoded JSON object.")
	}
	return string(data), nil
}
