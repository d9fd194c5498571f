// Package manager decides where each invocation runs: it enforces the
// account's concurrency limit and hands the invocation to a worker, which
// reuses a warm environment or starts a new one. On one node the worker is
// in-process; in a cluster the same Worker interface is carried over NATS to
// other nodes.
package manager

import (
	"context"
	"sync/atomic"

	"github.com/lamina-project/lamina"
)

// Worker runs invocations in execution environments.
type Worker interface {
	// Invoke runs req and returns how it ended. Function failures are
	// results; errors are throttles (*lamina.Error) and platform failures.
	Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error)
}

// Manager places invocations on workers. It is safe for concurrent use.
type Manager struct {
	worker   Worker
	limit    int64
	inflight atomic.Int64
}

// New returns a manager that runs at most concurrencyLimit invocations at
// once on worker.
func New(worker Worker, concurrencyLimit int) *Manager {
	return &Manager{worker: worker, limit: int64(concurrencyLimit)}
}

// Invoke runs req, or refuses it with 429 TooManyRequestsException
// (ConcurrentInvocationLimitExceeded) when the account's concurrency is used
// up.
func (m *Manager) Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error) {
	if m.inflight.Add(1) > m.limit {
		m.inflight.Add(-1)
		return nil, lamina.ErrTooManyRequests("ConcurrentInvocationLimitExceeded")
	}
	defer m.inflight.Add(-1)
	return m.worker.Invoke(ctx, req)
}
