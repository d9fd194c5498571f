package eventsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/recursion"
	"github.com/lamina-project/lamina/internal/store"
)

// mappingsBucket holds the mappings by UUID; part of the on-disk format.
const mappingsBucket = "lamina_event_source_mappings"

// Manager runs invocations: the worker manager, seen from the pollers.
type Manager interface {
	// Resolve returns the function version an invocation of function with
	// qualifier runs, or an error wrapping store.ErrNotFound.
	Resolve(ctx context.Context, function, qualifier string) (*lamina.Function, error)
	// Invoke runs an invocation of a version Resolve returned. Throttles
	// are *lamina.Error 429; a function's failure is a result.
	Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error)
}

// Source is a kind of event source that mappings poll (SQS queues,
// Kinesis streams).
type Source interface {
	// Owns reports whether an event source ARN names a resource of this
	// kind.
	Owns(arn string) bool
	// Prepare checks in's parameters for this kind of source and applies
	// them to m (which holds the current configuration, or on create
	// nothing but the ARNs), filling in the source's defaults; it checks
	// that the source exists and suits fn.
	Prepare(ctx context.Context, m *Mapping, in *Input, fn *lamina.Function) error
	// Poll reads the mapping's source and invokes its function through t
	// until ctx ends, or the source fails (then it is started again
	// later).
	Poll(ctx context.Context, m *Mapping, t Target) error
}

// Target is what a poller invokes: the mapping's function.
type Target interface {
	// Invoke runs the function with payload; trace is the invocation's
	// trace header ("" for a new one). Throttles are *lamina.Error 429; a
	// function's failure is a result.
	Invoke(ctx context.Context, payload []byte, trace string) (*lamina.InvocationResult, error)
	// Admit decides whether an event with trace header trace may invoke the
	// function, or continues a recursive loop past its limit (see
	// recursion.Guard); it returns the invocation's trace header.
	Admit(ctx context.Context, trace string) (string, bool)
	// MaxConcurrency is how many invocations the poller may run at once:
	// the mapping's MaximumConcurrency, the function's reserved
	// concurrency, the account's limit, whichever is least.
	MaxConcurrency() int
	// Timeout is the function's timeout.
	Timeout(ctx context.Context) time.Duration
	// Role is the function's execution role (invokeIdentityArn).
	Role(ctx context.Context) string
	// ARN is the function's ARN, as the mapping names it.
	ARN() string
	// ReportLag tells how far behind its source the poller is, as of the
	// batch it just took (zero when it found nothing).
	ReportLag(lag time.Duration)
}

// Forgetter is a Source that keeps state of a mapping (a stream's
// checkpoints), which it forgets when the mapping is deleted.
type Forgetter interface {
	Forget(ctx context.Context, m *Mapping) error
}

// Config is what the service needs.
type Config struct {
	Region, AccountID string
	// Node names this node in the mappings' leases.
	Node    string
	Store   *store.Store
	Manager Manager
	Sources []Source
	// ConcurrencyLimit is the account's concurrent executions limit.
	ConcurrencyLimit int
	// MaxMappings bounds the account's mappings; zero means 1000.
	MaxMappings int
	// Metrics receives the pollers' lag; nil means not registered.
	Metrics *Metrics
	// Recursion stops recursive loops through queues; nil means a guard
	// whose counter is not registered.
	Recursion *recursion.Guard
	Logger    *slog.Logger
}

// Service is the event source mappings of one node: their API, and the
// supervisor that runs their pollers.
type Service struct {
	cfg      Config
	log      *slog.Logger
	mappings *store.Table[Mapping]
	kick     chan struct{} // wakes the supervisor

	mu      sync.Mutex
	running map[string]*runner // by UUID: the pollers this node runs
}

// defaultMaxMappings bounds the mappings when Config says nothing.
const defaultMaxMappings = 1000

// Open opens the mappings' bucket.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxMappings <= 0 {
		cfg.MaxMappings = defaultMaxMappings
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Recursion == nil {
		cfg.Recursion = recursion.NewGuard(nil, cfg.Logger)
	}
	t, err := store.OpenTable[Mapping](ctx, cfg.Store, mappingsBucket, "event source mapping")
	if err != nil {
		return nil, fmt.Errorf("event source mappings: %w", err)
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("part", "eventsource"), mappings: t, kick: make(chan struct{}, 1),
		running: map[string]*runner{}}, nil
}

// wake makes the supervisor look at the mappings now.
func (s *Service) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// source returns the kind of source an ARN names.
func (s *Service) source(arn string) (Source, error) {
	for _, src := range s.cfg.Sources {
		if src.Owns(arn) {
			return src, nil
		}
	}
	return nil, invalid("Unrecognized event source %s: Lamina polls SQS queues and Kinesis streams of this region and account.", arn)
}

// function resolves a FunctionName parameter to the function, its name,
// its qualifier and the FunctionArn a mapping shows.
func (s *Service) function(ctx context.Context, name string) (*lamina.Function, string, string, string, error) {
	ref, err := lamina.ParseFunctionRef(name)
	if err != nil {
		return nil, "", "", "", err
	}
	arn := lamina.FunctionARN(s.cfg.Region, s.cfg.AccountID, ref.Name)
	if ref.Qualifier != "" {
		arn += ":" + ref.Qualifier
	}
	if (ref.Region != "" && ref.Region != s.cfg.Region) || (ref.AccountID != "" && ref.AccountID != s.cfg.AccountID) {
		return nil, "", "", "", lamina.ErrNotFound("Function not found: %s", name)
	}
	fn, err := s.cfg.Manager.Resolve(ctx, ref.Name, ref.Qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", "", "", lamina.ErrNotFound("Function not found: %s", arn)
	}
	if err != nil {
		return nil, "", "", "", err
	}
	return fn, ref.Name, ref.Qualifier, arn, nil
}

// Create is CreateEventSourceMapping.
func (s *Service) Create(ctx context.Context, in *Input) (*Configuration, error) {
	if in.EventSourceArn == "" {
		return nil, invalid("EventSourceArn is required.")
	}
	if in.FunctionName == "" {
		return nil, invalid("FunctionName is required.")
	}
	src, err := s.source(in.EventSourceArn)
	if err != nil {
		return nil, err
	}
	fn, name, qualifier, fnARN, err := s.function(ctx, in.FunctionName)
	if err != nil {
		return nil, err
	}
	id := uuid.NewString()
	m := &Mapping{Configuration: Configuration{UUID: id, EventSourceArn: in.EventSourceArn, FunctionArn: fnARN,
		EventSourceMappingArn: "arn:aws:lambda:" + s.cfg.Region + ":" + s.cfg.AccountID + ":event-source-mapping:" + id,
		State:                 StateCreating, StateTransitionReason: "USER_INITIATED", LastModified: now()},
		Enabled: true, Function: name, Qualifier: qualifier}
	if err := applyCommon(m, in); err != nil {
		return nil, err
	}
	if err := src.Prepare(ctx, m, in, fn); err != nil {
		return nil, err
	}
	for _, other := range s.mappings.List("", nil) {
		if other.EventSourceArn == m.EventSourceArn && other.FunctionArn == m.FunctionArn {
			return nil, lamina.ErrConflict("An event source mapping with event source (\"%s\") and function (\"%s\") already exists. Please update or delete the existing mapping with UUID %s",
				m.EventSourceArn, name, other.UUID)
		}
	}
	if n := len(s.mappings.Keys("")); n >= s.cfg.MaxMappings {
		return nil, &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceLimitExceededException", Type: "User",
			Message: fmt.Sprintf("The account holds its maximum of %d event source mappings.", s.cfg.MaxMappings)}
	}
	if err := s.mappings.Create(ctx, id, m); err != nil {
		return nil, err
	}
	s.log.Info("event source mapping created", "uuid", id, "source", m.EventSourceArn, "function", m.FunctionArn)
	s.wake()
	c := m.Configuration
	return &c, nil
}

// Get is GetEventSourceMapping.
func (s *Service) Get(ctx context.Context, id string) (*Configuration, error) {
	m, err := s.mappings.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, resourceNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	c := m.Configuration
	return &c, nil
}

// Update is UpdateEventSourceMapping.
func (s *Service) Update(ctx context.Context, id string, in *Input) (*Configuration, error) {
	cur, err := s.mappings.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, resourceNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if in.EventSourceArn != "" && in.EventSourceArn != cur.EventSourceArn {
		return nil, invalid("The event source of a mapping cannot be changed.")
	}
	src, err := s.source(cur.EventSourceArn)
	if err != nil {
		return nil, err
	}
	next := *cur
	next.Configuration = cur.Configuration
	var fn *lamina.Function
	if in.FunctionName != "" {
		if fn, next.Function, next.Qualifier, next.FunctionArn, err = s.function(ctx, in.FunctionName); err != nil {
			return nil, err
		}
	} else if fn, err = s.cfg.Manager.Resolve(ctx, cur.Function, cur.Qualifier); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, lamina.ErrNotFound("Function not found: %s", cur.FunctionArn)
		}
		return nil, err
	}
	if err := applyCommon(&next, in); err != nil {
		return nil, err
	}
	if err := src.Prepare(ctx, &next, in, fn); err != nil {
		return nil, err
	}
	m, err := s.mappings.Update(ctx, id, func(m *Mapping) error {
		if m.State == StateCreating || m.State == StateUpdating || m.State == StateDeleting {
			return resourceInUse(id, m.State)
		}
		gen := m.Generation
		*m = next
		m.Generation = gen + 1
		m.State, m.StateTransitionReason, m.LastModified = StateUpdating, "USER_INITIATED", now()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, resourceNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	s.wake()
	c := m.Configuration
	return &c, nil
}

// Delete is DeleteEventSourceMapping: the mapping goes to Deleting, and is
// gone once its pollers stopped.
func (s *Service) Delete(ctx context.Context, id string) (*Configuration, error) {
	m, err := s.mappings.Update(ctx, id, func(m *Mapping) error {
		if m.State == StateDeleting {
			return resourceInUse(id, m.State)
		}
		m.State, m.StateTransitionReason, m.LastModified = StateDeleting, "USER_INITIATED", now()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, resourceNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("event source mapping deleted", "uuid", id)
	s.wake()
	c := m.Configuration
	return &c, nil
}

// maxListItems bounds a page of ListEventSourceMappings.
const maxListItems = 10000

// List is ListEventSourceMappings: the mappings of a source and/or a
// function (name, or name and qualifier), from after marker (a UUID).
func (s *Service) List(ctx context.Context, sourceARN, function, marker string, maxItems int) ([]Configuration, string, error) {
	var name, qualifier string
	if function != "" {
		ref, err := lamina.ParseFunctionRef(function)
		if err != nil {
			return nil, "", err
		}
		name, qualifier = ref.Name, ref.Qualifier
	}
	if maxItems <= 0 || maxItems > maxListItems {
		maxItems = 100
	}
	keep := func(m *Mapping) bool {
		return (sourceARN == "" || m.EventSourceArn == sourceARN) && (name == "" || m.Function == name) &&
			(qualifier == "" || m.Qualifier == qualifier) && m.UUID > marker
	}
	var out []Configuration
	next := ""
	for _, m := range s.mappings.List("", keep) {
		if len(out) == maxItems {
			next = out[len(out)-1].UUID
			break
		}
		out = append(out, m.Configuration)
	}
	return out, next, nil
}

// now is the time as LastModified shows it.
func now() float64 {
	return float64(time.Now().UnixMilli()) / 1000
}

// target is a mapping's function, as its pollers invoke it.
type target struct {
	s *Service
	m *Mapping
}

func (t *target) Invoke(ctx context.Context, payload []byte, trace string) (*lamina.InvocationResult, error) {
	fn, err := t.s.cfg.Manager.Resolve(ctx, t.m.Function, t.m.Qualifier)
	if err != nil {
		return nil, err
	}
	return t.s.cfg.Manager.Invoke(ctx, &lamina.Invocation{RequestID: uuid.NewString(), Function: fn,
		InvokedARN: t.m.FunctionArn, Payload: payload, TraceID: trace})
}

// Admit asks the guard with the function's $LATEST, which holds its
// RecursiveLoop setting. A function it cannot find is the invocation's
// to report.
func (t *target) Admit(ctx context.Context, trace string) (string, bool) {
	fn, err := t.s.cfg.Manager.Resolve(ctx, t.m.Function, "")
	if err != nil {
		return trace, true
	}
	return t.s.cfg.Recursion.Admit(fn, trace, t.m.EventSourceArn)
}

func (t *target) Timeout(ctx context.Context) time.Duration {
	fn, err := t.s.cfg.Manager.Resolve(ctx, t.m.Function, t.m.Qualifier)
	if err != nil {
		return lamina.MaxTimeout * time.Second
	}
	return time.Duration(fn.Configuration.Timeout) * time.Second
}

func (t *target) Role(ctx context.Context) string {
	fn, err := t.s.cfg.Manager.Resolve(ctx, t.m.Function, t.m.Qualifier)
	if err != nil {
		return ""
	}
	return fn.Configuration.Role
}

func (t *target) ARN() string { return t.m.FunctionArn }

func (t *target) ReportLag(lag time.Duration) { t.s.cfg.Metrics.setLag(t.m.UUID, t.m.Function, lag) }

func (t *target) MaxConcurrency() int {
	n := maxConcurrency
	if sc := t.m.ScalingConfig; sc != nil && sc.MaximumConcurrency > 0 {
		n = sc.MaximumConcurrency
	}
	if reserved, ok := t.s.cfg.Store.Reserved(t.m.Function); ok {
		n = min(n, reserved)
	}
	if t.s.cfg.ConcurrencyLimit > 0 {
		n = min(n, t.s.cfg.ConcurrencyLimit)
	}
	return max(n, 1)
}

// isThrottle reports whether err is a throttle (429).
func isThrottle(err error) bool {
	var le *lamina.Error
	return errors.As(err, &le) && le.Status == http.StatusTooManyRequests
}
