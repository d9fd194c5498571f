// Package frontend serves Lamina's HTTP APIs: the Lambda REST API
// (2015-03-31 and its later route families) with SigV4 authentication,
// validation, limits and AWS's error shapes. It keeps no state of its own:
// everything it knows comes from the store and the manager, so any number of
// frontends can stand behind a load balancer.
package frontend

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/sigv4"
	"github.com/lamina-project/lamina/internal/store"
)

// Config is what a frontend needs to know about the deployment it serves.
type Config struct {
	Region    string // e.g. "us-east-1"
	AccountID string // 12 digits
	// ConcurrencyLimit is the account's concurrent executions limit, shown by
	// GetAccountSettings.
	ConcurrencyLimit int
	// Credentials returns the secret of an access key ID, or false when the key
	// is unknown.
	Credentials func(accessKeyID string) (secret string, ok bool)
	// CodeURLKey signs the temporary download URLs of function code.
	CodeURLKey []byte
	// Logger receives request failures; nil means slog.Default().
	Logger *slog.Logger
}

// Frontend is the Lambda API server. Create one with New and serve it with
// Handler.
type Frontend struct {
	cfg      Config
	store    *store.Store
	verifier *sigv4.Verifier
	log      *slog.Logger
	mux      *http.ServeMux
}

// defaultMaxBody bounds the body of every operation that declares no larger
// limit.
const defaultMaxBody = 1 << 20

// New returns a frontend backed by st.
func New(cfg Config, st *store.Store) *Frontend {
	f := &Frontend{
		cfg:      cfg,
		store:    st,
		verifier: &sigv4.Verifier{Service: "lambda", Region: cfg.Region, Lookup: cfg.Credentials},
		log:      cfg.Logger,
		mux:      http.NewServeMux(),
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.routes()
	return f
}

// Handler returns the HTTP handler of the whole API.
func (f *Frontend) Handler() http.Handler { return f.mux }

// operation describes one API operation: its name (as AWS calls it), the
// largest body it accepts and what answers a larger one, and its handler.
type operation struct {
	name    string
	maxBody int64
	// tooLarge returns the error for a body over maxBody; nil means 413
	// RequestEntityTooLargeException.
	tooLarge func(limit int64, op string) *lamina.Error
	handle   func(*request) error
	// public operations carry their own authentication (a signed URL) and
	// skip SigV4.
	public bool
}

// request is one API call being served.
type request struct {
	w         http.ResponseWriter
	r         *http.Request
	body      []byte
	requestID string
	op        string
}

// handle registers op for pattern ("METHOD /path"), and for the same path
// with a trailing slash, which older SDKs send for some operations.
func (f *Frontend) handle(pattern string, op operation) {
	h := f.serve(op)
	f.mux.Handle(pattern, h)
	if !strings.HasSuffix(pattern, "/") {
		f.mux.Handle(pattern+"/{$}", h)
	}
}

func (f *Frontend) serve(op operation) http.HandlerFunc {
	if op.maxBody == 0 {
		op.maxBody = defaultMaxBody
	}
	return func(w http.ResponseWriter, r *http.Request) {
		rq := &request{w: w, r: r, requestID: uuid.NewString(), op: op.name}
		w.Header().Set("x-amzn-RequestId", rq.requestID)
		err := f.admit(rq, op)
		if err == nil {
			err = op.handle(rq)
		}
		if err != nil {
			f.writeError(rq, err)
		}
	}
}

// admit reads the body within the operation's limit and authenticates the
// request.
func (f *Frontend) admit(rq *request, op operation) error {
	tooLarge := func() error {
		if op.tooLarge != nil {
			return op.tooLarge(op.maxBody, op.name)
		}
		return lamina.ErrEntityTooLarge("Request must be smaller than %d bytes for the %s operation", op.maxBody, op.name)
	}
	if rq.r.ContentLength > op.maxBody {
		return tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(rq.w, rq.r.Body, op.maxBody))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return tooLarge()
	}
	if err != nil {
		return lamina.ErrInvalidRequestContent("Could not read request body: %v", err)
	}
	rq.body = body
	if op.public {
		return nil
	}
	if _, err := f.verifier.Verify(rq.r, body); err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return &lamina.Error{Status: se.Status, Code: se.Code, Message: se.Message, Type: "User"}
		}
		return err
	}
	return nil
}

// decode parses the request body as JSON into v. An empty body leaves v as is.
func (rq *request) decode(v any) error {
	if len(rq.body) == 0 {
		return nil
	}
	if err := json.Unmarshal(rq.body, v); err != nil {
		return lamina.ErrInvalidRequestContent("Could not parse request body into json: %v", err)
	}
	return nil
}

// json answers with status and v as JSON.
func (rq *request) json(status int, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s response: %w", rq.op, err)
	}
	rq.w.Header().Set("Content-Type", "application/json")
	rq.w.WriteHeader(status)
	_, _ = rq.w.Write(data)
	return nil
}

// noContent answers with status and no body.
func (rq *request) noContent(status int) error {
	rq.w.WriteHeader(status)
	return nil
}

// writeError answers with err in AWS's error shape. Errors that are not
// *lamina.Error are Lamina's own failures: they are logged and shown to the
// caller as a ServiceException without internal detail.
func (f *Frontend) writeError(rq *request, err error) {
	var le *lamina.Error
	if !errors.As(err, &le) {
		f.log.Error("request failed", "op", rq.op, "request_id", rq.requestID, "err", err)
		le = lamina.ErrService("An internal error occurred (request %s).", rq.requestID)
	}
	body := map[string]string{le.MessageKey(): le.Message}
	if le.Type != "" {
		body["Type"] = le.Type
	}
	if le.Reason != "" {
		body["Reason"] = le.Reason
	}
	data, _ := json.Marshal(body)
	h := rq.w.Header()
	h.Set("X-Amzn-ErrorType", le.Code)
	h.Set("Content-Type", "application/json")
	rq.w.WriteHeader(le.Status)
	_, _ = rq.w.Write(data)
}

// unknownOperation answers requests no route serves.
func (f *Frontend) unknownOperation(rq *request) error {
	return lamina.ErrUnknownOperation()
}
