package worker

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/logs"
	"github.com/lamina-project/lamina/internal/runtimes"
	"github.com/lamina-project/lamina/internal/sandbox"
	"github.com/lamina-project/lamina/internal/sandbox/sandboxtest"
	"github.com/lamina-project/lamina/internal/store"
)

// The worker's unit tests run it on sandboxtest's fake sandboxes, whose
// runtimes are scripts of the test that talk to the worker's real Runtime
// API, with a store and a log sink in memory.

// testRuntimes is the runtime set of every test worker, installed once in
// a temporary directory by TestMain. The tests' functions run on
// provided.al2023, which needs no interpreter.
var testRuntimes *runtimes.Set

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lamina-worker-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if testRuntimes, err = runtimes.Install(dir, runtimes.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newTestSandbox returns a fake sandbox that runs nothing: the test plays
// the runtime over its Runtime API itself.
func newTestSandbox(t *testing.T) *sandboxtest.Sandbox {
	t.Helper()
	sb, err := sandboxtest.NewSandbox(sandbox.Spec{ID: "env-test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Destroy() })
	return sb
}

// testCodeDigest names the one code archive of the test store: a zip with
// an executable bootstrap, which is all provided.al2023 asks of a package.
const testCodeDigest = "0000000000000000000000000000000000000000000000000000000000000001"

var testCode = func() []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, _ := zw.CreateHeader(h)
	w.Write([]byte("#!/bin/sh\n"))
	zw.Close()
	return b.Bytes()
}()

// testStore is a Store in memory: function versions by "name/version",
// the test code archive, and the change subscribers.
type testStore struct {
	mu      sync.Mutex
	fns     map[string]*lamina.Function
	changed []func(function, version string)
}

func newTestStore() *testStore { return &testStore{fns: map[string]*lamina.Function{}} }

func (s *testStore) ReadCode(_ context.Context, digest string) ([]byte, error) {
	if digest != testCodeDigest {
		return nil, store.ErrNotFound
	}
	return testCode, nil
}

func (s *testStore) ResolveFunction(_ context.Context, function, qualifier string) (*lamina.Function, error) {
	if qualifier == "" {
		qualifier = lamina.LatestVersion
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, ok := s.fns[function+"/"+qualifier]
	if !ok {
		return nil, store.ErrNotFound
	}
	return fn, nil
}

func (s *testStore) OnFunctionChange(f func(function, version string)) {
	s.mu.Lock()
	s.changed = append(s.changed, f)
	s.mu.Unlock()
}

// put stores fn (replacing the version it names) and reports the change.
func (s *testStore) put(fn *lamina.Function) {
	c := &fn.Configuration
	s.mu.Lock()
	s.fns[c.FunctionName+"/"+c.Version] = fn
	subs := s.changed
	s.mu.Unlock()
	for _, f := range subs {
		f(c.FunctionName, c.Version)
	}
}

// remove deletes a function version and reports the change.
func (s *testStore) remove(function, version string) {
	s.mu.Lock()
	delete(s.fns, function+"/"+version)
	subs := s.changed
	s.mu.Unlock()
	for _, f := range subs {
		f(function, version)
	}
}

// testLogs records the log events of every invocation.
type testLogs struct {
	mu     sync.Mutex
	events map[string][]logs.Event
}

func (l *testLogs) Append(group string, events ...logs.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.events == nil {
		l.events = map[string][]logs.Event{}
	}
	l.events[group] = append(l.events[group], events...)
}

// lines returns the messages logged for function (to its default log
// group) so far.
func (l *testLogs) lines(function string) []string {
	return l.groupLines(lamina.LogGroup(function))
}

// groupLines returns the messages logged to a log group so far.
func (l *testLogs) groupLines(group string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events[group] {
		out = append(out, e.Message)
	}
	return out
}

// testWorker is a worker on fake sandboxes with what the test sees of it.
type testWorker struct {
	*Worker
	provider *sandboxtest.Provider
	store    *testStore
	logs     *testLogs
}

// newTestWorker starts a worker whose environments run script (which can
// tell functions apart by their handler, rt.Getenv("_HANDLER")). cfg's
// zero fields get defaults: a 1024 MB budget, the worker's own 10 s init
// limit.
func newTestWorker(t *testing.T, cfg Config, script sandboxtest.Script) *testWorker {
	t.Helper()
	tw := &testWorker{provider: &sandboxtest.Provider{Script: script}, store: newTestStore(), logs: &testLogs{}}
	cfg.CacheDir = t.TempDir()
	cfg.Region = "us-east-1"
	cfg.Sandbox = tw.provider
	cfg.Runtimes = testRuntimes
	cfg.Store = tw.store
	cfg.Logs = tw.logs
	cfg.Logger = slog.New(slog.DiscardHandler)
	if cfg.MemoryBudgetMB == 0 {
		cfg.MemoryBudgetMB = 1024
	}
	tw.Worker = New(cfg)
	t.Cleanup(func() {
		tw.Close()
		if live := tw.provider.Live(); len(live) > 0 {
			t.Errorf("%d sandboxes outlived the worker's Close", len(live))
		}
	})
	return tw
}

// function stores and returns $LATEST of a function whose environments run
// the script's handler, with memoryMB and a timeout in seconds.
func (tw *testWorker) function(name, handler string, memoryMB, timeout int) *lamina.Function {
	fn := &lamina.Function{
		Configuration: lamina.FunctionConfiguration{
			FunctionName: name, Version: lamina.LatestVersion, RevisionId: "r1",
			Runtime: "provided.al2023", Handler: handler, MemorySize: memoryMB, Timeout: timeout,
		},
		CodeDigest: testCodeDigest,
	}
	tw.store.put(fn)
	return fn
}

// withRevision returns a copy of fn with another RevisionId (a changed
// configuration), not stored.
func withRevision(fn *lamina.Function, revision string) *lamina.Function {
	c := *fn
	c.Configuration.RevisionId = revision
	return &c
}

var requestIDs struct {
	sync.Mutex
	n int
}

// invoke runs payload on fn and fails the test on a Lamina error.
func (tw *testWorker) invoke(t *testing.T, fn *lamina.Function, payload string) *lamina.InvocationResult {
	t.Helper()
	res, err := tw.tryInvoke(fn, payload)
	if err != nil {
		t.Fatalf("invoke %s: %v", fn.Configuration.FunctionName, err)
	}
	return res
}

// tryInvoke runs payload on fn.
func (tw *testWorker) tryInvoke(fn *lamina.Function, payload string) (*lamina.InvocationResult, error) {
	requestIDs.Lock()
	requestIDs.n++
	id := fmt.Sprintf("req-%d", requestIDs.n)
	requestIDs.Unlock()
	return tw.Invoke(context.Background(), &lamina.Invocation{
		RequestID: id, Function: fn, Payload: []byte(payload),
		InvokedARN: lamina.FunctionARN("us-east-1", "000000000000", fn.Configuration.FunctionName),
	})
}

// eventually waits up to 10 s for cond, failing the test with what.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// state returns the worker's state.
func (tw *testWorker) state(t *testing.T) stateView {
	t.Helper()
	st, err := tw.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return stateView{st.MemoryUsedMB, st.Environments, st.Idle}
}

// stateView is the part of a WorkerState tests compare.
type stateView struct{ memoryMB, environments, idle int }

func (v stateView) String() string {
	return fmt.Sprintf("%d MB in %d environments, %d idle", v.memoryMB, v.environments, v.idle)
}

// containsLine reports whether a line of lines starts with prefix.
func containsLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
