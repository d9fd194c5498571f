package worker

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/lamina-project/lamina"
)

// The Runtime API (2018-06-01) of one environment, as AWS's runtime interface
// emulator and the Lambda service serve it: the runtime long-polls /next for
// an event and posts the result or error of that event, or an init error.

var errorTypeRE = regexp.MustCompile(`^(Runtime|Function)\.[A-Z][a-zA-Z]+$`)

// runtimeAPIHandler returns the HTTP handler of env's Runtime API.
func (env *environment) runtimeAPIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", env.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", env.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", env.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", env.handleInitError)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		runtimeAPIError(w, http.StatusNotFound, "NotFound", "Unknown Runtime API path "+r.URL.Path)
	})
	return mux
}

// runtimeAPIError answers the runtime with the Runtime API's error shape.
func runtimeAPIError(w http.ResponseWriter, status int, errorType, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	data, _ := json.Marshal(map[string]string{"errorMessage": message, "errorType": errorType})
	_, _ = w.Write(data)
}

var acceptedBody = []byte(`{"status":"OK"}`)

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(acceptedBody)
}

// handleNext hands the runtime its next event. The first call ends init.
func (env *environment) handleNext(w http.ResponseWriter, r *http.Request) {
	env.readyOnce.Do(func() { close(env.ready) })
	env.pollStarted() // an idle environment is frozen now, with the runtime waiting here
	defer env.pollEnded()
	var inv *invocation
	select {
	case inv = <-env.next:
	case <-env.destroyed:
		runtimeAPIError(w, http.StatusInternalServerError, "Runtime.Shutdown", "the environment is shutting down")
		return
	case <-r.Context().Done():
		return
	}
	env.mu.Lock()
	env.current = inv
	env.mu.Unlock()

	req := inv.req
	h := w.Header()
	h["Lambda-Runtime-Aws-Request-Id"] = []string{req.RequestID}
	h["Lambda-Runtime-Deadline-Ms"] = []string{strconv.FormatInt(inv.deadline.UnixMilli(), 10)}
	h["Lambda-Runtime-Invoked-Function-Arn"] = []string{req.InvokedARN}
	h["Lambda-Runtime-Trace-Id"] = []string{req.TraceID}
	if req.ClientContext != "" {
		h["Lambda-Runtime-Client-Context"] = []string{req.ClientContext}
	}
	if req.CognitoIdentity != "" {
		h["Lambda-Runtime-Cognito-Identity"] = []string{req.CognitoIdentity}
	}
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(req.Payload))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(req.Payload)
}

// claim returns the invocation id names if it is in flight and unanswered,
// and marks it answered.
func (env *environment) claim(id string) *invocation {
	env.mu.Lock()
	defer env.mu.Unlock()
	inv := env.current
	if inv == nil || inv.req.RequestID != id {
		return nil
	}
	env.current = nil
	return inv
}

// readPayload reads a runtime's post up to the Runtime API's limit. It
// reports false (having answered 413) when the body is larger.
func readPayload(w http.ResponseWriter, r *http.Request) ([]byte, bool, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, lamina.MaxRuntimeAPIPayload))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		runtimeAPIError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			"Exceeded maximum allowed payload size ("+strconv.Itoa(lamina.MaxRuntimeAPIPayload)+" bytes).")
		return nil, false, nil
	}
	return body, true, err
}

// responseTooLarge is what the caller gets when the function's response is
// over the limit.
var responseTooLarge = mustJSON(map[string]string{
	"errorMessage": "Response payload size exceeded maximum allowed payload size (" + strconv.Itoa(lamina.MaxRuntimeAPIPayload) + " bytes).",
	"errorType":    lamina.ErrorTypeResponseTooLarge,
})

func (env *environment) handleResponse(w http.ResponseWriter, r *http.Request) {
	inv := env.claim(r.PathValue("id"))
	if inv == nil {
		runtimeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	if mode := r.Header.Get("Lambda-Runtime-Function-Response-Mode"); mode != "" && mode != "streaming" {
		runtimeAPIError(w, http.StatusBadRequest, "InvalidFunctionResponseMode", "Invalid function response mode")
		inv.answer(answer{payload: errorPayload("Runtime.InvalidResponseModeHeader", "Invalid response mode header: "+mode), errorType: "Runtime.InvalidResponseModeHeader"})
		return
	}
	body, ok, err := readPayload(w, r)
	switch {
	case !ok:
		inv.answer(answer{payload: responseTooLarge, errorType: lamina.ErrorTypeResponseTooLarge})
		return
	case err != nil:
		runtimeAPIError(w, http.StatusBadRequest, "TruncatedHTTPRequest", err.Error())
		inv.answer(answer{payload: errorPayload("Runtime.TruncatedResponse", "the runtime's response was cut short"), errorType: "Runtime.TruncatedResponse"})
		return
	}
	// A streamed response reports a mid-stream failure in trailers.
	if typ := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); typ != "" {
		accepted(w)
		inv.answer(answer{payload: streamedError(typ, r.Trailer.Get("Lambda-Runtime-Function-Error-Body")), errorType: typ})
		return
	}
	accepted(w)
	inv.answer(answer{payload: body, contentType: r.Header.Get("Content-Type")})
}

func (env *environment) handleError(w http.ResponseWriter, r *http.Request) {
	inv := env.claim(r.PathValue("id"))
	if inv == nil {
		runtimeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	body, ok, _ := readPayload(w, r)
	if !ok {
		inv.answer(answer{payload: responseTooLarge, errorType: lamina.ErrorTypeResponseTooLarge})
		return
	}
	accepted(w)
	payload, typ := functionError(r.Header.Get("Lambda-Runtime-Function-Error-Type"), body)
	inv.answer(answer{payload: payload, errorType: typ})
}

func (env *environment) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, ok, _ := readPayload(w, r)
	if !ok {
		body = nil
	} else {
		accepted(w)
	}
	payload, typ := functionError(r.Header.Get("Lambda-Runtime-Function-Error-Type"), body)
	select {
	case env.initFailed <- answer{payload: payload, errorType: typ}:
	default: // one init error is enough
	}
}

// functionError returns the payload the caller gets for an error a runtime
// posted, and its error type. A JSON object body is passed on verbatim, as
// Lambda does; anything else is wrapped.
func functionError(headerType string, body []byte) ([]byte, string) {
	var fields struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(body, &fields) == nil && len(body) > 0 && body[0] == '{' {
		typ := fields.ErrorType
		if typ == "" {
			typ = sanitizeErrorType(headerType)
		}
		return body, typ
	}
	typ := sanitizeErrorType(headerType)
	return errorPayload(typ, string(body)), typ
}

// sanitizeErrorType keeps error types of the documented Category.Reason
// form, as the emulator does, and maps anything else to Runtime.Unknown.
func sanitizeErrorType(t string) string {
	if errorTypeRE.MatchString(t) {
		return t
	}
	return "Runtime.Unknown"
}

// streamedError decodes the base64 error body of a streamed response's
// trailer, or builds one.
func streamedError(typ, b64 string) []byte {
	if data, err := decodeBase64(b64); err == nil && json.Valid(data) {
		return data
	}
	return errorPayload(typ, "the function's streamed response failed")
}

// errorPayload is the {"errorMessage","errorType"} JSON of a platform error.
func errorPayload(errorType, message string) []byte {
	return mustJSON(map[string]string{"errorMessage": message, "errorType": errorType})
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}
