package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/nats-io/nats.go/jetstream"
)

// CreateFunction stores a new function. It returns ErrExists when a function
// of that name exists.
func (s *Store) CreateFunction(ctx context.Context, f *lamina.Function) error {
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("store: encode function: %w", err)
	}
	rev, err := s.functions.Create(ctx, f.Configuration.FunctionName, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("store: create function %s: %w", f.Configuration.FunctionName, err)
	}
	s.cache.put(f.Configuration.FunctionName, f, rev)
	return nil
}

// GetFunction returns the function called name, or ErrNotFound. It is served
// from memory; the caller must not modify the result.
func (s *Store) GetFunction(ctx context.Context, name string) (*lamina.Function, error) {
	if fn, known := s.cache.get(name); known {
		if fn == nil {
			return nil, ErrNotFound
		}
		return fn, nil
	}
	// Not seen yet: another node may have just created it.
	var f lamina.Function
	rev, err := getJSON(ctx, s.functions, name, &f)
	if err != nil {
		return nil, err
	}
	s.cache.put(name, &f, rev)
	return &f, nil
}

// UpdateFunction applies change to the stored function called name and
// stores the result atomically: if another writer updated the function in
// between, change runs again on the fresh copy. An error from change aborts
// the update and is returned as is. It returns the stored result.
func (s *Store) UpdateFunction(ctx context.Context, name string, change func(*lamina.Function) error) (*lamina.Function, error) {
	for {
		var f lamina.Function
		rev, err := getJSON(ctx, s.functions, name, &f)
		if err != nil {
			return nil, err
		}
		if err := change(&f); err != nil {
			return nil, err
		}
		data, err := json.Marshal(&f)
		if err != nil {
			return nil, fmt.Errorf("store: encode function: %w", err)
		}
		newRev, err := s.functions.Update(ctx, name, data, rev)
		if err == nil {
			s.cache.put(name, &f, newRev)
			return &f, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("store: update function %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(casRetryDelay):
		}
	}
}

// DeleteFunction removes the function called name and returns what was
// stored, or ErrNotFound.
func (s *Store) DeleteFunction(ctx context.Context, name string) (*lamina.Function, error) {
	var f lamina.Function
	rev, err := getJSON(ctx, s.functions, name, &f)
	if err != nil {
		return nil, err
	}
	err = s.functions.Purge(ctx, name, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		// Changed under us; deleting the newer record is still what was asked.
		err = s.functions.Purge(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: delete function %s: %w", name, err)
	}
	s.cache.put(name, nil, rev+1)
	if err := s.deleteEventInvokeConfigs(ctx, name); err != nil {
		return nil, err
	}
	return &f, nil
}

// ListFunctions returns every function, sorted by name. The caller must not
// modify the results.
func (s *Store) ListFunctions(ctx context.Context) ([]*lamina.Function, error) {
	names := s.cache.names()
	slices.Sort(names)
	fns := make([]*lamina.Function, 0, len(names))
	for _, name := range names {
		f, err := s.GetFunction(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue // deleted while listing
		}
		if err != nil {
			return nil, err
		}
		fns = append(fns, f)
	}
	return fns, nil
}

// ResolveFunction returns the version of function that qualifier names
// ("" or "$LATEST": the latest), or ErrNotFound.
func (s *Store) ResolveFunction(ctx context.Context, function, qualifier string) (*lamina.Function, error) {
	if qualifier != "" && qualifier != lamina.LatestVersion {
		return nil, ErrNotFound
	}
	return s.GetFunction(ctx, function)
}
