// Package manager is the worker manager: the one place that decides whether
// and where an invocation runs. Every way of invoking a function — the Invoke
// API, function URLs, HTTP APIs, the async dispatcher (and through it
// schedules and destinations) — goes through a Manager, which
//
//   - chooses the function version an invocation runs (Resolve: an alias's
//     weighted routing is decided here and nowhere else);
//   - admits it or throttles it (each function's reserved concurrency, a
//     ceiling and a guarantee, and the account's limit for the functions
//     that share the unreserved pool), and names every throttle's Reason,
//     including a worker's lack of memory;
//   - places it on a worker (workerFor), which reuses a warm environment or
//     starts one;
//   - keeps the workers' provisioned environments as the stored provisioned
//     concurrency configs ask (Run), and reports them (Provisioned).
//
// Workers are behind the Worker interface (worker.go): on one node the
// in-process worker, in a cluster the same contract carried over NATS to
// other nodes. docs/architecture.md describes the seam.
package manager

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// Store is what the manager reads from the store (*store.Store). Reads are
// served from memory, so they are cheap on the invoke path.
type Store interface {
	// ResolveFunction returns the version of function that qualifier names
	// ("" or "$LATEST", a version number, or an alias's primary version),
	// or an error wrapping store.ErrNotFound.
	ResolveFunction(ctx context.Context, function, qualifier string) (*lamina.Function, error)
	// GetAlias returns an alias, or an error wrapping store.ErrNotFound.
	GetAlias(ctx context.Context, function, alias string) (*lamina.AliasConfiguration, error)
	// Reserved returns the reserved concurrency of a function, if it has
	// one.
	Reserved(function string) (int, bool)
	// TotalReserved returns the sum of every function's reservation.
	TotalReserved() int
	// ListProvisionedConcurrency returns the provisioned concurrency configs
	// of a function, or of every function when function is empty.
	ListProvisionedConcurrency(ctx context.Context, function string) []*store.ProvisionedConcurrency
}

// Throttle reasons, as Lambda names them.
const (
	ReasonAccount  = "ConcurrentInvocationLimitExceeded"
	ReasonReserved = "ReservedFunctionConcurrentInvocationLimitExceeded"
)

// totalRefresh is how long the sum of reservations is reused before it is
// computed again.
const totalRefresh = time.Second

// Config is what a manager needs.
type Config struct {
	// Worker runs the invocations.
	Worker Worker
	Store  Store
	// ConcurrencyLimit is the account's concurrent executions limit.
	ConcurrencyLimit int
	// Metrics counts throttles; nil counts them nowhere.
	Metrics *Metrics
	// Logger receives the provisioning loop's warnings; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Manager decides whether and where invocations run. It is safe for
// concurrent use.
type Manager struct {
	worker  Worker
	store   Store
	limit   int
	metrics *Metrics
	log     *slog.Logger
	// random returns a uniform number in [0, 1) for weighted routing.
	random func() float64

	mu         sync.Mutex
	inflight   map[string]int // per function
	unreserved int            // in flight for functions without a reservation
	total      int            // the sum of reservations, as of totalAt
	totalAt    time.Time
}

// New returns a manager. Call Run to apply the provisioned concurrency
// configs.
func New(cfg Config) *Manager {
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{
		worker:   cfg.Worker,
		store:    cfg.Store,
		limit:    cfg.ConcurrencyLimit,
		metrics:  cfg.Metrics,
		log:      cfg.Logger.With("part", "manager"),
		random:   rand.Float64,
		inflight: map[string]int{},
	}
}

// Resolve returns the function version an invocation of function with
// qualifier runs: "" or "$LATEST" the latest, a number that published
// version, an alias its version — or, for an alias with a routing
// configuration, one of its two versions chosen at random by their weights.
// It returns an error wrapping store.ErrNotFound when the function, version
// or alias does not exist. Every caller that invokes resolves here, so the
// version X-Amz-Executed-Version reports is chosen in one place.
func (m *Manager) Resolve(ctx context.Context, function, qualifier string) (*lamina.Function, error) {
	if qualifier != "" && qualifier != lamina.LatestVersion && !lamina.IsVersionNumber(qualifier) {
		alias, err := m.store.GetAlias(ctx, function, qualifier)
		if err != nil {
			return nil, err
		}
		qualifier = alias.Pick(m.random())
	}
	return m.store.ResolveFunction(ctx, function, qualifier)
}

// Invoke runs req (req.Function as Resolve returned it) on a worker, or
// refuses it with 429 TooManyRequestsException: Reason
// ReservedFunctionConcurrentInvocationLimitExceeded when a function with
// reserved concurrency has that many invocations running,
// ConcurrentInvocationLimitExceeded when the unreserved pool (the account's
// limit minus every reservation) is used up or the worker has no memory
// for another environment. A function's failure is a result, not an error
// (see Worker.Invoke).
func (m *Manager) Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error) {
	function := req.Function.Configuration.FunctionName
	release, err := m.admit(function)
	if err != nil {
		m.metrics.throttled(function)
		return nil, err
	}
	defer release()
	res, err := m.workerFor(function).Invoke(ctx, req)
	if errors.Is(err, ErrNoMemory) {
		m.metrics.throttled(function)
		return nil, lamina.ErrTooManyRequests(ReasonAccount)
	}
	return res, err
}

// workerFor is placement: it picks the worker that runs invocations (and
// keeps the provisioned environments) of function. With one worker, the
// node's own, it is that worker. This is where the choice among several
// workers goes: a function's home worker by consistent hashing with bounded
// load, spilling to others when its memory (WorkerState) is short, among
// the workers whose heartbeats are current.
func (m *Manager) workerFor(string) Worker { return m.worker }

// admit counts an invocation of function in, or throttles it. The returned
// func counts it out.
func (m *Manager) admit(function string) (func(), error) {
	reserved, hasReservation := m.store.Reserved(function)
	m.mu.Lock()
	defer m.mu.Unlock()
	if hasReservation {
		if m.inflight[function] >= reserved {
			return nil, lamina.ErrTooManyRequests(ReasonReserved)
		}
	} else {
		if time.Since(m.totalAt) > totalRefresh {
			m.total, m.totalAt = m.store.TotalReserved(), time.Now()
		}
		if m.unreserved >= m.limit-m.total {
			return nil, lamina.ErrTooManyRequests(ReasonAccount)
		}
		m.unreserved++
	}
	m.inflight[function]++
	m.metrics.running(function, m.inflight[function])
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !hasReservation {
			m.unreserved--
		}
		if m.inflight[function]--; m.inflight[function] == 0 {
			delete(m.inflight, function)
		}
		m.metrics.running(function, m.inflight[function])
	}, nil
}
