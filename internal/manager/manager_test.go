package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
	dto "github.com/prometheus/client_model/go"
)

// fakeStore is a Store in memory.
type fakeStore struct {
	mu          sync.Mutex
	fns         map[string]*lamina.Function // by "name:version"
	aliases     map[string]*lamina.AliasConfiguration
	reserved    map[string]int
	provisioned []*store.ProvisionedConcurrency
}

func newFakeStore() *fakeStore {
	return &fakeStore{fns: map[string]*lamina.Function{}, aliases: map[string]*lamina.AliasConfiguration{}, reserved: map[string]int{}}
}

// version stores version of function with a revision.
func (s *fakeStore) version(function, version, revision string) *lamina.Function {
	fn := &lamina.Function{Configuration: lamina.FunctionConfiguration{FunctionName: function, Version: version, RevisionId: revision, MemorySize: 128}}
	s.mu.Lock()
	s.fns[function+":"+version] = fn
	s.mu.Unlock()
	return fn
}

func (s *fakeStore) ResolveFunction(ctx context.Context, function, qualifier string) (*lamina.Function, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if qualifier == "" {
		qualifier = lamina.LatestVersion
	}
	if a, ok := s.aliases[function+":"+qualifier]; ok {
		qualifier = a.FunctionVersion
	}
	fn, ok := s.fns[function+":"+qualifier]
	if !ok {
		return nil, fmt.Errorf("%s:%s: %w", function, qualifier, store.ErrNotFound)
	}
	return fn, nil
}

func (s *fakeStore) GetAlias(ctx context.Context, function, alias string) (*lamina.AliasConfiguration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.aliases[function+":"+alias]
	if !ok {
		return nil, store.ErrNotFound
	}
	return a, nil
}

func (s *fakeStore) Reserved(function string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.reserved[function]
	return n, ok
}

func (s *fakeStore) TotalReserved() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for _, n := range s.reserved {
		total += n
	}
	return total
}

func (s *fakeStore) ListProvisionedConcurrency(ctx context.Context, function string) []*store.ProvisionedConcurrency {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.provisioned)
}

// fakeWorker is a Worker that records what it is asked. Its invocations
// answer with the version they ran; an invocation whose payload is "hold"
// waits until release is closed, telling started first.
type fakeWorker struct {
	release chan struct{}
	started chan string
	err     error // returned by Invoke when set

	mu         sync.Mutex
	provisions []Provision
	state      WorkerState
	stateErr   error
	ran        map[string]int // invocations by function
}

func newFakeWorker() *fakeWorker {
	return &fakeWorker{release: make(chan struct{}), started: make(chan string, 256), ran: map[string]int{}}
}

func (w *fakeWorker) Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error) {
	if w.err != nil {
		return nil, w.err
	}
	w.mu.Lock()
	w.ran[req.Function.Configuration.FunctionName]++
	w.mu.Unlock()
	if string(req.Payload) == "hold" {
		w.started <- req.RequestID
		<-w.release
	}
	return &lamina.InvocationResult{Payload: req.Payload, ExecutedVersion: req.Function.Configuration.Version}, nil
}

func (w *fakeWorker) Provision(ctx context.Context, p Provision) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.provisions = append(w.provisions, p)
	return nil
}

// takeProvisions returns the Provision calls since the last take.
func (w *fakeWorker) takeProvisions() []Provision {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.provisions
	w.provisions = nil
	return p
}

func (w *fakeWorker) State(ctx context.Context) (WorkerState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state, w.stateErr
}

func newTestManager(st *fakeStore, w *fakeWorker, limit int) *Manager {
	return New(Config{Worker: w, Store: st, ConcurrencyLimit: limit, Logger: slog.New(slog.DiscardHandler)})
}

// invoke resolves function:qualifier and invokes it with payload.
func invoke(m *Manager, function, qualifier, payload string) (*lamina.InvocationResult, error) {
	fn, err := m.Resolve(context.Background(), function, qualifier)
	if err != nil {
		return nil, err
	}
	return m.Invoke(context.Background(), &lamina.Invocation{RequestID: function + "-" + payload, Function: fn, Payload: []byte(payload)})
}

// throttles returns the throttles counted for function.
func throttles(m *Manager, function string) float64 {
	var d dto.Metric
	if err := m.metrics.throttles.WithLabelValues(function).Write(&d); err != nil {
		panic(err)
	}
	return d.GetCounter().GetValue()
}

// requireThrottle requires err to be 429 TooManyRequestsException with
// reason.
func requireThrottle(t *testing.T, what string, err error, reason string) {
	t.Helper()
	var le *lamina.Error
	if !errors.As(err, &le) || le.Status != http.StatusTooManyRequests || le.Code != "TooManyRequestsException" || le.Reason != reason {
		t.Errorf("%s: %v, want 429 TooManyRequestsException with Reason %s", what, err, reason)
	}
}

// TestAdmission: a function with reserved concurrency runs at most that
// many at once and always that many, whatever the others do; the
// functions without a reservation share the account's limit minus every
// reservation. Throttles name their reason and are counted.
func TestAdmission(t *testing.T) {
	t.Parallel()
	st, w := newFakeStore(), newFakeWorker()
	st.version("reserved", lamina.LatestVersion, "r")
	st.version("shared", lamina.LatestVersion, "s")
	st.version("other", lamina.LatestVersion, "o")
	st.reserved["reserved"] = 2
	m := newTestManager(st, w, 5) // 3 unreserved
	var wg sync.WaitGroup
	hold := func(function string, n int) {
		for range n {
			wg.Go(func() {
				if _, err := invoke(m, function, "", "hold"); err != nil {
					t.Errorf("%s: %v", function, err)
				}
			})
			<-w.started
		}
	}
	hold("shared", 2)
	hold("other", 1) // the unreserved pool (3) is used up
	_, err := invoke(m, "shared", "", "1")
	requireThrottle(t, "a fourth unreserved invocation", err, ReasonAccount)
	hold("reserved", 2) // its reservation is its own
	_, err = invoke(m, "reserved", "", "1")
	requireThrottle(t, "a third invocation of a function reserving 2", err, ReasonReserved)
	if got := throttles(m, "shared") + throttles(m, "reserved"); got != 2 {
		t.Errorf("%v throttles counted, want 2", got)
	}
	close(w.release)
	wg.Wait()
	for _, function := range []string{"shared", "other", "reserved"} {
		if res, err := invoke(m, function, "", "1"); err != nil || string(res.Payload) != "1" {
			t.Errorf("%s after the others ended: %v", function, err)
		}
	}
	c := m.counter.(*localCounter)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.inflight) != 0 {
		t.Errorf("after every invocation ended the manager counts %v in flight", c.inflight)
	}
}

// TestWorkerErrors: a worker without memory is Lambda's throttle, named by
// the manager; other errors pass as they are; both count the invocation
// out.
func TestWorkerErrors(t *testing.T) {
	t.Parallel()
	st, w := newFakeStore(), newFakeWorker()
	st.version("f", lamina.LatestVersion, "r")
	m := newTestManager(st, w, 1)
	w.err = fmt.Errorf("start: %w", ErrNoMemory)
	_, err := invoke(m, "f", "", "1")
	requireThrottle(t, "a worker without memory", err, ReasonAccount)
	if got := throttles(m, "f"); got != 1 {
		t.Errorf("%v throttles counted, want 1", got)
	}
	w.err = lamina.ErrService("the worker is shutting down")
	if _, err := invoke(m, "f", "", "1"); err != w.err {
		t.Errorf("a worker's ServiceException came back as %v", err)
	}
	w.err = nil
	if _, err := invoke(m, "f", "", "1"); err != nil {
		t.Errorf("with a concurrency limit of 1, after failed invocations: %v (they were not counted out)", err)
	}
}

// TestResolve: qualifiers name $LATEST, versions and aliases; an alias with
// weighted routing runs its additional version with that weight's
// probability; what does not exist is store.ErrNotFound.
func TestResolve(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	st.version("f", lamina.LatestVersion, "l")
	st.version("f", "1", "v1")
	st.version("f", "2", "v2")
	st.aliases["f:plain"] = &lamina.AliasConfiguration{Name: "plain", FunctionVersion: "1"}
	st.aliases["f:canary"] = &lamina.AliasConfiguration{Name: "canary", FunctionVersion: "1",
		RoutingConfig: &lamina.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.25}}}
	m := newTestManager(st, newFakeWorker(), 10)
	ctx := context.Background()
	for qualifier, want := range map[string]string{"": lamina.LatestVersion, lamina.LatestVersion: lamina.LatestVersion, "2": "2", "plain": "1"} {
		if fn, err := m.Resolve(ctx, "f", qualifier); err != nil || fn.Configuration.Version != want {
			t.Errorf("Resolve(f, %q) = %v, %v; want version %s", qualifier, fn, err, want)
		}
	}
	for _, c := range []struct {
		r    float64
		want string
	}{{0, "2"}, {0.2499, "2"}, {0.25, "1"}, {0.99, "1"}} {
		m.random = func() float64 { return c.r }
		if fn, err := m.Resolve(ctx, "f", "canary"); err != nil || fn.Configuration.Version != c.want {
			t.Errorf("canary with a draw of %v: %v, %v; want version %s", c.r, fn, err, c.want)
		}
	}
	// And with the real random numbers, through Invoke, as
	// X-Amz-Executed-Version shows it.
	m = newTestManager(st, newFakeWorker(), 10)
	ran := map[string]int{}
	const n = 4000
	for range n {
		res, err := invoke(m, "f", "canary", "1")
		if err != nil {
			t.Fatal(err)
		}
		ran[res.ExecutedVersion]++
	}
	// 1,000 expected; 5 standard deviations (27 each) either side.
	if ran["2"] < 860 || ran["2"] > 1140 || ran["1"]+ran["2"] != n {
		t.Errorf("of %d invocations of an alias weighting version 2 at 0.25, versions ran %v", n, ran)
	}
	for _, q := range []string{"missing", "3"} {
		if _, err := m.Resolve(ctx, "f", q); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Resolve(f, %s) = %v, want store.ErrNotFound", q, err)
		}
	}
	if _, err := m.Resolve(ctx, "g", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Resolve of a missing function: %v, want store.ErrNotFound", err)
	}
}

// TestProvisioning: each application of the stored configs provisions
// every config's version (an alias's primary version), gives up the
// environments of configs that are gone or whose version is, and the
// manager reports what the worker has ready for the version a config names
// now.
func TestProvisioning(t *testing.T) {
	t.Parallel()
	st, w := newFakeStore(), newFakeWorker()
	v1 := st.version("f", "1", "v1")
	v2 := st.version("f", "2", "v2")
	st.aliases["f:live"] = &lamina.AliasConfiguration{Name: "live", FunctionVersion: "2",
		RoutingConfig: &lamina.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.5}}}
	st.provisioned = []*store.ProvisionedConcurrency{{Function: "f", Qualifier: "1", Requested: 2}, {Function: "f", Qualifier: "live", Requested: 3}}
	m := newTestManager(st, w, 10)
	ctx := context.Background()

	active := m.provision(ctx, map[string]bool{})
	got := w.takeProvisions()
	want := []Provision{{Config: "f:1", Function: v1, Count: 2}, {Config: "f:live", Function: v2, Count: 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("first application: %+v, want %+v", got, want)
	}

	// The config of version 1 deleted, the alias's version deleted.
	st.provisioned = st.provisioned[1:]
	st.mu.Lock()
	delete(st.fns, "f:2")
	st.mu.Unlock()
	active = m.provision(ctx, active)
	got = w.takeProvisions()
	slices.SortFunc(got, func(a, b Provision) int { return strings.Compare(a.Config, b.Config) })
	want = []Provision{{Config: "f:1"}, {Config: "f:live"}}
	if !slices.Equal(got, want) {
		t.Errorf("after the changes: %+v, want both given up: %+v", got, want)
	}
	if len(active) != 0 {
		t.Errorf("configs still active: %v", active)
	}
	st.version("f", "2", "v2")

	// What the worker has ready, for the version a config names now.
	w.state = WorkerState{Provisioned: map[string]ProvisionedState{
		"f:live": {Version: "2", RevisionId: "v2", Allocated: 3, Available: 1},
		"f:1":    {Version: "1", RevisionId: "old", Allocated: 2, Available: 2},
	}}
	if a, b := m.Provisioned(ctx, "f", "live"); a != 3 || b != 1 {
		t.Errorf("Provisioned(f, live) = %d, %d; want 3, 1", a, b)
	}
	if a, b := m.Provisioned(ctx, "f", "1"); a != 0 || b != 0 {
		t.Errorf("Provisioned(f, 1) = %d, %d for environments of another configuration; want 0, 0", a, b)
	}
	w.stateErr = errors.New("unreachable")
	if a, b := m.Provisioned(ctx, "f", "live"); a != 0 || b != 0 {
		t.Errorf("Provisioned from a worker that cannot tell = %d, %d; want 0, 0", a, b)
	}
}

// TestRunProvisions: Run applies the configs on its own.
func TestRunProvisions(t *testing.T) {
	t.Parallel()
	st, w := newFakeStore(), newFakeWorker()
	v1 := st.version("f", "1", "v1")
	st.provisioned = []*store.ProvisionedConcurrency{{Function: "f", Qualifier: "1", Requested: 1}}
	m := newTestManager(st, w, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := w.takeProvisions(); len(got) > 0 {
			if got[0] != (Provision{Config: "f:1", Function: v1, Count: 1}) {
				t.Errorf("Run provisioned %+v", got)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("Run provisioned nothing in 10 s")
}

// BenchmarkInvoke measures what the manager adds to a warm invocation:
// resolving the version (through an alias with weighted routing), admission
// and placement, around a worker that answers at once.
func BenchmarkInvoke(b *testing.B) {
	st, w := newFakeStore(), newFakeWorker()
	st.version("f", "1", "v1")
	st.version("f", "2", "v2")
	st.aliases["f:live"] = &lamina.AliasConfiguration{Name: "live", FunctionVersion: "1",
		RoutingConfig: &lamina.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.1}}}
	m := newTestManager(st, w, 1000)
	ctx := context.Background()
	req := &lamina.Invocation{RequestID: "r", Payload: []byte("{}")}
	b.ReportAllocs()
	for b.Loop() {
		fn, err := m.Resolve(ctx, "f", "live")
		if err != nil {
			b.Fatal(err)
		}
		req.Function = fn
		if _, err := m.Invoke(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
