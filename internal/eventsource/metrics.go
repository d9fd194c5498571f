package eventsource

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the mappings' gauges.
type Metrics struct {
	lag *prometheus.GaugeVec
}

// NewMetrics creates the gauges and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lamina_event_source_lag_seconds",
			Help: "How far behind its source a mapping's poller on this node is, as of its last batch: for a stream, " +
				"the age of the batch's last record (Lambda's IteratorAge); for a queue, the age of the batch's oldest message " +
				"(0 when a receive found the queue empty).",
		}, []string{"mapping", "function"}),
	}
	if reg != nil {
		reg.MustRegister(m.lag)
	}
	return m
}

// setLag records how far behind a mapping's poller is.
func (m *Metrics) setLag(mapping, function string, lag time.Duration) {
	m.lag.WithLabelValues(mapping, function).Set(max(lag, 0).Seconds())
}

// forget drops a mapping's gauge once this node no longer polls it.
func (m *Metrics) forget(mapping, function string) {
	m.lag.DeleteLabelValues(mapping, function)
}
