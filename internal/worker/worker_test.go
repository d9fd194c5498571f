package worker

import (
	"sync"
	"testing"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// TestRetireStale: the environments of a function version the store no
// longer holds (another RevisionId, or deleted) stop: idle ones when the
// change is reported, busy ones when they are released. Others stay.
func TestRetireStale(t *testing.T) {
	t.Parallel()
	w := New(Config{MemoryBudgetMB: 1024})
	var mu sync.Mutex
	revisions := map[string]string{"f/$LATEST": "r1", "f/1": "v1", "g/$LATEST": "g1"}
	w.revisionOf = func(function, version string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		rev, ok := revisions[function+"/"+version]
		if !ok {
			return "", store.ErrNotFound
		}
		return rev, nil
	}
	setRevision := func(key, rev string) {
		mu.Lock()
		defer mu.Unlock()
		if rev == "" {
			delete(revisions, key)
		} else {
			revisions[key] = rev
		}
	}
	// newEnv starts an environment of a function version, busy.
	newEnv := func(function, version, revision string) (*environment, *fakeSandbox) {
		t.Helper()
		sb := newFakeSandbox(t)
		fn := &lamina.Function{Configuration: lamina.FunctionConfiguration{FunctionName: function, Version: version, RevisionId: revision, MemorySize: 128}}
		env := &environment{key: keyOf(fn), fn: fn, memoryMB: 128, sb: sb, destroyed: make(chan struct{})}
		if err := w.reserve(128); err != nil {
			t.Fatal(err)
		}
		w.track(env)
		return env, sb
	}
	requireStopped := func(what string, sb *fakeSandbox, stopped bool) {
		t.Helper()
		w.destroying.Wait()
		if sb.destroyed.Load() != stopped {
			t.Errorf("%s: stopped %v, want %v", what, sb.destroyed.Load(), stopped)
		}
	}

	idle, idleSB := newEnv("f", lamina.LatestVersion, "r1")
	w.release(idle)
	busy, busySB := newEnv("f", lamina.LatestVersion, "r1")
	v1, v1SB := newEnv("f", "1", "v1")
	w.release(v1)
	other, otherSB := newEnv("g", lamina.LatestVersion, "g1")
	w.release(other)

	// New code or configuration of f's $LATEST.
	setRevision("f/$LATEST", "r2")
	w.RetireStale("f", lamina.LatestVersion)
	requireStopped("an idle environment of the old revision", idleSB, true)
	requireStopped("a busy environment of the old revision, before its invocation ends", busySB, false)
	requireStopped("an environment of version 1", v1SB, false)
	requireStopped("an environment of another function", otherSB, false)
	w.release(busy)
	requireStopped("a busy environment of the old revision, after its invocation", busySB, true)
	current, currentSB := newEnv("f", lamina.LatestVersion, "r2")
	w.release(current)
	w.RetireStale("f", lamina.LatestVersion) // reported twice: no harm
	requireStopped("an environment of the current revision", currentSB, false)

	// Version 1 deleted, then the whole function.
	setRevision("f/1", "")
	w.RetireStale("f", "1")
	requireStopped("an environment of a deleted version", v1SB, true)
	setRevision("f/$LATEST", "")
	w.RetireStale("f", lamina.LatestVersion)
	requireStopped("an environment of a deleted function", currentSB, true)
	requireStopped("an environment of another function", otherSB, false)

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.memoryUsed != 128 || len(w.live) != 1 {
		t.Errorf("after the changes the worker accounts %d MB in %d environments, want 128 MB in 1 (g's)", w.memoryUsed, len(w.live))
	}
}
