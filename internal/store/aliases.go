package store

import (
	"context"

	"github.com/lamina-project/lamina"
)

func aliasKey(function, alias string) string { return function + "." + alias }

// CreateAlias stores a new alias of function; ErrExists when it exists.
func (s *Store) CreateAlias(ctx context.Context, function string, a *lamina.AliasConfiguration) error {
	return s.aliases.create(ctx, aliasKey(function, a.Name), a)
}

// GetAlias returns an alias of function, or ErrNotFound. The caller must
// not modify it.
func (s *Store) GetAlias(ctx context.Context, function, alias string) (*lamina.AliasConfiguration, error) {
	return s.aliases.get(ctx, aliasKey(function, alias))
}

// UpdateAlias applies change to an alias atomically.
func (s *Store) UpdateAlias(ctx context.Context, function, alias string, change func(*lamina.AliasConfiguration) error) (*lamina.AliasConfiguration, error) {
	return s.aliases.update(ctx, aliasKey(function, alias), change)
}

// DeleteAlias removes an alias, or returns ErrNotFound.
func (s *Store) DeleteAlias(ctx context.Context, function, alias string) error {
	_, err := s.aliases.remove(ctx, aliasKey(function, alias))
	return err
}

// ListAliases returns the aliases of function, sorted by name.
func (s *Store) ListAliases(ctx context.Context, function string) []*lamina.AliasConfiguration {
	return s.aliases.list(function + ".")
}
