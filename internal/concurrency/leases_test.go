package concurrency

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/manager"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// waitLimit bounds how long a test waits for what must happen; no
// assertion depends on it.
const waitLimit = 10 * time.Second

// testCluster is the leases of several nodes on one in-process JetStream;
// the test says which nodes are live.
type testCluster struct {
	js jetstream.JetStream
	nc *nats.Conn

	mu    sync.Mutex
	live  map[string]string // instance by node
	fresh map[string]bool
	nodes map[string]*Leases
}

func newTestCluster(t *testing.T, nodes ...string) *testCluster {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(waitLimit) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	t.Cleanup(func() { cancel(); running.Wait(); nc.Close(); ns.Shutdown(); ns.WaitForShutdown() })
	c := &testCluster{js: js, nc: nc, live: map[string]string{}, fresh: map[string]bool{}, nodes: map[string]*Leases{}}
	for _, id := range nodes {
		c.live[id] = id + "-1"
		c.fresh[id] = true
		l, err := Open(ctx, js, nc, Config{Node: id, Instance: id + "-1", Members: c.members, Fresh: func() bool { return c.isFresh(id) },
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		l.window = 50 * time.Millisecond
		c.nodes[id] = l
		running.Go(func() { l.Run(ctx) })
	}
	return c
}

func (c *testCluster) members() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.live)
}

func (c *testCluster) isFresh(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fresh[id]
}

// recorded returns the shares each node holds of pool by its record.
func (c *testCluster) recorded(t *testing.T, p manager.Pool) map[string]int {
	t.Helper()
	kv, err := c.js.KeyValue(context.Background(), Bucket)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(context.Background(), keyOf(p))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return map[string]int{}
	}
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for node, h := range rec.Holders {
		out[node] = h.Shares
	}
	return out
}

// take takes a share of p through node, failing the test on an error.
func (c *testCluster) take(t *testing.T, node string, p manager.Pool, capacity int) (func(), bool) {
	t.Helper()
	release, ok, err := c.nodes[node].Take(context.Background(), p, capacity)
	if err != nil {
		t.Fatalf("%s: Take: %v", node, err)
	}
	return release, ok
}

// takeWithinSlack takes a share of p through node as take does, and when
// the node is throttled tries again for up to a trim window: the slack the
// design allows (a node that finds the pool taken asks the others to give
// back unused shares, and waits contendWait for them, which a busy machine
// may not meet; at the latest the others' trim gives them back).
func (c *testCluster) takeWithinSlack(t *testing.T, node string, p manager.Pool, capacity int) (func(), bool) {
	t.Helper()
	deadline := time.Now().Add(trimWindow + exhaustedFor)
	for {
		release, ok := c.take(t, node, p, capacity)
		if ok || time.Now().After(deadline) {
			return release, ok
		}
		time.Sleep(exhaustedFor)
	}
}

// eventually retries check until it returns true, and fails the test after
// waitLimit.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLeasesHoldTheLimit: a pool of 5 admits 5 invocations across three
// nodes and throttles the next; shares a node does not use go to the node
// that asks for them; every share comes back when the invocations end.
func TestLeasesHoldTheLimit(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, "n1", "n2", "n3")
	p := manager.Pool{Function: "f"}
	var releases []func()
	for _, node := range []string{"n1", "n1", "n1", "n2", "n3"} {
		release, ok := c.takeWithinSlack(t, node, p, 5)
		if !ok {
			t.Fatalf("%s was throttled with %d of 5 taken", node, len(releases))
		}
		releases = append(releases, release)
	}
	for _, node := range []string{"n1", "n2", "n3"} {
		if _, ok := c.take(t, node, p, 5); ok {
			t.Errorf("%s admitted a sixth invocation into a pool of 5 (record %v)", node, c.recorded(t, p))
		}
	}
	total := 0
	for _, n := range c.recorded(t, p) {
		total += n
	}
	if total != 5 {
		t.Errorf("the record holds %d shares (%v), want 5", total, c.recorded(t, p))
	}
	// Two of n1's invocations end: n3 gets their shares when it asks
	// (once its last look, which found the pool taken, is old enough).
	releases[0]()
	releases[1]()
	time.Sleep(2 * exhaustedFor)
	for range 2 {
		release, ok := c.takeWithinSlack(t, "n3", p, 5)
		if !ok {
			t.Fatalf("n3 throttled with 3 of 5 in use (record %v)", c.recorded(t, p))
		}
		releases = append(releases, release)
	}
	if _, ok := c.take(t, "n2", p, 5); ok {
		t.Error("n2 admitted a sixth invocation")
	}
	for _, r := range releases[2:] {
		r()
	}
	eventually(t, "every share given back", func() bool { return len(c.recorded(t, p)) == 0 })
}

// TestLeasesUnderLoad: many invocations at once through three nodes,
// more than the pool holds, never run more than its capacity, and every
// node gets its turn.
func TestLeasesUnderLoad(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, "n1", "n2", "n3")
	p := manager.Pool{}
	const capacity = 7
	var running, most atomic.Int64
	admitted := map[string]*atomic.Int64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, node := range []string{"n1", "n2", "n3"} {
		admitted[node] = new(atomic.Int64)
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					release, ok := c.take(t, node, p, capacity)
					if !ok {
						time.Sleep(time.Millisecond)
						continue
					}
					n := running.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					admitted[node].Add(1)
					time.Sleep(2 * time.Millisecond)
					running.Add(-1)
					release()
				}
			})
		}
	}
	eventually(t, "every node admitted 20 invocations", func() bool {
		return admitted["n1"].Load() >= 20 && admitted["n2"].Load() >= 20 && admitted["n3"].Load() >= 20
	})
	close(stop)
	wg.Wait()
	if most.Load() > capacity {
		t.Errorf("%d invocations ran at once in a pool of %d", most.Load(), capacity)
	}
	t.Logf("at most %d at once; admitted n1 %d, n2 %d, n3 %d", most.Load(), admitted["n1"].Load(), admitted["n2"].Load(), admitted["n3"].Load())
}

// TestLeasesMembership: the shares of a node that is no longer a member, or
// restarted, are free; a node whose heartbeats are not stored admits
// nothing; a lowered capacity is kept once the shares in use end.
func TestLeasesMembership(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, "n1", "n2")
	p := manager.Pool{Function: "g"}
	for range 3 {
		if _, ok := c.take(t, "n1", p, 3); !ok {
			t.Fatal("n1 throttled below the capacity")
		}
	}
	if _, ok := c.take(t, "n2", p, 3); ok {
		t.Fatal("n2 admitted a fourth")
	}
	// n1 drops out (its heartbeats expired): its shares are free.
	c.mu.Lock()
	delete(c.live, "n1")
	c.fresh["n1"] = false
	c.mu.Unlock()
	time.Sleep(2 * exhaustedFor)
	for range 3 {
		if _, ok := c.take(t, "n2", p, 3); !ok {
			t.Fatalf("n2 throttled with n1 counted out (record %v)", c.recorded(t, p))
		}
	}
	if rec := c.recorded(t, p); !maps.Equal(rec, map[string]int{"n2": 3}) {
		t.Errorf("record %v, want n2's 3 alone", rec)
	}
	_, _, err := c.nodes["n1"].Take(context.Background(), p, 3)
	var le *lamina.Error
	if !errors.As(err, &le) || le.Status != http.StatusInternalServerError {
		t.Errorf("a node whose heartbeats are not stored: %v, want a ServiceException", err)
	}

	// A lowered capacity: n2 keeps its 3 while they run; once they end it
	// admits no more than the new capacity.
	q := manager.Pool{Function: "h"}
	var releases []func()
	for range 3 {
		r, ok := c.take(t, "n2", q, 3)
		if !ok {
			t.Fatal("throttled below the capacity")
		}
		releases = append(releases, r)
	}
	if _, ok := c.take(t, "n2", q, 1); ok {
		t.Error("admitted a fourth with the capacity lowered to 1")
	}
	for _, r := range releases {
		r()
	}
	eventually(t, "the spare shares given back", func() bool { return c.recorded(t, q)["n2"] <= 1 })
	r, ok := c.take(t, "n2", q, 1)
	if !ok {
		t.Fatal("throttled with nothing running and a capacity of 1")
	}
	if _, ok := c.take(t, "n2", q, 1); ok {
		t.Error("admitted two with a capacity of 1")
	}
	r()
}

// TestLeasesReclaimAfter: the shares of a node counted out stay its own for
// ReclaimAfter, then are free; those of a node that restarted are free at
// once.
func TestLeasesReclaimAfter(t *testing.T) {
	t.Parallel()
	const grace = 400 * time.Millisecond
	c := newTestCluster(t, "n1", "n2")
	c.nodes["n2"].cfg.ReclaimAfter = grace
	p, q := manager.Pool{Function: "g"}, manager.Pool{Function: "h"}
	for _, pool := range []manager.Pool{p, q} {
		if _, ok := c.take(t, "n1", pool, 1); !ok {
			t.Fatal("n1 throttled below the capacity")
		}
	}
	// n1 is counted out: n2 is throttled until the grace has passed.
	c.mu.Lock()
	delete(c.live, "n1")
	c.mu.Unlock()
	out := time.Now()
	if _, ok := c.take(t, "n2", p, 1); ok {
		t.Fatal("n2 took the share of a node counted out at once")
	}
	eventually(t, "n2 takes the share of n1 after the grace", func() bool {
		_, ok := c.take(t, "n2", p, 1)
		return ok
	})
	if waited := time.Since(out); waited < grace {
		t.Errorf("n2 took the share of n1 %v after it was counted out, want at least %v", waited, grace)
	}
	// n1 runs again as another process: its earlier shares are free at once.
	c.mu.Lock()
	c.live["n1"] = "n1-2"
	c.mu.Unlock()
	if _, ok := c.take(t, "n2", q, 1); !ok {
		t.Errorf("n2 throttled although the holder restarted (record %v)", c.recorded(t, q))
	}
}
