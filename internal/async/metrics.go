package async

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what happens to asynchronous events, per function.
type Metrics struct {
	reg                 prometheus.Registerer
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
		reg:                 reg,
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

// queueScrapeTimeout bounds how long a scrape reads the queue.
const queueScrapeTimeout = 2 * time.Second

var (
	queueDepthDesc = prometheus.NewDesc("lamina_async_queue_depth",
		"Asynchronous events of a function waiting or running (the queue the cluster shares).", []string{"function"}, nil)
	queueAgeDesc = prometheus.NewDesc("lamina_async_queue_oldest_age_seconds",
		"Age of a function's oldest waiting asynchronous event.", []string{"function"}, nil)
)

// queueGauges reports the depth and age of every function's queue when
// scraped.
type queueGauges struct{ q *Queue }

func (g queueGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- queueAgeDesc
}

func (g queueGauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), queueScrapeTimeout)
	defer cancel()
	functions, err := g.q.pendingFunctions(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		return
	}
	for _, function := range functions {
		depth, _, oldest, err := g.q.waiting(ctx, function)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(depth), function)
		ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, oldest.Seconds(), function)
	}
}
