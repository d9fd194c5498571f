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

// PutProvisionedConcurrency stores the request for a function's qualifier,
// replacing any; ErrNotFound when the function is gone.
func (s *Store) PutProvisionedConcurrency(ctx context.Context, pc *ProvisionedConcurrency) error {
	inc, err := s.live(ctx, pc.Function)
	if err != nil {
		return err
	}
	return createOwned(ctx, s, s.provisioned, pc.Function, provisionedKey(pc.Function, pc.Qualifier),
		&provisionedRecord{ProvisionedConcurrency: *pc, Incarnation: inc}, true)
}

// GetProvisionedConcurrency returns the request for a function's qualifier,
// or ErrNotFound.
func (s *Store) GetProvisionedConcurrency(ctx context.Context, function, qualifier string) (*ProvisionedConcurrency, error) {
	pc, err := getOwned(ctx, s, s.provisioned, function, provisionedKey(function, qualifier))
	if err != nil {
		return nil, err
	}
	return &pc.ProvisionedConcurrency, nil
}

// DeleteProvisionedConcurrency removes the request, or returns ErrNotFound.
func (s *Store) DeleteProvisionedConcurrency(ctx context.Context, function, qualifier string) error {
	_, err := removeOwned(ctx, s, s.provisioned, function, provisionedKey(function, qualifier))
	return err
}

// ListProvisionedConcurrency returns the requests of one function, or of
// every function when function is empty.
func (s *Store) ListProvisionedConcurrency(ctx context.Context, function string) []*ProvisionedConcurrency {
	var records []*provisionedRecord
	if function != "" {
		records = listOwned(ctx, s, s.provisioned, function)
	} else {
		records = s.provisioned.list("", func(pc *provisionedRecord) bool {
			inc, err := s.live(ctx, pc.Function)
			return err == nil && inc == pc.Incarnation
		})
	}
	out := make([]*ProvisionedConcurrency, len(records))
	for i, pc := range records {
		out[i] = &pc.ProvisionedConcurrency
	}
	return out
}
