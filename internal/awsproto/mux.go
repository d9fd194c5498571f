package awsproto

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina/internal/sigv4"
)

// Admission admits a request to an operation, as the API listener does for
// every request: it authenticates the request from its headers (SigV4,
// scoped to Gate.Service), reads its body within Gate.MaxBody, the
// listener's budget of body bytes in memory and its minimum rate, then
// checks the signature over the body. When the operation is named in the
// body (the query protocol's Action), Gate.Resolve names it once the body
// is read and the signature checked, before anything that depends on the
// operation (authorization). The frontend implements it.
type Admission interface {
	// Admit returns the admitted request, or the error to answer with
	// (a *lamina.Error or an *Error). Once done with the body, the caller
	// calls the Admitted's Release.
	Admit(w http.ResponseWriter, r *http.Request, g Gate) (*Admitted, error)
}

// Gate is what admitting a request to an operation needs to know.
type Gate struct {
	// Service is the SigV4 signing name the request must be scoped to.
	Service string
	// Operation is the operation's name; empty when Resolve names it.
	Operation string
	// MaxBody bounds the body; BodyCopies is how many times its size is
	// reserved from the listener's budget (zero means 1).
	MaxBody, BodyCopies int64
	// Resolve, when set, names the operation from the body.
	Resolve func(body []byte) (operation string, err error)
	// Stream leaves the body unread (Operation.Stream): the signature is
	// checked against the payload the request declares.
	Stream bool
}

// Admitted is a request that passed admission.
type Admitted struct {
	Body        []byte
	AccessKeyID string
	// Identity is what the key lookup said the key belongs to.
	Identity any
	// Operation is Gate.Operation, or what Gate.Resolve named.
	Operation string
	// Release gives back the body's reservation.
	Release func()
	// Auth and BodyReader are set when Gate.Stream was: the request's
	// authentication and its unread body (see Call).
	Auth       *sigv4.Auth
	BodyReader io.Reader
}

// Mux routes the requests of the API listener to the services registered
// with it, and every other request to the Lambda API (its fallback):
//
//   - a request with X-Amz-Target goes to the JSON service of that prefix
//     (AmazonSQS., Logs_20140328., AWSEvents.…);
//   - a request whose credential scope names a service that speaks the
//     query protocol (sqs, sns, sts…) goes to it: its Action names the
//     operation;
//   - a request whose credential scope names a REST service goes to the
//     operation its Route finds: S3's path-style (/bucket/key) and
//     virtual-host (bucket.s3.<region>.localhost, bucket.localhost)
//     requests are all scoped to "s3";
//   - anything else goes to the Lambda API, which answers an unknown route
//     itself.
type Mux struct {
	admission Admission
	fallback  http.Handler
	mapError  func(error) error
	log       *slog.Logger
	byTarget  map[string]*Service
	byScope   map[string]*Service
}

// MuxConfig is what a Mux needs.
type MuxConfig struct {
	Admission Admission
	// Fallback serves every request no service takes: the Lambda API.
	Fallback http.Handler
	// MapError, when set, turns errors of the node's parts (the store's
	// "unavailable") into the errors their callers see, before they are
	// written; it returns other errors unchanged.
	MapError func(error) error
	// Logger receives Lamina's own failures; nil means slog.Default().
	Logger *slog.Logger
}

// NewMux returns a dispatcher with no services yet.
func NewMux(cfg MuxConfig) *Mux {
	m := &Mux{admission: cfg.Admission, fallback: cfg.Fallback, mapError: cfg.MapError, log: cfg.Logger,
		byTarget: map[string]*Service{}, byScope: map[string]*Service{}}
	if m.log == nil {
		m.log = slog.Default()
	}
	return m
}

// Register adds a service. It panics when another service claims the same
// X-Amz-Target prefix or, for query and REST services, signing name: a
// programming error.
func (m *Mux) Register(s *Service) {
	if s.TargetPrefix != "" {
		if m.byTarget[s.TargetPrefix] != nil {
			panic("awsproto: two services with X-Amz-Target prefix " + s.TargetPrefix)
		}
		m.byTarget[s.TargetPrefix] = s
	}
	if s.QueryVersion != "" || s.Route != nil {
		if m.byScope[s.SigningName] != nil {
			panic("awsproto: two query or REST services signed as " + s.SigningName)
		}
		m.byScope[s.SigningName] = s
	}
}

// ServeHTTP routes r.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		prefix, op := target, ""
		if i := strings.LastIndexByte(target, '.'); i >= 0 {
			prefix, op = target[:i], target[i+1:]
		}
		s := m.byTarget[prefix]
		if s == nil {
			s = &Service{JSONVersion: "1.1"}
		}
		m.serveJSON(w, r, s, op)
		return
	}
	if s := m.byScope[sigv4.ScopeService(r)]; s != nil {
		if s.Route != nil {
			m.serveREST(w, r, s)
		} else {
			m.serveQuery(w, r, s)
		}
		return
	}
	m.fallback.ServeHTTP(w, r)
}

// serveJSON serves a request of a JSON protocol.
func (m *Mux) serveJSON(w http.ResponseWriter, r *http.Request, s *Service, name string) {
	id := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", id)
	op := s.ops[name]
	if op == nil {
		writeJSONError(w, s, UnknownOperation(name))
		return
	}
	c := &Call{Request: r, RequestID: id, Protocol: JSON, Service: s, Operation: name}
	err := m.admitAndServe(w, c, op, Gate{Service: s.SigningName, Operation: name, MaxBody: op.maxBody(), BodyCopies: op.BodyCopies})
	if err != nil {
		writeJSONError(w, s, m.answer(c, err))
	}
}

// serveQuery serves a request of the query protocol, whose Action (in the
// body or the URL) names the operation.
func (m *Mux) serveQuery(w http.ResponseWriter, r *http.Request, s *Service) {
	id := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", id)
	c := &Call{Request: r, RequestID: id, Protocol: Query, Service: s}
	resolve := func(body []byte) (string, error) {
		form, err := url.ParseQuery(r.URL.RawQuery)
		if err == nil && len(body) > 0 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			var fromBody url.Values
			if fromBody, err = url.ParseQuery(string(body)); err == nil {
				for k, v := range fromBody {
					form[k] = append(form[k], v...)
				}
			}
		}
		if err != nil {
			return "", &Error{Status: http.StatusBadRequest, Code: "MalformedQueryString", Message: "The query string is malformed: " + err.Error()}
		}
		c.form = form
		action := form.Get("Action")
		if action == "" {
			return "", &Error{Status: http.StatusBadRequest, Code: "MissingAction", Message: "The request must contain the parameter Action."}
		}
		op := s.ops[action]
		if op == nil {
			return "", UnknownOperation(action)
		}
		if int64(len(body)) > op.maxBody() {
			return "", &Error{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLarge",
				Message: "The request body is larger than the " + action + " operation takes."}
		}
		return action, nil
	}
	err := m.admitAndServe(w, c, nil, Gate{Service: s.SigningName, MaxBody: s.maxBody, Resolve: resolve})
	if err != nil {
		writeQueryError(w, s, id, m.answer(c, err))
	}
}

// serveREST serves a request of a REST service, whose Route finds its
// operation.
func (m *Mux) serveREST(w http.ResponseWriter, r *http.Request, s *Service) {
	id := uuid.NewString()
	c := &Call{Request: r, RequestID: id, Protocol: s.REST, Service: s}
	writeErr := func(e *Error) {
		if s.MapError != nil {
			e = s.MapError(e)
		}
		if s.REST == RESTXML {
			writeRESTXMLError(w, r, id, e)
		} else {
			writeRESTJSONError(w, e)
		}
	}
	if s.REST == RESTXML {
		w.Header().Set("x-amz-request-id", id)
	} else {
		w.Header().Set("x-amzn-RequestId", id)
	}
	op := s.Route(r)
	if op == nil {
		writeErr(&Error{Status: http.StatusNotImplemented, Code: "NotImplemented",
			Message: "A header or query you provided implies functionality that is not implemented."})
		return
	}
	c.Operation = op.Name
	err := m.admitAndServe(w, c, op, Gate{Service: s.SigningName, Operation: op.Name, MaxBody: op.maxBody(), BodyCopies: op.BodyCopies, Stream: op.Stream})
	if err != nil {
		writeErr(m.answer(c, err))
	}
}

// admitAndServe admits the request and runs its operation (op, or the one
// the gate resolves), returning the error to answer with, if any: an error
// after the operation began its answer is logged and dropped.
func (m *Mux) admitAndServe(w http.ResponseWriter, c *Call, op *Operation, g Gate) error {
	adm, err := m.admission.Admit(w, c.Request, g)
	if adm != nil && adm.Release != nil {
		defer adm.Release()
	}
	if err != nil {
		return err
	}
	c.Body, c.AccessKeyID, c.Identity, c.Operation = adm.Body, adm.AccessKeyID, adm.Identity, adm.Operation
	c.Auth, c.BodyReader = adm.Auth, adm.BodyReader
	if op == nil {
		op = c.Service.ops[c.Operation]
	}
	tw := &trackingWriter{ResponseWriter: w}
	err = op.serve(c, tw)
	if err != nil && tw.written {
		m.log.Error("request failed after its answer began", "service", c.Service.SigningName, "op", c.Operation, "request_id", c.RequestID, "err", err)
		return nil
	}
	return err
}

// answer returns the *Error to write for err: Lamina's own failures are
// logged and answered with InternalFailure, without their detail.
func (m *Mux) answer(c *Call, err error) *Error {
	if m.mapError != nil {
		err = m.mapError(err)
	}
	if e := asError(err); e != nil {
		if e.Status >= 500 {
			m.log.Warn("request refused", "service", c.Service.SigningName, "op", c.Operation, "request_id", c.RequestID, "err", e)
		}
		return e
	}
	m.log.Error("request failed", "service", c.Service.SigningName, "op", c.Operation, "request_id", c.RequestID, "err", err)
	return internalFailure(c.RequestID)
}

// trackingWriter notes whether an answer has begun.
type trackingWriter struct {
	http.ResponseWriter
	written bool
}

func (t *trackingWriter) WriteHeader(status int) {
	t.written = true
	t.ResponseWriter.WriteHeader(status)
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	t.written = true
	return t.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
