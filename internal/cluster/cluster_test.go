package cluster

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Fast timings for the tests: the logic is the same at any scale.
const (
	testInterval = 50 * time.Millisecond
	testTTL      = 400 * time.Millisecond
	// waitLimit bounds how long a test waits for what must happen; no
	// assertion depends on it.
	waitLimit = 10 * time.Second
)

// newJetStream starts an in-process NATS server with JetStream and returns
// a JetStream context on it; both end with the test.
func newJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() })
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// join makes node id a member with the test timings; it leaves when the
// test ends unless the test closed it.
func join(t *testing.T, js jetstream.JetStream, id string, usage func() Usage) *Membership {
	t.Helper()
	m, err := Join(context.Background(), js, Config{
		Self:     Node{ID: id, APIEndpoint: "http://" + id + ":9000", MemoryBudgetMB: 1024},
		Usage:    usage,
		Interval: testInterval, TTL: testTTL,
	})
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			m.Close(context.Background())
		}
	})
	return m
}

func ids(nodes []Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.ID)
	}
	return out
}

// waitMembers waits until m sees exactly want.
func waitMembers(t *testing.T, m *Membership, want ...string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		got := ids(m.Members())
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s sees members %v, want %v", m.Self().ID, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nextEvent returns the next event of ch.
func nextEvent(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(waitLimit):
		t.Fatal("no membership event")
	}
	return Event{}
}

// crash stops m's heartbeats without removing its entry, as a killed
// process would.
func crash(m *Membership) {
	m.stop()
	m.done.Wait()
}

func TestMembersJoinAndLeave(t *testing.T) {
	js := newJetStream(t)
	a := join(t, js, "a", nil)
	events := a.Watch(t.Context())
	b := join(t, js, "b", nil)
	c := join(t, js, "c", nil)
	for _, m := range []*Membership{a, b, c} {
		waitMembers(t, m, "a", "b", "c")
	}
	for _, want := range []string{"b", "c"} {
		if ev := nextEvent(t, events); ev.Kind != Joined || ev.Node.ID != want {
			t.Fatalf("event %v %s, want joined %s", ev.Kind, ev.Node.ID, want)
		}
	}

	// A clean stop is seen at once, not after the TTL: the entry is deleted.
	start := time.Now()
	b.Close(context.Background())
	if ev := nextEvent(t, events); ev.Kind != Left || ev.Node.ID != "b" {
		t.Fatalf("event %v %s, want left b", ev.Kind, ev.Node.ID)
	}
	if waited := time.Since(start); waited >= testTTL {
		t.Errorf("a clean stop took %v to be seen; the entry's deletion should tell at once (TTL %v)", waited, testTTL)
	}
	waitMembers(t, a, "a", "c")
	waitMembers(t, c, "a", "c")
}

func TestCrashedNodeExpires(t *testing.T) {
	js := newJetStream(t)
	a := join(t, js, "a", nil)
	b := join(t, js, "b", nil)
	waitMembers(t, a, "a", "b")
	events := a.Watch(t.Context())
	crash(b)
	if ev := nextEvent(t, events); ev.Kind != Left || ev.Node.ID != "b" {
		t.Fatalf("event %v %s, want left b", ev.Kind, ev.Node.ID)
	}
	waitMembers(t, a, "a")

	// The crashed node comes back under the same name: its old entry may
	// still be there, and is no reason to refuse it.
	join(t, js, "b", nil)
	if ev := nextEvent(t, events); ev.Kind != Joined || ev.Node.ID != "b" {
		t.Fatalf("event %v %s, want joined b", ev.Kind, ev.Node.ID)
	}
	waitMembers(t, a, "a", "b")
}

func TestRestartRightAfterCrash(t *testing.T) {
	js := newJetStream(t)
	a := join(t, js, "a", nil)
	b := join(t, js, "b", nil)
	waitMembers(t, a, "a", "b")
	crash(b)
	// At once, while b's last heartbeat is fresh.
	b2 := join(t, js, "b", nil)
	if b2.Self().Instance == b.Self().Instance {
		t.Fatal("a new process got the old instance ID")
	}
	waitMembers(t, a, "a", "b")
	deadline := time.Now().Add(waitLimit)
	for {
		ms := a.Members()
		if ms[1].Instance == b2.Self().Instance {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a still sees b's old instance")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDuplicateNameRefused(t *testing.T) {
	js := newJetStream(t)
	join(t, js, "a", nil)
	_, err := Join(context.Background(), js, Config{Self: Node{ID: "a"}, Interval: testInterval, TTL: testTTL})
	if !errors.Is(err, ErrDuplicateNode) {
		t.Fatalf("second node named a: err %v, want ErrDuplicateNode", err)
	}
}

func TestHeartbeatsCarryUsage(t *testing.T) {
	js := newJetStream(t)
	var inUse atomic.Int64
	a := join(t, js, "a", func() Usage { return Usage{MemoryInUseMB: int(inUse.Load()), Environments: int(inUse.Load() / 128)} })
	b := join(t, js, "b", nil)
	inUse.Store(512)
	deadline := time.Now().Add(waitLimit)
	for {
		ms := b.Members()
		if len(ms) == 2 && ms[0].MemoryInUseMB == 512 && ms[0].Environments == 4 {
			if ms[0].MemoryBudgetMB != 1024 || ms[0].APIEndpoint != "http://a:9000" || ms[0].Heartbeat.IsZero() {
				t.Fatalf("b sees a as %+v", ms[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b sees %+v, want a with 512 MB in use in 4 environments", ms)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if self := a.Self(); self.MemoryInUseMB != 512 || self.Heartbeat.IsZero() {
		t.Fatalf("a's Self is %+v", self)
	}
}

func TestCheckNodeID(t *testing.T) {
	for _, id := range []string{"n1", "node-2", "A_b"} {
		if err := CheckNodeID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range []string{"", "a.b", "a b", "a*", "a>", string(make([]byte, 65))} {
		if CheckNodeID(id) == nil {
			t.Errorf("%q accepted", id)
		}
	}
	if got := NodeSubject("n1"); got != "lamina.node.n1" {
		t.Errorf("NodeSubject: %q", got)
	}
}

func TestStalledWatchRestarts(t *testing.T) {
	js := newJetStream(t)
	a := join(t, js, "a", nil)
	join(t, js, "b", nil)
	waitMembers(t, a, "a", "b")
	// The watch delivers nothing more, as one does that stalled.
	a.mu.Lock()
	_ = a.watch.Stop()
	a.mu.Unlock()
	join(t, js, "c", nil)
	waitMembers(t, a, "a", "b", "c")
}

func TestLostBucketIsMadeAgain(t *testing.T) {
	js := newJetStream(t)
	a := join(t, js, "a", nil)
	join(t, js, "b", nil)
	waitMembers(t, a, "a", "b")
	// As a single server's JetStream reopened to heal loses streams kept in
	// memory.
	if err := js.DeleteKeyValue(t.Context(), Bucket); err != nil {
		t.Fatal(err)
	}
	// The next heartbeats make it again.
	deadline := time.Now().Add(waitLimit)
	for {
		_, err := js.KeyValue(t.Context(), Bucket)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bucket was not made again: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitMembers(t, a, "a", "b")
	join(t, js, "c", nil)
	waitMembers(t, a, "a", "b", "c")
}
