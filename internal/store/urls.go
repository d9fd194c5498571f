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
// qualifier has one, ErrNotFound when the function is gone.
func (s *Store) CreateFunctionURL(ctx context.Context, u *lamina.FunctionURL) error {
	inc, err := s.live(ctx, u.Function)
	if err != nil {
		return err
	}
	return createOwned(ctx, s, s.urls, u.Function, urlKey(u.Function, u.Qualifier), &urlRecord{FunctionURL: *u, Incarnation: inc}, false)
}

// GetFunctionURL returns the URL of a function qualifier, or ErrNotFound.
func (s *Store) GetFunctionURL(ctx context.Context, function, qualifier string) (*lamina.FunctionURL, error) {
	u, err := getOwned(ctx, s, s.urls, function, urlKey(function, qualifier))
	if err != nil {
		return nil, err
	}
	return &u.FunctionURL, nil
}

// UpdateFunctionURL applies change to a function URL atomically.
func (s *Store) UpdateFunctionURL(ctx context.Context, function, qualifier string, change func(*lamina.FunctionURL) error) (*lamina.FunctionURL, error) {
	u, err := updateOwned(ctx, s, s.urls, function, urlKey(function, qualifier), func(u *urlRecord) error { return change(&u.FunctionURL) })
	if err != nil {
		return nil, err
	}
	return &u.FunctionURL, nil
}

// DeleteFunctionURL removes a function URL, or returns ErrNotFound.
func (s *Store) DeleteFunctionURL(ctx context.Context, function, qualifier string) error {
	_, err := removeOwned(ctx, s, s.urls, function, urlKey(function, qualifier))
	return err
}

// ListFunctionURLs returns the URLs of function.
func (s *Store) ListFunctionURLs(ctx context.Context, function string) []*lamina.FunctionURL {
	return urls(listOwned(ctx, s, s.urls, function))
}

// FunctionURLByID returns the function URL with the given URL ID, or
// ErrNotFound. It is served from memory.
func (s *Store) FunctionURLByID(id string) (*lamina.FunctionURL, error) {
	for _, u := range s.urls.list("", nil) {
		if u.URLID != id {
			continue
		}
		if inc, err := s.live(context.Background(), u.Function); err == nil && inc == u.Incarnation {
			return &u.FunctionURL, nil
		}
	}
	return nil, ErrNotFound
}

func urls(records []*urlRecord) []*lamina.FunctionURL {
	out := make([]*lamina.FunctionURL, len(records))
	for i, u := range records {
		out[i] = &u.FunctionURL
	}
	return out
}
