package logs

import (
	"context"
	"encoding/base64"
	"errors"
	"time"

	"github.com/lamina-project/lamina/internal/store"
)

// groupsBucket is the table of log groups; part of the on-disk format.
const groupsBucket = "lamina_log_groups"

// Bounds of the table of log groups.
const (
	// MaxGroups bounds the log groups created through the API.
	MaxGroups = 10000
	// MaxCreatedStreams bounds the log streams created explicitly in one
	// log group (CreateLogStream); streams made by writing are not counted.
	MaxCreatedStreams = 1000
	// MaxGroupTags bounds the tags of a log group, as CloudWatch Logs does.
	MaxGroupTags = 50
)

// Errors of the table of log groups.
var (
	// ErrNoGroupTable means the store has no table of log groups.
	ErrNoGroupTable = errors.New("logs: no table of log groups")
	// ErrTooMany means a bound of the table would be exceeded.
	ErrTooMany = errors.New("logs: too many")
)

// GroupInfo is what is kept of a log group beyond its events.
type GroupInfo struct {
	Name            string
	Created         int64             // milliseconds since the epoch
	RetentionInDays int               `json:",omitempty"`
	Tags            map[string]string `json:",omitempty"`
	// Streams are the log streams created explicitly, with when.
	Streams map[string]int64 `json:",omitempty"`
}

// groupKey is the table key of a log group: its name in base64url, as
// names hold characters keys may not.
func groupKey(group string) string { return base64.RawURLEncoding.EncodeToString([]byte(group)) }

// Group returns what the table keeps of a log group, or an error wrapping
// store.ErrNotFound. The caller must not modify it.
func (s *Store) Group(ctx context.Context, group string) (*GroupInfo, error) {
	if s.groups == nil {
		return nil, store.ErrNotFound
	}
	return s.groups.Get(ctx, groupKey(group))
}

// Groups returns every log group in the table, by key.
func (s *Store) Groups() []*GroupInfo {
	if s.groups == nil {
		return nil
	}
	return s.groups.List("", nil)
}

// CreateGroup adds a log group to the table; store.ErrExists when it is
// there already, ErrTooMany past MaxGroups.
func (s *Store) CreateGroup(ctx context.Context, info *GroupInfo) error {
	if s.groups == nil {
		return ErrNoGroupTable
	}
	if len(s.groups.Keys("")) >= MaxGroups {
		return ErrTooMany
	}
	if info.Created == 0 {
		info.Created = time.Now().UnixMilli()
	}
	return s.groups.Create(ctx, groupKey(info.Name), info)
}

// UpdateGroup changes a log group of the table atomically, adding it first
// (as a group that already has events, or a function's, exists without a
// record) when create says so.
func (s *Store) UpdateGroup(ctx context.Context, group string, create bool, change func(*GroupInfo) error) (*GroupInfo, error) {
	if s.groups == nil {
		return nil, ErrNoGroupTable
	}
	update := func(info *GroupInfo) error {
		if err := change(info); err != nil {
			return err
		}
		if len(info.Tags) > MaxGroupTags || len(info.Streams) > MaxCreatedStreams {
			return ErrTooMany
		}
		return nil
	}
	info, err := s.groups.Update(ctx, groupKey(group), update)
	if errors.Is(err, store.ErrNotFound) && create {
		fresh := &GroupInfo{Name: group}
		if err := update(fresh); err != nil {
			return nil, err
		}
		if err := s.CreateGroup(ctx, fresh); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, err
		} else if err == nil {
			return fresh, nil
		}
		return s.groups.Update(ctx, groupKey(group), update)
	}
	return info, err
}

// DeleteGroup removes a log group from the table, if there, and purges its
// events.
func (s *Store) DeleteGroup(ctx context.Context, group string) error {
	if s.groups != nil {
		if _, err := s.groups.Remove(ctx, groupKey(group), nil); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return s.Purge(ctx, group)
}

// retention returns a log group's retention in days; zero means the
// store's own.
func (s *Store) retention(group string) int {
	info, err := s.Group(context.Background(), group)
	if err != nil {
		return 0
	}
	return info.RetentionInDays
}
