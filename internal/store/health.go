package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnavailable is matched (errors.Is) by every error that says storage
// cannot take writes now: the disk is full, JetStream met a write error, or
// it is being reopened. Such errors are *UnavailableError. They last until
// the node heals; reads served from memory keep working meanwhile.
var ErrUnavailable = errors.New("store: storage unavailable")

// ErrCodeStorageExceeded is returned when the code store has reached its
// share of the disk; deleting functions, versions or layers frees it.
var ErrCodeStorageExceeded = errors.New("store: code storage is full")

// UnavailableError says why storage cannot take writes now.
type UnavailableError struct {
	// Full is set when the cause is a lack of space (the data disk or
	// JetStream's limit), rather than another write error.
	Full bool
	// Err is the failure that was seen.
	Err error
}

func (e *UnavailableError) Error() string {
	if e.Full {
		return "store: storage is full: " + e.Err.Error()
	}
	return "store: storage unavailable: " + e.Err.Error()
}

// Is makes errors.Is(err, ErrUnavailable) hold.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the failure that was seen.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Health tracks whether JetStream takes writes. Parts that write to it
// report the failures they meet through Check; the node's healing loop waits
// on Failed, repairs (waits for space, reopens JetStream's streams) and calls
// Recover, which wakes those waiting on Recovered to re-establish what they
// keep on JetStream (watches, consumers). It is safe for concurrent use.
type Health struct {
	log *slog.Logger

	mu        sync.Mutex
	down      *UnavailableError // nil while storage is available
	downAt    time.Time         // when it became unavailable
	reopen    bool              // a failure JetStream keeps until its streams are reopened
	failed    chan struct{}     // receives (buffer 1) after a failure
	suspected chan struct{}     // receives (buffer 1) after a write JetStream did not answer
	recovered chan struct{}     // closed at the next recovery
}

// NewHealth returns the health of a store that is available.
func NewHealth(log *slog.Logger) *Health {
	if log == nil {
		log = slog.Default()
	}
	return &Health{log: log, failed: make(chan struct{}, 1), suspected: make(chan struct{}, 1), recovered: make(chan struct{})}
}

// Err returns nil while storage takes writes, else an *UnavailableError.
func (h *Health) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down == nil {
		return nil
	}
	return h.down
}

// Fail marks storage unavailable because of err. full says the cause is a
// lack of space; reopen that JetStream keeps the failure until its streams
// are reopened (a "critical write error", JetStream disabled itself, a
// stream no longer answers).
func (h *Health) Fail(err error, full, reopen bool) {
	h.mu.Lock()
	if h.down == nil {
		h.log.Error("storage unavailable; writes are refused until it heals", "err", err, "full", full)
		h.down, h.downAt = &UnavailableError{Full: full, Err: err}, time.Now()
	} else if full && !h.down.Full {
		h.down = &UnavailableError{Full: true, Err: err}
	}
	h.reopen = h.reopen || reopen
	h.mu.Unlock()
	select {
	case h.failed <- struct{}{}:
	default:
	}
}

// DownSince returns when storage became unavailable; the zero time while it
// is available.
func (h *Health) DownSince() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down == nil {
		return time.Time{}
	}
	return h.downAt
}

// Failed returns a channel that receives after a failure was reported.
func (h *Health) Failed() <-chan struct{} { return h.failed }

// Suspect reports a write that JetStream did not answer in time: a stream
// that met a write error stays silent until it is reopened, but so does a
// busy machine for a while, and a cluster whose leader changes. Storage
// stays available; the node's healing loop probes it and marks it failed
// only if a test write does not go through either.
func (h *Health) Suspect() {
	select {
	case h.suspected <- struct{}{}:
	default:
	}
}

// Suspected returns a channel that receives after Suspect.
func (h *Health) Suspected() <-chan struct{} { return h.suspected }

// NeedsReopen reports whether a failure since the last recovery needs
// JetStream's streams reopened.
func (h *Health) NeedsReopen() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reopen
}

// Recover marks storage available again and wakes everything waiting on
// Recovered.
func (h *Health) Recover() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down != nil {
		h.log.Info("storage available again")
	}
	h.down, h.reopen = nil, false
	close(h.recovered)
	h.recovered = make(chan struct{})
}

// Recovered returns a channel closed at the next recovery.
func (h *Health) Recovered() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.recovered
}

// Check looks at err, returned by a JetStream call made with ctx. A storage
// failure comes back as an *UnavailableError; one that lasts until JetStream
// reopens its streams (a write error, JetStream disabled) also marks storage
// unavailable, so that the node heals, and a write JetStream did not answer
// makes the node probe it (Suspect). A store at JetStream's own size limit
// does not: it takes writes again as soon as something is deleted or
// expires. Any other error, and nil, come back unchanged.
func (h *Health) Check(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	full, lasting, failure := classify(err)
	switch {
	case !failure:
		return err
	case unanswered(err):
		h.Suspect()
	case lasting:
		h.Fail(err, full, true)
	}
	// The server may have said more (a write error it logged behind a write
	// it did not answer).
	h.mu.Lock()
	full = full || (h.down != nil && h.down.Full)
	h.mu.Unlock()
	return &UnavailableError{Full: full, Err: err}
}

// Error codes of JetStream's API that mean storage failed or is full.
const (
	codeAccountResourcesExceeded = 10002
	codeInsufficientResources    = 10023
	codeStorageResourcesExceeded = 10047
	codeStreamStoreFailed        = 10077
)

// classify tells whether err is a storage failure, whether it is a lack of
// space, and whether it lasts until JetStream reopens its streams.
func classify(err error) (full, lasting, failure bool) {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr):
		switch apiErr.ErrorCode {
		case codeAccountResourcesExceeded, codeInsufficientResources, codeStorageResourcesExceeded:
			return true, false, true
		case codeStreamStoreFailed:
			if IsStreamFull(err) {
				return false, false, false // one stream at its own limit: not storage as a whole
			}
			return isOutOfSpace(err), true, true
		case jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount:
			return false, true, true
		}
		return false, false, false
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return false, true, true
	case unanswered(err):
		// JetStream did not answer a write: a stream that met a write error
		// stays silent until it is reopened (Check has the node probe it).
		return false, true, true
	case isOutOfSpace(err):
		return true, true, true
	}
	return false, false, false
}

// unanswered reports whether err says that JetStream did not answer.
func unanswered(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout)
}

// IsStreamFull reports whether err, from a publish, says that a stream with
// a size limit that refuses new messages is at that limit.
func IsStreamFull(err error) bool {
	return strings.Contains(err.Error(), "maximum bytes exceeded") || strings.Contains(err.Error(), "maximum messages exceeded")
}

// isOutOfSpace reports whether err says that a disk is full.
func isOutOfSpace(err error) bool {
	return strings.Contains(err.Error(), "no space left")
}

// NoteServerLog looks at a line the NATS server logged at warning or error
// level and reports the storage failures it tells of, so that the node heals
// before a client meets them: the server logs a write error once, then
// refuses writes to that stream without answering them.
func (h *Health) NoteServerLog(line string) {
	l := strings.ToLower(line)
	for _, sign := range []string{"critical write error", "failed to store a msg", "disabling jetstream", "will be disabled"} {
		if strings.Contains(l, sign) {
			h.Fail(errors.New(line), isOutOfSpace(errors.New(l)), true)
			return
		}
	}
}

// wrapErr gives an error of a store operation made with ctx its context;
// storage failures are reported to h and become *UnavailableError.
func wrapErr(h *Health, ctx context.Context, err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, h.Check(ctx, err))...)
}
