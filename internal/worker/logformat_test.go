package worker

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/logs"
	"github.com/lamina-project/lamina/internal/sandbox/sandboxtest"
)

// TestJSONLogs: with LoggingConfig JSON the runtime is told so, platform
// lines are Lambda's JSON records (platform.initStart, platform.start,
// platform.report; platform.runtimeDone only at DEBUG), application lines
// below ApplicationLogLevel are dropped, and everything goes to the
// configured log group.
func TestJSONLogs(t *testing.T) {
	t.Parallel()
	tw := newTestWorker(t, Config{}, func(rt *sandboxtest.Runtime) {
		rt.Printf("LOG_ENV %s %s %s", rt.Getenv("AWS_LAMBDA_LOG_FORMAT"), rt.Getenv("AWS_LAMBDA_LOG_LEVEL"), rt.Getenv("AWS_LAMBDA_LOG_GROUP_NAME"))
		for {
			ev, err := rt.Next()
			if err != nil {
				return
			}
			rt.Printf(`{"level":"DEBUG","message":"debug line"}`)
			rt.Printf(`{"level":"warn","message":"warn line"}`)
			rt.Printf(`{"log_level":"ERROR","errorMessage":"error line"}`)
			rt.Printf("plain line")
			rt.Respond(ev.RequestID, []byte(`"ok"`))
		}
	})
	fn := tw.function("jf", "h", 128, 60)
	fn.Configuration.LoggingConfig = &lamina.LoggingConfig{LogFormat: lamina.LogFormatJSON,
		ApplicationLogLevel: "WARN", SystemLogLevel: "INFO", LogGroup: "/custom/group"}
	tw.invoke(t, fn, `{}`)

	if lines := tw.logs.lines("jf"); len(lines) > 0 {
		t.Errorf("lines went to the default log group: %q", lines)
	}
	lines := tw.logs.groupLines("/custom/group")
	joined := strings.Join(lines, "\n")
	if strings.Contains(joined, "debug line") || strings.Contains(joined, "plain line") || strings.Contains(joined, "LOG_ENV") {
		t.Errorf("lines below WARN were kept:\n%s", joined)
	}
	if !strings.Contains(joined, "warn line") || !strings.Contains(joined, "error line") {
		t.Errorf("lines at WARN and above were dropped:\n%s", joined)
	}
	types := map[string]map[string]any{}
	for _, l := range lines {
		var rec struct {
			Time   string
			Type   string
			Record map[string]any
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Type != "" {
			if rec.Time == "" {
				t.Errorf("record without time: %s", l)
			}
			types[rec.Type] = rec.Record
		}
		if strings.HasPrefix(l, "START ") || strings.HasPrefix(l, "END ") || strings.HasPrefix(l, "REPORT ") {
			t.Errorf("a text platform line with the JSON format: %s", l)
		}
	}
	for _, want := range []string{"platform.initStart", "platform.start", "platform.report"} {
		if types[want] == nil {
			t.Errorf("no %s record:\n%s", want, joined)
		}
	}
	if types["platform.runtimeDone"] != nil {
		t.Errorf("platform.runtimeDone (DEBUG) kept at system level INFO")
	}
	report := types["platform.report"]
	metrics, _ := report["metrics"].(map[string]any)
	if report["status"] != "success" || metrics["durationMs"] == nil || metrics["billedDurationMs"] == nil ||
		metrics["memorySizeMB"] != float64(128) || metrics["initDurationMs"] == nil || !strings.HasPrefix(report["requestId"].(string), "req-") {
		t.Errorf("platform.report record %v", report)
	}
	if start := types["platform.start"]; start["version"] != lamina.LatestVersion {
		t.Errorf("platform.start record %v", start)
	}

	env := strings.Join(tw.provider.Sandboxes()[0].Process().Env, "\n") + "\n"
	for _, v := range []string{"AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=WARN", "AWS_LAMBDA_LOG_GROUP_NAME=/custom/group"} {
		if !strings.Contains(env, v+"\n") {
			t.Errorf("the runtime's environment lacks %s", v)
		}
	}
}

// TestLineLevel: application lines take the level of their JSON "level"
// field, any case; anything else is INFO.
func TestLineLevel(t *testing.T) {
	for line, want := range map[string]string{
		`{"level":"debug","msg":"x"}`: "DEBUG", `{"level":"TRACE"}`: "TRACE", `{"level":"bogus"}`: "INFO",
		`{"log_level":"ERROR"}`: "ERROR", "plain": "INFO", `{"level":`: "INFO", `{"level":"FATAL"}`: "FATAL",
	} {
		if got := lineLevel(line); got != logLevels[want] {
			t.Errorf("lineLevel(%s) = %d, want %s", line, got, want)
		}
	}
}

// BenchmarkKeepApplication measures the level filter of JSON logs on a
// mix of JSON records and plain lines.
func BenchmarkKeepApplication(b *testing.B) {
	f := logFormat{json: true, application: logLevels["WARN"], system: logLevels["INFO"]}
	lines := []string{`{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","message":"an ordinary line of the application","logger":"app","requestId":"0c2e5b4e-5a8e-4c57-a2ae-2bd04c0f9a0e"}`,
		`{"timestamp":"2026-01-01T00:00:00Z","level":"ERROR","message":"something failed","logger":"app","requestId":"0c2e5b4e-5a8e-4c57-a2ae-2bd04c0f9a0e"}`,
		"a plain print line"}
	events := make([]logs.Event, 0, 100)
	b.ReportAllocs()
	for b.Loop() {
		events = events[:0]
		for i := range 100 {
			events = append(events, logs.Event{Message: lines[i%len(lines)]})
		}
		f.keepApplication(events)
	}
}
