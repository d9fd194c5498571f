package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/lamina-project/lamina"
	"golang.org/x/net/netutil"
	"golang.org/x/sys/unix"
)

// The Runtime API (2018-06-01) of one environment, as AWS's runtime interface
// emulator and the Lambda service serve it: the runtime long-polls /next for
// an event and posts the result or error of that event, or an init error.
//
// Everything in the sandbox can reach it, so it is bounded (README, "Limits
// and protections"): an environment costs the server at most
// runtimeAPIMaxConns connections (file descriptors) and, in memory, one
// request body at a time (the runtime's answer to the invocation in flight,
// or its init error: at most 1.5 × 6 MB while it is read) plus the headers
// and buffers of its connections (8 × 64 KiB and a little): about 10 MiB at
// worst, within the 16 MiB the README states.

// Bounds of one environment's Runtime API.
const (
	// runtimeAPIMaxConns is how many connections of one environment are
	// served at once. A runtime needs one or two; more wait unaccepted in
	// the listen backlog, so they cost the server no file descriptor.
	runtimeAPIMaxConns = 8
	// runtimeAPIBacklog is the listen backlog: connections the kernel
	// completes for the environment before they are accepted. Beyond it the
	// kernel drops new connections' SYNs (the client retries), so a flood
	// costs the server nothing.
	runtimeAPIBacklog = 8
	// runtimeAPIHeaderTimeout bounds reading a request's headers.
	runtimeAPIHeaderTimeout = 10 * time.Second
	// runtimeAPIReadTimeout bounds reading a whole request, headers and body,
	// except two that wait legitimately: a /next long poll has no deadline,
	// and the answer to the invocation in flight (a response may stream)
	// may take until the invocation's deadline.
	runtimeAPIReadTimeout = 10 * time.Second
	// runtimeAPIIdleTimeout is how long a keep-alive connection may wait for
	// its next request. The runtimes reconnect when it is closed.
	runtimeAPIIdleTimeout = time.Minute
	// runtimeAPIMaxHeaderBytes bounds a request's headers (RIE crops the
	// X-Ray error cause header, the largest a runtime sends, at 64 KiB).
	runtimeAPIMaxHeaderBytes = 64 << 10
	// maxRuntimeErrorBody bounds the body of an error or init error post,
	// as AWS's emulator does (requestBodyLimitBytes, 1 MiB, in its
	// lambda-managed-instances rapi/server.go).
	maxRuntimeErrorBody = 1 << 20
)

// apiLimits are the bounds an environment's Runtime API server applies.
type apiLimits struct {
	maxConns, backlog                       int
	headerTimeout, readTimeout, idleTimeout time.Duration
	maxHeaderBytes                          int
}

// runtimeAPILimits are the bounds of every environment's Runtime API.
var runtimeAPILimits = apiLimits{
	maxConns:       runtimeAPIMaxConns,
	backlog:        runtimeAPIBacklog,
	headerTimeout:  runtimeAPIHeaderTimeout,
	readTimeout:    runtimeAPIReadTimeout,
	idleTimeout:    runtimeAPIIdleTimeout,
	maxHeaderBytes: runtimeAPIMaxHeaderBytes,
}

// serveRuntimeAPI serves env's Runtime API on ln, the listener its sandbox
// opened, within limits, until the returned server is closed.
func (env *environment) serveRuntimeAPI(ln net.Listener, limits apiLimits, log *slog.Logger) (*http.Server, error) {
	if err := setBacklog(ln, limits.backlog); err != nil {
		return nil, fmt.Errorf("runtime API listener: %w", err)
	}
	srv := &http.Server{
		Handler:           env.runtimeAPIHandler(),
		ReadHeaderTimeout: limits.headerTimeout,
		ReadTimeout:       limits.readTimeout,
		IdleTimeout:       limits.idleTimeout,
		MaxHeaderBytes:    limits.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				env.connClosed(c)
			}
		},
	}
	go srv.Serve(netutil.LimitListener(ln, limits.maxConns))
	return srv, nil
}

// setBacklog sets the listen backlog of ln's socket to n: Linux takes
// listen(2) on a listening socket as a change of its backlog.
func setBacklog(ln net.Listener, n int) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("a %T has no socket", ln)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var listenErr error
	if err := raw.Control(func(fd uintptr) { listenErr = unix.Listen(int(fd), n) }); err != nil {
		return err
	}
	return listenErr
}

// runtimeState is where the runtime of an environment stands, as the
// Runtime API sees it: a state machine like the emulator's, which refuses
// calls out of turn with 403 InvalidStateTransition. It allows one /next at
// a time, so a process the function left running cannot take an event
// while the runtime waits for it or handles one.
//
// Between events it is stricter than the emulator: while the connection on
// which the runtime got its last event is open, the next /next must come on
// it. Runtimes keep one keep-alive connection (or one for /next), or close
// theirs after each request (curl), so this is no burden to them; a process
// the function left running, with connections of its own, cannot slip its
// /next in between the runtime's answer and the runtime's next /next.
type runtimeState int

const (
	stateStarted   runtimeState = iota // init: no /next yet
	stateInitError                     // it posted /init/error
	stateReady                         // its /next waits for an event
	stateRunning                       // it has an event and has not answered it
	stateAnswered                      // between events: it answered one (or gave up a /next)
)

// String names the state as the emulator's messages do.
func (s runtimeState) String() string {
	return [...]string{"Started", "InitError", "Ready", "Running", "RuntimeResponseSentState"}[s]
}

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

// refuseTransition answers a call the runtime's state does not allow, as
// the emulator does.
func refuseTransition(w http.ResponseWriter, from runtimeState, to string) {
	runtimeAPIError(w, http.StatusForbidden, "InvalidStateTransition",
		fmt.Sprintf("State transition from %s to %s failed for runtime. Error: State transition is not allowed", from, to))
}

var acceptedBody = []byte(`{"status":"OK"}`)

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(acceptedBody)
}

// connKey keys a request's connection in its context.
type connKey struct{}

// connClosed notes that a connection of the Runtime API closed.
func (env *environment) connClosed(c net.Conn) {
	env.mu.Lock()
	if env.eventConn == c {
		env.eventConn = nil
	}
	env.mu.Unlock()
}

// handleNext hands the runtime its next event. The first call ends init.
func (env *environment) handleNext(w http.ResponseWriter, r *http.Request) {
	conn, _ := r.Context().Value(connKey{}).(net.Conn)
	env.mu.Lock()
	from := env.state
	if from != stateStarted && from != stateAnswered {
		env.mu.Unlock()
		refuseTransition(w, from, "Ready")
		return
	}
	if env.eventConn != nil && env.eventConn != conn {
		env.mu.Unlock()
		runtimeAPIError(w, http.StatusForbidden, "InvalidStateTransition",
			fmt.Sprintf("State transition from %s to Ready failed for runtime. Error: the next event goes to the connection that got the last one while it is open", from))
		return
	}
	env.state = stateReady
	env.mu.Unlock()
	if from == stateStarted {
		close(env.ready)
	}
	env.pollStarted() // an idle environment is frozen now, with the runtime waiting here
	defer env.pollEnded()
	if r.ContentLength == 0 {
		// A long poll: no read deadline. A body (there should be none) is
		// left to the deadline, and then the connection is closed.
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	}

	var inv *invocation
	select {
	case inv = <-env.next:
	case <-env.destroyed:
		runtimeAPIError(w, http.StatusInternalServerError, "Runtime.Shutdown", "the environment is shutting down")
		return
	case <-r.Context().Done(): // the runtime gave up (or the server closes)
		env.setState(stateAnswered)
		return
	}
	env.mu.Lock()
	env.state, env.current, env.eventConn = stateRunning, inv, conn
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

func (env *environment) setState(s runtimeState) {
	env.mu.Lock()
	env.state = s
	env.mu.Unlock()
}

// claim returns the invocation in flight if id names it, for the runtime's
// answer to it (to names the transition, for the emulator's message), and
// moves past it: the invocation takes no other answer. Otherwise it answers
// the call as the emulator does and returns nil.
func (env *environment) claim(w http.ResponseWriter, id, to string) *invocation {
	env.mu.Lock()
	state, inv := env.state, env.current
	if state == stateRunning && inv.req.RequestID == id {
		env.state, env.current = stateAnswered, nil
	}
	env.mu.Unlock()
	switch {
	case state != stateRunning:
		refuseTransition(w, state, to)
		return nil
	case inv.req.RequestID != id:
		runtimeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return nil
	}
	// The answer may take until the invocation's deadline (a response may
	// stream); the environment is stopped then anyway.
	_ = http.NewResponseController(w).SetReadDeadline(inv.deadline)
	return inv
}

// chunkedBodyStart is the first size of readBody's buffer for a body sent
// in chunks: a no-op function's answer is a few bytes, and a large buffer
// per invocation (it was 64 KiB) costs more to clear and collect than the
// doublings a large answer takes.
const chunkedBodyStart = 512

// errBodyTooLarge is readBody's error for a body over its limit.
var errBodyTooLarge = errors.New("request body too large")

// readBody reads a request body of at most limit bytes. A longer body is
// read up to the limit and discarded (so that a client that sends it all
// before reading the answer gets the answer), and errBodyTooLarge returned.
// A body of declared length takes that much memory; one sent in chunks
// (aws-lambda-go sends every response so) takes a buffer that starts small
// and doubles up to limit+1 bytes, so reading it holds at most 1.5 times
// the limit at once.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	switch n := r.ContentLength; {
	case n > limit:
		_, _ = io.CopyN(io.Discard, r.Body, limit+1)
		return nil, errBodyTooLarge
	case n >= 0:
		body := make([]byte, n)
		_, err := io.ReadFull(r.Body, body)
		return body, err
	}
	body := make([]byte, 0, min(chunkedBodyStart, limit+1))
	for {
		if len(body) == cap(body) {
			if int64(len(body)) > limit {
				return nil, errBodyTooLarge
			}
			grown := make([]byte, len(body), min(2*int64(cap(body)), limit+1))
			copy(grown, body)
			body = grown
		}
		n, err := r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if errors.Is(err, io.EOF) {
			if int64(len(body)) > limit {
				return nil, errBodyTooLarge
			}
			return body, nil
		}
		if err != nil {
			return body, err
		}
	}
}

// payloadTooLarge answers the runtime 413 for a body over limit.
func payloadTooLarge(w http.ResponseWriter, limit int) {
	runtimeAPIError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
		"Exceeded maximum allowed payload size ("+strconv.Itoa(limit)+" bytes).")
}

// responseTooLarge is what the caller gets when the function's response is
// over the limit.
var responseTooLarge = mustJSON(map[string]string{
	"errorMessage": "Response payload size exceeded maximum allowed payload size (" + strconv.Itoa(lamina.MaxRuntimeAPIPayload) + " bytes).",
	"errorType":    lamina.ErrorTypeResponseTooLarge,
})

// errorTooLarge is what the caller gets when the runtime's error post is
// over maxRuntimeErrorBody.
var errorTooLarge = mustJSON(map[string]string{
	"errorMessage": "Error payload size exceeded maximum allowed payload size (" + strconv.Itoa(maxRuntimeErrorBody) + " bytes).",
	"errorType":    lamina.ErrorTypeResponseTooLarge,
})

func (env *environment) handleResponse(w http.ResponseWriter, r *http.Request) {
	inv := env.claim(w, r.PathValue("id"), "InvocationResponse")
	if inv == nil {
		return
	}
	if mode := r.Header.Get("Lambda-Runtime-Function-Response-Mode"); mode != "" && mode != "streaming" {
		runtimeAPIError(w, http.StatusBadRequest, "InvalidFunctionResponseMode", "Invalid function response mode")
		inv.answer(answer{payload: errorPayload("Runtime.InvalidResponseModeHeader", "Invalid response mode header: "+mode), errorType: "Runtime.InvalidResponseModeHeader"})
		return
	}
	body, err := readBody(r, lamina.MaxRuntimeAPIPayload)
	switch {
	case errors.Is(err, errBodyTooLarge):
		payloadTooLarge(w, lamina.MaxRuntimeAPIPayload)
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
	inv := env.claim(w, r.PathValue("id"), "InvocationErrorResponse")
	if inv == nil {
		return
	}
	body, err := readBody(r, maxRuntimeErrorBody)
	if errors.Is(err, errBodyTooLarge) {
		payloadTooLarge(w, maxRuntimeErrorBody)
		inv.answer(answer{payload: errorTooLarge, errorType: lamina.ErrorTypeResponseTooLarge})
		return
	}
	// A body cut short still reports the error, as the emulator does.
	accepted(w)
	payload, typ := functionError(r.Header.Get("Lambda-Runtime-Function-Error-Type"), body)
	inv.answer(answer{payload: payload, errorType: typ})
}

// handleInitError takes the runtime's report of a failed init: once, and
// only before its first /next.
func (env *environment) handleInitError(w http.ResponseWriter, r *http.Request) {
	env.mu.Lock()
	from := env.state
	if from == stateStarted {
		env.state = stateInitError
	}
	env.mu.Unlock()
	if from != stateStarted {
		refuseTransition(w, from, "InitError")
		return
	}
	body, err := readBody(r, maxRuntimeErrorBody)
	if errors.Is(err, errBodyTooLarge) {
		payloadTooLarge(w, maxRuntimeErrorBody)
		body = nil
	} else {
		accepted(w)
	}
	payload, typ := functionError(r.Header.Get("Lambda-Runtime-Function-Error-Type"), body)
	env.initFailed <- answer{payload: payload, errorType: typ} // buffered; sent once
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
