package manager

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the manager's counters.
type Metrics struct {
	throttles *prometheus.CounterVec
}

// NewMetrics creates the counters and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_throttles_total", Help: "Invocations refused for lack of concurrency or memory.",
		}, []string{"function"}),
	}
	if reg != nil {
		reg.MustRegister(m.throttles)
	}
	return m
}

func (m *Metrics) throttled(function string) { m.throttles.WithLabelValues(function).Inc() }
