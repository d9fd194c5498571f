package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lamina-project/lamina"
	"github.com/nats-io/nats.go/jetstream"
)

// eventInvokeKey is the key of a function qualifier's event invoke config.
func eventInvokeKey(function, qualifier string) string {
	return function + "." + lamina.QualifierKey(qualifier)
}

// PutEventInvokeConfig stores the asynchronous invocation configuration of
// a function's qualifier (version or alias; "" means $LATEST).
func (s *Store) PutEventInvokeConfig(ctx context.Context, function, qualifier string, cfg *lamina.EventInvokeConfig) error {
	data, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("store: encode event invoke config: %w", err)
	}
	if _, err := s.eventInvoke.Put(ctx, eventInvokeKey(function, qualifier), data); err != nil {
		return fmt.Errorf("store: put event invoke config: %w", err)
	}
	return nil
}

// GetEventInvokeConfig returns the configuration of a function's qualifier,
// or ErrNotFound.
func (s *Store) GetEventInvokeConfig(ctx context.Context, function, qualifier string) (*lamina.EventInvokeConfig, error) {
	var cfg lamina.EventInvokeConfig
	if _, err := getJSON(ctx, s.eventInvoke, eventInvokeKey(function, qualifier), &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// DeleteEventInvokeConfig removes the configuration of a function's
// qualifier, or returns ErrNotFound.
func (s *Store) DeleteEventInvokeConfig(ctx context.Context, function, qualifier string) error {
	key := eventInvokeKey(function, qualifier)
	if _, err := s.eventInvoke.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err := s.eventInvoke.Purge(ctx, key); err != nil {
		return fmt.Errorf("store: delete event invoke config: %w", err)
	}
	return nil
}

// eventInvokeKeys returns the keys of every configuration of a function.
func (s *Store) eventInvokeKeys(ctx context.Context, function string) ([]string, error) {
	lister, err := s.eventInvoke.ListKeysFiltered(ctx, function+".>")
	if err != nil {
		return nil, fmt.Errorf("store: list event invoke configs: %w", err)
	}
	var keys []string
	for key := range lister.Keys() {
		keys = append(keys, key)
	}
	return keys, nil
}

// ListEventInvokeConfigs returns every configuration of a function.
func (s *Store) ListEventInvokeConfigs(ctx context.Context, function string) ([]*lamina.EventInvokeConfig, error) {
	keys, err := s.eventInvokeKeys(ctx, function)
	if err != nil {
		return nil, err
	}
	var out []*lamina.EventInvokeConfig
	for _, key := range keys {
		var cfg lamina.EventInvokeConfig
		if _, err := getJSON(ctx, s.eventInvoke, key, &cfg); err == nil {
			out = append(out, &cfg)
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return out, nil
}

// deleteEventInvokeConfigs removes every configuration of a function.
func (s *Store) deleteEventInvokeConfigs(ctx context.Context, function string) error {
	keys, err := s.eventInvokeKeys(ctx, function)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if err := s.eventInvoke.Purge(ctx, key); err != nil {
			return fmt.Errorf("store: delete event invoke config: %w", err)
		}
	}
	return nil
}
