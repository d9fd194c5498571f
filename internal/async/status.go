package async

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Status is what the queue of one function holds, and what happened to its
// events on this node since it started.
type Status struct {
	Function string
	// Depth is how many events wait or run.
	Depth int
	// InRetry is how many of them failed at least once and wait to be tried
	// again.
	InRetry int
	// OldestAge is the age of the oldest waiting event; zero when none.
	OldestAge time.Duration
	Counts    Counts
	// RecentFailures are the last events that ran out of retries or age,
	// and where they went.
	RecentFailures []Failure
}

// Status reads the queue of function.
func (d *Dispatcher) Status(ctx context.Context, function string) (*Status, error) {
	st := &Status{Function: function, Counts: d.cfg.Metrics.counts(function)}
	failures, err := d.cfg.Queue.recentFailures(ctx, function)
	if err != nil {
		return nil, fmt.Errorf("async: status: %w", err)
	}
	st.RecentFailures = failures
	st.Depth, st.InRetry, st.OldestAge, err = d.cfg.Queue.waiting(ctx, function)
	if err != nil {
		return nil, fmt.Errorf("async: status: %w", err)
	}
	return st, nil
}

// waiting reads how many events of function wait or run, how many of them
// failed at least once, and the age of the oldest (zero when none).
func (q *Queue) waiting(ctx context.Context, function string) (depth, inRetry int, oldest time.Duration, err error) {
	subject := subjectPrefix + function
	info, err := q.stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, 0, 0, err
	}
	depth = int(info.State.Subjects[subject])
	// Look at the events themselves (a work queue allows no read-only
	// consumer), up to a bound.
	now := time.Now()
	for seq, seen := uint64(1), 0; seen < depth && seen < statusScanLimit; seen++ {
		msg, err := q.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return 0, 0, 0, err
		}
		if n, _ := strconv.Atoi(msg.Header.Get(hdrAttempts)); n > 0 {
			inRetry++
		}
		if ms, err := strconv.ParseInt(msg.Header.Get(hdrReceived), 10, 64); err == nil {
			oldest = max(oldest, now.Sub(time.UnixMilli(ms)))
		}
		seq = msg.Sequence + 1
	}
	return depth, inRetry, oldest, nil
}

// statusScanLimit bounds how many waiting events Status looks at.
const statusScanLimit = 10000

// readCounter returns a counter's value.
func readCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return m.Counter.GetValue()
}
