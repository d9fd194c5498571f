package frontend

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// Response streaming: InvokeWithResponseStream answers with an AWS event
// stream (application/vnd.amazon.eventstream) of PayloadChunk events, as the
// function writes its response, and one InvokeComplete event; a function URL
// in RESPONSE_STREAM mode sends the response's body in HTTP chunks as the
// function writes it. Both reach the worker as a lamina.ResponseStream.

// streamWriteTimeout bounds one write of a streamed response to its caller:
// a caller that takes no byte for this long is taken as gone, and the rest
// of the response is discarded.
const streamWriteTimeout = 30 * time.Second

// maxPrelude bounds the HTTP prelude ({"statusCode","headers","cookies"}
// and 8 NUL bytes) of a streamed function URL response; without the NUL
// bytes by then, the whole response is taken as the body.
const maxPrelude = 64 << 10

// preludeDelimiter ends the HTTP prelude of a streamed response.
var preludeDelimiter = make([]byte, 8)

// invokeWithResponseStream is InvokeWithResponseStream.
func (f *Frontend) invokeWithResponseStream(rq *request) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	h := rq.r.Header
	invocationType := h.Get("X-Amz-Invocation-Type")
	logType := h.Get("X-Amz-Log-Type")
	var v lamina.Violations
	if invocationType != "" && invocationType != "RequestResponse" && invocationType != "DryRun" {
		v.Add(invocationType, "invocationType", "Member must satisfy enum value set: [RequestResponse, DryRun]")
	}
	if logType != "" && logType != "None" && logType != "Tail" {
		v.Add(logType, "logType", "Member must satisfy enum value set: [None, Tail]")
	}
	if err := v.Err(); err != nil {
		return err
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
	out := &eventStream{w: rq.w, rc: http.NewResponseController(rq.w), enc: eventstream.NewEncoder(),
		version: fn.Configuration.Version, traceID: traceID}
	res, err := f.manager.Invoke(rq.r.Context(), &lamina.Invocation{
		RequestID:     rq.requestID,
		Function:      fn,
		InvokedARN:    invokedARN,
		Payload:       payload,
		ClientContext: clientContext,
		TraceID:       traceID,
		Tail:          logType == "Tail",
		Stream:        out,
	})
	if err != nil {
		if !out.started {
			return err // nothing sent yet: an error of AWS's shape
		}
		f.log.Error("streamed invocation failed", "function", ref.Name, "request_id", rq.requestID, "err", err)
		out.complete("ServiceException", err.Error(), nil)
		return nil
	}
	out.Start("")
	if !res.Streamed && res.FunctionError == "" {
		_, _ = out.Write(res.Payload) // a buffered response is one chunk
	}
	var code, details string
	if res.FunctionError != "" {
		code, details = functionErrorFields(res)
	}
	var logResult []byte
	if logType == "Tail" {
		logResult = res.LogTail
	}
	out.complete(code, details, logResult)
	return nil
}

// functionErrorFields returns InvokeComplete's ErrorCode and ErrorDetails
// for a failed invocation: the errorType and errorMessage of its error.
func functionErrorFields(res *lamina.InvocationResult) (code, details string) {
	var e struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(res.Payload, &e) != nil || e.ErrorMessage == "" {
		e.ErrorMessage = string(res.Payload)
	}
	code = e.ErrorType
	if code == "" {
		code = res.ErrorType
	}
	if code == "" {
		code = lamina.FunctionErrorUnhandled
	}
	return code, e.ErrorMessage
}

// eventStream writes an InvokeWithResponseStream response: the status and
// headers once, then each chunk as a PayloadChunk event, flushed.
type eventStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	enc     *eventstream.Encoder
	version string
	traceID string
	started bool
	failed  error
}

// Start writes the response's status and headers (the function's content
// type travels in no header: the events carry bytes).
func (s *eventStream) Start(string) {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h["Content-Type"] = []string{"application/vnd.amazon.eventstream"}
	h["X-Amz-Executed-Version"] = []string{s.version}
	h["X-Amzn-Trace-Id"] = []string{s.traceID}
	s.w.WriteHeader(http.StatusOK)
	s.failed = s.rc.Flush()
}

// Write sends chunk as a PayloadChunk event.
func (s *eventStream) Write(chunk []byte) (int, error) {
	if len(chunk) == 0 {
		return 0, nil
	}
	err := s.event("PayloadChunk", "application/octet-stream", chunk)
	if err != nil {
		return 0, err
	}
	return len(chunk), nil
}

// complete sends the InvokeComplete event that ends the stream.
func (s *eventStream) complete(code, details string, logResult []byte) {
	body := map[string]string{}
	if code != "" {
		body["ErrorCode"], body["ErrorDetails"] = code, details
	}
	if logResult != nil {
		body["LogResult"] = base64.StdEncoding.EncodeToString(logResult)
	}
	data, _ := json.Marshal(body)
	_ = s.event("InvokeComplete", "application/json", data)
}

func (s *eventStream) event(eventType, contentType string, payload []byte) error {
	if s.failed != nil {
		return s.failed
	}
	msg := eventstream.Message{Payload: payload}
	msg.Headers.Set(":message-type", eventstream.StringValue("event"))
	msg.Headers.Set(":event-type", eventstream.StringValue(eventType))
	msg.Headers.Set(":content-type", eventstream.StringValue(contentType))
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if err := s.enc.Encode(s.w, msg); err != nil {
		s.failed = err
		return err
	}
	s.failed = s.rc.Flush()
	return s.failed
}

// urlStream writes the response of a function URL in RESPONSE_STREAM mode
// as the function streams it: the HTTP prelude, if the response has one,
// sets status, headers and cookies; the body follows in chunks.
type urlStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	prelude bool   // a prelude comes first and has not been read yet
	pending []byte // the prelude so far
	started bool   // status and headers are sent
	sent    bool   // some of the body was
}

// Start takes the response's content type; a response without prelude
// starts now, with status 200.
func (s *urlStream) Start(contentType string) {
	if contentType == streamingContentType {
		s.prelude = true
		return
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	s.w.Header().Set("Content-Type", contentType)
	s.writeHeader(http.StatusOK)
}

// Write sends a chunk of the body, once the prelude is complete.
func (s *urlStream) Write(chunk []byte) (int, error) {
	body := chunk
	if s.prelude {
		s.pending = append(s.pending, chunk...)
		meta, rest, found := bytes.Cut(s.pending, preludeDelimiter)
		switch {
		case found:
			s.applyPrelude(meta)
			body = rest
		case len(s.pending) > maxPrelude:
			s.w.Header().Set("Content-Type", "application/octet-stream")
			s.writeHeader(http.StatusOK)
			body = s.pending
		default:
			return len(chunk), nil
		}
		s.prelude, s.pending = false, nil
	}
	if len(body) == 0 {
		return len(chunk), nil
	}
	s.sent = true
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := s.w.Write(body); err != nil {
		return 0, err
	}
	if err := s.rc.Flush(); err != nil {
		return 0, err
	}
	return len(chunk), nil
}

// applyPrelude sets status, headers and cookies from a prelude; one that is
// not valid JSON gives status 200 and no headers.
func (s *urlStream) applyPrelude(data []byte) {
	var meta struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
		Cookies    []string          `json:"cookies"`
	}
	_ = json.Unmarshal(data, &meta)
	h := s.w.Header()
	for k, v := range meta.Headers {
		h.Set(k, v)
	}
	for _, c := range meta.Cookies {
		h.Add("Set-Cookie", c)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/octet-stream")
	}
	if meta.StatusCode < 100 || meta.StatusCode > 999 {
		meta.StatusCode = http.StatusOK
	}
	s.writeHeader(meta.StatusCode)
}

func (s *urlStream) writeHeader(status int) {
	s.started = true
	s.w.WriteHeader(status)
	_ = s.rc.Flush()
}

// finish ends a streamed response that completed: a prelude never
// completed is sent as the body.
func (s *urlStream) finish() {
	if s.prelude {
		s.w.Header().Set("Content-Type", "application/octet-stream")
		s.writeHeader(http.StatusOK)
		_, _ = s.w.Write(s.pending)
	}
}
