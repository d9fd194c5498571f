package store

import (
	"context"

	"github.com/lamina-project/lamina"
)

// CreateRule stores a new rule under key (its name on the default bus,
// "<bus>/<name>" on another); ErrExists if the key is taken.
func (s *Store) CreateRule(ctx context.Context, key string, r *lamina.Rule) error {
	return s.rules.create(ctx, key, r)
}

// GetRule returns a rule, or ErrNotFound. The caller must not modify it.
func (s *Store) GetRule(ctx context.Context, name string) (*lamina.Rule, error) {
	return s.rules.get(ctx, name)
}

// UpdateRule applies change to a rule atomically.
func (s *Store) UpdateRule(ctx context.Context, name string, change func(*lamina.Rule) error) (*lamina.Rule, error) {
	return s.rules.update(ctx, name, change)
}

// DeleteRule removes a rule, or returns ErrNotFound.
func (s *Store) DeleteRule(ctx context.Context, name string) error {
	_, err := s.rules.remove(ctx, name, nil)
	return err
}

// ListRules returns the rules whose names start with prefix, by name.
func (s *Store) ListRules(ctx context.Context, prefix string) []*lamina.Rule {
	return s.rules.list(prefix, nil)
}
