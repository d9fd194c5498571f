package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/manager"
	"github.com/lamina-project/lamina/internal/sandbox"
	"github.com/lamina-project/lamina/internal/sandbox/sandboxtest"
)

// holdScript is a runtime that answers every event with its payload, except
// an event "hold", which it answers only once release is closed; it sends
// the request id of every event it takes on took (when not nil).
func holdScript(release <-chan struct{}, took chan<- string) sandboxtest.Script {
	return func(rt *sandboxtest.Runtime) {
		for {
			ev, err := rt.Next()
			if err != nil {
				return
			}
			if took != nil {
				took <- ev.RequestID
			}
			if string(ev.Payload) == `"hold"` {
				select {
				case <-release:
				case <-rt.Context().Done():
					return
				}
			}
			rt.Respond(ev.RequestID, ev.Payload)
		}
	}
}

// TestColdStartThenWarm: the first invocation starts an environment (its
// init in the log and in InitDuration); the next reuses it, frozen between
// the two, with no init. The runtime gets Lambda's environment variables
// and its output lands in the log of the phase it was written in.
func TestColdStartThenWarm(t *testing.T) {
	t.Parallel()
	tw := newTestWorker(t, Config{}, func(rt *sandboxtest.Runtime) {
		rt.Printf("init of %s", rt.Getenv("AWS_LAMBDA_FUNCTION_NAME"))
		for {
			ev, err := rt.Next()
			if err != nil {
				return
			}
			rt.Printf("handling %s", ev.RequestID)
			rt.SetMemoryPeak(40 << 20)
			rt.Respond(ev.RequestID, append([]byte("echo:"), ev.Payload...))
		}
	})
	fn := tw.function("f", "echo", 128, 60)

	first := tw.invoke(t, fn, `"a"`)
	if string(first.Payload) != `echo:"a"` || first.FunctionError != "" || first.ExecutedVersion != lamina.LatestVersion {
		t.Fatalf("first invocation: %q, error %q, version %q", first.Payload, first.FunctionError, first.ExecutedVersion)
	}
	if first.InitDuration <= 0 {
		t.Errorf("the cold start reports Init Duration %v", first.InitDuration)
	}
	sbs := tw.provider.Sandboxes()
	if len(sbs) != 1 {
		t.Fatalf("%d sandboxes after one invocation", len(sbs))
	}
	sb := sbs[0]
	if spec := sb.Spec(); spec.MemoryMB != 128 || spec.EphemeralMB != lamina.DefaultEphemeralStorage {
		t.Errorf("sandbox spec %+v, want 128 MB and the default /tmp", spec)
	}
	env := strings.Join(sb.Process().Env, "\n") + "\n"
	for _, v := range []string{"AWS_LAMBDA_FUNCTION_NAME=f", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand", "_HANDLER=echo"} {
		if !strings.Contains(env, v+"\n") {
			t.Errorf("the runtime's environment lacks %s", v)
		}
	}
	eventually(t, "the idle environment is frozen", sb.Frozen)

	second := tw.invoke(t, fn, `"b"`)
	if string(second.Payload) != `echo:"b"` || second.InitDuration != 0 {
		t.Errorf("warm invocation: %q, Init Duration %v", second.Payload, second.InitDuration)
	}
	if n := len(tw.provider.Sandboxes()); n != 1 {
		t.Errorf("%d sandboxes after a warm invocation, want the one reused", n)
	}
	if calls := sb.FreezeCalls(); len(calls) < 2 || calls[1] != "thaw" {
		t.Errorf("freeze calls %v, want a freeze then a thaw for the second invocation", calls)
	}

	lines := tw.logs.lines("f")
	for _, want := range []string{"INIT_START Runtime Version: provided:al2023.lamina1", "init of f", "START RequestId: req-", "handling req-", "END RequestId: req-", "REPORT RequestId: req-"} {
		if !containsLine(lines, want) {
			t.Errorf("the log lacks a line %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	var reports []string
	for _, l := range lines {
		if strings.HasPrefix(l, "REPORT ") {
			reports = append(reports, l)
		}
	}
	if len(reports) != 2 || !strings.Contains(reports[0], "Init Duration: ") || strings.Contains(reports[1], "Init Duration") ||
		!strings.Contains(reports[1], "Max Memory Used: 40 MB") {
		t.Errorf("REPORT lines %q: want Init Duration on the first only, 40 MB used", reports)
	}
	if got := tw.state(t); got != (stateView{128, 1, 1}) {
		t.Errorf("worker state %v, want 128 MB in 1 environment, idle", got)
	}
}

// TestScaleOutAndReuse: concurrent invocations each get an environment of
// their own; afterwards the idle ones serve later invocations.
func TestScaleOutAndReuse(t *testing.T) {
	t.Parallel()
	release, took := make(chan struct{}), make(chan string, 8)
	tw := newTestWorker(t, Config{}, holdScript(release, took))
	fn := tw.function("f", "hold", 128, 60)
	const n = 3
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if res, err := tw.tryInvoke(fn, `"hold"`); err != nil || res.FunctionError != "" {
				t.Errorf("concurrent invocation: %v %+v", err, res)
			}
		})
	}
	for range n {
		<-took
	}
	if got := len(tw.provider.Sandboxes()); got != n {
		t.Fatalf("%d sandboxes for %d concurrent invocations", got, n)
	}
	if got := tw.state(t); got != (stateView{n * 128, n, 0}) {
		t.Errorf("worker state with %d busy: %v", n, got)
	}
	close(release)
	wg.Wait()
	for range 2 * n {
		tw.invoke(t, fn, `"again"`)
		<-took
	}
	if got := len(tw.provider.Sandboxes()); got != n {
		t.Errorf("%d sandboxes after later invocations, want the %d idle ones reused", got, n)
	}
}

// TestIdleEnvironmentsExpire: an environment idle for longer than the idle
// timeout is stopped and its memory returned; one used since is kept.
func TestIdleEnvironmentsExpire(t *testing.T) {
	t.Parallel()
	tw := newTestWorker(t, Config{IdleTimeout: time.Minute}, sandboxtest.Echo)
	fn := tw.function("f", "echo", 128, 60)
	tw.invoke(t, fn, `1`)
	sb := tw.provider.Sandboxes()[0]
	tw.expireIdle(time.Now().Add(-time.Minute)) // used after the cutoff
	if sb.Destroyed() {
		t.Fatal("an environment used after the cutoff was stopped")
	}
	tw.expireIdle(time.Now().Add(time.Second))
	if !sb.Destroyed() {
		t.Fatal("an environment idle since before the cutoff was kept")
	}
	if got := tw.state(t); got != (stateView{}) {
		t.Errorf("worker state after expiry: %v, want nothing", got)
	}

	// The same through Run's own timer.
	tw = newTestWorker(t, Config{IdleTimeout: 150 * time.Millisecond}, sandboxtest.Echo)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tw.Run(ctx)
	tw.invoke(t, tw.function("g", "echo", 128, 60), `1`)
	eventually(t, "Run stops the idle environment", tw.provider.Sandboxes()[0].Destroyed)
}

// TestMemoryBudget: a cold start that does not fit evicts idle
// environments, least recently used first; with none to evict it is
// refused with manager.ErrNoMemory, and the memory of every environment
// that ends is returned.
func TestMemoryBudget(t *testing.T) {
	t.Parallel()
	release, took := make(chan struct{}), make(chan string, 8)
	tw := newTestWorker(t, Config{MemoryBudgetMB: 256}, holdScript(release, took))
	a, b, c := tw.function("a", "h", 128, 60), tw.function("b", "h", 128, 60), tw.function("c", "h", 128, 60)
	tw.invoke(t, a, `1`)
	<-took
	tw.invoke(t, b, `1`)
	<-took
	tw.invoke(t, c, `1`) // evicts a's, the least recently used
	<-took
	sbs := tw.provider.Sandboxes()
	tw.destroying.Wait()
	if !sbs[0].Destroyed() || sbs[1].Destroyed() {
		t.Fatalf("after a cold start over budget: a's destroyed %v (want true), b's %v (want false)", sbs[0].Destroyed(), sbs[1].Destroyed())
	}

	// Two busy environments fill the budget, evicting the idle ones.
	d := tw.function("d", "h", 128, 60)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := tw.tryInvoke(d, `"hold"`); err != nil {
				t.Errorf("an invocation within the budget: %v", err)
			}
		})
		<-took
	}
	if _, err := tw.tryInvoke(d, `1`); !errors.Is(err, manager.ErrNoMemory) {
		t.Errorf("a cold start with the budget full of busy environments: %v, want ErrNoMemory", err)
	}
	if got := tw.state(t); got != (stateView{256, 2, 0}) {
		t.Errorf("worker state with the budget full: %v", got)
	}
	close(release)
	wg.Wait()
	tw.invoke(t, d, `1`)
	<-took
}

// TestInitFailures: an init error is the invocation's failure, with the
// runtime's error; an init that runs out of its limit is tried once more,
// bounded by the function's timeout. Failed environments are never reused
// and their memory is returned.
func TestInitFailures(t *testing.T) {
	t.Parallel()
	var starts atomic.Int32
	script := func(rt *sandboxtest.Runtime) {
		switch rt.Getenv("_HANDLER") {
		case "initerror":
			rt.Printf("cannot import")
			rt.InitError("Runtime.ImportModuleError", "Unable to import module 'app'")
			rt.Exit(1)
		case "slowfirst": // the first start hangs in init, later ones do not
			if starts.Add(1) == 1 {
				rt.Sleep(time.Hour)
			}
		case "hang":
			rt.Sleep(time.Hour)
		}
		sandboxtest.Echo(rt)
	}

	tw := newTestWorker(t, Config{}, script)
	bad := tw.function("bad", "initerror", 128, 60)
	for i := range 2 {
		res := tw.invoke(t, bad, `1`)
		if res.FunctionError != lamina.FunctionErrorUnhandled || res.ErrorType != "Runtime.ImportModuleError" ||
			!strings.Contains(string(res.Payload), "Unable to import module") {
			t.Errorf("invocation %d with an init error: %+v %s", i, res, res.Payload)
		}
	}
	if got := len(tw.provider.Sandboxes()); got != 2 {
		t.Errorf("%d sandboxes for two invocations whose init failed, want 2: a failed one is never reused", got)
	}
	if lines := tw.logs.lines("bad"); !containsLine(lines, "cannot import") ||
		!containsLine(lines, "INIT_REPORT Init Duration: ") || !strings.Contains(strings.Join(lines, "\n"), "Status: error\tError Type: Runtime.ImportModuleError") {
		t.Errorf("log of a failed init:\n%s", strings.Join(lines, "\n"))
	}

	tw.destroying.Wait()
	if got := tw.state(t); got != (stateView{}) {
		t.Errorf("worker state after failed inits: %v, want nothing", got)
	}

	// Inits that hang: a short init limit, which the retry does not have.
	tw = newTestWorker(t, Config{InitTimeout: 100 * time.Millisecond}, script)
	slow := tw.function("slow", "slowfirst", 128, 10)
	if res := tw.invoke(t, slow, `"ok"`); res.FunctionError != "" || string(res.Payload) != `"ok"` || res.InitDuration < 100*time.Millisecond {
		t.Errorf("an init retried after its timeout: %+v %s", res, res.Payload)
	}
	// Both inits are logged, the invocation once.
	log := strings.Join(tw.logs.lines("slow"), "\n")
	if strings.Count(log, "INIT_START ") != 2 || strings.Count(log, "INIT_REPORT ") != 1 || strings.Count(log, "START RequestId: ") != 1 ||
		strings.Count(log, "\nREPORT RequestId: ") != 1 || strings.Contains(log[strings.LastIndex(log, "\nREPORT "):], "Error Type") {
		t.Errorf("log of an init retried after its timeout, want 2 INIT_START, the first's INIT_REPORT, one START and a REPORT without error:\n%s", log)
	}

	hang := tw.function("hang", "hang", 128, 1)
	res := tw.invoke(t, hang, `1`)
	if res.ErrorType != lamina.ErrorTypeTimeout || !strings.Contains(string(res.Payload), "Init timed out after 1.00 seconds") {
		t.Errorf("an init that times out twice: %+v %s", res, res.Payload)
	}
	if lines := tw.logs.lines("hang"); !strings.Contains(strings.Join(lines, "\n"), "Status: timeout") {
		t.Errorf("log of an init timeout:\n%s", strings.Join(lines, "\n"))
	}
	tw.destroying.Wait()
	if live := len(tw.provider.Live()); live != 1 {
		t.Errorf("%d live sandboxes, want only the one that initialised", live)
	}
	if got := tw.state(t); got != (stateView{128, 1, 1}) {
		t.Errorf("worker state after the inits that hung: %v, want only the healthy environment", got)
	}
}

// TestInvocationFailures: a crash, the memory limit and the function's
// timeout end an invocation as Lambda reports them, and the environment
// with it; the next invocation gets a new one.
func TestInvocationFailures(t *testing.T) {
	t.Parallel()
	tw := newTestWorker(t, Config{}, func(rt *sandboxtest.Runtime) {
		for {
			ev, err := rt.Next()
			if err != nil {
				return
			}
			switch rt.Getenv("_HANDLER") {
			case "crash":
				rt.Printf("about to crash")
				rt.Exit(3)
			case "oom":
				rt.OutOfMemory()
			case "sleep":
				rt.Sleep(time.Hour)
			case "error":
				rt.Fail(ev.RequestID, "Runtime.HandlerError", "it went wrong")
				continue
			}
			rt.Respond(ev.RequestID, ev.Payload)
		}
	})
	cases := []struct {
		handler, errorType, inPayload string
		timeout                       int
		reused                        bool
	}{
		{"error", "Runtime.HandlerError", "it went wrong", 10, true},
		{"crash", lamina.ErrorTypeExit, "Error: Runtime exited with error: exit status 3", 10, false},
		{"oom", lamina.ErrorTypeOutOfMemory, "Runtime exited with error: signal: killed", 10, false},
		{"sleep", lamina.ErrorTypeTimeout, "Task timed out after 1.00 seconds", 1, false},
	}
	for _, c := range cases {
		fn := tw.function(c.handler, c.handler, 128, c.timeout)
		before := len(tw.provider.Sandboxes())
		for i := range 2 {
			res := tw.invoke(t, fn, `1`)
			if res.FunctionError != lamina.FunctionErrorUnhandled || res.ErrorType != c.errorType || !strings.Contains(string(res.Payload), c.inPayload) {
				t.Errorf("%s, invocation %d: %+v %s", c.handler, i, res, res.Payload)
			}
		}
		created := len(tw.provider.Sandboxes()) - before
		if c.reused && created != 1 || !c.reused && created != 2 {
			t.Errorf("%s: %d sandboxes for two invocations (reused: %v)", c.handler, created, c.reused)
		}
	}
	if lines := strings.Join(tw.logs.lines("crash"), "\n"); !strings.Contains(lines, "about to crash") || !strings.Contains(lines, "Status: error\tError Type: Runtime.ExitError") {
		t.Errorf("log of a crash:\n%s", lines)
	}
	if lines := strings.Join(tw.logs.lines("sleep"), "\n"); !strings.Contains(lines, "Status: timeout") {
		t.Errorf("log of a timeout:\n%s", lines)
	}
	tw.destroying.Wait()
	if got := tw.state(t); got != (stateView{128, 1, 1}) {
		t.Errorf("worker state after the failures: %v, want only the environment of the function error", got)
	}
}

// TestExitedIdleEnvironment: an idle environment whose runtime exited
// meanwhile is not handed the invocation; a new one runs it.
func TestExitedIdleEnvironment(t *testing.T) {
	t.Parallel()
	tw := newTestWorker(t, Config{}, sandboxtest.Echo)
	fn := tw.function("f", "echo", 128, 60)
	tw.invoke(t, fn, `1`)
	first := tw.provider.Sandboxes()[0]
	first.Exit(&sandbox.ExitError{Code: 2})
	if res := tw.invoke(t, fn, `2`); res.FunctionError != "" || string(res.Payload) != `2` || res.InitDuration == 0 {
		t.Errorf("invocation after the idle environment exited: %+v %s", res, res.Payload)
	}
	if got := len(tw.provider.Sandboxes()); got != 2 || !first.Destroyed() {
		t.Errorf("%d sandboxes, the exited one destroyed: %v", got, first.Destroyed())
	}
}

// TestRetireStale: the environments of a function version the store no
// longer holds (another RevisionId, or deleted) stop: idle ones when the
// change is reported, busy ones when their invocation ends. Others stay.
func TestRetireStale(t *testing.T) {
	t.Parallel()
	release, took := make(chan struct{}), make(chan string, 8)
	tw := newTestWorker(t, Config{}, holdScript(release, took))
	latest := tw.function("f", "h", 128, 60)
	busyDone := make(chan struct{})
	go func() {
		defer close(busyDone)
		if _, err := tw.tryInvoke(latest, `"hold"`); err != nil {
			t.Error(err)
		}
	}()
	<-took
	tw.invoke(t, latest, `1`) // a second environment, idle after
	<-took
	v1 := &lamina.Function{Configuration: latest.Configuration, CodeDigest: latest.CodeDigest}
	v1.Configuration.Version, v1.Configuration.RevisionId = "1", "v1"
	tw.store.put(v1)
	tw.invoke(t, v1, `1`)
	<-took
	tw.invoke(t, tw.function("g", "h", 128, 60), `1`)
	<-took
	sbs := tw.provider.Sandboxes()
	busy, idle, version1, other := sbs[0], sbs[1], sbs[2], sbs[3]
	requireStopped := func(what string, sb *sandboxtest.Sandbox, stopped bool) {
		t.Helper()
		tw.destroying.Wait()
		if sb.Destroyed() != stopped {
			t.Errorf("%s: stopped %v, want %v", what, sb.Destroyed(), stopped)
		}
	}

	// New code or configuration of f's $LATEST.
	tw.store.put(withRevision(latest, "r2"))
	requireStopped("an idle environment of the old revision", idle, true)
	requireStopped("a busy environment of the old revision, before its invocation ends", busy, false)
	requireStopped("an environment of version 1", version1, false)
	requireStopped("an environment of another function", other, false)
	close(release)
	<-busyDone
	requireStopped("a busy environment of the old revision, after its invocation", busy, true)
	tw.RetireStale("f", lamina.LatestVersion) // reported twice: no harm
	requireStopped("an environment of another function", other, false)

	// Version 1 deleted, then the whole function.
	tw.store.remove("f", "1")
	requireStopped("an environment of a deleted version", version1, true)
	tw.store.remove("f", lamina.LatestVersion)
	requireStopped("an environment of another function", other, false)
	if got := tw.state(t); got != (stateView{128, 1, 1}) {
		t.Errorf("after the changes the worker has %v, want g's alone", got)
	}
}

// TestProvisioned: provisioned environments are started and initialised
// ahead of invocations, serve them without a cold start, are neither
// expired nor evicted, are replaced when the config names another version
// or configuration, and become on-demand environments when given up.
func TestProvisioned(t *testing.T) {
	t.Parallel()
	release, took := make(chan struct{}), make(chan string, 16)
	tw := newTestWorker(t, Config{MemoryBudgetMB: 512}, holdScript(release, took))
	ctx := context.Background()
	fn := tw.function("p", "h", 128, 60)
	fn = &lamina.Function{Configuration: fn.Configuration, CodeDigest: fn.CodeDigest}
	fn.Configuration.Version, fn.Configuration.RevisionId = "1", "v1"
	tw.store.put(fn)
	provisioned := func() manager.ProvisionedState {
		st, err := tw.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Provisioned["p:1"]
	}

	if err := tw.Provision(ctx, manager.Provision{Config: "p:1", Function: fn, Count: 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two provisioned environments are ready", func() bool {
		ps := provisioned()
		return ps.Runs(fn) && ps.Allocated == 2 && ps.Available == 2
	})
	for _, sb := range tw.provider.Sandboxes() {
		if !strings.Contains(strings.Join(sb.Process().Env, "\n"), "AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency") {
			t.Errorf("a provisioned environment's runtime is not told so")
		}
	}
	if lines := tw.logs.lines("p"); !containsLine(lines, "INIT_START") {
		t.Errorf("no INIT_START logged for provisioned environments: %q", lines)
	}
	if res := tw.invoke(t, fn, `1`); res.InitDuration != 0 {
		t.Errorf("an invocation of a provisioned version had a cold start (%v)", res.InitDuration)
	}
	<-took
	if got := len(tw.provider.Sandboxes()); got != 2 {
		t.Errorf("%d sandboxes, want the 2 provisioned ones to serve", got)
	}

	// Neither expired nor evicted: 256 MB on demand fill the budget; more
	// is refused rather than evicting them.
	tw.expireIdle(time.Now().Add(time.Hour))
	if live := len(tw.provider.Live()); live != 2 {
		t.Fatalf("idle expiry stopped provisioned environments: %d live", live)
	}
	big := tw.function("big", "h", 256, 60)
	bigDone := make(chan struct{})
	go func() {
		defer close(bigDone)
		if _, err := tw.tryInvoke(big, `"hold"`); err != nil {
			t.Error(err)
		}
	}()
	<-took
	if _, err := tw.tryInvoke(tw.function("small", "h", 128, 60), `1`); !errors.Is(err, manager.ErrNoMemory) {
		t.Errorf("a cold start with only provisioned environments idle: %v, want ErrNoMemory", err)
	}
	close(release)
	<-bigDone

	// A new configuration of the version replaces them.
	v1r2 := withRevision(fn, "v1r2")
	tw.store.put(v1r2)
	if err := tw.Provision(ctx, manager.Provision{Config: "p:1", Function: v1r2, Count: 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the config's environments run the new configuration", func() bool {
		ps := provisioned()
		return ps.Runs(v1r2) && ps.Allocated == 2 && ps.Available == 2
	})

	// Given up, they expire as on-demand ones do.
	if err := tw.Provision(ctx, manager.Provision{Config: "p:1"}); err != nil {
		t.Fatal(err)
	}
	if ps, ok := func() (manager.ProvisionedState, bool) {
		st, _ := tw.State(ctx)
		ps, ok := st.Provisioned["p:1"]
		return ps, ok
	}(); ok {
		t.Errorf("a config given up is still reported: %+v", ps)
	}
	tw.expireIdle(time.Now().Add(time.Hour))
	if live := len(tw.provider.Live()); live != 0 {
		t.Errorf("%d environments live after giving them up and expiring idle ones", live)
	}
}
