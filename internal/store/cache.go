package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/lamina-project/lamina"
	"github.com/nats-io/nats.go/jetstream"
)

// functionCache keeps every function in memory, current with the bucket:
// a watch applies what any node writes, and this node's own writes are
// applied as they succeed, so a read after a write here always sees it.
// Reads are served from memory, which keeps the KV store off the invoke path.
type functionCache struct {
	mu      sync.RWMutex
	entries map[string]cachedFunction
}

// cachedFunction is one function at a bucket revision; fn is nil once
// deleted.
type cachedFunction struct {
	fn       *lamina.Function
	revision uint64
}

// watchFunctions fills the cache and keeps it current until watchCtx ends.
// It returns once the cache holds every function stored now, or ctx ends.
func (s *Store) watchFunctions(ctx, watchCtx context.Context) error {
	w, err := s.functions.WatchAll(watchCtx)
	if err != nil {
		return fmt.Errorf("store: watch functions: %w", err)
	}
	initial := true
	for initial {
		select {
		case entry := <-w.Updates():
			if entry == nil {
				initial = false
				break
			}
			s.cache.apply(entry)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	go func() {
		defer w.Stop()
		for entry := range w.Updates() {
			if entry != nil {
				s.cache.apply(entry)
			}
		}
	}()
	return nil
}

// apply records a bucket entry seen by the watch, unless the cache already
// holds that revision or a newer one.
func (c *functionCache) apply(entry jetstream.KeyValueEntry) {
	var fn *lamina.Function
	if entry.Operation() == jetstream.KeyValuePut {
		fn = new(lamina.Function)
		if err := json.Unmarshal(entry.Value(), fn); err != nil {
			return
		}
	}
	c.put(entry.Key(), fn, entry.Revision())
}

// put records fn (nil: deleted) at revision if that is newer than what the
// cache holds.
func (c *functionCache) put(name string, fn *lamina.Function, revision uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.entries[name]; ok && cur.revision >= revision {
		return
	}
	c.entries[name] = cachedFunction{fn: fn, revision: revision}
}

// get returns the cached function and whether the cache knows the name at
// all (a deleted function is known, with a nil fn).
func (c *functionCache) get(name string) (*lamina.Function, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[name]
	return e.fn, ok
}

// names returns the names of the cached functions that exist.
func (c *functionCache) names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.entries))
	for name, e := range c.entries {
		if e.fn != nil {
			names = append(names, name)
		}
	}
	return names
}
