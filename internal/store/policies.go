package store

import (
	"context"
	"errors"

	"github.com/lamina-project/lamina"
)

// policyKey is the key of the resource-based policy of a function
// qualifier: one per function, version and alias.
func policyKey(function, qualifier string) string {
	return function + "." + lamina.QualifierKey(qualifier)
}

// GetFunctionPolicy returns the resource-based policy of a function
// qualifier (a version or an alias; "" for the function itself), or
// ErrNotFound. It is served from memory; the caller must not modify it. A
// policy whose last statement was removed is returned with no statements.
func (s *Store) GetFunctionPolicy(ctx context.Context, function, qualifier string) (*lamina.FunctionPolicy, error) {
	p, err := getOwned(ctx, s, s.policies, function, policyKey(function, qualifier))
	if err != nil {
		return nil, err
	}
	return &p.FunctionPolicy, nil
}

// ChangeFunctionPolicy applies change to the policy of a function
// qualifier atomically and returns the result; a qualifier without a
// policy gets an empty one, which change fills. An error from change
// aborts and is returned as is; ErrNotFound means the function is gone.
func (s *Store) ChangeFunctionPolicy(ctx context.Context, function, qualifier string, change func(*lamina.FunctionPolicy) error) (*lamina.FunctionPolicy, error) {
	key := policyKey(function, qualifier)
	for attempt := 1; ; attempt++ {
		p, err := updateOwned(ctx, s, s.policies, function, key, func(p *policyRecord) error { return change(&p.FunctionPolicy) })
		if !errors.Is(err, ErrNotFound) {
			if err != nil {
				return nil, err
			}
			return &p.FunctionPolicy, nil
		}
		// None yet, or one of a dead incarnation, which is replaced.
		inc, err := s.live(ctx, function)
		if err != nil {
			return nil, err
		}
		p = &policyRecord{FunctionPolicy: lamina.FunctionPolicy{Function: function, Qualifier: qualifier}, Incarnation: inc}
		if err := change(&p.FunctionPolicy); err != nil {
			return nil, err
		}
		err = createOwned(ctx, s, s.policies, function, key, p, false)
		switch {
		case err == nil:
			return &p.FunctionPolicy, nil
		case !errors.Is(err, ErrExists):
			return nil, err
		case attempt == maxAttempts:
			return nil, &ConflictError{Resource: "policy " + key}
		}
		// Another request created it meanwhile: change that one.
	}
}

// deleteFunctionPolicy removes the policy of a function qualifier, if it
// has one.
func (s *Store) deleteFunctionPolicy(ctx context.Context, function, qualifier string) error {
	_, err := removeOwned(ctx, s, s.policies, function, policyKey(function, qualifier))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
