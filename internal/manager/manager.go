// Package manager decides whether and where each invocation runs: it
// enforces concurrency — each function's reserved concurrency (a ceiling
// and a guarantee), and the account's limit for the functions that share the
// unreserved pool — and hands the invocation to a worker, which reuses a warm
// environment or starts a new one. On one node the worker is in-process; in
// a cluster the same Worker interface is carried over NATS to other nodes.
package manager

import (
	"context"
	"sync"
	"time"

	"github.com/lamina-project/lamina"
)

// Worker runs invocations in execution environments.
type Worker interface {
	// Invoke runs req and returns how it ended. Function failures are
	// results; errors are throttles (*lamina.Error) and platform failures.
	Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error)
}

// Reservations tells the manager about reserved concurrency.
type Reservations interface {
	// Reserved returns the reserved concurrency of a function, if it has
	// one.
	Reserved(function string) (int, bool)
	// TotalReserved returns the sum of every function's reservation.
	TotalReserved() int
}

// Throttle reasons, as Lambda names them.
const (
	ReasonAccount  = "ConcurrentInvocationLimitExceeded"
	ReasonReserved = "ReservedFunctionConcurrentInvocationLimitExceeded"
)

// totalRefresh is how long the sum of reservations is reused before it is
// computed again.
const totalRefresh = time.Second

// Manager places invocations on workers. It is safe for concurrent use.
type Manager struct {
	worker       Worker
	limit        int
	reservations Reservations

	mu         sync.Mutex
	inflight   map[string]int // per function
	unreserved int            // in flight for functions without a reservation
	total      int            // the sum of reservations, as of totalAt
	totalAt    time.Time
}

// New returns a manager that runs invocations on worker within the
// account's concurrencyLimit and the reservations.
func New(worker Worker, concurrencyLimit int, reservations Reservations) *Manager {
	return &Manager{worker: worker, limit: concurrencyLimit, reservations: reservations, inflight: map[string]int{}}
}

// Invoke runs req, or refuses it with 429 TooManyRequestsException: with
// Reason ReservedFunctionConcurrentInvocationLimitExceeded when a function
// with reserved concurrency has that many invocations running, or
// ConcurrentInvocationLimitExceeded when the unreserved pool (the account's
// limit minus every reservation) is used up.
func (m *Manager) Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error) {
	release, err := m.admit(req.Function.Configuration.FunctionName)
	if err != nil {
		return nil, err
	}
	defer release()
	return m.worker.Invoke(ctx, req)
}

// admit counts an invocation of function in, or throttles it. The returned
// func counts it out.
func (m *Manager) admit(function string) (func(), error) {
	reserved, hasReservation := m.reservations.Reserved(function)
	m.mu.Lock()
	defer m.mu.Unlock()
	if hasReservation {
		if m.inflight[function] >= reserved {
			return nil, lamina.ErrTooManyRequests(ReasonReserved)
		}
	} else {
		if time.Since(m.totalAt) > totalRefresh {
			m.total, m.totalAt = m.reservations.TotalReserved(), time.Now()
		}
		if m.unreserved >= m.limit-m.total {
			return nil, lamina.ErrTooManyRequests(ReasonAccount)
		}
		m.unreserved++
	}
	m.inflight[function]++
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !hasReservation {
			m.unreserved--
		}
		if m.inflight[function]--; m.inflight[function] == 0 {
			delete(m.inflight, function)
		}
	}, nil
}
