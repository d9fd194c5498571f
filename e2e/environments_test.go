package e2e

// Execution environments end to end, seen through the API only (so that
// the tests hold whatever sandbox runs them): warm reuse, scale-out under
// concurrency, no reuse after a change of code or configuration, expiry of
// idle environments, and throttling by the concurrency limit and the memory
// budget.

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// waitUpdated waits until the function's last update is done, as clients
// do after UpdateFunctionCode / UpdateFunctionConfiguration.
func (ts *testServer) waitUpdated(t *testing.T, name string) {
	t.Helper()
	w := lambda.NewFunctionUpdatedV2Waiter(ts.Lambda(), func(o *lambda.FunctionUpdatedV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	if err := w.Wait(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(name)}, 30*time.Second); err != nil {
		t.Fatalf("waiting for %s to be updated: %v", name, err)
	}
}

func TestEnvironments(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	t.Run("warm reuse", func(t *testing.T) {
		t.Parallel()
		ts.createPy(t, "warm", "echo")
		var env any
		for i := 1; i <= 3; i++ {
			r := ts.invokeOK(t, "warm", `{}`)
			m := r.object(t)
			if got := num(t, m, "count"); got != float64(i) {
				t.Errorf("call %d: module-level counter = %v, want %d", i, got, i)
			}
			if i == 1 {
				env = m["env"]
			} else if m["env"] != env {
				t.Errorf("call %d ran in environment %v, want %v", i, m["env"], env)
			}
			if cold := r.cold(t); cold != (i == 1) {
				t.Errorf("call %d: Init Duration present = %v, want %v:\n%s", i, cold, i == 1, r.Log)
			}
		}
	})

	t.Run("concurrent calls scale out", func(t *testing.T) {
		t.Parallel()
		const n = 4
		ts.createPy(t, "scale", "sleep")
		// Each call sleeps long enough for all of them to be in flight at
		// once.
		round := func(what string, seconds int) map[string]bool {
			results, errs := ts.parallelInvoke(t, n, "scale", `{"seconds":`+strconv.Itoa(seconds)+`}`)
			envs := map[string]bool{}
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("%s: call %d: %v", what, i, errs[i])
				}
				if results[i].FunctionError != "" {
					t.Fatalf("%s: call %d: %s", what, i, results[i].Payload)
				}
				envs[str(t, results[i].object(t), "env")] = true
			}
			return envs
		}
		first := round("first round", 2)
		if len(first) != n {
			t.Fatalf("%d simultaneous calls ran in %d environments, want %d: %v", n, len(first), n, first)
		}
		// One log stream per environment.
		events := ts.waitLogEventsFunc(t, "scale", strconv.Itoa(n)+" REPORT lines", func(events []logtypes.FilteredLogEvent) bool {
			return countMessages(events, "REPORT RequestId: ") >= n
		})
		streams := map[string]bool{}
		for _, e := range events {
			streams[aws.ToString(e.LogStreamName)] = true
		}
		if len(streams) != n {
			t.Errorf("%d environments logged to %d streams, want %d:\n%s", n, len(streams), n, messagesText(events))
		}
		// The n environments are then warm: a second round reuses them.
		second := round("second round", 1)
		for env := range second {
			if !first[env] {
				t.Errorf("second round ran in a new environment %s although %d were idle", env, n)
			}
		}
	})

	t.Run("not reused after a change", func(t *testing.T) {
		t.Parallel()
		c := ts.Lambda()
		ts.createPy(t, "changing", "echo", withEnvironment(map[string]string{"MARK": "a"}))
		ts.invokeOK(t, "changing", `{}`)
		r := ts.invokeOK(t, "changing", `{}`)
		m := r.object(t)
		if num(t, m, "count") != 2 || m["mark"] != "a" {
			t.Fatalf("before the change: %s", r.Payload)
		}
		env := m["env"]

		_, err := c.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("changing"),
			Environment:  &types.Environment{Variables: map[string]string{"MARK": "b"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ts.waitUpdated(t, "changing")
		r = ts.invokeOK(t, "changing", `{}`)
		m = r.object(t)
		if num(t, m, "count") != 1 || m["env"] == env || !r.cold(t) {
			t.Errorf("after UpdateFunctionConfiguration: count %v env %v cold %v; want a new environment (count 1)", m["count"], m["env"], r.cold(t))
		}
		if m["mark"] != "b" || m["importedMark"] != "b" {
			t.Errorf("after UpdateFunctionConfiguration: MARK = %v (at import %v), want b", m["mark"], m["importedMark"])
		}
		env = m["env"]

		_, err = c.UpdateFunctionCode(context.Background(), &lambda.UpdateFunctionCodeInput{
			FunctionName: aws.String("changing"),
			ZipFile:      zipFiles(t, map[string]string{"app.py": replaceOnce(t, pyApp, `CODE_MARK = "code-v1"`, `CODE_MARK = "code-v2"`)}),
		})
		if err != nil {
			t.Fatal(err)
		}
		ts.waitUpdated(t, "changing")
		r = ts.invokeOK(t, "changing", `{}`)
		m = r.object(t)
		if num(t, m, "count") != 1 || m["env"] == env || !r.cold(t) {
			t.Errorf("after UpdateFunctionCode: count %v env %v cold %v; want a new environment (count 1)", m["count"], m["env"], r.cold(t))
		}
		if m["code"] != "code-v2" || m["mark"] != "b" {
			t.Errorf("after UpdateFunctionCode: code %v mark %v, want code-v2 and b", m["code"], m["mark"])
		}
		// And the new environment is reused in turn.
		r = ts.invokeOK(t, "changing", `{}`)
		if m2 := r.object(t); num(t, m2, "count") != 2 || m2["env"] != m["env"] {
			t.Errorf("the environment after the change is not reused: %s", r.Payload)
		}
	})

	t.Run("functions do not share environments", func(t *testing.T) {
		t.Parallel()
		ts.createPy(t, "share-a", "echo")
		ts.createPy(t, "share-b", "echo")
		a := ts.invokeOK(t, "share-a", `{}`).object(t)
		b := ts.invokeOK(t, "share-b", `{}`)
		if m := b.object(t); m["env"] == a["env"] || num(t, m, "count") != 1 || !b.cold(t) {
			t.Errorf("share-b ran in share-a's environment: %s", b.Payload)
		}
	})
}

// replaceOnce replaces the one occurrence of old in s.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("%q occurs %d times, want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

func TestIdleEnvironmentsExpire(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--idle-timeout", "4s")) // long enough to look at the environment on a busy machine
	ts.createPy(t, "idle", "echo")

	r := ts.invokeOK(t, "idle", `{}`)
	if !r.cold(t) {
		t.Fatalf("first call is not a cold start:\n%s", r.Log)
	}
	// Right away, the environment is warm.
	r = ts.invokeOK(t, "idle", `{}`)
	m := r.object(t)
	if num(t, m, "count") != 2 || r.cold(t) {
		t.Fatalf("an immediate second call is not warm (count %v):\n%s", m["count"], r.Log)
	}
	env := m["env"]

	time.Sleep(12 * time.Second) // three idle timeouts
	r = ts.invokeOK(t, "idle", `{}`)
	m = r.object(t)
	if !r.cold(t) {
		t.Errorf("a call after 12 s idle (--idle-timeout 4s) is not a cold start:\n%s", r.Log)
	}
	if num(t, m, "count") != 1 || m["env"] == env {
		t.Errorf("after the idle timeout: count %v env %v, want a new environment (count 1)", m["count"], m["env"])
	}
}

// requireThrottled checks that err is a 429 TooManyRequestsException
// carrying a Reason, and returns it.
func requireThrottled(t *testing.T, err error) *types.TooManyRequestsException {
	t.Helper()
	requireAPIError(t, err, "TooManyRequestsException", http.StatusTooManyRequests)
	e := requireTyped[*types.TooManyRequestsException](t, err)
	if !slices.Contains(e.Reason.Values(), e.Reason) {
		t.Errorf("TooManyRequestsException Reason %q, want one of %q", e.Reason, e.Reason.Values())
	}
	if aws.ToString(e.Type) != "User" || aws.ToString(e.Message) != "Rate Exceeded." {
		t.Errorf("TooManyRequestsException Type %q Message %q, want User and \"Rate Exceeded.\"", aws.ToString(e.Type), aws.ToString(e.Message))
	}
	return e
}

func TestConcurrencyLimitThrottles(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--concurrency-limit", "1"))
	ts.createPy(t, "limited", "sleep")

	results, errs := ts.parallelInvoke(t, 2, "limited", `{"seconds":2}`)
	ok, throttled := 0, 0
	for i := range 2 {
		if errs[i] != nil {
			throttled++
			e := requireThrottled(t, errs[i])
			if e.Reason != types.ThrottleReasonConcurrentInvocationLimitExceeded {
				t.Errorf("Reason = %q, want ConcurrentInvocationLimitExceeded", e.Reason)
			}
			continue
		}
		if results[i].FunctionError != "" {
			t.Errorf("call %d: %s", i, results[i].Payload)
		}
		ok++
	}
	if ok != 1 || throttled != 1 {
		t.Fatalf("with --concurrency-limit 1, two simultaneous calls: %d succeeded and %d were throttled, want 1 and 1", ok, throttled)
	}
	// Once the first is done, the next call runs.
	ts.invokeOK(t, "limited", `{"seconds":0}`)
}

func TestMemoryBudgetThrottlesAndEvicts(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--memory-budget", "128"))
	ts.createPy(t, "budget-a", "sleep")
	ts.createPy(t, "budget-b", "echo")

	// Two simultaneous calls of a 128 MB function with a 128 MB budget: one
	// runs, the other is throttled.
	results, errs := ts.parallelInvoke(t, 2, "budget-a", `{"seconds":2}`)
	ok, throttled := 0, 0
	for i := range 2 {
		if errs[i] != nil {
			requireThrottled(t, errs[i])
			throttled++
			continue
		}
		if results[i].FunctionError != "" {
			t.Errorf("call %d: %s", i, results[i].Payload)
		}
		ok++
	}
	if ok != 1 || throttled != 1 {
		t.Fatalf("with --memory-budget 128, two simultaneous calls of a 128 MB function: %d succeeded and %d were throttled, want 1 and 1", ok, throttled)
	}

	// budget-a's environment is idle now; budget-b needs the memory, so the
	// idle environment is evicted rather than budget-b throttled.
	r := ts.invokeOK(t, "budget-b", `{}`)
	if !r.cold(t) {
		t.Errorf("budget-b's first call is not a cold start")
	}
	// ...and budget-a, evicted, starts cold again.
	r = ts.invokeOK(t, "budget-a", `{"seconds":0}`)
	if m := r.object(t); !r.cold(t) || num(t, m, "count") != 1 {
		t.Errorf("budget-a after its eviction: cold %v count %v, want a cold start (count 1)", r.cold(t), m["count"])
	}
}

// Every way an invocation can fail gives its environment's memory back: with
// a budget of one 128 MB environment, a healthy function still runs after
// each failure.
func TestMemoryBudgetReleasedAfterFailures(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--memory-budget", "128"))
	ts.createPy(t, "healthy", "echo")
	ts.createFunction(t, "init-error", zipFiles(t, map[string]string{"app.py": pyApp}), func(in *lambda.CreateFunctionInput) {
		in.Handler = aws.String("missing_mod.handler")
	})
	ts.createPy(t, "times-out", "sleep", withTimeout(1))
	ts.createPy(t, "crashes", "crash")
	ts.createPy(t, "raises", "fail")
	ts.createFunction(t, "no-entrypoint", zipFiles(t, map[string]string{"readme.txt": "x"}), func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeProvidedal2023
		in.Handler = aws.String("x")
	})
	ts.createGo(t, "panics", ".")

	failures := []struct{ name, payload, errorType string }{
		{"init-error", `{}`, "Runtime.ImportModuleError"},
		{"init-error", `{}`, "Runtime.ImportModuleError"},
		{"times-out", `{"seconds":3}`, "Sandbox.Timedout"},
		{"crashes", `{}`, "Runtime.ExitError"},
		{"raises", `{}`, "ValueError"},
		{"no-entrypoint", `{}`, "Runtime.InvalidEntrypoint"},
		{"panics", `{"action":"panic"}`, ""},
	}
	for _, f := range failures {
		r := ts.invoke(t, f.name, f.payload)
		if f.errorType != "" {
			r.functionError(t, f.errorType)
		} else if r.FunctionError != "Unhandled" {
			t.Errorf("%s: FunctionError %q, want Unhandled", f.name, r.FunctionError)
		}
		if _, err := ts.tryInvoke(t, "healthy", `{}`); err != nil {
			t.Fatalf("after %s failed with %s, a 128 MB function cannot run within a 128 MB budget: %v", f.name, f.errorType, err)
		}
	}
	// The Go function's environment exited after its panic: its next call
	// gets a new one.
	ts.invokeOK(t, "panics", `{}`)
	ts.invokeOK(t, "healthy", `{}`)
}
