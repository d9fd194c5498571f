package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// records is a key-value bucket of JSON records of type T, kept in memory
// and current with the bucket: a watch applies what any node writes, and
// this node's own writes are applied as they succeed, so a read after a write
// here always sees it. Reads are served from memory, which keeps the store
// off the invoke path. Records handed out are shared: callers must not
// modify them.
type records[T any] struct {
	kv   jetstream.KeyValue
	name string // what a record is, for errors

	mu      sync.RWMutex
	entries map[string]cached[T]

	// changed, if set (before the watch starts), is called with the key of
	// a record that was created, replaced or deleted.
	changed func(key string)
}

// cached is one record at a bucket revision; v is nil once deleted.
type cached[T any] struct {
	v        *T
	revision uint64
}

func newRecords[T any](kv jetstream.KeyValue, name string) *records[T] {
	return &records[T]{kv: kv, name: name, entries: map[string]cached[T]{}}
}

// watch fills the cache and keeps it current until watchCtx ends. It
// returns once the cache holds every record stored now, or ctx ends.
func (r *records[T]) watch(ctx, watchCtx context.Context) error {
	w, err := r.kv.WatchAll(watchCtx)
	if err != nil {
		return fmt.Errorf("store: watch %ss: %w", r.name, err)
	}
	for initial := true; initial; {
		select {
		case entry := <-w.Updates():
			if entry == nil {
				initial = false
				break
			}
			r.apply(entry)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	go func() {
		defer w.Stop()
		for entry := range w.Updates() {
			if entry != nil {
				r.apply(entry)
			}
		}
	}()
	return nil
}

// apply records a bucket entry seen by the watch.
func (r *records[T]) apply(entry jetstream.KeyValueEntry) {
	var v *T
	if entry.Operation() == jetstream.KeyValuePut {
		v = new(T)
		if err := json.Unmarshal(entry.Value(), v); err != nil {
			return
		}
	}
	r.put(entry.Key(), v, entry.Revision())
}

// put records v (nil: deleted) at revision, unless the cache already holds
// that revision or a newer one.
func (r *records[T]) put(key string, v *T, revision uint64) {
	r.mu.Lock()
	cur, ok := r.entries[key]
	if ok && cur.revision >= revision {
		r.mu.Unlock()
		return
	}
	r.entries[key] = cached[T]{v: v, revision: revision}
	r.mu.Unlock()
	if r.changed != nil && (v != nil || cur.v != nil) {
		r.changed(key)
	}
}

// get returns the record under key, or ErrNotFound.
func (r *records[T]) get(ctx context.Context, key string) (*T, error) {
	r.mu.RLock()
	e, known := r.entries[key]
	r.mu.RUnlock()
	if known {
		if e.v == nil {
			return nil, ErrNotFound
		}
		return e.v, nil
	}
	// Not seen yet: another node may have just written it.
	v := new(T)
	rev, err := getJSON(ctx, r.kv, key, v)
	if err != nil {
		return nil, err
	}
	r.put(key, v, rev)
	return v, nil
}

// keys returns the keys of the existing records that start with prefix,
// sorted.
func (r *records[T]) keys(prefix string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var keys []string
	for key, e := range r.entries {
		if e.v != nil && strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys
}

// list returns the existing records whose keys start with prefix, in key
// order.
func (r *records[T]) list(prefix string) []*T {
	keys := r.keys(prefix)
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*T, 0, len(keys))
	for _, key := range keys {
		if v := r.entries[key].v; v != nil {
			out = append(out, v)
		}
	}
	return out
}

// create stores a new record; ErrExists when the key is taken.
func (r *records[T]) create(ctx context.Context, key string, v *T) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", r.name, err)
	}
	rev, err := r.kv.Create(ctx, key, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("store: create %s %s: %w", r.name, key, err)
	}
	r.put(key, v, rev)
	return nil
}

// update applies change to the record under key and stores the result
// atomically: if another writer updated it in between, change runs again
// on a fresh copy. An error from change aborts the update and is returned
// as is.
func (r *records[T]) update(ctx context.Context, key string, change func(*T) error) (*T, error) {
	for {
		v := new(T)
		rev, err := getJSON(ctx, r.kv, key, v)
		if err != nil {
			return nil, err
		}
		if err := change(v); err != nil {
			return nil, err
		}
		data, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("store: encode %s: %w", r.name, err)
		}
		newRev, err := r.kv.Update(ctx, key, data, rev)
		if err == nil {
			r.put(key, v, newRev)
			return v, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("store: update %s %s: %w", r.name, key, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(casRetryDelay):
		}
	}
}

// remove deletes the record under key and returns what was stored, or
// ErrNotFound.
func (r *records[T]) remove(ctx context.Context, key string) (*T, error) {
	v := new(T)
	rev, err := getJSON(ctx, r.kv, key, v)
	if err != nil {
		return nil, err
	}
	if err := r.kv.Purge(ctx, key); err != nil {
		return nil, fmt.Errorf("store: delete %s %s: %w", r.name, key, err)
	}
	r.put(key, nil, rev+1)
	return v, nil
}

// removePrefix deletes every record whose key starts with prefix.
func (r *records[T]) removePrefix(ctx context.Context, prefix string) error {
	for _, key := range r.keys(prefix) {
		if _, err := r.remove(ctx, key); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}
