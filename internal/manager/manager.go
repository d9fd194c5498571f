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
//   - places it on a worker: on one node its own; in a cluster the worker
//     of the node placement chooses (placement.go), which reuses a warm
//     environment or starts one;
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
	// Worker is this node's worker.
	Worker Worker
	Store  Store
	// ConcurrencyLimit is the account's concurrent executions limit.
	ConcurrencyLimit int
	// Counter counts invocations against the concurrency limits; nil counts
	// them in this manager (the limits of one node).
	Counter Counter
	// Nodes, when set, is the cluster the node is part of: invocations are
	// placed among the live nodes' workers (placement.go), and each node
	// keeps its share of the provisioned environments. Remote returns the
	// worker of another node; it is required with Nodes.
	Nodes  Nodes
	Remote func(node string) Worker
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
	counter Counter
	// placement is nil on a node that is not part of a cluster.
	placement *placement
	metrics   *Metrics
	log       *slog.Logger
	// random returns a uniform number in [0, 1) for weighted routing.
	random func() float64

	mu      sync.Mutex
	total   int // the sum of reservations, as of totalAt
	totalAt time.Time
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
	if cfg.Counter == nil {
		cfg.Counter = newLocalCounter()
	}
	m := &Manager{
		worker:  cfg.Worker,
		store:   cfg.Store,
		limit:   cfg.ConcurrencyLimit,
		counter: cfg.Counter,
		metrics: cfg.Metrics,
		log:     cfg.Logger.With("part", "manager"),
		random:  rand.Float64,
	}
	if cfg.Nodes != nil {
		m.placement = newPlacement(cfg.Nodes, cfg.Worker, cfg.Remote)
	}
	return m
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
// limit minus every reservation) is used up or no worker has memory for
// another environment. A function's failure is a result, not an error
// (see Worker.Invoke).
func (m *Manager) Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error) {
	function := req.Function.Configuration.FunctionName
	release, err := m.admit(ctx, function)
	if err != nil {
		return nil, err
	}
	defer release()
	var res *lamina.InvocationResult
	if m.placement == nil || m.placement.alone() {
		res, err = m.worker.Invoke(ctx, req)
	} else {
		res, err = m.place(ctx, req)
	}
	if errors.Is(err, ErrNoMemory) {
		m.metrics.throttled(function)
		return nil, lamina.ErrTooManyRequests(ReasonAccount)
	}
	return res, err
}

// place runs req on the node placement chooses, and on the next choices
// while the chosen ones' workers have no room or are unavailable (the
// invocation did not start there), up to maxPlacements nodes. A node that
// stopped answering while the invocation was under way ends it with a 500
// ServiceException: it may have run.
func (m *Manager) place(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error) {
	version, mb := versionOf(req.Function), req.Function.Configuration.MemorySize
	var tried [maxPlacements]*node
	var err error
	noRoom := false
	for i := range maxPlacements {
		n, done := m.placement.take(version, mb, tried[:i])
		if n == nil {
			break
		}
		tried[i] = n
		var res *lamina.InvocationResult
		res, err = n.worker.Invoke(ctx, req)
		done()
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, ErrNoMemory):
			m.placement.full(n, mb)
			noRoom = true
		case errors.Is(err, ErrWorkerUnavailable):
			m.log.Warn("a node's worker is unavailable; placing the invocation elsewhere", "node", n.id, "request_id", req.RequestID, "err", err)
			m.placement.suspect(n)
		case errors.Is(err, ErrWorkerLost):
			m.log.Error("a node stopped answering during an invocation", "node", n.id, "request_id", req.RequestID, "err", err)
			m.placement.suspect(n)
			return nil, lamina.ErrService("The node running the invocation (%s) stopped answering before it ended; it may have run (request %s).", n.id, req.RequestID)
		default:
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if noRoom {
		return nil, ErrNoMemory
	}
	return nil, lamina.ErrService("No node could take the invocation (request %s).", req.RequestID)
}

// admit counts an invocation of function in, or throttles it. The returned
// func counts it out.
func (m *Manager) admit(ctx context.Context, function string) (func(), error) {
	pool, capacity, reason := Pool{}, 0, ReasonAccount
	if reserved, ok := m.store.Reserved(function); ok {
		pool, capacity, reason = Pool{Function: function}, reserved, ReasonReserved
	} else {
		capacity = m.limit - m.totalReserved()
	}
	release, ok, err := m.counter.Take(ctx, pool, capacity)
	if err != nil {
		return nil, err
	}
	if !ok {
		m.metrics.throttled(function)
		return nil, lamina.ErrTooManyRequests(reason)
	}
	m.metrics.admitted(function)
	return func() {
		release()
		m.metrics.finished(function)
	}, nil
}

// totalReserved returns the sum of every function's reservation, computed
// again at most every totalRefresh.
func (m *Manager) totalReserved() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.totalAt) > totalRefresh {
		m.total, m.totalAt = m.store.TotalReserved(), time.Now()
	}
	return m.total
}
