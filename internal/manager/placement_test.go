package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/cluster"
	"github.com/lamina-project/lamina/internal/store"
)

// fakeNodes is a membership whose members the test sets.
type fakeNodes struct {
	self string
	mu   sync.Mutex
	live []cluster.Node
}

func (f *fakeNodes) Self() cluster.Node { return cluster.Node{ID: f.self} }

func (f *fakeNodes) Members() []cluster.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.live)
}

// testCluster is the managers of a cluster of nodes with fake workers: each
// manager reaches the other nodes' workers directly.
type testCluster struct {
	store    *fakeStore
	members  []cluster.Node
	workers  map[string]*fakeWorker
	managers map[string]*Manager
	nodes    map[string]*fakeNodes
	// started receives the request IDs of held invocations as they start
	// on any worker.
	started chan string

	mu  sync.Mutex
	now time.Time
}

// member is a live node with a memory budget and nothing busy.
func member(id string, budgetMB int) cluster.Node {
	return cluster.Node{ID: id, MemoryBudgetMB: budgetMB, Heartbeat: time.Unix(1, 0)}
}

func newTestCluster(t *testing.T, st *fakeStore, members ...cluster.Node) *testCluster {
	t.Helper()
	c := &testCluster{store: st, workers: map[string]*fakeWorker{}, managers: map[string]*Manager{}, nodes: map[string]*fakeNodes{},
		started: make(chan string, 256), now: time.Now()}
	for _, mb := range members {
		c.addWorker(mb.ID)
	}
	for _, mb := range members {
		c.nodes[mb.ID] = &fakeNodes{self: mb.ID}
		c.managers[mb.ID] = New(Config{Worker: c.workers[mb.ID], Store: st, ConcurrencyLimit: 1000,
			Nodes: c.nodes[mb.ID], Remote: c.remote, Logger: slog.New(slog.DiscardHandler)})
		c.managers[mb.ID].placement.now = c.clock
	}
	c.setMembers(members...)
	return c
}

// addWorker makes the fake worker of node id.
func (c *testCluster) addWorker(id string) {
	w := newFakeWorker()
	w.started = c.started
	c.workers[id] = w
}

// clock is the managers' time, which the test moves.
func (c *testCluster) clock() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// advance moves the managers' time on by d.
func (c *testCluster) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// remote is every manager's way to another node's worker.
func (c *testCluster) remote(id string) Worker {
	if w, ok := c.workers[id]; ok {
		return w
	}
	return unreachable{}
}

// setMembers makes members the live nodes, as every manager sees them.
func (c *testCluster) setMembers(members ...cluster.Node) {
	c.members = members
	for id, n := range c.nodes {
		n.mu.Lock()
		n.live = slices.Clone(members)
		n.mu.Unlock()
		c.managers[id].placement.refresh()
	}
}

// ran returns how many invocations of function each node's worker ran.
func (c *testCluster) ran(function string) map[string]int {
	out := map[string]int{}
	for id, w := range c.workers {
		w.mu.Lock()
		if n := w.ran[function]; n > 0 {
			out[id] = n
		}
		w.mu.Unlock()
	}
	return out
}

// home returns the node that runs invocations of function when nothing is
// busy, as m places them.
func home(m *Manager, function string) string {
	m.placement.mu.Lock()
	defer m.placement.mu.Unlock()
	return m.placement.order(versionKey{function, lamina.LatestVersion})[0].id
}

// unreachable is the worker of a node that does not answer.
type unreachable struct{}

func (unreachable) Invoke(context.Context, *lamina.Invocation) (*lamina.InvocationResult, error) {
	return nil, fmt.Errorf("%w: no answer", ErrWorkerUnavailable)
}
func (unreachable) Provision(context.Context, Provision) error { return ErrWorkerUnavailable }
func (unreachable) State(context.Context) (WorkerState, error) {
	return WorkerState{}, ErrWorkerUnavailable
}

// TestPlacementHome: the invocations of a function, made through any
// node's manager, run on one node, its home, the same for every manager;
// the functions' homes spread over the nodes in proportion to their
// memory budgets.
func TestPlacementHome(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	c := newTestCluster(t, st, member("n1", 1024), member("n2", 1024), member("n3", 2048))
	const functions = 400
	for i := range functions {
		st.version(fmt.Sprintf("f%d", i), lamina.LatestVersion, "r")
	}
	homes := map[string]int{}
	for i := range functions {
		name := fmt.Sprintf("f%d", i)
		for _, id := range []string{"n1", "n2", "n3", "n1"} {
			if _, err := invoke(c.managers[id], name, "", "{}"); err != nil {
				t.Fatal(err)
			}
		}
		ran := c.ran(name)
		if len(ran) != 1 {
			t.Fatalf("%s invoked 4 times through the three nodes ran on %v, want one node", name, ran)
		}
		for id := range ran {
			homes[id]++
			if h := home(c.managers["n2"], name); h != id {
				t.Errorf("%s ran on %s, but n2 says its home is %s", name, id, h)
			}
		}
	}
	// n3 has half the memory: it is home to about half the functions
	// (200; the bounds are 5 standard deviations, 50 each side).
	if homes["n3"] < 150 || homes["n3"] > 250 || homes["n1"] < 50 || homes["n2"] < 50 {
		t.Errorf("homes of %d functions by node: %v; want about 100, 100, 200", functions, homes)
	}
}

// holdN starts n invocations of function through m that wait until the
// workers' release channels are closed, and waits until they have started
// on some worker.
func (c *testCluster) holdN(t *testing.T, m *Manager, function string, n int, wg *sync.WaitGroup) {
	t.Helper()
	for range n {
		wg.Go(func() {
			if _, err := invoke(m, function, "", "hold"); err != nil {
				t.Errorf("%s: %v", function, err)
			}
		})
	}
	c.waitStarted(t, n)
}

// waitStarted waits until n held invocations have started on the workers.
func (c *testCluster) waitStarted(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-c.started:
		case <-time.After(10 * time.Second):
			t.Fatal("held invocations did not start")
		}
	}
}

// releaseAll ends every held invocation.
func (c *testCluster) releaseAll() {
	for _, w := range c.workers {
		close(w.release)
	}
}

// TestPlacementBoundedLoad: concurrent invocations of one function fill its
// home up to the load floor, then spill to the next nodes, each bounded by
// the cluster's average load; a node without room is passed over.
func TestPlacementBoundedLoad(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	st.version("hot", lamina.LatestVersion, "r") // 128 MB
	c := newTestCluster(t, st, member("n1", 1024), member("n2", 1024), member("n3", 1024))
	m := c.managers["n1"]
	var wg sync.WaitGroup
	// The floor of 1024 MB holds floorN environments of 128 MB.
	floorN := int(loadFloor * 1024 / 128)
	for i := 1; i <= 2*floorN; i++ {
		c.holdN(t, m, "hot", 1, &wg)
		ran := c.ran("hot")
		h := home(m, "hot")
		if i <= floorN && (len(ran) != 1 || ran[h] != i) {
			t.Fatalf("%d invocations at once ran %v, want all on the home %s", i, ran, h)
		}
		if i > floorN && ran[h] != floorN {
			t.Errorf("%d invocations at once ran %v, want %d on the home %s", i, ran, floorN, h)
		}
	}
	// Past the floor, the next nodes take theirs up to their floor.
	if ran := c.ran("hot"); max(ran["n1"], ran["n2"], ran["n3"]) > floorN {
		t.Errorf("%d invocations at once on three nodes ran %v, want at most %d on each", 2*floorN, ran, floorN)
	}
	c.holdN(t, m, "hot", 20-2*floorN, &wg)
	if ran := c.ran("hot"); ran["n1"]+ran["n2"]+ran["n3"] != 20 || max(ran["n1"], ran["n2"], ran["n3"]) > 8 {
		t.Errorf("20 invocations at once ran %v, want at most 8 (1.25 times 6.7) on each", ran)
	}
	c.releaseAll()
	wg.Wait()

	// A node whose heartbeat shows no room is passed over, and one whose
	// worker says it has none is passed over for a second.
	st2 := newFakeStore()
	st2.version("f", lamina.LatestVersion, "r")
	full := member("n1", 1024)
	full.MemoryInUseMB = 1024
	c = newTestCluster(t, st2, full, member("n2", 1024), member("n3", 1024))
	for range 5 {
		if _, err := invoke(c.managers["n2"], "f", "", "{}"); err != nil {
			t.Fatal(err)
		}
	}
	if ran := c.ran("f"); ran["n1"] != 0 || len(ran) != 1 {
		t.Errorf("with n1 full by its heartbeat, f ran %v, want on one other node", ran)
	}
	h := home(c.managers["n2"], "f")
	c.workers[h].err = fmt.Errorf("start: %w", ErrNoMemory)
	if _, err := invoke(c.managers["n2"], "f", "", "{}"); err != nil {
		t.Errorf("f with its home out of memory: %v, want it run elsewhere", err)
	}
	c.workers[h].err = nil
	before := c.ran("f")[h]
	if _, err := invoke(c.managers["n2"], "f", "", "{}"); err != nil || c.ran("f")[h] != before {
		t.Errorf("right after its worker had no memory, the home %s was given an invocation again (%v)", h, err)
	}
	c.advance(fullFor)
	if _, err := invoke(c.managers["n2"], "f", "", "{}"); err != nil || c.ran("f")[h] != before+1 {
		t.Errorf("%v after its worker had no memory, the home %s was not given the invocation (%v)", fullFor, h, err)
	}
	// With no room anywhere, the invocation is throttled.
	for _, w := range c.workers {
		w.err = fmt.Errorf("start: %w", ErrNoMemory)
	}
	st2.version("g", lamina.LatestVersion, "r")
	_, err := invoke(c.managers["n3"], "g", "", "{}")
	requireThrottle(t, "no node with room", err, ReasonAccount)
}

// TestPlacementUnavailable: a node whose worker does not take the
// invocation (it never started) is passed over, and the invocation runs on
// the next node; one that stops answering during an invocation ends it with
// a 500 ServiceException, without running it again elsewhere.
func TestPlacementUnavailable(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	for i := range 30 {
		st.version(fmt.Sprintf("f%d", i), lamina.LatestVersion, "r")
	}
	c := newTestCluster(t, st, member("n1", 1024), member("n2", 1024), member("n3", 1024))
	m := c.managers["n1"]
	c.workers["n3"].err = fmt.Errorf("%w: no responders", ErrWorkerUnavailable)
	for i := range 30 {
		name := fmt.Sprintf("f%d", i)
		if _, err := invoke(m, name, "", "{}"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := c.ran("f0"); len(got) != 1 || got["n3"] != 0 {
		t.Errorf("f0 ran %v", got)
	}
	m.placement.mu.Lock()
	suspect := !m.placement.byID["n3"].usable(128, c.clock())
	m.placement.mu.Unlock()
	if !suspect {
		t.Error("n3 did not answer, and is not passed over")
	}
	c.advance(suspectFor)
	m.placement.mu.Lock()
	suspect = !m.placement.byID["n3"].usable(128, c.clock())
	m.placement.mu.Unlock()
	if suspect {
		t.Errorf("n3 is still passed over %v after it did not answer", suspectFor)
	}

	c.workers["n3"].err = nil
	c.workers["n2"].err = fmt.Errorf("%w: no sign of life for 5s", ErrWorkerLost)
	lost := 0
	for i := range 30 {
		name := fmt.Sprintf("f%d", i)
		if home(m, name) != "n2" {
			continue
		}
		before := c.ran(name)
		_, err := invoke(m, name, "", "{}")
		var le *lamina.Error
		if lost == 0 {
			if !errors.As(err, &le) || le.Status != http.StatusInternalServerError || le.Code != "ServiceException" {
				t.Errorf("%s on a node lost during the invocation: %v, want 500 ServiceException", name, err)
			}
			if !maps.Equal(before, c.ran(name)) {
				t.Errorf("%s was run again after its node was lost: %v, then %v", name, before, c.ran(name))
			}
		} else if err != nil {
			t.Errorf("%s after n2 was found lost: %v, want it placed elsewhere", name, err)
		}
		lost++
	}
	if lost < 2 {
		t.Fatalf("only %d of 30 functions have n2 as home", lost)
	}
}

// TestPlacementMembership: when a node joins, only the functions it becomes
// home to move (about 1/n of them), all to it; when a node leaves, only its
// functions move. One node alone runs everything on its own worker.
func TestPlacementMembership(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	c := newTestCluster(t, st, member("n1", 1024), member("n2", 1024), member("n3", 1024))
	m := c.managers["n1"]
	const functions = 1000
	homes := func() map[string]string {
		out := map[string]string{}
		for i := range functions {
			name := fmt.Sprintf("f%d", i)
			out[name] = home(m, name)
		}
		return out
	}
	before := homes()
	c.addWorker("n4")
	c.setMembers(append(slices.Clone(c.members), member("n4", 1024))...)
	after := homes()
	moved := 0
	for name, h := range after {
		if h != before[name] {
			moved++
			if h != "n4" {
				t.Errorf("%s moved from %s to %s when n4 joined", name, before[name], h)
			}
		}
	}
	// A quarter should move: 250, 5 standard deviations (14 each) either side.
	if moved < 180 || moved > 320 {
		t.Errorf("%d of %d functions moved when a fourth node joined, want about 250", moved, functions)
	}
	c.setMembers(member("n1", 1024), member("n3", 1024), member("n4", 1024))
	for name, h := range homes() {
		if after[name] != "n2" && h != after[name] {
			t.Errorf("%s moved from %s to %s when n2 left", name, after[name], h)
		}
		if h == "n2" {
			t.Errorf("%s is still at n2, which left", name)
		}
	}

	// Alone: everything runs on the node's own worker.
	c.setMembers(member("n1", 1024))
	st.version("solo", lamina.LatestVersion, "r")
	for range 3 {
		if _, err := invoke(m, "solo", "", "{}"); err != nil {
			t.Fatal(err)
		}
	}
	if ran := c.ran("solo"); ran["n1"] != 3 || len(ran) != 1 {
		t.Errorf("a node alone ran solo on %v", ran)
	}
}

// TestProvisionedSpread: a provisioned concurrency config's environments
// are split among the nodes by their budgets, each node's manager keeping
// its own worker's share; the split follows joins and leaves; the
// environments reported are the sum of every node's; invocations go first
// to the nodes with provisioned environments this manager is not using.
func TestProvisionedSpread(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	v1 := st.version("f", "1", "v1")
	st.provisioned = []*store.ProvisionedConcurrency{{Function: "f", Qualifier: "1", Requested: 7}}
	c := newTestCluster(t, st, member("n1", 1024), member("n2", 1024), member("n3", 1024))
	ctx := context.Background()
	apply := func() map[string]int {
		counts := map[string]int{}
		for id, m := range c.managers {
			m.provision(ctx, map[string]bool{})
			for _, p := range c.workers[id].takeProvisions() {
				if p.Config != "f:1" || p.Function != v1 {
					t.Errorf("%s was asked %+v", id, p)
				}
				if p.Count > 0 {
					counts[id] = p.Count
				}
			}
		}
		return counts
	}
	counts := apply()
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != 7 || len(counts) != 3 || min(counts["n1"], counts["n2"], counts["n3"]) != 2 {
		t.Errorf("7 provisioned environments on three equal nodes: %v, want 3, 2, 2", counts)
	}
	// Node n3 leaves: the two others keep them all; it joins again with
	// twice the memory.
	c.setMembers(member("n1", 1024), member("n2", 1024))
	if counts := apply(); counts["n1"]+counts["n2"] != 7 || counts["n3"] != 0 {
		t.Errorf("7 on n1 and n2 (n3 gone): %v", counts)
	}
	c.setMembers(member("n1", 1024), member("n2", 1024), member("n3", 2048))
	counts = apply()
	if counts["n1"]+counts["n2"]+counts["n3"] != 7 || counts["n3"] < 3 || counts["n3"] > 4 {
		t.Errorf("7 on nodes of 1, 1 and 2 GB: %v, want 3 or 4 on n3", counts)
	}

	// Reported: the sum of every node's.
	for id, w := range c.workers {
		w.state = WorkerState{Provisioned: map[string]ProvisionedState{"f:1": {Version: "1", RevisionId: "v1", Allocated: counts[id], Available: 1}}}
	}
	c.workers["n2"].stateErr = errors.New("unreachable")
	if a, b := c.managers["n1"].Provisioned(ctx, "f", "1"); a != counts["n1"]+counts["n3"] || b != 2 {
		t.Errorf("Provisioned(f, 1) = %d, %d with n2 not answering; want %d, 2", a, b, counts["n1"]+counts["n3"])
	}

	// Invocations of version 1 go to the nodes' provisioned environments
	// first: 7 at once run where the 7 are.
	m := c.managers["n2"]
	var wg sync.WaitGroup
	for range 7 {
		wg.Go(func() {
			if _, err := m.Invoke(ctx, &lamina.Invocation{RequestID: "p", Function: v1, Payload: []byte("hold")}); err != nil {
				t.Error(err)
			}
		})
	}
	c.waitStarted(t, 7)
	if ran := c.ran("f"); !maps.Equal(ran, counts) {
		t.Errorf("7 invocations at once of a version with 7 provisioned environments ran %v, want %v", ran, counts)
	}
	c.releaseAll()
	wg.Wait()
}

// TestSplitByBudget: shares follow the budgets, never more on a node than
// its budget holds while another has room.
func TestSplitByBudget(t *testing.T) {
	t.Parallel()
	nodes := []*node{{id: "a", budgetMB: 1024}, {id: "b", budgetMB: 1024}, {id: "c", budgetMB: 256}}
	for _, c := range []struct {
		count, mb int
		want      map[string]int
	}{
		{0, 128, map[string]int{}},
		{1, 128, map[string]int{"a": 1}},
		{9, 128, map[string]int{"a": 4, "b": 4, "c": 1}},
		{9, 512, map[string]int{"a": 2 + 5, "b": 2}},      // c holds none of 512; the rest beyond a and b stays with the home
		{18, 128, map[string]int{"a": 8, "b": 8, "c": 2}}, // all full
	} {
		if got := splitByBudget(c.count, c.mb, nodes); !maps.Equal(got, c.want) {
			t.Errorf("split %d of %d MB: %v, want %v", c.count, c.mb, got, c.want)
		}
	}
}
