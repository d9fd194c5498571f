package logs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lamina-project/lamina/internal/store"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// While storage is unavailable, appended events wait in memory, up to
// maxPending bytes (later ones are dropped); once it heals they are stored.
func TestEventsWaitForStorageWithinABound(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	defer ns.Shutdown()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	health := store.NewHealth(nil)
	s, err := Open(ctx, js, Options{Health: health})
	if err != nil {
		t.Fatal(err)
	}
	go s.Run(ctx)

	health.Fail(errors.New("the disk is full"), true, false)
	line := strings.Repeat("x", 1000)
	total := 2 * maxPending / (len(line) + 32)
	for range total {
		s.Append("fn", Event{Timestamp: time.Now().UnixMilli(), Stream: "s", Message: line})
	}
	s.mu.Lock()
	size, dropped := s.size, s.dropped
	s.mu.Unlock()
	if size > maxPending || dropped == 0 {
		t.Fatalf("pending %d bytes (bound %d), %d dropped", size, maxPending, dropped)
	}
	time.Sleep(2 * flushInterval)
	if page, err := s.Read(ctx, Query{Group: "fn"}); err != nil || len(page.Events) != 0 {
		t.Fatalf("events stored while storage was unavailable: %d, %v", len(page.Events), err)
	}

	health.Recover()
	want := total - dropped
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, err := s.Read(ctx, Query{Group: "fn", Limit: total})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events stored after healing, want the %d that waited", len(page.Events), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A function's default log group keeps the subject it always had; any
// other group name, whatever characters it has, gets one of its own that
// maps back to it.
func TestGroupSubjects(t *testing.T) {
	if got := subject("/aws/lambda/my-fn_1"); got != "lamina.logs.my-fn_1" {
		t.Errorf("subject of a function's group = %q", got)
	}
	for _, group := range []string{"/aws/lambda/my-fn_1", "/custom/a.b#c", "/aws/lambda/with.dot", "g", "/aws/lambda/"} {
		subj := subject(group)
		if strings.Count(subj, ".") > 3 || strings.ContainsAny(subj, " *>") {
			t.Errorf("subject(%q) = %q is not one token after the prefix", group, subj)
		}
		if back, ok := groupOf(subj); !ok || back != group {
			t.Errorf("groupOf(subject(%q)) = %q, %v", group, back, ok)
		}
	}
}
