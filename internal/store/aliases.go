package store

import (
	"context"
	"strconv"

	"github.com/lamina-project/lamina"
)

func aliasKey(function, alias string) string { return function + "." + alias }

// CreateAlias stores a new alias of function; ErrExists when it exists,
// ErrNotFound when the function, or a version the alias points to, is gone
// (deleted while the alias was being created).
func (s *Store) CreateAlias(ctx context.Context, function string, a *lamina.AliasConfiguration) error {
	inc, err := s.live(ctx, function)
	if err != nil {
		return err
	}
	key := aliasKey(function, a.Name)
	if err := createOwned(ctx, s, s.aliases, function, key, &aliasRecord{AliasConfiguration: *a, Incarnation: inc}, false); err != nil {
		return err
	}
	// The versions were checked before: make sure they were not deleted with
	// their function in between (DeleteFunction then deletes this alias too).
	for version := range a.RoutingConfig.Weights() {
		if err := s.checkVersion(ctx, function, version); err != nil {
			_, _ = s.aliases.remove(ctx, key, of[aliasRecord](inc))
			return err
		}
	}
	if err := s.checkVersion(ctx, function, a.FunctionVersion); err != nil {
		_, _ = s.aliases.remove(ctx, key, of[aliasRecord](inc))
		return err
	}
	return nil
}

// checkVersion returns ErrNotFound unless version ("$LATEST" or a number)
// of function exists.
func (s *Store) checkVersion(ctx context.Context, function, version string) error {
	if version == lamina.LatestVersion {
		return nil
	}
	n, err := strconv.Atoi(version)
	if err != nil {
		return ErrNotFound
	}
	_, err = s.GetVersion(ctx, function, n)
	return err
}

// GetAlias returns an alias of function, or ErrNotFound. The caller must
// not modify it.
func (s *Store) GetAlias(ctx context.Context, function, alias string) (*lamina.AliasConfiguration, error) {
	a, err := getOwned(ctx, s, s.aliases, function, aliasKey(function, alias))
	if err != nil {
		return nil, err
	}
	return &a.AliasConfiguration, nil
}

// UpdateAlias applies change to an alias atomically.
func (s *Store) UpdateAlias(ctx context.Context, function, alias string, change func(*lamina.AliasConfiguration) error) (*lamina.AliasConfiguration, error) {
	a, err := updateOwned(ctx, s, s.aliases, function, aliasKey(function, alias), func(a *aliasRecord) error { return change(&a.AliasConfiguration) })
	if err != nil {
		return nil, err
	}
	return &a.AliasConfiguration, nil
}

// DeleteAlias removes an alias with its policy, or returns ErrNotFound.
// The policy goes first: should the alias's removal fail, the alias is
// left without the permissions it had, never an alias of the same name
// created later with them.
func (s *Store) DeleteAlias(ctx context.Context, function, alias string) error {
	if err := s.deleteFunctionPolicy(ctx, function, alias); err != nil {
		return err
	}
	_, err := removeOwned(ctx, s, s.aliases, function, aliasKey(function, alias))
	return err
}

// ListAliases returns the aliases of function, sorted by name.
func (s *Store) ListAliases(ctx context.Context, function string) []*lamina.AliasConfiguration {
	records := listOwned(ctx, s, s.aliases, function)
	out := make([]*lamina.AliasConfiguration, len(records))
	for i, a := range records {
		out[i] = &a.AliasConfiguration
	}
	return out
}
