package frontend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/credentials"
	"github.com/lamina-project/lamina/internal/netlimit"
	"github.com/lamina-project/lamina/internal/sigv4"
)

// Admission: what a request must pass before its operation runs. It is
// authenticated from its headers first, so that nothing of the body of a
// request that will be refused is read; then its body is read within the
// operation's size limit, the listener's budget of body bytes in memory and
// its minimum rate; then its signature is checked over the body.

// retryAfter is the Retry-After (seconds) of answers that ask the client to
// come back: a spent body budget, a full listener.
const retryAfter = "1"

// refusedBodyGrace bounds how long net/http may go on reading (to discard
// it) the body of a request refused before its body was read, so that a
// slow client cannot hold the connection after the answer.
const refusedBodyGrace = time.Second

// Errors of readBody; the callers turn them into their listener's answers.
var (
	errBodyTooLarge  = errors.New("request body over its limit")
	errBodyThrottled = errors.New("request body budget spent")
	errBodySlow      = errors.New("request body arrived too slowly")
)

// admit authenticates the request from its headers, reads its body within
// the operation's limit and the API listener's bounds, and verifies its
// signature. The returned function gives back the body's reservation; call
// it once the operation is done with the body.
func (f *Frontend) admit(rq *request, op operation) (release func(), err error) {
	release = func() {}
	defer func() {
		if err != nil && rq.body == nil {
			boundDiscard(rq.w, rq.r)
		}
	}()
	var auth *sigv4.Auth
	service := op.service
	if service == "" {
		service = serviceLambda
	}
	if !op.public {
		if auth, err = f.verifiers[service].Authenticate(rq.r); err != nil {
			return release, authError(err)
		}
		// An operation named in the body is authorized once it is read.
		if op.resolve == nil {
			if err := f.authorize(auth, service, op.name); err != nil {
				return release, err
			}
		}
	}
	tooLarge := func() error {
		if op.tooLarge != nil {
			return op.tooLarge(op.maxBody, op.name)
		}
		return lamina.ErrEntityTooLarge("Request must be smaller than %d bytes for the %s operation", op.maxBody, op.name)
	}
	body, release, err := readBody(rq.w, rq.r, op.maxBody, max(op.bodyCopies, 1), f.cfg.APIBodies, auth)
	switch {
	case errors.Is(err, errBodyTooLarge):
		return release, tooLarge()
	case errors.Is(err, errBodyThrottled):
		rq.w.Header().Set("Retry-After", retryAfter)
		e := lamina.ErrTooManyRequests("CallerRateLimitExceeded")
		e.Message = "Too many request bodies in flight on this node; retry later."
		return release, e
	case errors.Is(err, errBodySlow):
		return release, &lamina.Error{Status: http.StatusRequestTimeout, Code: "RequestTimeoutException", Type: "User",
			Message: fmt.Sprintf("The request body arrived slower than %d bytes per second.", f.cfg.APIBodies.Rate().BytesPerSecond)}
	case err != nil:
		return release, lamina.ErrInvalidRequestContent("Could not read request body: %v", err)
	}
	rq.body = body
	if auth != nil {
		if err := auth.Verify(); err != nil {
			return release, authError(err)
		}
		rq.accessKeyID, rq.identity = auth.AccessKeyID(), auth.Identity()
	}
	if op.resolve != nil {
		if rq.op, err = op.resolve(body); err != nil {
			return release, err
		}
		if auth != nil {
			if err := f.authorize(auth, service, rq.op); err != nil {
				return release, err
			}
		}
	}
	return release, nil
}

// Admit admits a request to an operation of a service beside Lambda
// exactly as admit admits the Lambda API's (awsproto.Admission).
func (f *Frontend) Admit(w http.ResponseWriter, r *http.Request, g awsproto.Gate) (*awsproto.Admitted, error) {
	name := g.Operation
	if name == "" {
		name = g.Service
	}
	if g.Stream {
		return f.admitStream(w, r, g)
	}
	rq := &request{w: w, r: r, op: g.Operation}
	release, err := f.admit(rq, operation{name: name, service: g.Service, resolve: g.Resolve,
		maxBody: max(g.MaxBody, 1), bodyCopies: g.BodyCopies})
	return &awsproto.Admitted{Body: rq.body, AccessKeyID: rq.accessKeyID, Identity: rq.identity, Operation: rq.op, Release: release}, err
}

// authorize refuses, before its body is read (or once it names the
// operation, for protocols that name it there), a request whose caller may
// not call the operation: a function's temporary credentials reach only
// the data operations of their scope (credentials.Allows). Every service
// the API serves passes here, keyed by its signing name and AWS's name of
// the operation.
func (f *Frontend) authorize(auth *sigv4.Auth, service, operation string) error {
	if credentials.Allows(auth.Identity(), service, operation) {
		return nil
	}
	s, _ := auth.Identity().(*credentials.Session) // only temporary credentials are refused
	action := service + ":" + operation
	return &lamina.Error{Status: http.StatusForbidden, Code: "AccessDeniedException", Type: "User",
		Message: "User: " + s.AssumedRoleARN(f.cfg.AccountID) + " is not authorized to perform: " + action + " because no identity-based policy allows the " + action + " action"}
}

// admitStream admits a request whose operation reads its body itself:
// authenticated from its headers, its signature checked against the
// payload it declares, its body left unread and handed on within the
// listener's minimum rate.
func (f *Frontend) admitStream(w http.ResponseWriter, r *http.Request, g awsproto.Gate) (*awsproto.Admitted, error) {
	none := &awsproto.Admitted{Operation: g.Operation, Release: func() {}}
	auth, err := f.verifiers[g.Service].Authenticate(r)
	if err == nil {
		err = auth.VerifyDeclared()
	}
	if err != nil {
		boundDiscard(w, r)
		return none, authError(err)
	}
	if err := f.authorize(auth, g.Service, g.Operation); err != nil {
		boundDiscard(w, r)
		return none, err
	}
	rc := http.NewResponseController(w)
	release := func() {
		if f.cfg.APIBodies.Rate().BytesPerSecond > 0 {
			_ = rc.SetReadDeadline(time.Time{})
		}
	}
	return &awsproto.Admitted{Operation: g.Operation, AccessKeyID: auth.AccessKeyID(), Identity: auth.Identity(), Auth: auth,
		BodyReader: f.cfg.APIBodies.Reader(r.Body, rc.SetReadDeadline), Release: release}, nil
}

// authError turns a SigV4 refusal into AWS's error.
func authError(err error) error {
	var se *sigv4.Error
	if errors.As(err, &se) {
		return &lamina.Error{Status: se.Status, Code: se.Code, Message: se.Message, Type: "User"}
	}
	return err
}

// readBody reads r's body, of at most limit bytes, into memory within the
// listener's bounds: a reservation of copies times the body's size (its
// Content-Length, or limit when it has none) from the budget comes first,
// then the body must arrive at the minimum rate. auth, when not nil, hashes
// the body as it arrives, for its signature. It returns the body and the
// function that gives the reservation back, which the caller calls once
// done with the body.
func readBody(w http.ResponseWriter, r *http.Request, limit, copies int64, bodies *netlimit.Bodies, auth *sigv4.Auth) ([]byte, func(), error) {
	none := func() {}
	size := r.ContentLength
	switch {
	case size > limit:
		return nil, none, errBodyTooLarge
	case size == 0 || r.Body == nil || r.Body == http.NoBody:
		return []byte{}, none, nil
	case size < 0:
		size = limit
	}
	reserved := copies * size
	if !bodies.Reserve(reserved) {
		return nil, none, errBodyThrottled
	}
	release := func() { bodies.Release(reserved) }

	rc := http.NewResponseController(w)
	src := bodies.Reader(r.Body, rc.SetReadDeadline)
	if auth != nil {
		src = io.TeeReader(src, auth)
	}
	var body []byte
	var err error
	if r.ContentLength >= 0 {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(src, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(src, limit+1))
		if err == nil && int64(len(body)) > limit {
			err = errBodyTooLarge
		}
	}
	if bodies.Rate().BytesPerSecond > 0 {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = errBodySlow
	}
	if err != nil {
		release()
		return nil, none, err
	}
	if r.ContentLength < 0 {
		// Keep reserved only what the body holds (release sees the change).
		bodies.Release(reserved - copies*int64(len(body)))
		reserved = copies * int64(len(body))
	}
	return body, release, nil
}

// boundDiscard limits how long net/http may read the unread body of a
// refused request before it closes or reuses the connection.
func boundDiscard(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(refusedBodyGrace))
	}
}

// ConnectionRefusal is the complete HTTP response that answers a
// connection the API listener refused before reading a request: 429
// TooManyRequestsException when the client's address holds its share of
// connections, 503 ServiceException when the listener is full. Both ask
// the client to retry after a second, which the SDKs do.
func (f *Frontend) ConnectionRefusal(why netlimit.Refusal) []byte {
	var le *lamina.Error
	if why == netlimit.PerAddress {
		le = lamina.ErrTooManyRequests("CallerRateLimitExceeded")
		le.Message = "Too many connections from your address; retry later."
	} else {
		le = &lamina.Error{Status: http.StatusServiceUnavailable, Code: "ServiceException", Type: "Service",
			Message: "The server is at its connection limit; retry later."}
	}
	body := map[string]string{le.MessageKey(): le.Message, "Type": le.Type}
	if le.Reason != "" {
		body["Reason"] = le.Reason
	}
	h := http.Header{"X-Amzn-Errortype": {le.Code}, "X-Amzn-Requestid": {uuid.NewString()}}
	return rawResponse(le.Status, h, body)
}

// URLConnectionRefusal is ConnectionRefusal for the function URL listener,
// in function URLs' error shape.
func (f *Frontend) URLConnectionRefusal(why netlimit.Refusal) []byte {
	status, message := http.StatusTooManyRequests, "Rate Exceeded."
	if why == netlimit.Overall {
		status, message = http.StatusServiceUnavailable, "Service Unavailable"
	}
	return rawResponse(status, http.Header{}, map[string]string{"Message": message})
}

// rawResponse renders a JSON answer, with Retry-After, that closes the
// connection.
func rawResponse(status int, h http.Header, body any) []byte {
	data, _ := json.Marshal(body)
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", retryAfter)
	resp := &http.Response{
		StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Header: h, Close: true,
		ContentLength: int64(len(data)), Body: io.NopCloser(bytes.NewReader(data)),
	}
	var out bytes.Buffer
	_ = resp.Write(&out)
	return out.Bytes()
}

// refuseURL answers a request on the URL listener that is refused before
// its body is read.
func refuseURL(w http.ResponseWriter, r *http.Request, status int, message string) {
	boundDiscard(w, r)
	writeHTTPError(w, status, message)
}

// readURLBody reads the body of a request on the URL listener (at most a
// synchronous payload; auth, when not nil, hashes it), answering the
// request when that fails. It reports false then; otherwise the caller
// calls release once done with the body.
func (f *Frontend) readURLBody(w http.ResponseWriter, r *http.Request, auth *sigv4.Auth) (body []byte, release func(), ok bool) {
	body, release, err := readBody(w, r, lamina.MaxSyncPayload, 1, f.cfg.URLBodies, auth)
	switch {
	case err == nil:
		return body, release, true
	case errors.Is(err, errBodyThrottled):
		w.Header().Set("Retry-After", retryAfter)
		refuseURL(w, r, http.StatusTooManyRequests, "Rate Exceeded.")
	case errors.Is(err, errBodySlow):
		refuseURL(w, r, http.StatusRequestTimeout, "Request Timeout")
	case errors.Is(err, errBodyTooLarge):
		refuseURL(w, r, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
	default:
		refuseURL(w, r, http.StatusBadRequest, "Bad Request")
	}
	return nil, nil, false
}
