// Package logs stores functions' logs durably in a JetStream stream, one
// subject per log group (a function's /aws/lambda/NAME, or the group its
// LoggingConfig names, or one created through the Logs API), with bounded
// retention. Log groups created through the API, their retention, tags and
// explicitly created log streams are kept in a table of the store.
// Writers append events without waiting: events are batched per function and
// published a few times a second, so logging costs the invoke path almost
// nothing. Readers query by time range, log stream and a text filter.
package logs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamName is the JetStream stream of all logs; part of the on-disk format.
const streamName = "lamina_logs"

// subjectPrefix + function name is the subject of the log group
// /aws/lambda/NAME; subjectPrefix + groupToken + "." + base64url(name) that
// of any other log group. Both are part of the on-disk format.
const (
	subjectPrefix = "lamina.logs."
	groupToken    = "g"
)

// functionGroupPrefix is the prefix of functions' default log groups.
const functionGroupPrefix = "/aws/lambda/"

// subject returns the subject of a log group's events.
func subject(group string) string {
	if name, ok := strings.CutPrefix(group, functionGroupPrefix); ok && lamina.ValidFunctionName(name) {
		return subjectPrefix + name
	}
	return subjectPrefix + groupToken + "." + base64.RawURLEncoding.EncodeToString([]byte(group))
}

// groupOf returns the log group of a subject, or false for a subject that
// is not a log group's.
func groupOf(subj string) (string, bool) {
	rest, ok := strings.CutPrefix(subj, subjectPrefix)
	if !ok {
		return "", false
	}
	if encoded, ok := strings.CutPrefix(rest, groupToken+"."); ok {
		name, err := base64.RawURLEncoding.DecodeString(encoded)
		return string(name), err == nil
	}
	return functionGroupPrefix + rest, lamina.ValidFunctionName(rest)
}

// Event is one log event: a line of a function's output or a platform line
// (START, END, REPORT).
type Event struct {
	Timestamp int64  `json:"t"` // milliseconds since the epoch
	Stream    string `json:"s"` // log stream name, one per execution environment
	Message   string `json:"m"`
	// ID and IngestionTime are filled by Read: a unique event ID and when the
	// event was stored (milliseconds since the epoch).
	ID            string `json:"-"`
	IngestionTime int64  `json:"-"`
}

// Options bound what the store keeps.
type Options struct {
	Retention time.Duration // events older than this are deleted; zero means 7 days
	MaxBytes  int64         // the stream's size limit, oldest deleted first; zero means 1 GiB
	Replicas  int
	Logger    *slog.Logger
	// Health is where storage failures are reported; nil makes one.
	Health *store.Health
	// Tables, when set, is the store that keeps the table of log groups
	// (those created through the API, retention, tags); without it only
	// groups with events exist.
	Tables *store.Store
}

// Store is the durable log store. It is safe for concurrent use.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
	health *store.Health

	groups *store.Table[GroupInfo] // nil without Options.Tables

	mu      sync.Mutex
	pending map[string][]Event // log group → events not yet published
	size    int                // bytes of messages pending
	dropped int                // events dropped since the last report
	kick    chan struct{}
}

// flushInterval is how long appended events may wait before publishing;
// flushSize is how many pending bytes trigger an early flush.
const (
	flushInterval = 200 * time.Millisecond
	flushSize     = 256 << 10
	// maxBatch bounds one published message, well below JetStream's default
	// 1 MB message limit.
	maxBatch = 512 << 10
	// maxPending bounds the events waiting to be published, in bytes: while
	// storage is unavailable they wait here, and events beyond this are
	// dropped (and counted in a warning).
	maxPending = 8 << 20
)

// Open creates (or updates) the log stream and returns a store writing to it.
// Call Run to publish appended events.
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	if opts.Retention == 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 1 << 30
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Health == nil {
		opts.Health = store.NewHealth(nil)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        streamName,
		Description: "function logs, one subject per function",
		Subjects:    []string{subjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      opts.Retention,
		MaxBytes:    opts.MaxBytes,
		Replicas:    max(opts.Replicas, 1),
		Compression: jetstream.S2Compression,
	})
	if err != nil {
		return nil, fmt.Errorf("logs: stream: %w", err)
	}
	s := &Store{js: js, stream: stream, log: opts.Logger, health: opts.Health, pending: map[string][]Event{}, kick: make(chan struct{}, 1)}
	if opts.Tables != nil {
		if s.groups, err = store.OpenTable[GroupInfo](ctx, opts.Tables, groupsBucket, "log group"); err != nil {
			return nil, fmt.Errorf("logs: groups: %w", err)
		}
	}
	return s, nil
}

// Append queues events of a log group for publishing. It never blocks on
// storage: while storage is unavailable events wait, up to maxPending bytes
// in all, and later ones are dropped.
func (s *Store) Append(group string, events ...Event) {
	s.mu.Lock()
	for _, e := range events {
		n := eventSize(e)
		if s.size+n > maxPending {
			s.dropped++
			continue
		}
		s.pending[group] = append(s.pending[group], e)
		s.size += n
	}
	full := s.size >= flushSize
	s.mu.Unlock()
	if full {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// eventSize is what an event counts for in the bounds of pending events and
// of a batch.
func eventSize(e Event) int { return len(e.Message) + len(e.Stream) + 32 }

// Run publishes appended events until ctx ends, then publishes what is left.
// Events that wait for storage to heal are published as soon as it does.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.Flush(flushCtx)
			cancel()
			return
		case <-t.C:
		case <-s.kick:
		case <-s.health.Recovered():
		}
		s.Flush(ctx)
	}
}

// Flush publishes every pending event and waits for JetStream to store them.
// While storage is unavailable, events stay pending.
func (s *Store) Flush(ctx context.Context) {
	if s.health.Err() != nil {
		return
	}
	s.mu.Lock()
	pending, dropped := s.pending, s.dropped
	s.pending, s.size, s.dropped = map[string][]Event{}, 0, 0
	s.mu.Unlock()
	if dropped > 0 {
		s.log.Warn("function logs dropped: too many waited for storage", "events", dropped)
	}
	for group, events := range pending {
		for len(events) > 0 {
			batch, rest := splitBatch(events)
			data, _ := json.Marshal(batch) // events always encode
			_, err := s.js.Publish(ctx, subject(group), data)
			if errors.Is(s.health.Check(ctx, err), store.ErrUnavailable) {
				s.requeue(group, events)
				break
			}
			if err != nil {
				s.log.Warn("function logs lost", "log_group", group, "events", len(batch), "err", err)
			}
			events = rest
		}
	}
}

// requeue puts events that could not be published back in front of the
// group's pending ones, within maxPending.
func (s *Store) requeue(group string, events []Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	waiting := s.pending[group]
	for _, e := range waiting {
		s.size -= eventSize(e)
	}
	kept := make([]Event, 0, len(events)+len(waiting))
	for _, e := range append(events, waiting...) {
		if n := eventSize(e); s.size+n <= maxPending {
			kept = append(kept, e)
			s.size += n
		} else {
			s.dropped++
		}
	}
	s.pending[group] = kept
}

// splitBatch returns the longest prefix of events that fits a message, and
// the rest. A single oversized event is cut to fit.
func splitBatch(events []Event) (batch, rest []Event) {
	size := 0
	for i, e := range events {
		n := eventSize(e)
		if size+n > maxBatch {
			if i == 0 {
				e.Message = e.Message[:maxBatch-len(e.Stream)-64]
				return []Event{e}, events[1:]
			}
			return events[:i], events[i:]
		}
		size += n
	}
	return events, nil
}

// Query selects events of one log group.
type Query struct {
	Group   string
	Start   int64    // milliseconds since the epoch, inclusive; zero means the beginning
	End     int64    // exclusive; zero means no end
	Streams []string // only these log streams; empty means all
	Prefix  string   // only log streams starting with this
	Terms   []string // only events whose message contains every one of these
	Limit   int      // at most this many events; zero means 10,000
	// After continues a previous query from a position it returned; the
	// zero Position means from the start.
	After Position
}

// Position is a place in a log group: the stream message that holds
// a batch of events, and an event within it.
type Position struct {
	Seq   uint64
	Index int
}

// IsZero reports whether p is the start of the log.
func (p Position) IsZero() bool { return p.Seq == 0 }

// String encodes p for a token, "seq.index".
func (p Position) String() string { return strconv.FormatUint(p.Seq, 10) + "." + strconv.Itoa(p.Index) }

// ParsePosition decodes a position from String.
func ParsePosition(s string) (Position, error) {
	seq, index, _ := strings.Cut(s, ".")
	var p Position
	var err error
	if p.Seq, err = strconv.ParseUint(seq, 10, 64); err != nil {
		return p, fmt.Errorf("logs: bad position %q", s)
	}
	if index != "" {
		if p.Index, err = strconv.Atoi(index); err != nil || p.Index < 0 {
			return p, fmt.Errorf("logs: bad position %q", s)
		}
	}
	return p, nil
}

// A read asks its new consumer again, newConsumerRetries times at most and
// newConsumerWait apart, while no server answers for it.
const (
	newConsumerRetries = 20
	newConsumerWait    = 25 * time.Millisecond
)

// Page is the answer to a query.
type Page struct {
	Events []Event
	// Next continues the query where this page stopped; zero when everything
	// stored so far was read.
	Next Position
	// End continues the query after everything stored so far, for following
	// new events.
	End Position
}

// Read returns the events matching q, oldest first.
func (s *Store) Read(ctx context.Context, q Query) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = 10000
	}
	if days := s.retention(q.Group); days > 0 {
		q.Start = max(q.Start, time.Now().Add(-time.Duration(days)*24*time.Hour).UnixMilli())
	}
	// Each read has an ephemeral consumer of its own, deleted when done (or
	// soon after by the server, should Lamina not get to it).
	cfg := jetstream.ConsumerConfig{
		FilterSubject:     subject(q.Group),
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 30 * time.Second,
		MemoryStorage:     true,
	}
	switch {
	case !q.After.IsZero():
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, q.After.Seq
	case q.Start > 0:
		// Batches are published up to flushInterval after their events: start
		// a little earlier and filter by the events' own times.
		start := time.UnixMilli(q.Start).Add(-2 * time.Second)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := s.stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return Page{}, fmt.Errorf("logs: read: %w", err)
	}
	defer func() { _ = s.stream.DeleteConsumer(context.WithoutCancel(ctx), cons.CachedInfo().Name) }()
	page := Page{End: q.After}
	for unknown := 0; ; {
		batch, err := cons.FetchNoWait(64)
		if err != nil {
			return Page{}, fmt.Errorf("logs: read: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				return Page{}, fmt.Errorf("logs: read: %w", err)
			}
			seq := meta.Sequence.Stream
			page.End = Position{Seq: seq + 1}
			var events []Event
			if err := json.Unmarshal(msg.Data(), &events); err != nil {
				continue // not ours; skip rather than fail the whole read
			}
			first := 0
			if seq == q.After.Seq {
				first = q.After.Index
			}
			for i := first; i < len(events); i++ {
				e := events[i]
				if !q.matches(e) {
					continue
				}
				if len(page.Events) == q.Limit {
					page.Next = Position{Seq: seq, Index: i}
					return page, nil
				}
				e.ID = strconv.FormatUint(seq, 10) + "-" + strconv.Itoa(i)
				e.IngestionTime = meta.Timestamp.UnixMilli()
				page.Events = append(page.Events, e)
			}
			if meta.NumPending == 0 {
				return page, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			if errors.Is(err, nats.ErrNoResponders) && got == 0 && unknown < newConsumerRetries {
				// In a cluster, the server this node asks may not know yet
				// of the consumer just made on another.
				unknown++
				time.Sleep(newConsumerWait)
				continue
			}
			return Page{}, fmt.Errorf("logs: read: %w", err)
		}
		if got == 0 {
			break
		}
	}
	if page.End.IsZero() { // nothing read: the end is after the stream's last message
		info, err := s.stream.Info(ctx)
		if err != nil {
			return Page{}, fmt.Errorf("logs: read: %w", err)
		}
		page.End = Position{Seq: info.State.LastSeq + 1}
	}
	return page, nil
}

func (q *Query) matches(e Event) bool {
	if e.Timestamp < q.Start || (q.End > 0 && e.Timestamp >= q.End) {
		return false
	}
	if len(q.Streams) > 0 && !slices.Contains(q.Streams, e.Stream) {
		return false
	}
	if !strings.HasPrefix(e.Stream, q.Prefix) {
		return false
	}
	for _, t := range q.Terms {
		if !strings.Contains(e.Message, t) {
			return false
		}
	}
	return true
}

// GroupsWithEvents returns the names of the log groups that have events
// stored, sorted.
func (s *Store) GroupsWithEvents(ctx context.Context) ([]string, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+">"))
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	groups := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		if group, ok := groupOf(subj); ok {
			groups = append(groups, group)
		}
	}
	slices.Sort(groups)
	return groups, nil
}

// Purge deletes every stored event of a log group.
func (s *Store) Purge(ctx context.Context, group string) error {
	s.mu.Lock()
	for _, e := range s.pending[group] {
		s.size -= eventSize(e)
	}
	delete(s.pending, group)
	s.mu.Unlock()
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(subject(group))); err != nil {
		return fmt.Errorf("logs: purge: %w", err)
	}
	return nil
}

// StreamInfo summarises one log stream.
type StreamInfo struct {
	Name          string
	Created       int64 // milliseconds since the epoch
	FirstEvent    int64 // zero when it has no events
	LastEvent     int64
	LastIngestion int64
}

// Streams returns the log streams of a log group, by scanning its events,
// and those created explicitly that have none yet.
func (s *Store) Streams(ctx context.Context, group string) ([]StreamInfo, error) {
	byName := map[string]*StreamInfo{}
	if info, err := s.Group(ctx, group); err == nil {
		for name, created := range info.Streams {
			byName[name] = &StreamInfo{Name: name, Created: created}
		}
	}
	q := Query{Group: group}
	for {
		page, err := s.Read(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			info := byName[e.Stream]
			if info == nil {
				info = &StreamInfo{Name: e.Stream, Created: e.Timestamp}
				byName[e.Stream] = info
			}
			if info.FirstEvent == 0 {
				info.FirstEvent = e.Timestamp
			}
			info.LastEvent = max(info.LastEvent, e.Timestamp)
			info.LastIngestion = max(info.LastIngestion, e.IngestionTime)
		}
		if page.Next.IsZero() {
			break
		}
		q.After = page.Next
	}
	streams := make([]StreamInfo, 0, len(byName))
	for _, info := range byName {
		streams = append(streams, *info)
	}
	return streams, nil
}
