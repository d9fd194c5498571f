package store

import (
	"context"

	"github.com/lamina-project/lamina"
)

// CreateHTTPAPI stores a new HTTP API; ErrExists if its ID is taken.
func (s *Store) CreateHTTPAPI(ctx context.Context, api *lamina.HTTPAPI) error {
	return s.apis.create(ctx, api.APIID, api)
}

// GetHTTPAPI returns an HTTP API, or ErrNotFound. It is served from memory;
// the caller must not modify it.
func (s *Store) GetHTTPAPI(ctx context.Context, id string) (*lamina.HTTPAPI, error) {
	return s.apis.get(ctx, id)
}

// UpdateHTTPAPI applies change to an HTTP API atomically.
func (s *Store) UpdateHTTPAPI(ctx context.Context, id string, change func(*lamina.HTTPAPI) error) (*lamina.HTTPAPI, error) {
	return s.apis.update(ctx, id, change)
}

// DeleteHTTPAPI removes an HTTP API, or returns ErrNotFound.
func (s *Store) DeleteHTTPAPI(ctx context.Context, id string) error {
	_, err := s.apis.remove(ctx, id, nil)
	return err
}

// ListHTTPAPIs returns every HTTP API, by ID.
func (s *Store) ListHTTPAPIs(ctx context.Context) []*lamina.HTTPAPI {
	return s.apis.list("", nil)
}
