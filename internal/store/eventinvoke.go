package store

import (
	"context"

	"github.com/lamina-project/lamina"
)

// eventInvokeKey is the key of a function qualifier's event invoke config.
func eventInvokeKey(function, qualifier string) string {
	return function + "." + lamina.QualifierKey(qualifier)
}

// PutEventInvokeConfig stores the asynchronous invocation configuration of
// a function's qualifier (version or alias; "" means $LATEST), replacing
// any; ErrNotFound when the function is gone.
func (s *Store) PutEventInvokeConfig(ctx context.Context, function, qualifier string, cfg *lamina.EventInvokeConfig) error {
	inc, err := s.live(ctx, function)
	if err != nil {
		return err
	}
	return createOwned(ctx, s, s.eventInvoke, function, eventInvokeKey(function, qualifier),
		&eventInvokeRecord{EventInvokeConfig: *cfg, Incarnation: inc}, true)
}

// UpdateEventInvokeConfig applies change to the configuration of a
// function's qualifier atomically and returns the result, or ErrNotFound.
func (s *Store) UpdateEventInvokeConfig(ctx context.Context, function, qualifier string, change func(*lamina.EventInvokeConfig) error) (*lamina.EventInvokeConfig, error) {
	cfg, err := updateOwned(ctx, s, s.eventInvoke, function, eventInvokeKey(function, qualifier), func(c *eventInvokeRecord) error {
		return change(&c.EventInvokeConfig)
	})
	if err != nil {
		return nil, err
	}
	return &cfg.EventInvokeConfig, nil
}

// GetEventInvokeConfig returns the configuration of a function's qualifier,
// or ErrNotFound. It is served from memory; the caller must not modify it.
func (s *Store) GetEventInvokeConfig(ctx context.Context, function, qualifier string) (*lamina.EventInvokeConfig, error) {
	cfg, err := getOwned(ctx, s, s.eventInvoke, function, eventInvokeKey(function, qualifier))
	if err != nil {
		return nil, err
	}
	return &cfg.EventInvokeConfig, nil
}

// DeleteEventInvokeConfig removes the configuration of a function's
// qualifier, or returns ErrNotFound.
func (s *Store) DeleteEventInvokeConfig(ctx context.Context, function, qualifier string) error {
	_, err := removeOwned(ctx, s, s.eventInvoke, function, eventInvokeKey(function, qualifier))
	return err
}

// ListEventInvokeConfigs returns every configuration of a function.
func (s *Store) ListEventInvokeConfigs(ctx context.Context, function string) ([]*lamina.EventInvokeConfig, error) {
	records := listOwned(ctx, s, s.eventInvoke, function)
	out := make([]*lamina.EventInvokeConfig, len(records))
	for i, c := range records {
		out[i] = &c.EventInvokeConfig
	}
	return out, nil
}
