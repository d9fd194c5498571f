// Package async is Lamina's asynchronous invocation: a durable queue of
// events on a JetStream stream (one subject per function), and dispatchers
// that run them through the manager with Lambda's error handling — retries of
// function errors (MaximumRetryAttempts, waiting about 1 then 2 minutes),
// backoff of throttles and system errors until MaximumEventAgeInSeconds runs
// out, then the on-failure destination, the dead-letter target, or a logged
// drop; successes go to the on-success destination.
//
// Delivery is at least once: an event is acknowledged only after its
// invocation ended and its record went where it had to go, so an event
// accepted with 202 runs even if the server is killed at any moment; it may
// then run twice, as on Lambda.
package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Streams and subjects; part of the on-disk format.
const (
	streamName    = "lamina_async"
	subjectPrefix = "lamina.async."
	// failuresStream keeps the last failures of each function's events.
	failuresStream        = "lamina_async_failures"
	failuresSubjectPrefix = "lamina.async-failures."
	failuresKept          = 20
	// maxEventSize bounds a queued event: a 1 MB event accepted from a
	// caller, or an invocation record (the event plus a response of up to
	// 6 MB) on its way to a destination, with headers.
	maxEventSize = 8 << 20
)

// Message headers that carry an event's state from delivery to delivery.
const (
	hdrRequestID = "Lamina-Request-Id"
	hdrQualifier = "Lamina-Qualifier"
	hdrReceived  = "Lamina-Received-At" // unix ms when first accepted
	hdrAttempts  = "Lamina-Attempts"    // function invocations so far
	hdrNotBefore = "Lamina-Not-Before"  // unix ms before which it must not run (a retry's delay)
	hdrTraceID   = "Lamina-Trace-Id"
	hdrMsgID     = "Nats-Msg-Id" // JetStream's duplicate detection
)

// Event is one asynchronous invocation waiting in the queue.
type Event struct {
	RequestID string
	Function  string // function name
	Qualifier string // version or alias; empty means $LATEST
	Payload   []byte
	TraceID   string
	// Received is when the event was first accepted; its age counts from
	// here.
	Received time.Time
	// Attempts is how many times the function has run it.
	Attempts int
	// NotBefore delays a retry.
	NotBefore time.Time
}

// Queue accepts events durably.
type Queue struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	failures jetstream.Stream
	health   *store.Health
}

// QueueOptions size the queue's streams.
type QueueOptions struct {
	Replicas int
	// MaxBytes bounds the events waiting; when it is reached new events are
	// refused (never are accepted ones dropped). Zero means no bound.
	MaxBytes int64
	// FailuresMaxBytes bounds the records of failed events, oldest deleted
	// first. Zero means no bound but the number kept per function.
	FailuresMaxBytes int64
	// Health is where storage failures are reported; nil makes one.
	Health *store.Health
}

// OpenQueue creates (or updates) the async streams.
func OpenQueue(ctx context.Context, js jetstream.JetStream, opts QueueOptions) (*Queue, error) {
	if opts.Health == nil {
		opts.Health = store.NewHealth(nil)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        streamName,
		Description: "asynchronous invocations waiting to run, one subject per function",
		Subjects:    []string{subjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    limit(opts.MaxBytes),
		MaxMsgSize:  maxEventSize,
		Replicas:    max(opts.Replicas, 1),
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("async: stream: %w", err)
	}
	failures, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              failuresStream,
		Description:       "the last failed asynchronous events of each function and where they went",
		Subjects:          []string{failuresSubjectPrefix + ">"},
		Storage:           jetstream.FileStorage,
		MaxMsgsPerSubject: failuresKept,
		MaxBytes:          limit(opts.FailuresMaxBytes),
		Replicas:          max(opts.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("async: stream: %w", err)
	}
	return &Queue{js: js, stream: stream, failures: failures, health: opts.Health}, nil
}

// limit is a stream's byte limit: n, or -1 (none) for zero.
func limit(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// Failure is the record of an event that ran out of retries or age.
type Failure struct {
	Time      time.Time
	RequestID string
	Condition string // RetriesExhausted or EventAgeExceeded
	Attempts  int
	ErrorType string `json:",omitempty"`
	// SentTo is the destination or dead-letter target it went to; empty
	// when it was dropped.
	SentTo string `json:",omitempty"`
}

// recordFailure keeps f among the function's last failures.
func (q *Queue) recordFailure(ctx context.Context, function string, f *Failure) error {
	data, _ := json.Marshal(f) // always encodes
	_, err := q.js.Publish(ctx, failuresSubjectPrefix+function, data)
	return err
}

// recentFailures returns the function's last failures, oldest first.
func (q *Queue) recentFailures(ctx context.Context, function string) ([]Failure, error) {
	cons, err := q.failures.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{failuresSubjectPrefix + function}})
	if err != nil {
		return nil, err
	}
	batch, err := cons.FetchNoWait(failuresKept)
	if err != nil {
		return nil, err
	}
	var out []Failure
	for msg := range batch.Messages() {
		var f Failure
		if json.Unmarshal(msg.Data(), &f) == nil {
			out = append(out, f)
		}
	}
	return out, nil
}

// Enqueue stores ev durably; when it returns nil the event will run. A new
// event gets a request ID and its received time here.
func (q *Queue) Enqueue(ctx context.Context, ev *Event) error {
	if ev.RequestID == "" {
		ev.RequestID = uuid.NewString()
	}
	if ev.Received.IsZero() {
		ev.Received = time.Now()
	}
	msg := nats.NewMsg(subjectPrefix + ev.Function)
	msg.Data = ev.Payload
	h := msg.Header
	h.Set(hdrRequestID, ev.RequestID)
	h.Set(hdrReceived, strconv.FormatInt(ev.Received.UnixMilli(), 10))
	h.Set(hdrAttempts, strconv.Itoa(ev.Attempts))
	h.Set(hdrMsgID, ev.RequestID+"/"+strconv.Itoa(ev.Attempts))
	if ev.Qualifier != "" {
		h.Set(hdrQualifier, ev.Qualifier)
	}
	if ev.TraceID != "" {
		h.Set(hdrTraceID, ev.TraceID)
	}
	if !ev.NotBefore.IsZero() {
		h.Set(hdrNotBefore, strconv.FormatInt(ev.NotBefore.UnixMilli(), 10))
	}
	if err := q.health.Err(); err != nil {
		return fmt.Errorf("async: enqueue: %w", err)
	}
	if _, err := q.js.PublishMsg(ctx, msg); err != nil {
		if store.IsStreamFull(err) {
			// The queue's share of the disk is used up: refuse the event
			// rather than drop one that was accepted.
			err = &store.UnavailableError{Full: true, Err: fmt.Errorf("the asynchronous invocation queue is full: %w", err)}
		}
		return fmt.Errorf("async: enqueue: %w", q.health.Check(ctx, err))
	}
	return nil
}

// decodeEvent reads an event back from a delivered message.
func decodeEvent(msg jetstream.Msg) (*Event, error) {
	h := msg.Headers()
	ev := &Event{
		RequestID: h.Get(hdrRequestID),
		Function:  msg.Subject()[len(subjectPrefix):],
		Qualifier: h.Get(hdrQualifier),
		Payload:   msg.Data(),
		TraceID:   h.Get(hdrTraceID),
	}
	if ev.RequestID == "" {
		return nil, errors.New("async: event without request ID")
	}
	received, err := strconv.ParseInt(h.Get(hdrReceived), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("async: event %s: bad %s", ev.RequestID, hdrReceived)
	}
	ev.Received = time.UnixMilli(received)
	ev.Attempts, _ = strconv.Atoi(h.Get(hdrAttempts))
	if nb := h.Get(hdrNotBefore); nb != "" {
		if ms, err := strconv.ParseInt(nb, 10, 64); err == nil {
			ev.NotBefore = time.UnixMilli(ms)
		}
	}
	return ev, nil
}

// pendingFunctions returns the functions that have events in the stream.
func (q *Queue) pendingFunctions(ctx context.Context) ([]string, error) {
	info, err := q.stream.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+">"))
	if err != nil {
		return nil, fmt.Errorf("async: %w", err)
	}
	var names []string
	for subject, n := range info.State.Subjects {
		if n > 0 {
			names = append(names, subject[len(subjectPrefix):])
		}
	}
	return names, nil
}
