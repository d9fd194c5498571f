package server

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
	"golang.org/x/sys/unix"
)

// smallDisk mounts a tmpfs of sizeMB under the test's temporary directory
// and returns its path; it is unmounted when the test ends. It skips the
// test unless it runs as root.
func smallDisk(t *testing.T, sizeMB int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small disk needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(sizeMB)+"m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// fill writes a file into dir until the filesystem has about leave bytes
// free, and returns its path.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, free, err := diskSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, max(0, free-leave)); err != nil && !errors.Is(err, unix.ENOSPC) {
		t.Fatal(err)
	}
	return path
}

type testNode struct {
	nats   *embeddedNATS
	store  *store.Store
	health *store.Health
	healer *healer
}

// startTestNode starts JetStream (maxStore bytes) and the store on dataDir.
func startTestNode(t *testing.T, dataDir string, maxStore int64) *testNode {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.Default()
	}
	health := store.NewHealth(log)
	n, err := startNATS(natsOptions{storeDir: filepath.Join(dataDir, "nats"), maxStore: maxStore}, health, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.stop)
	st, err := store.Open(context.Background(), n.conn, store.Options{Health: health})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &testNode{nats: n, store: st, health: health, healer: &healer{dataDir: dataDir, nats: n, store: st, health: health, log: log}}
}

func function(name string) *lamina.Function {
	return &lamina.Function{Configuration: lamina.FunctionConfiguration{FunctionName: name}, CodeDigest: name}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// A full disk makes JetStream fail a write and then refuse every write to
// that stream until it is reopened. The store reports it as storage full;
// once space is freed, the healer reopens JetStream's streams without a
// restart, and what was stored before is all there.
func TestHealAfterTheDiskFilled(t *testing.T) {
	ctx := context.Background()
	dir := smallDisk(t, 64)
	n := startTestNode(t, dir, 48<<20)
	before := random(256 << 10)
	if err := n.store.PutCode(ctx, "before", before); err != nil {
		t.Fatal(err)
	}
	if err := n.store.CreateFunction(ctx, function("before")); err != nil {
		t.Fatal(err)
	}

	filler := fill(t, dir, 1<<20)
	err := n.store.PutCode(ctx, "big", random(4<<20))
	var unavailable *store.UnavailableError
	if !errors.As(err, &unavailable) || !unavailable.Full {
		t.Fatalf("PutCode on a full disk: %v, want storage full", err)
	}
	if !n.health.NeedsReopen() {
		t.Fatalf("the write error was not seen as one that needs the streams reopened")
	}
	if err := n.store.CreateFunction(ctx, function("during")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("CreateFunction while storage is unavailable: %v", err)
	}
	if f, err := n.store.GetFunction(ctx, "before"); err != nil || f.CodeDigest != "before" {
		t.Errorf("reads from memory while storage is unavailable: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := n.healer.heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if err := n.store.CreateFunction(ctx, function("after")); err != nil {
		t.Fatalf("CreateFunction after healing: %v", err)
	}
	if err := n.store.PutCode(ctx, "big", random(4<<20)); err != nil {
		t.Fatalf("PutCode after healing: %v", err)
	}
	if _, err := n.store.DeleteFunction(ctx, "after"); err != nil {
		t.Fatalf("DeleteFunction after healing: %v", err)
	}
	got, err := n.store.ReadCode(ctx, "before")
	if err != nil || string(got) != string(before) {
		t.Errorf("code stored before the disk filled: %d bytes, %v", len(got), err)
	}
	if _, err := n.store.GetFunction(ctx, "during"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a function refused while storage was full exists: %v", err)
	}
	// The watches were re-established: a write by another client of the
	// bucket is followed.
	other, err := store.Open(ctx, n.nats.conn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.CreateFunction(ctx, function("elsewhere")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watch to follow a write after healing", func() bool {
		fs, _ := n.store.ListFunctions(ctx)
		return len(fs) == 2
	})
}

// The healer refuses writes before the disk is full, and takes them again
// once space is freed, by itself.
func TestHealerWatchesFreeSpace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := smallDisk(t, 64)
	n := startTestNode(t, dir, 48<<20)
	go n.healer.run(ctx)
	filler := fill(t, dir, 2<<20)
	waitFor(t, "writes to be refused on a nearly full disk", func() bool { return n.health.Err() != nil })
	if err := n.store.CreateFunction(ctx, function("during")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("CreateFunction on a nearly full disk: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "storage to heal once space is freed", func() bool { return n.health.Err() == nil })
	if err := n.store.CreateFunction(ctx, function("after")); err != nil {
		t.Fatalf("CreateFunction after space was freed: %v", err)
	}
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A write JetStream did not answer makes the healer probe storage: one that
// takes a test write stays available; writes that keep going unanswered
// fail it, so that it is reopened.
func TestHealerProbesUnansweredWrites(t *testing.T) {
	ctx := context.Background()
	n := startTestNode(t, t.TempDir(), 0)
	for i := range maxSuspects - 1 {
		n.healer.probeSuspect(ctx)
		if err := n.health.Err(); err != nil {
			t.Fatalf("after %d unanswered writes and test writes that went through: %v", i+1, err)
		}
	}
	n.healer.probeSuspect(ctx)
	if n.health.Err() == nil || !n.health.NeedsReopen() {
		t.Fatalf("%d unanswered writes within %s left storage available", maxSuspects, suspectWindow)
	}
	if err := n.healer.heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	n.healer.probeSuspect(ctx)
	if err := n.health.Err(); err != nil {
		t.Fatalf("an unanswered write after healing: %v", err)
	}
}
