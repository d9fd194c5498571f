package server

import (
	"path/filepath"
	"strings"
	"testing"
)

// The store gets half of the data filesystem, and its streams their shares
// of that; below the minimum the node refuses to start, saying what it
// needs.
func TestSizeStoreToTheDisk(t *testing.T) {
	dir := smallDisk(t, 256)
	limits, err := sizeStore(dir, filepath.Join(dir, "nats"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if limits.Max != 128<<20 {
		t.Errorf("store on a 256 MB filesystem: %d MB, want 128", limits.Max>>20)
	}
	if sum := limits.Code + limits.Logs + limits.Async + limits.Failures + limits.Queues + limits.Objects + limits.Streams; sum >= limits.Max {
		t.Errorf("the streams' shares (%d MB) leave nothing for the buckets (%d MB)", sum>>20, limits.Max>>20)
	}
	if limits, err := sizeStore(dir, filepath.Join(dir, "nats"), 200); err != nil || limits.Max != 200<<20 {
		t.Errorf("--store-max 200: %+v, %v", limits, err)
	}

	fill(t, dir, 100<<20)
	if _, err := sizeStore(dir, filepath.Join(dir, "nats"), 0); err == nil || !strings.Contains(err.Error(), "needs at least 96 MB") {
		t.Errorf("store with 100 MB free: %v, want a refusal saying what it needs", err)
	}
	small := smallDisk(t, 128)
	if _, err := sizeStore(small, filepath.Join(small, "nats"), 0); err == nil {
		t.Error("a 128 MB filesystem was accepted")
	}
	if _, err := sizeStore(small, filepath.Join(small, "nats"), 50); err == nil {
		t.Error("--store-max below the minimum was accepted")
	}
}
