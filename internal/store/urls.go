package store

import (
	"context"

	"github.com/lamina-project/lamina"
)

// urlKey is the key of a function URL: one per function qualifier.
func urlKey(function, qualifier string) string {
	return function + "." + lamina.QualifierKey(qualifier)
}

// CreateFunctionURL stores a new function URL; ErrExists when the function
// qualifier has one.
func (s *Store) CreateFunctionURL(ctx context.Context, u *lamina.FunctionURL) error {
	return s.urls.create(ctx, urlKey(u.Function, u.Qualifier), u)
}

// GetFunctionURL returns the URL of a function qualifier, or ErrNotFound.
func (s *Store) GetFunctionURL(ctx context.Context, function, qualifier string) (*lamina.FunctionURL, error) {
	return s.urls.get(ctx, urlKey(function, qualifier))
}

// UpdateFunctionURL applies change to a function URL atomically.
func (s *Store) UpdateFunctionURL(ctx context.Context, function, qualifier string, change func(*lamina.FunctionURL) error) (*lamina.FunctionURL, error) {
	return s.urls.update(ctx, urlKey(function, qualifier), change)
}

// DeleteFunctionURL removes a function URL, or returns ErrNotFound.
func (s *Store) DeleteFunctionURL(ctx context.Context, function, qualifier string) error {
	_, err := s.urls.remove(ctx, urlKey(function, qualifier))
	return err
}

// ListFunctionURLs returns the URLs of function.
func (s *Store) ListFunctionURLs(ctx context.Context, function string) []*lamina.FunctionURL {
	return s.urls.list(function + ".")
}

// FunctionURLByID returns the function URL with the given URL ID, or
// ErrNotFound. It is served from memory.
func (s *Store) FunctionURLByID(id string) (*lamina.FunctionURL, error) {
	for _, u := range s.urls.list("") {
		if u.URLID == id {
			return u, nil
		}
	}
	return nil, ErrNotFound
}
