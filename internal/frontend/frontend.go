// Package frontend serves Lamina's HTTP APIs: the Lambda REST API
// (2015-03-31 and its later route families) with SigV4 authentication,
// validation, limits and AWS's error shapes. It keeps no state of its own:
// everything it knows comes from the store and the manager, so any number of
// frontends can stand behind a load balancer.
package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/async"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/eventbus"
	"github.com/lamina-project/lamina/internal/logs"
	"github.com/lamina-project/lamina/internal/netlimit"
	"github.com/lamina-project/lamina/internal/policy"
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
	// Credentials returns what is known of an access key ID presented with
	// a session token ("" for none): its secret and who it belongs to (a
	// *credentials.Session for a function's temporary credentials), or the
	// error that refuses it.
	Credentials func(accessKeyID, sessionToken string) (sigv4.Key, *sigv4.Error)
	// CodeURLKey signs the temporary download URLs of function code.
	CodeURLKey []byte
	// Logger receives request failures; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, when set, serves Prometheus metrics at GET /metrics, to
	// signed requests.
	Metrics http.Handler
	// APIBodies and URLBodies bound the request bodies of the API and of
	// the function URL listener: bytes in memory at once, minimum rate. Nil
	// bounds nothing.
	APIBodies, URLBodies *netlimit.Bodies
	// URLListen is the address of the function URL listener, for the
	// addresses the API shows.
	URLListen string
}

// Deps are the parts of the node a frontend talks to.
type Deps struct {
	Store *store.Store
	// Manager runs every synchronous invocation: the Invoke API's, function
	// URLs' and HTTP APIs'.
	Manager Manager
	Logs    *logs.Store
	Async   Async
	// Runtimes says which runtimes and architectures the node runs.
	Runtimes Runtimes
	// Cluster tells which nodes form the platform.
	Cluster Cluster
	// Services are the AWS services beside Lambda the API listener serves
	// (SQS…), each on its wire protocols; the frontend admits their
	// requests as it admits the Lambda API's.
	Services []*awsproto.Service
	// EventSources manages event source mappings; nil answers their
	// operations UnknownOperationException.
	EventSources EventSources
	// CodeSigningConfigs is the table of code signing configs
	// (OpenCodeSigningConfigs); nil answers their operations with a
	// ServiceException.
	CodeSigningConfigs *CodeSigningConfigs
	// Objects, when set, is the S3 service that CreateFunction,
	// UpdateFunctionCode and PublishLayerVersion read S3Bucket/S3Key code
	// from.
	Objects Objects
	// Events is EventBridge's buses (PutEvents, custom buses), whose rules
	// the frontend manages.
	Events *eventbus.Service
}

// Objects reads objects of the node's S3 service.
type Objects interface {
	// ReadObject returns a whole object of at most limit bytes; a missing
	// bucket or key is an *awsproto.Error (NoSuchBucket, NoSuchKey).
	ReadObject(ctx context.Context, bucket, key string, limit int64) ([]byte, error)
}

// Manager decides whether and where invocations run, and reports
// provisioned environments: the worker manager (*manager.Manager), seen
// from the frontend.
type Manager interface {
	// Resolve returns the function version an invocation of function with
	// qualifier runs (an alias's weighted routing chooses here), or an error
	// wrapping store.ErrNotFound.
	Resolve(ctx context.Context, function, qualifier string) (*lamina.Function, error)
	// Invoke runs an invocation of a version Resolve returned. Throttles
	// are *lamina.Error 429; a function's failure is a result.
	Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error)
	// Provisioned counts the initialised (allocated) and idle (available)
	// environments of the provisioned concurrency config of function's
	// qualifier.
	Provisioned(ctx context.Context, function, qualifier string) (allocated, available int)
}

// Async queues asynchronous invocations and reports on them: the async
// dispatcher, seen from the frontend.
type Async interface {
	Submit(ctx context.Context, ev *async.Event) error
	Status(ctx context.Context, function string) (*async.Status, error)
}

// Frontend is the API server. Create one with New and serve it with Handler.
type Frontend struct {
	cfg       Config
	store     *store.Store
	manager   Manager
	logs      *logs.Store
	async     Async
	runtimes  Runtimes
	cluster   Cluster
	policies  *policy.Checker
	objects   Objects
	verifiers map[string]*sigv4.Verifier // by signing service name
	log       *slog.Logger
	mux       *http.ServeMux // the Lambda API's routes
	// operations are the Lambda API's operations by route pattern.
	operations  map[string]operation
	api         *awsproto.Mux // the API listener's dispatcher
	sources     EventSources
	events      *eventbus.Service
	codeSigning *CodeSigningConfigs
	// liveTails counts the Live Tail sessions streaming at once.
	liveTails atomic.Int64
}

// defaultMaxBody bounds the body of every operation that declares no larger
// limit.
const defaultMaxBody = 1 << 20

// Signing service names of the APIs a frontend serves.
const (
	serviceLambda = "lambda"
	serviceLogs   = "logs"
	serviceEvents = "events"
)

// New returns a frontend for the node parts in deps.
func New(cfg Config, deps Deps) *Frontend {
	f := &Frontend{
		cfg:         cfg,
		store:       deps.Store,
		manager:     deps.Manager,
		logs:        deps.Logs,
		async:       deps.Async,
		runtimes:    deps.Runtimes,
		cluster:     deps.Cluster,
		sources:     deps.EventSources,
		events:      deps.Events,
		policies:    &policy.Checker{Store: deps.Store},
		objects:     deps.Objects,
		codeSigning: deps.CodeSigningConfigs,
		verifiers:   map[string]*sigv4.Verifier{},
		log:         cfg.Logger,
		mux:         http.NewServeMux(),
		operations:  map[string]operation{},
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.routes()
	f.api = awsproto.NewMux(awsproto.MuxConfig{Admission: f, Fallback: f.mux, MapError: mapStoreError, Logger: f.log})
	services := append([]*awsproto.Service{f.logsService(), f.eventsService()}, deps.Services...)
	for _, s := range services {
		f.api.Register(s)
	}
	for _, service := range []string{serviceLambda} {
		f.verifiers[service] = &sigv4.Verifier{Service: service, Region: cfg.Region, Lookup: cfg.Credentials}
	}
	for _, s := range services {
		// S3 signs its path as sent and may stream its payloads.
		f.verifiers[s.SigningName] = &sigv4.Verifier{Service: s.SigningName, Region: cfg.Region, Lookup: cfg.Credentials, S3: s.SigningName == "s3"}
	}
	return f
}

// Handler returns the HTTP handler of the whole API: the dispatcher that
// routes each request to the Lambda API or to a service beside it.
func (f *Frontend) Handler() http.Handler { return f.api }

// operation describes one API operation: its name (as AWS calls it), the
// service it belongs to, the largest body it accepts and what answers a
// larger one, and its handler.
type operation struct {
	name string
	// service is the SigV4 signing name; empty means "lambda".
	service string
	// resolve, when set, names the operation from its body once the body
	// is read and its signature checked (the query protocol's Action).
	resolve func(body []byte) (string, error)
	maxBody int64
	// bodyCopies is how many times the size of its body the operation holds
	// in memory at its peak (the body, what is decoded from it, the copies
	// the store makes), reserved from the body budget; 0 means 1.
	bodyCopies int64
	// tooLarge returns the error for a body over maxBody; nil means 413
	// RequestEntityTooLargeException.
	tooLarge func(limit int64, op string) *lamina.Error
	handle   func(*request) error
	// public operations carry their own authentication (a signed URL) and
	// skip SigV4.
	public bool
	// refused is why Lamina refuses the operation, "" when it serves it.
	refused string
}

// request is one API call being served.
type request struct {
	w         http.ResponseWriter
	r         *http.Request
	body      []byte
	requestID string
	op        string
	// accessKeyID is the key the request is signed with, once admitted.
	accessKeyID string
	// identity is what the key lookup said the key belongs to.
	identity any
	// json11 answers in AWS's JSON 1.1 protocol (the Logs and EventBridge
	// subsets).
	json11 bool
}

// handle registers op for pattern ("METHOD /path"), and for the same path
// with a trailing slash, which older SDKs send for some operations.
func (f *Frontend) handle(pattern string, op operation) {
	f.operations[pattern] = op
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
		release, err := f.admit(rq, op)
		defer release()
		if err == nil {
			err = op.handle(rq)
		}
		if err != nil {
			f.writeError(rq, err)
		}
	}
}

// decode parses the request body as JSON into v. An empty body leaves v as
// is. The body is dropped: a code upload's can be collected while the zip
// decoded from it is checked and stored.
func (rq *request) decode(v any) error {
	body := rq.body
	rq.body = nil
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
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
	contentType := "application/json"
	if rq.json11 {
		contentType = "application/x-amz-json-1.1"
	}
	rq.w.Header().Set("Content-Type", contentType)
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
		if le = storeError(err); le == nil {
			f.log.Error("request failed", "op", rq.op, "request_id", rq.requestID, "err", err)
			le = lamina.ErrService("An internal error occurred (request %s).", rq.requestID)
		} else if le.Status >= 500 {
			f.log.Warn("request refused", "op", rq.op, "request_id", rq.requestID, "err", err)
			rq.w.Header().Set("Retry-After", strconv.Itoa(storageRetryAfter))
		}
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

// storageRetryAfter is the Retry-After (seconds) of answers refused while
// storage is unavailable: the node checks every second whether it healed.
const storageRetryAfter = 5

// mapStoreError turns a failure of the store that is the same whatever the
// operation into its AWS error, for the services beside Lambda; it returns
// other errors unchanged.
func mapStoreError(err error) error {
	if le := storeError(err); le != nil {
		return le
	}
	return err
}

// storeError returns the AWS error for a failure of the store that is the
// same whatever the operation, or nil.
func storeError(err error) *lamina.Error {
	var unavailable *store.UnavailableError
	switch {
	case errors.As(err, &unavailable) && unavailable.Full:
		return &lamina.Error{Status: http.StatusServiceUnavailable, Code: "ServiceException", Type: "Service",
			Message: "The request could not be stored: storage is full. Retry once space is freed."}
	case errors.Is(err, store.ErrUnavailable):
		return &lamina.Error{Status: http.StatusServiceUnavailable, Code: "ServiceException", Type: "Service",
			Message: "The request could not be stored: storage is unavailable. Retry later."}
	case errors.Is(err, store.ErrCodeStorageExceeded):
		return &lamina.Error{Status: http.StatusBadRequest, Code: "CodeStorageExceededException", Type: "User",
			Message: "Code storage limit exceeded."}
	case errors.Is(err, store.ErrConflict):
		var conflict *store.ConflictError
		errors.As(err, &conflict)
		return lamina.ErrConflict("The operation cannot be performed at this time. An update is in progress for resource: %s", conflict.Resource)
	case errors.Is(err, store.ErrNotFound):
		// A resource deleted while the request was changing it.
		return lamina.ErrNotFound("The resource you requested does not exist.")
	}
	return nil
}

// unknownOperation answers requests no route serves.
func (f *Frontend) unknownOperation(rq *request) error {
	return lamina.ErrUnknownOperation()
}

// targetOperation adapts a handler of a JSON 1.1 operation (the Logs and
// EventBridge subsets) to the dispatcher, which routes it by X-Amz-Target,
// admits it and writes its errors.
func targetOperation(name string, handle func(*request) error) *awsproto.Operation {
	return awsproto.Raw(name, func(c *awsproto.Call, w http.ResponseWriter) error {
		return handle(&request{w: w, r: c.Request, body: c.Body, requestID: c.RequestID, op: name,
			accessKeyID: c.AccessKeyID, json11: true})
	})
}
