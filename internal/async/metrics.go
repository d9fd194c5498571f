package async

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what happens to asynchronous events, per function.
type Metrics struct {
	received            *prometheus.CounterVec
	succeeded           *prometheus.CounterVec
	retried             *prometheus.CounterVec
	throttled           *prometheus.CounterVec
	dropped             *prometheus.CounterVec
	deadLettered        *prometheus.CounterVec
	failedToDestination *prometheus.CounterVec
}

// NewMetrics creates the counters and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lamina_async_" + name + "_total", Help: help}, []string{"function"})
	}
	m := &Metrics{
		received:            counter("events_received", "Asynchronous events accepted into the queue."),
		succeeded:           counter("events_succeeded", "Asynchronous events whose invocation succeeded."),
		retried:             counter("events_retried", "Function errors retried after a delay."),
		throttled:           counter("events_postponed", "Events put back with backoff after a throttle or system error."),
		dropped:             counter("events_dropped", "Events dropped: failed with no destination or dead-letter target, or their function is gone."),
		deadLettered:        counter("events_dead_lettered", "Failed events sent to the function's dead-letter target."),
		failedToDestination: counter("events_failed_to_destination", "Failed events whose record went to the on-failure destination."),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.succeeded, m.retried, m.throttled, m.dropped, m.deadLettered, m.failedToDestination)
	}
	return m
}

// Counts is a snapshot of one function's counters on this node.
type Counts struct {
	Received, Succeeded, Retried, Postponed, Dropped, DeadLettered, FailedToDestination int64
}

func (m *Metrics) counts(function string) Counts {
	read := func(c *prometheus.CounterVec) int64 {
		return int64(readCounter(c.WithLabelValues(function)))
	}
	return Counts{
		Received: read(m.received), Succeeded: read(m.succeeded), Retried: read(m.retried),
		Postponed: read(m.throttled), Dropped: read(m.dropped), DeadLettered: read(m.deadLettered),
		FailedToDestination: read(m.failedToDestination),
	}
}
