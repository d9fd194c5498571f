package manager

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the manager's counters and gauges.
type Metrics struct {
	throttles  *prometheus.CounterVec
	concurrent *prometheus.GaugeVec
}

// NewMetrics creates the counters and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_throttles_total", Help: "Invocations refused for lack of concurrency or memory.",
		}, []string{"function"}),
		concurrent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lamina_concurrent_executions", Help: "Invocations admitted on this node and not finished yet.",
		}, []string{"function"}),
	}
	if reg != nil {
		reg.MustRegister(m.throttles, m.concurrent)
	}
	return m
}

func (m *Metrics) throttled(function string) { m.throttles.WithLabelValues(function).Inc() }

// admitted counts an invocation of function in flight.
func (m *Metrics) admitted(function string) { m.concurrent.WithLabelValues(function).Inc() }

// finished counts an invocation of function out.
func (m *Metrics) finished(function string) { m.concurrent.WithLabelValues(function).Dec() }
