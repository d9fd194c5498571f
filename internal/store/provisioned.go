package store

import (
	"context"

	"github.com/lamina-project/lamina"
)

// ProvisionedConcurrency is the stored request for provisioned concurrency
// on one version or alias of a function.
type ProvisionedConcurrency struct {
	Function  string
	Qualifier string
	Requested int
	// LastModified as the API shows it.
	LastModified string
}

func provisionedKey(function, qualifier string) string {
	return function + "." + lamina.QualifierKey(qualifier)
}

// PutProvisionedConcurrency stores the request for a function's qualifier.
func (s *Store) PutProvisionedConcurrency(ctx context.Context, pc *ProvisionedConcurrency) error {
	key := provisionedKey(pc.Function, pc.Qualifier)
	if err := s.provisioned.create(ctx, key, pc); err != ErrExists {
		return err
	}
	_, err := s.provisioned.update(ctx, key, func(cur *ProvisionedConcurrency) error {
		*cur = *pc
		return nil
	})
	return err
}

// GetProvisionedConcurrency returns the request for a function's qualifier,
// or ErrNotFound.
func (s *Store) GetProvisionedConcurrency(ctx context.Context, function, qualifier string) (*ProvisionedConcurrency, error) {
	return s.provisioned.get(ctx, provisionedKey(function, qualifier))
}

// DeleteProvisionedConcurrency removes the request, or returns ErrNotFound.
func (s *Store) DeleteProvisionedConcurrency(ctx context.Context, function, qualifier string) error {
	_, err := s.provisioned.remove(ctx, provisionedKey(function, qualifier))
	return err
}

// ListProvisionedConcurrency returns the requests of one function, or of
// every function when function is empty.
func (s *Store) ListProvisionedConcurrency(ctx context.Context, function string) []*ProvisionedConcurrency {
	prefix := ""
	if function != "" {
		prefix = function + "."
	}
	return s.provisioned.list(prefix)
}
