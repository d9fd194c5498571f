package eventsource

import (
	"context"
	"errors"
	"time"

	"github.com/lamina-project/lamina/internal/store"
)

// The supervisor, on every node, looks at every mapping once a second (and
// at once after a change on this node):
//
//   - Creating and Updating become Enabled or Disabled (a compare-and-set:
//     whichever node gets there first);
//   - a mapping Deleting has its pollers stopped and is removed;
//   - an enabled mapping is polled by the node that holds its lease
//     ("esm.<uuid>"), renewed while it runs: when the node goes, its lease
//     expires and another takes the mapping over;
//   - a mapping whose configuration changed has its pollers started again
//     with the new one.

const (
	superviseInterval = time.Second
	leaseTTL          = 10 * time.Second
	// restartDelay is how long a poller that failed waits before it is
	// started again.
	restartDelay = 5 * time.Second
)

// runner is a mapping's pollers running on this node.
type runner struct {
	generation int
	cancel     context.CancelFunc
	done       chan struct{}
	leased     time.Time // when the lease was last renewed
	failedAt   time.Time // when Poll last returned, zero while it runs
}

// Run supervises the mappings until ctx ends, then stops this node's
// pollers.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(superviseInterval)
	defer t.Stop()
	defer s.stopAll()
	for {
		s.supervise(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

// supervise is one look at every mapping.
func (s *Service) supervise(ctx context.Context) {
	seen := map[string]bool{}
	for _, m := range s.mappings.List("", nil) {
		seen[m.UUID] = true
		switch m.State {
		case StateCreating, StateUpdating:
			s.settle(ctx, m)
		case StateDeleting:
			s.stop(m.UUID)
			if src, err := s.source(m.EventSourceArn); err == nil {
				if f, ok := src.(Forgetter); ok {
					if err := f.Forget(ctx, m); err != nil {
						s.log.Warn("forgetting a deleted event source mapping's state failed", "uuid", m.UUID, "err", err)
						continue
					}
				}
			}
			_, err := s.mappings.Remove(ctx, m.UUID, func(cur *Mapping) bool { return cur.State == StateDeleting })
			if err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
				s.log.Warn("removing a deleted event source mapping failed", "uuid", m.UUID, "err", err)
			}
		case StateEnabled:
			s.keep(ctx, m)
		default:
			s.stop(m.UUID)
		}
	}
	s.mu.Lock()
	var gone []string
	for id := range s.running {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	s.mu.Unlock()
	for _, id := range gone {
		s.stop(id)
	}
}

// settle moves a mapping from Creating or Updating to the state it asks
// for.
func (s *Service) settle(ctx context.Context, m *Mapping) {
	_, err := s.mappings.Update(ctx, m.UUID, func(cur *Mapping) error {
		if cur.State != StateCreating && cur.State != StateUpdating {
			return nil
		}
		cur.State = StateDisabled
		if cur.Enabled {
			cur.State = StateEnabled
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
		s.log.Warn("settling an event source mapping's state failed", "uuid", m.UUID, "err", err)
	}
}

// keep runs an enabled mapping's pollers while this node holds its lease.
func (s *Service) keep(ctx context.Context, m *Mapping) {
	s.mu.Lock()
	r := s.running[m.UUID]
	s.mu.Unlock()
	if r != nil && r.generation != m.Generation {
		s.stop(m.UUID)
		r = nil
	}
	if r != nil && time.Since(r.leased) < leaseTTL/3 {
		s.restartIfFailed(ctx, m, r)
		return
	}
	held, err := s.cfg.Store.AcquireLease(ctx, "esm."+m.UUID, s.cfg.Node, leaseTTL)
	if err != nil || !held {
		if r != nil && time.Since(r.leased) > leaseTTL/2 {
			// The lease may be another node's soon: stop first.
			s.log.Info("event source mapping lease lost; its pollers stop here", "uuid", m.UUID, "err", err)
			s.stop(m.UUID)
		}
		return
	}
	if r != nil {
		s.mu.Lock()
		r.leased = time.Now()
		s.mu.Unlock()
		s.restartIfFailed(ctx, m, r)
		return
	}
	s.start(ctx, m)
}

// restartIfFailed starts again the pollers of a mapping whose Poll
// returned, after restartDelay.
func (s *Service) restartIfFailed(ctx context.Context, m *Mapping, r *runner) {
	s.mu.Lock()
	failed := !r.failedAt.IsZero() && time.Since(r.failedAt) > restartDelay
	s.mu.Unlock()
	if failed {
		s.stop(m.UUID)
		s.start(ctx, m)
	}
}

// start runs a mapping's pollers on this node.
func (s *Service) start(ctx context.Context, m *Mapping) {
	src, err := s.source(m.EventSourceArn)
	if err != nil {
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	r := &runner{generation: m.Generation, cancel: cancel, done: make(chan struct{}), leased: time.Now()}
	s.mu.Lock()
	s.running[m.UUID] = r
	s.mu.Unlock()
	s.log.Info("event source mapping polled on this node", "uuid", m.UUID, "source", m.EventSourceArn, "function", m.FunctionArn)
	go func() {
		defer close(r.done)
		defer s.cfg.Metrics.forget(m.UUID, m.Function)
		err := src.Poll(pctx, m, &target{s: s, m: m})
		if pctx.Err() != nil {
			return
		}
		s.log.Warn("event source mapping poller stopped; it starts again", "uuid", m.UUID, "err", err, "in", restartDelay)
		s.mu.Lock()
		r.failedAt = time.Now()
		s.mu.Unlock()
	}()
}

// stop stops a mapping's pollers on this node, if it runs them: they
// receive no more, and end once the batches they hold are done.
func (s *Service) stop(id string) *runner {
	s.mu.Lock()
	r := s.running[id]
	delete(s.running, id)
	s.mu.Unlock()
	if r != nil {
		r.cancel()
	}
	return r
}

// stopWait bounds how long a node stopping waits for the batches its
// pollers hold; a batch not finished is received again once visible.
const stopWait = 10 * time.Second

// stopAll stops every poller of this node and waits, a while, until they
// end.
func (s *Service) stopAll() {
	deadline := time.After(stopWait)
	s.mu.Lock()
	ids := make([]string, 0, len(s.running))
	for id := range s.running {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if r := s.stop(id); r != nil {
			select {
			case <-r.done:
			case <-deadline:
				return
			}
		}
	}
}
