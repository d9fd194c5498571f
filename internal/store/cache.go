package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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
//
// Every change is conditional on the revision of the record it was computed
// from (compare-and-set), so concurrent writers, on this node or another,
// never overwrite or delete what they did not read.
type records[T any] struct {
	kv     jetstream.KeyValue
	name   string // what a record is, for errors
	health *Health

	mu      sync.RWMutex
	entries map[string]cached[T]
	watcher jetstream.KeyWatcher // the watch keeping entries current

	// changed, if set (before the watch starts), is called with the key of
	// a record that was created, replaced or deleted.
	changed func(key string)
}

// cached is one record at a bucket revision; v is nil once deleted.
type cached[T any] struct {
	v        *T
	revision uint64
}

func newRecords[T any](kv jetstream.KeyValue, name string, health *Health) *records[T] {
	return &records[T]{kv: kv, name: name, health: health, entries: map[string]cached[T]{}}
}

// watch starts (or, after JetStream was reopened, restarts) the watch that
// keeps the cache current until watchCtx ends. It returns once the cache
// holds every record stored now, or ctx ends. Records the bucket no longer
// holds are dropped from the cache then.
func (r *records[T]) watch(ctx, watchCtx context.Context) error {
	w, err := r.kv.WatchAll(watchCtx)
	if err != nil {
		return wrapErr(r.health, ctx, err, "store: watch %ss", r.name)
	}
	seen := map[string]bool{}
	var last uint64 // the newest revision of the bucket when the watch began
	for initial := true; initial; {
		select {
		case entry := <-w.Updates():
			if entry == nil {
				initial = false
				break
			}
			seen[entry.Key()] = true
			last = max(last, entry.Revision())
			r.apply(entry)
		case <-ctx.Done():
			_ = w.Stop()
			return ctx.Err()
		}
	}
	r.mu.Lock()
	for key, e := range r.entries {
		if !seen[key] && e.revision <= last {
			delete(r.entries, key)
		}
	}
	old := r.watcher
	r.watcher = w
	r.mu.Unlock()
	if old != nil {
		_ = old.Stop()
	}
	go func() {
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
	v, rev, err := r.read(ctx, key)
	if err != nil {
		return nil, err
	}
	r.put(key, v, rev)
	return v, nil
}

// read returns the record under key as the bucket holds it now, with its
// revision, or ErrNotFound.
func (r *records[T]) read(ctx context.Context, key string) (*T, uint64, error) {
	entry, err := r.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, wrapErr(r.health, ctx, err, "store: get %s %s", r.name, key)
	}
	v := new(T)
	if err := json.Unmarshal(entry.Value(), v); err != nil {
		return nil, 0, fmt.Errorf("store: decode %s %s: %w", r.name, key, err)
	}
	return v, entry.Revision(), nil
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

// list returns the existing records whose keys start with prefix and that
// keep says to (nil keeps every one), in key order.
func (r *records[T]) list(prefix string, keep func(*T) bool) []*T {
	keys := r.keys(prefix)
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*T, 0, len(keys))
	for _, key := range keys {
		if v := r.entries[key].v; v != nil && (keep == nil || keep(v)) {
			out = append(out, v)
		}
	}
	return out
}

// create stores a new record; ErrExists when the key is taken.
func (r *records[T]) create(ctx context.Context, key string, v *T) error {
	return r.replace(ctx, key, v, nil)
}

// replace stores a new record under key, or replaces the record there if
// stale says it may (nil: never): ErrExists otherwise. Replacing is
// conditional on the revision of the record stale looked at.
func (r *records[T]) replace(ctx context.Context, key string, v *T, stale func(*T) bool) error {
	if err := r.health.Err(); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", r.name, err)
	}
	return r.retry(ctx, key, func() error {
		rev, err := r.kv.Create(ctx, key, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			if stale == nil {
				return ErrExists
			}
			cur, curRev, readErr := r.read(ctx, key)
			if errors.Is(readErr, ErrNotFound) {
				return errRetry // deleted meanwhile: create again
			}
			if readErr != nil {
				return readErr
			}
			if !stale(cur) {
				return ErrExists
			}
			if rev, err = r.kv.Update(ctx, key, data, curRev); isRevisionConflict(err) {
				return errRetry
			}
		}
		if err != nil {
			return wrapErr(r.health, ctx, err, "store: create %s %s", r.name, key)
		}
		r.put(key, v, rev)
		return nil
	})
}

// update applies change to the record under key and stores the result
// atomically: if another writer updated it in between, change runs again
// on a fresh copy. An error from change aborts the update and is returned
// as is.
func (r *records[T]) update(ctx context.Context, key string, change func(*T) error) (*T, error) {
	if err := r.health.Err(); err != nil {
		return nil, err
	}
	var out *T
	err := r.retry(ctx, key, func() error {
		v, rev, err := r.read(ctx, key)
		if err != nil {
			return err
		}
		if err := change(v); err != nil {
			return err
		}
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("store: encode %s: %w", r.name, err)
		}
		newRev, err := r.kv.Update(ctx, key, data, rev)
		if isRevisionConflict(err) {
			return errRetry
		}
		if err != nil {
			return wrapErr(r.health, ctx, err, "store: update %s %s", r.name, key)
		}
		r.put(key, v, newRev)
		out = v
		return nil
	})
	return out, err
}

// remove deletes the record under key, if match says it is the one to
// delete (nil: any), and returns what was stored; ErrNotFound when there is
// no such record. The delete is conditional on the revision match looked at.
func (r *records[T]) remove(ctx context.Context, key string, match func(*T) bool) (*T, error) {
	if err := r.health.Err(); err != nil {
		return nil, err
	}
	var out *T
	err := r.retry(ctx, key, func() error {
		v, rev, err := r.read(ctx, key)
		if err != nil {
			return err
		}
		if match != nil && !match(v) {
			return ErrNotFound
		}
		err = r.kv.Purge(ctx, key, jetstream.LastRevision(rev))
		if isRevisionConflict(err) {
			return errRetry
		}
		if err != nil {
			return wrapErr(r.health, ctx, err, "store: delete %s %s", r.name, key)
		}
		// The purge marker's revision is newer than rev; the watch brings
		// the exact one.
		r.put(key, nil, rev+1)
		out = v
		return nil
	})
	return out, err
}

// removeAll deletes every record whose key starts with prefix and that
// match says to delete, each conditionally.
func (r *records[T]) removeAll(ctx context.Context, prefix string, match func(*T) bool) error {
	for _, key := range r.keys(prefix) {
		if _, err := r.remove(ctx, key, match); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// errRetry makes retry try again: the write lost a race with another writer.
var errRetry = errors.New("store: retry")

// maxAttempts bounds the attempts of a write that keeps losing races; then
// it fails with a *ConflictError.
const maxAttempts = 64

// retry runs attempt until it returns anything but errRetry, waiting a
// little longer after each lost race, at most maxAttempts times.
func (r *records[T]) retry(ctx context.Context, key string, attempt func() error) error {
	for n := 1; ; n++ {
		err := attempt()
		if err != errRetry {
			return err
		}
		if n == maxAttempts {
			return &ConflictError{Resource: r.name + " " + key}
		}
		delay := time.Duration(rand.Int64N(int64(min(n, 20)*int(casRetryDelay)))) + time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// isRevisionConflict reports whether a conditional write failed because the
// record is no longer at the revision it was conditional on.
func isRevisionConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// casRetryDelay spaces attempts of a conditional write that lost a race.
const casRetryDelay = 5 * time.Millisecond

// ErrConflict is matched (errors.Is) by a *ConflictError.
var ErrConflict = errors.New("store: conflicting writes")

// ConflictError is returned when a write lost the race with other writers
// of the same record too many times in a row.
type ConflictError struct {
	Resource string // what was written, e.g. "function my-function"
}

func (e *ConflictError) Error() string {
	return "store: " + e.Resource + " is being changed by other requests"
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
