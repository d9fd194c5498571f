package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// lease is a named lease held by one node until it expires.
type lease struct {
	Holder  string
	Expires int64 // unix milliseconds
}

// AcquireLease takes or renews the lease called name for holder, for ttl.
// It reports whether holder has the lease. Exactly one holder can have a
// lease at a time: the write is a compare-and-set on the bucket.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := s.health.Err(); err != nil {
		return false, err
	}
	key := "lease." + name
	now := time.Now()
	data, _ := json.Marshal(lease{Holder: holder, Expires: now.Add(ttl).UnixMilli()})
	var cur lease
	rev, err := s.getJSON(ctx, s.system, key, &cur)
	switch {
	case errors.Is(err, ErrNotFound):
		_, err = s.system.Create(ctx, key, data)
	case err != nil:
		return false, err
	case cur.Holder != holder && cur.Expires > now.UnixMilli():
		return false, nil
	default:
		_, err = s.system.Update(ctx, key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return false, nil // another node wrote first
	}
	if err != nil {
		return false, wrapErr(s.health, ctx, err, "store: lease %s", name)
	}
	return true, nil
}

// ScheduleState is where a rule's schedule stands.
type ScheduleState struct {
	// Expression is the schedule the state belongs to; a changed rule starts
	// over.
	Expression string
	// Anchor is when the schedule was set (unix ms), for rate schedules.
	Anchor int64
	// Next is the next tick due (unix ms); Last the last one fired.
	Next, Last int64
}

// GetScheduleState returns a rule's schedule state and its revision (0 and
// ErrNotFound when there is none yet).
func (s *Store) GetScheduleState(ctx context.Context, rule string) (*ScheduleState, uint64, error) {
	var st ScheduleState
	rev, err := s.getJSON(ctx, s.system, "schedule."+rule, &st)
	if err != nil {
		return nil, 0, err
	}
	return &st, rev, nil
}

// SetScheduleState stores a rule's schedule state if it is still at
// revision (0: not stored yet). It reports false when another writer got
// there first, which is how a tick fires exactly once across nodes.
func (s *Store) SetScheduleState(ctx context.Context, rule string, st *ScheduleState, revision uint64) (bool, error) {
	if err := s.health.Err(); err != nil {
		return false, err
	}
	data, _ := json.Marshal(st)
	var err error
	if revision == 0 {
		_, err = s.system.Create(ctx, "schedule."+rule, data)
	} else {
		_, err = s.system.Update(ctx, "schedule."+rule, data, revision)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return false, nil
	}
	if err != nil {
		return false, wrapErr(s.health, ctx, err, "store: schedule %s", rule)
	}
	return true, nil
}

// DeleteScheduleState forgets a rule's schedule state.
func (s *Store) DeleteScheduleState(ctx context.Context, rule string) error {
	if err := s.system.Purge(ctx, "schedule."+rule); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return wrapErr(s.health, ctx, err, "store: schedule %s", rule)
	}
	return nil
}
