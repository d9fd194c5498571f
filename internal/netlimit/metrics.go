package netlimit

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the limits of a node's listeners do, by listener.
type Metrics struct {
	open       *prometheus.GaugeVec
	refused    *prometheus.CounterVec
	bodyBytes  *prometheus.GaugeVec
	bodyLimit  *prometheus.GaugeVec
	throttled  *prometheus.CounterVec
	slowBodies *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	byListener := []string{"listener"}
	m := &Metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lamina_listener_connections", Help: "Connections open now.",
		}, byListener),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_listener_connections_refused_total", Help: "Connections refused at accept, by the limit that refused them (per_address, overall).",
		}, []string{"listener", "limit"}),
		bodyBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lamina_request_body_bytes", Help: "Bytes of request bodies reserved in memory now.",
		}, byListener),
		bodyLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lamina_request_body_budget_bytes", Help: "The budget of request body bytes in memory at once.",
		}, byListener),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_request_body_throttles_total", Help: "Requests refused with 429 because the body budget was spent.",
		}, byListener),
		slowBodies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_request_body_timeouts_total", Help: "Requests cut because their body arrived slower than the minimum rate.",
		}, byListener),
	}
	if reg != nil {
		reg.MustRegister(m.open, m.refused, m.bodyBytes, m.bodyLimit, m.throttled, m.slowBodies)
	}
	return m
}

// Listener returns the metrics of the listener called name ("api", "url"…).
// A nil *Metrics gives metrics registered nowhere.
func (m *Metrics) Listener(name string) *ListenerMetrics {
	if m == nil {
		m = NewMetrics(nil)
	}
	return &ListenerMetrics{
		open:       m.open.WithLabelValues(name),
		perAddress: m.refused.WithLabelValues(name, PerAddress.String()),
		overall:    m.refused.WithLabelValues(name, Overall.String()),
		bodyBytes:  m.bodyBytes.WithLabelValues(name),
		bodyLimit:  m.bodyLimit.WithLabelValues(name),
		throttled:  m.throttled.WithLabelValues(name),
		slowBodies: m.slowBodies.WithLabelValues(name),
	}
}

// ListenerMetrics are the metrics of one listener.
type ListenerMetrics struct {
	open                prometheus.Gauge
	perAddress, overall prometheus.Counter
	bodyBytes           prometheus.Gauge
	bodyLimit           prometheus.Gauge
	throttled           prometheus.Counter
	slowBodies          prometheus.Counter
}

// orUncounted is m, or for nil metrics registered nowhere.
func orUncounted(m *ListenerMetrics) *ListenerMetrics {
	if m == nil {
		return (*Metrics)(nil).Listener("")
	}
	return m
}

func (m *ListenerMetrics) refused(why Refusal) {
	if why == PerAddress {
		m.perAddress.Inc()
	} else {
		m.overall.Inc()
	}
}
