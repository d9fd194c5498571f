package worker

import (
	"github.com/lamina-project/lamina"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-function counters fed by every invocation's REPORT
// and cold start. Throttles are the manager's (manager.Metrics).
type Metrics struct {
	invocations *prometheus.CounterVec
	errors      *prometheus.CounterVec
	coldStarts  *prometheus.CounterVec
	duration    *prometheus.HistogramVec
}

// NewMetrics creates the counters and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	byFunction := []string{"function"}
	m := &Metrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_invocations_total", Help: "Invocations that ran (successful or not).",
		}, byFunction),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_invocation_errors_total", Help: "Invocations that ended in a function error, timeout or crash.",
		}, []string{"function", "error_type"}),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_cold_starts_total", Help: "Execution environments started.",
		}, byFunction),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lamina_invocation_duration_seconds", Help: "Duration of the invoke phase.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, byFunction),
	}
	if reg != nil {
		reg.MustRegister(m.invocations, m.errors, m.coldStarts, m.duration)
	}
	return m
}

func (m *Metrics) invoked(function string, res *lamina.InvocationResult) {
	m.invocations.WithLabelValues(function).Inc()
	m.duration.WithLabelValues(function).Observe(res.Duration.Seconds())
	if res.FunctionError != "" {
		m.errors.WithLabelValues(function, res.ErrorType).Inc()
	}
}

func (m *Metrics) coldStart(function string) { m.coldStarts.WithLabelValues(function).Inc() }
