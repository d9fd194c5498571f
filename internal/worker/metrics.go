package worker

import (
	"github.com/lamina-project/lamina"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-function counters fed by every invocation's REPORT
// and cold start, and the gauges of the node's environments. Throttles and
// concurrent executions are the manager's (manager.Metrics).
type Metrics struct {
	reg          prometheus.Registerer
	invocations  *prometheus.CounterVec
	errors       *prometheus.CounterVec
	coldStarts   *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	initDuration *prometheus.HistogramVec
}

// NewMetrics creates the counters and registers them with reg (nil: not
// registered anywhere). The environment gauges are registered with reg by
// New, as they read the worker.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	byFunction := []string{"function"}
	m := &Metrics{
		reg: reg,
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
		initDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lamina_init_duration_seconds", Help: "Init Duration of cold starts: the runtime's start and the function's code outside the handler.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, byFunction),
	}
	if reg != nil {
		reg.MustRegister(m.invocations, m.errors, m.coldStarts, m.duration, m.initDuration)
	}
	return m
}

func (m *Metrics) invoked(function string, res *lamina.InvocationResult) {
	m.invocations.WithLabelValues(function).Inc()
	m.duration.WithLabelValues(function).Observe(res.Duration.Seconds())
	if res.InitDuration > 0 {
		m.initDuration.WithLabelValues(function).Observe(res.InitDuration.Seconds())
	}
	if res.FunctionError != "" {
		m.errors.WithLabelValues(function, res.ErrorType).Inc()
	}
}

func (m *Metrics) coldStart(function string) { m.coldStarts.WithLabelValues(function).Inc() }

// Environment states, the values of the state label of
// lamina_environments.
const (
	EnvBusy   = "busy"   // starting, initialising or running an invocation
	EnvWarm   = "warm"   // idle, not frozen yet
	EnvFrozen = "frozen" // idle and frozen
)

var environmentsDesc = prometheus.NewDesc("lamina_environments",
	"Live execution environments of the node, by function and state (busy, warm, frozen).",
	[]string{"function", "state"}, nil)

// environmentGauges reports the worker's environments when scraped.
type environmentGauges struct{ w *Worker }

func (g environmentGauges) Describe(ch chan<- *prometheus.Desc) { ch <- environmentsDesc }

func (g environmentGauges) Collect(ch chan<- prometheus.Metric) {
	for function, byState := range g.w.environmentStates() {
		for state, n := range byState {
			ch <- prometheus.MustNewConstMetric(environmentsDesc, prometheus.GaugeValue, float64(n), function, state)
		}
	}
}

// environmentStates counts the live environments by function and state.
// Every state of a function with environments is present, zeros included.
// The worker's lock is not held while an environment's freezer is asked
// (a freeze in progress holds the freezer's lock).
func (w *Worker) environmentStates() map[string]map[string]int {
	type seen struct {
		env  *environment
		idle bool
	}
	w.mu.Lock()
	envs := make([]seen, 0, len(w.live))
	for env := range w.live {
		envs = append(envs, seen{env, env.idle})
	}
	w.mu.Unlock()
	out := map[string]map[string]int{}
	for _, e := range envs {
		byState := out[e.env.key.function]
		if byState == nil {
			byState = map[string]int{EnvBusy: 0, EnvWarm: 0, EnvFrozen: 0}
			out[e.env.key.function] = byState
		}
		state := EnvBusy
		if e.idle {
			state = EnvWarm
			e.env.freezer.mu.Lock()
			if e.env.freezer.frozen {
				state = EnvFrozen
			}
			e.env.freezer.mu.Unlock()
		}
		byState[state]++
	}
	return out
}
