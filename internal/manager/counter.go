package manager

import (
	"context"
	"sync"
)

// Pool is what one concurrency limit counts: the invocations of a function
// with reserved concurrency (Function names it), or those of every function
// without a reservation (Function empty), which share the account's
// unreserved concurrency.
type Pool struct{ Function string }

// Counter counts the invocations in flight against the concurrency limits.
// On one node the manager counts them in its memory; in a cluster a Counter
// that shares the counts among the nodes makes the limits hold
// cluster-wide (internal/concurrency). Implementations are safe for
// concurrent use.
type Counter interface {
	// Take counts one invocation into pool, whose limit is capacity, and
	// returns what counts it out. ok is false, and nothing is counted, when
	// the pool already holds capacity invocations: the manager throttles.
	// err is a failure to count (the store of a cluster unavailable).
	Take(ctx context.Context, pool Pool, capacity int) (release func(), ok bool, err error)
}

// localCounter counts invocations in this process: the limits of one node.
type localCounter struct {
	mu       sync.Mutex
	inflight map[Pool]int
}

func newLocalCounter() *localCounter { return &localCounter{inflight: map[Pool]int{}} }

// Take counts one invocation into pool unless it holds capacity already.
func (c *localCounter) Take(_ context.Context, pool Pool, capacity int) (func(), bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[pool] >= capacity {
		return nil, false, nil
	}
	c.inflight[pool]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.inflight[pool]--; c.inflight[pool] == 0 {
			delete(c.inflight, pool)
		}
	}, true, nil
}
