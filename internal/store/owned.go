package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lamina-project/lamina"
)

// A function's name can be reused: deleted, then created again. Each
// creation is an incarnation with an ID of its own (functionRecord's
// Incarnation), and every record that belongs to a function — its versions,
// aliases, URLs, provisioned concurrency, event invoke configs and
// resource-based policies — carries the ID of the incarnation it was
// written for:
//
//   - reads show only the records of the live incarnation, so records left
//     by a dead one are never seen;
//   - DeleteFunction deletes only the records of the incarnation it deleted,
//     so it never touches those of a function created again with the same
//     name after the delete began;
//   - a record written for an incarnation that dies while it is written is
//     deleted again by its writer (see createOwned), and a record of a dead
//     incarnation found where a new one is written is replaced.
//
// Records stored before incarnations existed have an empty ID, as do the
// functions they belong to.

// functionRecord is the stored record of a function's $LATEST or of one of
// its versions.
type functionRecord struct {
	lamina.Function
	Incarnation string `json:",omitempty"`
}

// aliasRecord is the stored record of an alias.
type aliasRecord struct {
	lamina.AliasConfiguration
	Incarnation string `json:",omitempty"`
}

// urlRecord is the stored record of a function URL.
type urlRecord struct {
	lamina.FunctionURL
	Incarnation string `json:",omitempty"`
}

// provisionedRecord is the stored request for provisioned concurrency.
type provisionedRecord struct {
	ProvisionedConcurrency
	Incarnation string `json:",omitempty"`
}

// eventInvokeRecord is the stored event invoke config of a qualifier.
type eventInvokeRecord struct {
	lamina.EventInvokeConfig
	Incarnation string `json:",omitempty"`
}

// policyRecord is the stored resource-based policy of a qualifier.
type policyRecord struct {
	lamina.FunctionPolicy
	Incarnation string `json:",omitempty"`
}

func (r *functionRecord) incarnation() string    { return r.Incarnation }
func (r *policyRecord) incarnation() string      { return r.Incarnation }
func (r *aliasRecord) incarnation() string       { return r.Incarnation }
func (r *urlRecord) incarnation() string         { return r.Incarnation }
func (r *provisionedRecord) incarnation() string { return r.Incarnation }
func (r *eventInvokeRecord) incarnation() string { return r.Incarnation }

// owned is a pointer to a record that belongs to an incarnation.
type owned[T any] interface {
	*T
	incarnation() string
}

// of returns a test of whether a record belongs to incarnation inc.
func of[T any, P owned[T]](inc string) func(*T) bool {
	return func(v *T) bool { return P(v).incarnation() == inc }
}

// live returns the incarnation of the function called name, or ErrNotFound.
func (s *Store) live(ctx context.Context, name string) (string, error) {
	f, err := s.functions.get(ctx, name)
	if err != nil {
		return "", err
	}
	return f.Incarnation, nil
}

// getOwned returns the record under key of function's live incarnation, or
// ErrNotFound.
func getOwned[T any, P owned[T]](ctx context.Context, s *Store, r *records[T], function, key string) (*T, error) {
	inc, err := s.live(ctx, function)
	if err != nil {
		return nil, err
	}
	v, err := r.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if P(v).incarnation() != inc {
		return nil, ErrNotFound
	}
	return v, nil
}

// listOwned returns the records of function's live incarnation, in key
// order.
func listOwned[T any, P owned[T]](ctx context.Context, s *Store, r *records[T], function string) []*T {
	inc, err := s.live(ctx, function)
	if err != nil {
		return nil
	}
	return r.list(function+".", of[T, P](inc))
}

// createOwned stores v, written for incarnation inc of function, under key:
// a new record, or in place of one of another incarnation (replace says
// whether also in place of one of inc). It returns ErrExists when key holds
// a record of inc, and ErrNotFound when inc is no longer live: then nothing
// is left stored.
func createOwned[T any, P owned[T]](ctx context.Context, s *Store, r *records[T], function, key string, v *T, replace bool) error {
	inc := P(v).incarnation()
	err := r.replace(ctx, key, v, func(cur *T) bool { return replace || P(cur).incarnation() != inc })
	if err != nil {
		return err
	}
	return confirmOwned[T, P](ctx, s, r, function, key, inc)
}

// confirmOwned checks, after a record of incarnation inc was written under
// key, that inc is still live. If it is not, DeleteFunction may have looked
// for the function's records before this one was written: the record is
// deleted again and the write fails with ErrNotFound. The check reads the
// bucket, not the cache, so that it holds across nodes.
func confirmOwned[T any, P owned[T]](ctx context.Context, s *Store, r *records[T], function, key, inc string) error {
	f, _, err := s.functions.read(ctx, function)
	if err == nil && f.Incarnation == inc {
		return nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if _, err := r.remove(ctx, key, of[T, P](inc)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return fmt.Errorf("store: function %s was deleted: %w", function, ErrNotFound)
}

// updateOwned applies change to the record under key of function's live
// incarnation, atomically.
func updateOwned[T any, P owned[T]](ctx context.Context, s *Store, r *records[T], function, key string, change func(*T) error) (*T, error) {
	inc, err := s.live(ctx, function)
	if err != nil {
		return nil, err
	}
	return r.update(ctx, key, func(v *T) error {
		if P(v).incarnation() != inc {
			return ErrNotFound
		}
		return change(v)
	})
}

// removeOwned deletes the record under key of function's live incarnation,
// or returns ErrNotFound.
func removeOwned[T any, P owned[T]](ctx context.Context, s *Store, r *records[T], function, key string) (*T, error) {
	inc, err := s.live(ctx, function)
	if err != nil {
		return nil, err
	}
	return r.remove(ctx, key, of[T, P](inc))
}

// Orphans returns the keys of records that belong to no live incarnation of
// a function ("bucket/key"): records a DeleteFunction that failed half-way
// left behind. Reads never show them; SweepOrphans deletes them.
func (s *Store) Orphans(ctx context.Context) []string {
	var out []string
	for _, b := range s.dependents() {
		for _, key := range b.orphans(ctx) {
			out = append(out, b.bucket()+"/"+key)
		}
	}
	return out
}

// SweepOrphans deletes the records that belong to no live incarnation of a
// function, each only after reading the function from the bucket, and
// returns how many it deleted.
func (s *Store) SweepOrphans(ctx context.Context) (int, error) {
	n := 0
	for _, b := range s.dependents() {
		for _, key := range b.orphans(ctx) {
			deleted, err := b.sweep(ctx, key)
			if err != nil {
				return n, err
			}
			if deleted {
				n++
			}
		}
	}
	return n, nil
}

// dependent is a bucket of records that belong to functions.
type dependent interface {
	bucket() string
	// orphans returns the keys whose records' incarnation is not the live
	// one, as the cache sees it.
	orphans(ctx context.Context) []string
	// sweep deletes the record under key if the bucket confirms it is an
	// orphan.
	sweep(ctx context.Context, key string) (bool, error)
	// removeIncarnation deletes every record of incarnation inc of function.
	removeIncarnation(ctx context.Context, function, inc string) error
}

// ownedRecords is a records bucket whose records belong to functions.
type ownedRecords[T any, P owned[T]] struct {
	s *Store
	r *records[T]
}

func (o ownedRecords[T, P]) bucket() string { return o.r.kv.Bucket() }

func (o ownedRecords[T, P]) orphans(ctx context.Context) []string {
	var out []string
	for _, key := range o.r.keys("") {
		function := functionOfKey(key)
		v, err := o.r.get(ctx, key)
		if err != nil {
			continue
		}
		if inc, err := o.s.live(ctx, function); err != nil || inc != P(v).incarnation() {
			out = append(out, key)
		}
	}
	return out
}

func (o ownedRecords[T, P]) sweep(ctx context.Context, key string) (bool, error) {
	f, _, err := o.s.functions.read(ctx, functionOfKey(key))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	_, err = o.r.remove(ctx, key, func(v *T) bool { return f == nil || f.Incarnation != P(v).incarnation() })
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (o ownedRecords[T, P]) removeIncarnation(ctx context.Context, function, inc string) error {
	return o.r.removeAll(ctx, function+".", of[T, P](inc))
}

// functionOfKey returns the function a dependent record's key belongs to:
// keys are "<function>.<rest>", and function names have no dots.
func functionOfKey(key string) string {
	function, _, _ := strings.Cut(key, ".")
	return function
}

// dependents returns every bucket of records that belong to functions.
func (s *Store) dependents() []dependent {
	return []dependent{
		ownedRecords[functionRecord, *functionRecord]{s, s.versions},
		ownedRecords[aliasRecord, *aliasRecord]{s, s.aliases},
		ownedRecords[urlRecord, *urlRecord]{s, s.urls},
		ownedRecords[provisionedRecord, *provisionedRecord]{s, s.provisioned},
		ownedRecords[eventInvokeRecord, *eventInvokeRecord]{s, s.eventInvoke},
		ownedRecords[policyRecord, *policyRecord]{s, s.policies},
	}
}
