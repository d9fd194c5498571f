package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/manager"
	"github.com/lamina-project/lamina/internal/store"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startNATS starts an in-process NATS server that takes 8 MB messages, as
// Lamina's do, and returns a function that connects a client to it.
func startNATS(t *testing.T) func() *nats.Conn {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{DontListen: true, NoSigs: true, NoLog: true, MaxPayload: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return func() *nats.Conn {
		nc, err := nats.Connect("", nats.InProcessServer(ns))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
}

// fakeWorker answers invocations with their payload reversed, or with err;
// an invocation whose payload is "hold" waits until release is closed.
type fakeWorker struct {
	err     error
	started chan struct{}
	release chan struct{}

	mu         sync.Mutex
	provisions []manager.Provision
	state      manager.WorkerState
}

func newFakeWorker() *fakeWorker {
	return &fakeWorker{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (w *fakeWorker) Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error) {
	if w.err != nil {
		return nil, w.err
	}
	if string(req.Payload) == "hold" {
		w.started <- struct{}{}
		<-w.release
	}
	out := bytes.Clone(req.Payload)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return &lamina.InvocationResult{Payload: out, ContentType: "application/octet-stream", ExecutedVersion: req.Function.Configuration.Version,
		LogTail: []byte("END RequestId: " + req.RequestID), Duration: 3 * time.Millisecond, InitDuration: time.Second}, nil
}

func (w *fakeWorker) Provision(ctx context.Context, p manager.Provision) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.provisions = append(w.provisions, p)
	return w.err
}

func (w *fakeWorker) State(ctx context.Context) (manager.WorkerState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state, w.err
}

var testFunction = &lamina.Function{
	Configuration: lamina.FunctionConfiguration{FunctionName: "f", Version: "7", RevisionId: "rev", Runtime: "python3.12",
		Handler: "app.handler", MemorySize: 256, Timeout: 3, Environment: &lamina.Environment{Variables: map[string]string{"K": "v"}}},
	CodeDigest: "abc",
	Layers:     []lamina.LayerContent{{Arn: "arn:aws:lambda:us-east-1:000000000000:layer:l:1", Digest: "def"}},
}

// pair serves w as node "n2" and returns a client's worker for it.
func pair(t *testing.T, w manager.Worker, sopts ServerOptions, copts ClientOptions) (manager.Worker, *Server) {
	t.Helper()
	connect := startNATS(t)
	sopts.Logger = slog.New(slog.DiscardHandler)
	srv, err := Serve(connect(), "n2", w, sopts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(connect(), copts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.Worker("n2"), srv
}

// TestRoundTrip: an invocation with a 6 MB payload and its 6 MB result,
// a provision and a state cross the wire unchanged.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	fw := newFakeWorker()
	fw.state = manager.WorkerState{MemoryBudgetMB: 1024, MemoryUsedMB: 512, BusyMB: 256, EvictableMB: 128, Environments: 3, Idle: 1,
		Provisioned: map[string]manager.ProvisionedState{"f:live": {Version: "7", RevisionId: "rev", Allocated: 2, Available: 1}}}
	w, _ := pair(t, fw, ServerOptions{}, ClientOptions{})
	ctx := context.Background()
	payload := bytes.Repeat([]byte("0123456789abcdef"), lamina.MaxSyncPayload/16)
	payload[0] = 0
	req := &lamina.Invocation{RequestID: "r1", Function: testFunction, InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:f:live",
		Payload: payload, ClientContext: `{"c":1}`, CognitoIdentity: `{"i":1}`, TraceID: "Root=1-x", Tail: true}
	res, err := w.Invoke(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := fw.Invoke(ctx, req)
	if !reflect.DeepEqual(res, want) {
		t.Errorf("result of a 6 MB invocation differs: %d bytes, %+v", len(res.Payload), res)
	}
	// An empty payload stays empty.
	if res, err := w.Invoke(ctx, &lamina.Invocation{RequestID: "r2", Function: testFunction}); err != nil || len(res.Payload) != 0 {
		t.Errorf("an empty invocation: %v, %v", res, err)
	}

	p := manager.Provision{Config: "f:live", Function: testFunction, Count: 3}
	if err := w.Provision(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := w.Provision(ctx, manager.Provision{Config: "f:live"}); err != nil {
		t.Fatal(err)
	}
	fw.mu.Lock()
	got := fw.provisions
	fw.mu.Unlock()
	if len(got) != 2 || !reflect.DeepEqual(got[0], p) || !reflect.DeepEqual(got[1], manager.Provision{Config: "f:live"}) {
		t.Errorf("provisions arrived as %+v", got)
	}
	st, err := w.State(ctx)
	if err != nil || !reflect.DeepEqual(st, fw.state) {
		t.Errorf("state arrived as %+v (%v), want %+v", st, err, fw.state)
	}
}

// TestErrors: the worker's errors come back as they were: no memory and an
// unavailable store (errors.Is), a *lamina.Error with all its fields, anything else by its
// message; a node that is not there is unavailable.
func TestErrors(t *testing.T) {
	t.Parallel()
	fw := newFakeWorker()
	w, _ := pair(t, fw, ServerOptions{}, ClientOptions{})
	ctx := context.Background()
	req := &lamina.Invocation{RequestID: "r", Function: testFunction}

	fw.err = fmt.Errorf("start: %w", manager.ErrNoMemory)
	if _, err := w.Invoke(ctx, req); !errors.Is(err, manager.ErrNoMemory) {
		t.Errorf("no memory came back as %v", err)
	}
	throttle := lamina.ErrTooManyRequests(manager.ReasonReserved)
	fw.err = throttle
	_, err := w.Invoke(ctx, req)
	var le *lamina.Error
	if !errors.As(err, &le) || !reflect.DeepEqual(le, throttle) {
		t.Errorf("%#v came back as %#v", throttle, err)
	}
	fw.err = lamina.ErrNotFound("Function not found: f")
	if err := w.Provision(ctx, manager.Provision{Config: "f:1"}); !errors.As(err, &le) || le.Status != http.StatusNotFound || le.Code != "ResourceNotFoundException" {
		t.Errorf("a not found from Provision came back as %v", err)
	}
	fw.err = lamina.ErrService("the worker is shutting down")
	if _, err := w.State(ctx); !errors.As(err, &le) || le.Status != http.StatusInternalServerError || le.Message != "the worker is shutting down" {
		t.Errorf("a ServiceException from State came back as %v", err)
	}
	fw.err = fmt.Errorf("code: %w", store.ErrUnavailable)
	if _, err := w.Invoke(ctx, req); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("an unavailable store came back as %v", err)
	}
	fw.err = errors.New("sandbox: cannot make a cgroup")
	if _, err := w.Invoke(ctx, req); err == nil || errors.As(err, &le) || errors.Is(err, manager.ErrNoMemory) ||
		err.Error() != "node n2: sandbox: cannot make a cgroup" {
		t.Errorf("a platform error came back as %v", err)
	}

	// A node nobody serves: unavailable, at once.
	c, err := NewClient(startNATS(t)(), ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	started := time.Now()
	if _, err := c.Worker("gone").Invoke(ctx, req); !errors.Is(err, manager.ErrWorkerUnavailable) {
		t.Errorf("an invocation sent to a node nobody serves: %v, want ErrWorkerUnavailable", err)
	}
	t.Logf("no responders known after %v", time.Since(started))
}

// TestSignsOfLife: an invocation that runs longer than the client's
// silence succeeds, the node telling it still runs; a node that dies
// during an invocation is given up after the silence with ErrWorkerLost.
func TestSignsOfLife(t *testing.T) {
	t.Parallel()
	connect := startNATS(t)
	fw := newFakeWorker()
	serverConn := connect()
	if _, err := Serve(serverConn, "n2", fw, ServerOptions{Progress: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(connect(), ClientOptions{Silence: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := c.Worker("n2")
	ctx := context.Background()
	req := &lamina.Invocation{RequestID: "r", Function: testFunction, Payload: []byte("hold")}
	done := make(chan error, 1)
	go func() {
		_, err := w.Invoke(ctx, req)
		done <- err
	}()
	<-fw.started
	time.Sleep(time.Second) // five times the silence
	fw.release <- struct{}{}
	if err := <-done; err != nil {
		t.Errorf("an invocation running 1 s with a silence of 200 ms: %v", err)
	}

	// The node's connection goes while the invocation runs: no more signs
	// of life.
	go func() {
		_, err := w.Invoke(ctx, req)
		done <- err
	}()
	<-fw.started
	serverConn.Close()
	select {
	case err := <-done:
		if !errors.Is(err, manager.ErrWorkerLost) {
			t.Errorf("an invocation on a node that went away: %v, want ErrWorkerLost", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an invocation on a node that went away is still waiting after 30 s")
	}
	close(fw.release)

	// A caller that leaves stops waiting.
	fw2 := newFakeWorker()
	w2, _ := pair(t, fw2, ServerOptions{}, ClientOptions{})
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		_, err := w2.Invoke(cctx, req)
		done <- err
	}()
	<-fw2.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("a caller that left: %v, want context.Canceled", err)
	}
	close(fw2.release)
}

// TestBounds: a node takes at most MaxInflight requests (and
// MaxInflightBytes) at once; more are refused as a node without room, and
// did not run. A draining node refuses new requests as unavailable and
// finishes those it runs.
func TestBounds(t *testing.T) {
	t.Parallel()
	fw := newFakeWorker()
	w, srv := pair(t, fw, ServerOptions{MaxInflight: 2, MaxInflightBytes: 1 << 20}, ClientOptions{})
	ctx := context.Background()
	hold := &lamina.Invocation{RequestID: "h", Function: testFunction, Payload: []byte("hold")}
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := w.Invoke(ctx, hold)
			errs <- err
		}()
		<-fw.started
	}
	if _, err := w.Invoke(ctx, &lamina.Invocation{RequestID: "x", Function: testFunction}); !errors.Is(err, manager.ErrNoMemory) {
		t.Errorf("a third request with two of two in flight: %v, want a refusal as no room", err)
	}
	fw.release <- struct{}{}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	big := &lamina.Invocation{RequestID: "b", Function: testFunction, Payload: make([]byte, 1<<20)}
	if _, err := w.Invoke(ctx, big); !errors.Is(err, manager.ErrNoMemory) {
		t.Errorf("1 MB more with a 1 MB bound and a request in flight: %v, want a refusal", err)
	}

	srv.Drain()
	if _, err := w.Invoke(ctx, &lamina.Invocation{RequestID: "y", Function: testFunction}); !errors.Is(err, manager.ErrWorkerUnavailable) {
		t.Errorf("a request to a draining node: %v, want ErrWorkerUnavailable", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- srv.Wait(ctx) }()
	select {
	case <-waited:
		t.Error("Wait returned with an invocation still running")
	case <-time.After(100 * time.Millisecond):
	}
	fw.release <- struct{}{}
	if err := <-errs; err != nil {
		t.Errorf("the invocation running when the node began to drain: %v", err)
	}
	if err := <-waited; err != nil {
		t.Errorf("Wait: %v", err)
	}
}
