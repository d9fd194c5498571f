package worker

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/logs"
)

// logTailSize is how much of an invocation's log X-Amz-Log-Result carries.
const logTailSize = 4096

// runtimeVersion names the runtime in INIT_START lines as Lambda does,
// e.g. "python:3.12.lamina1", "nodejs:20.lamina1", "provided:al2023.lamina1".
// It is given the runtime that really runs, which an operator's
// --runtime-map may make another than the function's.
func runtimeVersion(runtime string) string {
	name := strings.TrimSuffix(runtime, ".x")
	for _, family := range []string{lamina.FamilyPython, lamina.FamilyNode, lamina.FamilyProvided} {
		if rest, ok := strings.CutPrefix(name, family); ok {
			name = family + ":" + strings.TrimPrefix(rest, ".")
			break
		}
	}
	return name + ".lamina1"
}

// record builds an invocation's log and result as it goes: init (on a cold
// start), the invoke phase, and the platform lines around them, in Lambda's
// format.
type record struct {
	w      *Worker
	req    *lamina.Invocation
	stream string
	events []logs.Event

	initDuration time.Duration
	res          lamina.InvocationResult
	err          error // Lamina's own failure or a throttle
}

func (r *record) line(ts time.Time, msg string) {
	r.events = append(r.events, logs.Event{Timestamp: ts.UnixMilli(), Stream: r.stream, Message: msg})
}

// platform records a platform event in the function's log format: its
// text line, or its JSON record when the system log level keeps it.
func (r *record) platform(ts time.Time, eventType string, record map[string]any, text string) {
	if line, ok := newLogFormat(&r.req.Function.Configuration).platformLine(ts, eventType, record, text); ok {
		r.line(ts, line)
	}
}

// start records the START line of the invocation.
func (r *record) start(ts time.Time) {
	version := r.req.Function.Configuration.Version
	r.platform(ts, "platform.start", map[string]any{"requestId": r.req.RequestID, "version": version},
		"START RequestId: "+r.req.RequestID+" Version: "+version)
}

func (r *record) fail(errorType string, payload []byte) {
	r.res.FunctionError = lamina.FunctionErrorUnhandled
	r.res.ErrorType = errorType
	r.res.Payload = payload
}

// startFailed records an environment that could not be created. A runtime
// that cannot start is the function's failure (Runtime.InvalidEntrypoint);
// anything else is Lamina's.
func (r *record) startFailed(err error) {
	var le *lamina.Error
	if errors.As(err, &le) || errorTypeOf(err) != lamina.ErrorTypeInvalidEntrypoint {
		r.err = err
		return
	}
	r.fail(lamina.ErrorTypeInvalidEntrypoint, errorPayload(lamina.ErrorTypeInvalidEntrypoint, err.Error()))
	r.stream = newLogStream(r.req.Function.Configuration.Version, time.Now())
	now := time.Now()
	r.start(now)
	r.line(now, fmt.Sprintf("RequestId: %s Error: %s\n%s", r.req.RequestID, err, lamina.ErrorTypeInvalidEntrypoint))
	r.finish(now, 0, 0, lamina.ErrorTypeInvalidEntrypoint, false)
}

// initialized records a cold start's init phase (one of two, when the
// first timed out).
func (r *record) initialized(env *environment, init initOutcome) {
	r.initLog(env, init)
	r.initDuration += init.duration
}

// initFailed records the failure of the last init phase as the
// invocation's result.
func (r *record) initFailed(failure *answer) {
	now := time.Now()
	r.start(now)
	r.fail(failure.errorType, failure.payload)
	r.finish(now, 0, 0, failure.errorType, false)
}

// initLog records the log of an init phase: INIT_START, the runtime's
// output, and INIT_REPORT when it failed.
func (r *record) initLog(env *environment, init initOutcome) {
	r.stream = env.logStream
	c := &r.req.Function.Configuration
	started := time.Now().Add(-init.duration)
	version := runtimeVersion(r.w.cfg.Runtimes.Runs(c.Runtime))
	versionARN := lamina.RuntimeVersionARN(r.w.cfg.Region)
	kind := initializationType(env.provisioned)
	r.platform(started, "platform.initStart", map[string]any{"initializationType": kind, "phase": "init",
		"runtimeVersion": version, "runtimeVersionArn": versionARN, "functionName": c.FunctionName, "functionVersion": c.Version},
		fmt.Sprintf("INIT_START Runtime Version: %s\tRuntime Version ARN: %s", version, versionARN))
	r.collect(env)
	status := "success"
	switch {
	case init.failure == nil:
	case init.failure.errorType == lamina.ErrorTypeTimeout:
		status = "timeout"
	default:
		status = "error"
	}
	now := time.Now()
	env.telemetry.emitAt(now, "platform.initRuntimeDone", map[string]any{"initializationType": kind, "phase": "init", "status": status})
	env.telemetry.emitAt(now, "platform.initReport", map[string]any{"initializationType": kind, "phase": "init", "status": status,
		"metrics": map[string]any{"durationMs": ms(init.duration)}})
	if init.failure == nil {
		return
	}
	r.platform(now, "platform.initReport", map[string]any{"initializationType": kind, "phase": "init", "status": status,
		"errorType": init.failure.errorType, "metrics": map[string]any{"durationMs": ms(init.duration)}},
		fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: %s\tError Type: %s",
			ms(init.duration), status, init.failure.errorType))
}

// invoked records an invoke phase.
func (r *record) invoked(env *environment, out outcome) {
	r.answered(env, out)
	r.ended(env, out)
}

// answered records the start of an invoke phase up to the runtime's
// answer: START, the output so far, the result.
func (r *record) answered(env *environment, out outcome) {
	r.stream = env.logStream
	c := &r.req.Function.Configuration
	end := time.Now()
	started := end.Add(-out.duration)
	// START goes first: output events carry the time they were written.
	r.start(started)
	env.telemetry.emitAt(started, "platform.start", map[string]any{"requestId": r.req.RequestID, "version": c.Version})
	r.collect(env)
	r.res.Payload, r.res.ContentType, r.res.Streamed = out.answer.payload, out.answer.contentType, out.streamed
	if out.answer.errorType != "" {
		r.fail(out.answer.errorType, out.answer.payload)
	}
	env.telemetry.emitAt(end, "platform.runtimeDone", map[string]any{"requestId": r.req.RequestID, "status": telemetryStatus(out),
		"metrics": map[string]any{"durationMs": ms(out.duration), "producedBytes": len(out.answer.payload)}})
}

// ended records the end of an invoke phase: what was written since the
// answer, END and REPORT. out.duration is the whole phase's.
func (r *record) ended(env *environment, out outcome) {
	end := time.Now()
	r.collect(env)
	if out.crashed {
		r.line(end, fmt.Sprintf("RequestId: %s Error: %s\n%s", r.req.RequestID, exitReason(env), out.answer.errorType))
	}
	r.finish(end, out.duration, out.memory, out.answer.errorType, out.timedOut)
	c := &r.req.Function.Configuration
	metrics := map[string]any{"durationMs": ms(out.duration), "billedDurationMs": billed(out.duration + r.initDuration),
		"memorySizeMB": c.MemorySize, "maxMemoryUsedMB": int64(math.Ceil(float64(out.memory) / (1 << 20)))}
	if r.initDuration > 0 {
		metrics["initDurationMs"] = ms(r.initDuration)
	}
	env.telemetry.emitAt(end, "platform.report", map[string]any{"requestId": r.req.RequestID, "status": telemetryStatus(out), "metrics": metrics})
}

// collect records the output of env written so far.
func (r *record) collect(env *environment) {
	output, dropped := env.collect()
	r.events = append(r.events, output...)
	r.noteDropped(dropped)
}

// telemetryStatus is the status of an invoke phase in telemetry records.
func telemetryStatus(out outcome) string {
	switch {
	case out.timedOut:
		return "timeout"
	case out.answer.errorType != "":
		return "error"
	}
	return "success"
}

// early returns the result of an invocation whose runtime has answered
// while its extensions still work: the log tail (if asked) holds what was
// logged so far. The record goes on to its end separately.
func (r *record) early(out outcome) *lamina.InvocationResult {
	res := r.res
	res.Duration, res.InitDuration, res.ExecutedVersion = out.duration, r.initDuration, r.req.Function.Configuration.Version
	if r.req.Tail {
		res.LogTail = tail(r.events, logTailSize)
	}
	return &res
}

func (r *record) noteDropped(n int) {
	if n > 0 {
		r.line(time.Now(), fmt.Sprintf("[lamina] %d log lines dropped: an invocation logs at most %d bytes", n, maxInvocationBytes))
	}
}

// finish writes END and REPORT (and the timeout line), and fills the
// result's durations.
func (r *record) finish(end time.Time, d time.Duration, memory int64, errorType string, timedOut bool) {
	c := &r.req.Function.Configuration
	r.res.Duration, r.res.InitDuration = d, r.initDuration
	r.res.ExecutedVersion = c.Version
	status := "success"
	switch {
	case timedOut:
		status = "timeout"
	case errorType != "":
		status = "error"
	}
	r.platform(end, "platform.runtimeDone", map[string]any{"requestId": r.req.RequestID, "status": status,
		"metrics": map[string]any{"durationMs": ms(d)}}, "END RequestId: "+r.req.RequestID)
	var b strings.Builder
	maxMemory := int64(math.Ceil(float64(memory) / (1 << 20)))
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t",
		r.req.RequestID, ms(d), billed(d+r.initDuration), c.MemorySize, maxMemory)
	metrics := map[string]any{"durationMs": ms(d), "billedDurationMs": billed(d + r.initDuration),
		"memorySizeMB": c.MemorySize, "maxMemoryUsedMB": maxMemory}
	report := map[string]any{"requestId": r.req.RequestID, "status": status, "metrics": metrics}
	if r.initDuration > 0 {
		fmt.Fprintf(&b, "Init Duration: %.2f ms\t", ms(r.initDuration))
		metrics["initDurationMs"] = ms(r.initDuration)
	}
	switch {
	case timedOut:
		b.WriteString("Status: timeout\t")
	case strings.HasPrefix(errorType, "Runtime.") || strings.HasPrefix(errorType, "Sandbox."):
		fmt.Fprintf(&b, "Status: error\tError Type: %s\t", errorType)
	}
	if errorType != "" {
		report["errorType"] = errorType
	}
	r.platform(end, "platform.report", report, b.String())
	if timedOut {
		r.line(end, fmt.Sprintf("%s %s Task timed out after %.2f seconds",
			end.UTC().Format("2006-01-02T15:04:05.000Z"), r.req.RequestID, float64(c.Timeout)))
	}
}

// publish publishes the log and the metrics of the invocation.
func (r *record) publish() {
	c := &r.req.Function.Configuration
	r.w.cfg.Logs.Append(c.LogGroupName(), r.events...)
	r.w.cfg.Metrics.invoked(c.FunctionName, &r.res)
}

// result publishes the log and returns the result (or Lamina's error).
func (r *record) result() (*lamina.InvocationResult, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.publish()
	if r.req.Tail {
		r.res.LogTail = tail(r.events, logTailSize)
	}
	return &r.res, nil
}

// tail returns the last size bytes of the events as log text.
func tail(events []logs.Event, size int) []byte {
	var b []byte
	for i := len(events) - 1; i >= 0 && len(b) < size; i-- {
		b = append([]byte(events[i].Message+"\n"), b...)
	}
	if len(b) > size {
		b = b[len(b)-size:]
	}
	return b
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// billed rounds a duration up to whole milliseconds, as Lambda bills.
func billed(d time.Duration) int64 { return int64(math.Ceil(ms(d))) }
