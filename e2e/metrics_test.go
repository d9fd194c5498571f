package e2e

import (
	"strings"
	"testing"
)

// TestMetricsForPrometheus checks the figures /metrics gives Prometheus
// users beyond counters: histograms of duration and Init Duration, the
// environments by state, concurrent executions, and the node's label on
// every series.
func TestMetricsForPrometheus(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createPy(t, "measured", "echo")
	ts.invokeOK(t, "measured", `{}`) // a cold start
	ts.invokeOK(t, "measured", `{}`) // warm
	r := ts.do(t, "GET", "/metrics", nil)
	text := string(r.Body)
	for metric, want := range map[string]float64{
		`lamina_invocation_duration_seconds_count{function="measured"}`: 2,
		`lamina_init_duration_seconds_count{function="measured"}`:       1,
		`lamina_cold_starts_total{function="measured"}`:                 1,
		`lamina_concurrent_executions{function="measured"}`:             0,
		`lamina_environments{function="measured",state="busy"}`:         0,
	} {
		if got := metricValue(text, metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	// The one environment is idle: warm, or frozen already.
	idle := metricValue(text, `lamina_environments{function="measured",state="warm"}`) +
		metricValue(text, `lamina_environments{function="measured",state="frozen"}`)
	if idle != 1 {
		t.Errorf("idle environments: %v, want 1", idle)
	}
	if !strings.Contains(nodeLabel.ReplaceAllString(text, ""), `lamina_init_duration_seconds_bucket{function="measured",le="`) {
		t.Errorf("no Init Duration histogram buckets")
	}
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "lamina_") && !strings.Contains(line, `node="`) {
			t.Errorf("a series without the node label: %s", line)
			break
		}
	}
}
