package netlimit

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// Bodies bounds the request bodies of one listener: the bytes held in
// memory at once (a budget), and the rate at which a body must arrive. It
// never makes a request wait: a reservation that does not fit is refused,
// and the caller answers "retry later". A nil *Bodies bounds nothing.
type Bodies struct {
	limit   int64
	rate    MinRate
	metrics *ListenerMetrics

	mu   sync.Mutex
	used int64
}

// NewBodies returns the bounds of a listener's bodies: a budget of limit
// bytes and a minimum rate; m counts what they refuse (nil: not counted).
func NewBodies(limit int64, rate MinRate, m *ListenerMetrics) *Bodies {
	m = orUncounted(m)
	m.bodyLimit.Set(float64(limit))
	return &Bodies{limit: limit, rate: rate, metrics: m}
}

// Reserve reserves n bytes of the budget and reports whether it could. A
// reservation is granted when it fits in what is left, or when nothing is
// reserved at all, so that a body larger than the whole budget is served by
// an otherwise idle node rather than never.
func (b *Bodies) Reserve(n int64) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used > 0 && b.used+n > b.limit {
		b.metrics.throttled.Inc()
		return false
	}
	b.used += n
	b.show()
	return true
}

// Release gives back n bytes of an earlier reservation.
func (b *Bodies) Release(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.show()
}

// Used is the number of bytes reserved now.
func (b *Bodies) Used() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func (b *Bodies) show() { b.metrics.bodyBytes.Set(float64(b.used)) }

// MinRate is the slowest a client may send a request body: it has Grace to
// start, and after that must keep up an average of BytesPerSecond.
type MinRate struct {
	Grace          time.Duration
	BytesPerSecond int64
}

// Deadline is the time by which a body whose reading started at start, and
// of which n bytes arrived, must have sent more.
func (m MinRate) Deadline(start time.Time, n int64) time.Time {
	return start.Add(m.Grace + time.Duration(float64(n)/float64(m.BytesPerSecond)*float64(time.Second)))
}

// Rate is the minimum rate of the bodies (zero for a nil *Bodies).
func (b *Bodies) Rate() MinRate {
	if b == nil {
		return MinRate{}
	}
	return b.rate
}

// Reader returns r with every Read preceded by a call of setDeadline (the
// connection's read deadline) with the time by which the body read so far
// had to arrive at the minimum rate, counted from now. A client that falls
// behind finds the deadline passed and its read fails with
// os.ErrDeadlineExceeded. The caller clears the deadline after the body.
// Without a rate (or bounds) r is returned as it is.
func (b *Bodies) Reader(r io.Reader, setDeadline func(time.Time) error) io.Reader {
	if b == nil || b.rate.BytesPerSecond <= 0 {
		return r
	}
	return &rateReader{r: r, b: b, setDeadline: setDeadline, start: time.Now()}
}

type rateReader struct {
	r           io.Reader
	b           *Bodies
	setDeadline func(time.Time) error
	start       time.Time
	n           int64
}

func (r *rateReader) Read(p []byte) (int, error) {
	_ = r.setDeadline(r.b.rate.Deadline(r.start, r.n))
	n, err := r.r.Read(p)
	r.n += int64(n)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		r.b.metrics.slowBodies.Inc()
	}
	return n, err
}
