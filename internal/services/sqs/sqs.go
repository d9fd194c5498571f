// Package sqs is Lamina's SQS-compatible queue service: the SQS API on both
// of its wire protocols (JSON 1.0 for current SDKs, query for the AWS CLI
// v2 and older SDKs), on JetStream.
//
// Storage, one stream each for all queues, replicated as the store is:
//
//   - lamina_sqs_messages holds the messages, one subject per queue
//     (lamina.sqs.m.<queue id>): a message is written once, with its
//     attributes, and deleted when a consumer deletes it, a purge removes
//     it or its retention (a per-message TTL) ends. JetStream's duplicate
//     window (5 minutes) is FIFO queues' deduplication; a per-subject bound
//     is the queue's bound.
//   - lamina_sqs_states holds each received message's state (receive
//     count, first receive, visibility, the nonce of its latest receipt
//     handle), the last entry of subject lamina.sqs.s.<queue id>.<seq>.
//     Every change is a compare-and-set on that subject's last sequence,
//     so two nodes (or two receives on one node) never both receive a
//     message while it is invisible, a stale receipt handle never deletes a
//     message received again, and what was received survives a restart.
//
// Each node keeps a view of the queues it serves (view.go), from which it
// chooses what to claim; see claim.go for receiving, deleting, changing
// visibility and moving dead letters.
//
// Lamina's other parts use queues through Queue, without HTTP (queue.go).
package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/nats-io/nats.go/jetstream"
)

// Streams and subjects; part of the on-disk format.
const (
	messagesStream = "lamina_sqs_messages"
	statesStream   = "lamina_sqs_states"
	messagesPrefix = "lamina.sqs.m."
	statesPrefix   = "lamina.sqs.s."
	// dedupWindow is FIFO queues' deduplication interval.
	dedupWindow = 5 * time.Minute
	// maxStoredMessage bounds a message stream entry: a message of 1 MiB
	// (body and attributes), base64 of binary attributes, headers.
	maxStoredMessage = 2 << 20
)

// Limits bound what clients can make grow.
type Limits struct {
	// MaxQueues bounds the account's queues.
	MaxQueues int
	// MaxQueueMessages bounds the messages one queue holds; a send to a
	// full queue fails with OverLimit.
	MaxQueueMessages int
	// MaxPollsPerQueue and MaxPolls bound the long polls waiting at once
	// on this node, for one queue and for all; more are refused with
	// RequestThrottled, which the SDKs retry.
	MaxPollsPerQueue, MaxPolls int
}

// DefaultLimits are the bounds when none are given.
var DefaultLimits = Limits{MaxQueues: 1000, MaxQueueMessages: 100000, MaxPollsPerQueue: 1000, MaxPolls: 10000}

// Bounds of SQS itself.
const (
	maxBatchEntries   = 10
	maxInFlight       = 120000 // messages in flight in a standard queue
	maxInFlightFIFO   = 20000
	maxReceiveMessage = 10
	tombstoneTTL      = time.Minute
	viewIdle          = 5 * time.Minute // a view unused this long is dropped
	janitorInterval   = 5 * time.Second
)

// Config is what the service needs.
type Config struct {
	Region, AccountID string
	Store             *store.Store
	// MaxBytes bounds the messages of all queues together, on disk; zero
	// bounds nothing but the store. Sends are refused once it is reached.
	MaxBytes int64
	// Limits; zero values take DefaultLimits'.
	Limits Limits
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Service is the queue service of one node.
type Service struct {
	cfg      Config
	log      *slog.Logger
	js       jetstream.JetStream
	health   *store.Health
	queues   *store.Table[queueRecord]
	messages jetstream.Stream
	states   jetstream.Stream
	api      *awsproto.Service

	ctx    context.Context // the views'
	cancel context.CancelFunc
	done   chan struct{} // closed when the janitor has stopped

	mu       sync.Mutex
	views    map[string]*view // by queue ID
	polls    int              // long polls waiting on this node
	draining chan struct{}    // closed when the node stops: long polls return
}

// Open opens (creating) the service's buckets and streams.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	def := DefaultLimits
	l := &cfg.Limits
	for _, f := range []struct {
		v *int
		d int
	}{{&l.MaxQueues, def.MaxQueues}, {&l.MaxQueueMessages, def.MaxQueueMessages}, {&l.MaxPollsPerQueue, def.MaxPollsPerQueue}, {&l.MaxPolls, def.MaxPolls}} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	st := cfg.Store
	js := st.JetStream()
	maxBytes := cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	replicas := max(st.Replicas(), 1)
	messages, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:                 messagesStream,
		Description:          "SQS messages, one subject per queue",
		Subjects:             []string{messagesPrefix + "*"},
		Storage:              jetstream.FileStorage,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgsPerSubject:    int64(cfg.Limits.MaxQueueMessages),
		MaxBytes:             maxBytes,
		MaxMsgSize:           maxStoredMessage,
		Duplicates:           dedupWindow,
		AllowMsgTTL:          true,
		Replicas:             replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("sqs: stream %s: %w", messagesStream, st.Health().Check(ctx, err))
	}
	statesMax := int64(-1)
	if cfg.MaxBytes > 0 {
		statesMax = max(cfg.MaxBytes/8, 8<<20)
	}
	states, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              statesStream,
		Description:       "the receive state of each SQS message received, one subject per message",
		Subjects:          []string{statesPrefix + "*.*"},
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardNew,
		MaxMsgsPerSubject: 1,
		MaxBytes:          statesMax,
		AllowMsgTTL:       true,
		Replicas:          replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("sqs: stream %s: %w", statesStream, st.Health().Check(ctx, err))
	}
	queues, err := store.OpenTable[queueRecord](ctx, st, queuesBucket, "queue")
	if err != nil {
		return nil, fmt.Errorf("sqs: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("part", "sqs"), js: js, health: st.Health(), queues: queues,
		messages: messages, states: states, views: map[string]*view{}, draining: make(chan struct{}), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.api = s.apiService()
	go s.janitor()
	return s, nil
}

// API is the service as the API listener's dispatcher serves it.
func (s *Service) API() *awsproto.Service { return s.api }

// Drain makes waiting long polls return now (empty, as when their wait
// ends) and new ones return at once: the node is stopping.
func (s *Service) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.draining:
	default:
		close(s.draining)
	}
}

// Close stops the views and the janitor.
func (s *Service) Close() {
	s.Drain()
	s.cancel()
	<-s.done
}

// view returns this node's view of q, loading it if needed.
func (s *Service) view(ctx context.Context, q *queueRecord) (*view, error) {
	s.mu.Lock()
	v := s.views[q.ID]
	if v != nil && v.err0() != nil {
		v = nil
	}
	if v == nil {
		v = newView(s, q)
		s.views[q.ID] = v
		go func() {
			if err := v.load(); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Warn("loading a queue failed", "queue", q.Name, "err", err)
			}
		}()
	}
	s.mu.Unlock()
	select {
	case <-v.loaded:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil {
		return nil, fmt.Errorf("sqs: queue %s: %w", q.Name, v.err)
	}
	v.lastUse = time.Now()
	return v, nil
}

// loadedView returns this node's view of the queue with id if it is
// loaded and current, else nil.
func (s *Service) loadedView(id string) *view {
	s.mu.Lock()
	v := s.views[id]
	s.mu.Unlock()
	if v == nil {
		return nil
	}
	select {
	case <-v.loaded:
		if v.err0() == nil {
			return v
		}
	default:
	}
	return nil
}

// dropView stops and forgets this node's view of the queue with id.
func (s *Service) dropView(id string) {
	s.mu.Lock()
	v := s.views[id]
	delete(s.views, id)
	s.mu.Unlock()
	if v != nil {
		v.close()
	}
}

// janitor drops idle views and views of deleted queues, and deletes
// messages whose retention ended (which JetStream's TTL would delete too,
// later, should the queue's retention have been shortened).
func (s *Service) janitor() {
	defer close(s.done)
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			s.mu.Lock()
			views := s.views
			s.views = map[string]*view{}
			s.mu.Unlock()
			for _, v := range views {
				v.close()
			}
			return
		case <-t.C:
		}
		s.sweep()
	}
}

// sweep is one round of the janitor.
func (s *Service) sweep() {
	s.mu.Lock()
	views := make([]*view, 0, len(s.views))
	for _, v := range s.views {
		views = append(views, v)
	}
	s.mu.Unlock()
	now := time.Now()
	for _, v := range views {
		select {
		case <-v.loaded:
		default:
			continue
		}
		q := s.current(v)
		v.mu.Lock()
		idle := v.polls == 0 && now.Sub(v.lastUse) > viewIdle
		var gone []uint64
		if q != nil && v.err == nil {
			v.purge(q.PurgedThrough)
			gone = v.expired(now.UnixMilli(), q.Retention)
		}
		v.mu.Unlock()
		if q == nil || idle || v.err0() != nil {
			s.mu.Lock()
			if s.views[v.id] == v {
				delete(s.views, v.id)
			}
			s.mu.Unlock()
			v.close()
			continue
		}
		for _, seq := range gone {
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			if err := s.messages.DeleteMsg(ctx, seq); err != nil && !isNotFound(err) {
				s.log.Debug("deleting an expired message failed", "queue", q.Name, "err", err)
			}
			cancel()
		}
	}
}

// current returns the record of v's queue, or nil once it was deleted.
func (s *Service) current(v *view) *queueRecord {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	q, err := s.queues.Get(ctx, v.name)
	if err != nil || q.ID != v.id {
		return nil
	}
	return q
}

// startPoll counts a long poll that begins waiting on v; false when a
// bound refuses it.
func (s *Service) startPoll(v *view) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	if s.polls >= s.cfg.Limits.MaxPolls || v.polls >= s.cfg.Limits.MaxPollsPerQueue {
		return false
	}
	s.polls++
	v.polls++
	return true
}

// endPoll uncounts a long poll.
func (s *Service) endPoll(v *view) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	s.polls--
	v.polls--
	v.lastUse = time.Now()
}

// nowMs is the time in unix ms.
func nowMs() int64 { return time.Now().UnixMilli() }
