package store

import "context"

// Table is a key-value bucket of JSON records of type T that a service
// beside Lambda keeps in the store (SQS's queues, S3's buckets…). Like the
// store's own records, it is kept in memory and current with the bucket on
// every node, reads are served from memory, and every change is a
// compare-and-set on the revision it was computed from, so concurrent
// writers on any node never overwrite what they did not read. Records
// handed out are shared: callers must not modify them.
type Table[T any] struct {
	r *records[T]
}

// OpenTable opens the bucket (creating it, replicated as the store's
// buckets are) and keeps its records in memory until the store closes.
// name says what a record is, in errors ("queue"). The bucket's name is
// part of the on-disk format.
func OpenTable[T any](ctx context.Context, s *Store, bucket, name string) (*Table[T], error) {
	kv, err := openKV(ctx, s.js, bucket, s.replicas)
	if err != nil {
		return nil, err
	}
	r := newRecords[T](kv, name, s.health)
	if err := r.watch(ctx, s.watchCtx); err != nil {
		return nil, err
	}
	s.tablesMu.Lock()
	s.tables = append(s.tables, r)
	s.tablesMu.Unlock()
	return &Table[T]{r: r}, nil
}

// Get returns the record under key, or ErrNotFound.
func (t *Table[T]) Get(ctx context.Context, key string) (*T, error) { return t.r.get(ctx, key) }

// Create stores a new record; ErrExists when the key is taken.
func (t *Table[T]) Create(ctx context.Context, key string, v *T) error {
	return t.r.create(ctx, key, v)
}

// Update applies change to a copy of the record under key and stores the
// result atomically, running change again on a fresh copy when another
// writer got there first. An error from change aborts the update and is
// returned as it is; ErrNotFound when there is no record.
func (t *Table[T]) Update(ctx context.Context, key string, change func(*T) error) (*T, error) {
	return t.r.update(ctx, key, change)
}

// Remove deletes the record under key if match says so (nil: any), and
// returns what was stored; ErrNotFound when there is no such record.
func (t *Table[T]) Remove(ctx context.Context, key string, match func(*T) bool) (*T, error) {
	return t.r.remove(ctx, key, match)
}

// List returns the records whose keys start with prefix and that keep says
// to (nil: all), in key order.
func (t *Table[T]) List(prefix string, keep func(*T) bool) []*T { return t.r.list(prefix, keep) }

// Keys returns the keys of the records that start with prefix, sorted.
func (t *Table[T]) Keys(prefix string) []string { return t.r.keys(prefix) }
