package worker

import (
	"testing"
	"time"

	"github.com/lamina-project/lamina/internal/sandbox/sandboxtest"
)

func newFreezeEnv(t *testing.T) (*environment, *sandboxtest.Sandbox) {
	sb := newTestSandbox(t)
	return &environment{id: "env-test", sb: sb, destroyed: make(chan struct{})}, sb
}

// waitFrozen waits for a Freeze, up to 5 s.
func waitFrozen(t *testing.T, sb *sandboxtest.Sandbox, why string) {
	t.Helper()
	select {
	case <-sb.Froze():
	case <-time.After(5 * time.Second):
		t.Fatalf("not frozen %s; calls %v", why, sb.FreezeCalls())
	}
}

func TestFreezeWhenTheRuntimeAsksForTheNextEvent(t *testing.T) {
	env, sb := newFreezeEnv(t)
	env.pollStarted() // the first /next, during init: not idle, no freeze
	env.pollEnded()   // it got the first event
	env.parkIdle()    // the invocation ended
	asked := time.Now()
	env.pollStarted() // the runtime asks for the next: frozen freezeAfterAsk later
	waitFrozen(t, sb, "after the runtime asked")
	if waited := time.Since(asked); waited < freezeAfterAsk {
		t.Errorf("frozen %v after the runtime asked, before freezeAfterAsk (%v)", waited, freezeAfterAsk)
	}
	if got := sb.FreezeCalls(); len(got) != 1 || got[0] != "freeze" {
		t.Fatalf("calls %v, want one freeze as the runtime asked", got)
	}
	// The next invocation: the runtime waits in /next, so the thaw comes
	// once the event is handed over.
	thawLater, err := env.unpark()
	if err != nil || !thawLater {
		t.Fatalf("unpark = %v, %v; want a thaw after the hand-over", thawLater, err)
	}
	if got := sb.FreezeCalls(); len(got) != 1 {
		t.Fatalf("calls %v before the hand-over, want only the freeze", got)
	}
	env.pollEnded() // the event went to the runtime's /next
	if err := env.thaw(); err != nil {
		t.Fatal(err)
	}
	if got := sb.FreezeCalls(); len(got) != 2 || got[1] != "thaw" {
		t.Fatalf("calls %v, want freeze, thaw", got)
	}
	time.Sleep(2 * freezeGrace) // the grace timer was stopped
	if got := sb.FreezeCalls(); len(got) != 2 {
		t.Errorf("calls %v after unpark, want no more", got)
	}
}

func TestFreezeWhenTheRuntimeAskedFirst(t *testing.T) {
	env, sb := newFreezeEnv(t)
	env.pollStarted() // the runtime asks before the worker has the environment idle
	env.parkIdle()
	waitFrozen(t, sb, "with the runtime waiting when it went idle")
}

func TestFreezeAfterGraceWhenTheRuntimeDoesNotAsk(t *testing.T) {
	env, sb := newFreezeEnv(t)
	parked := time.Now()
	env.parkIdle()
	waitFrozen(t, sb, "after the grace period")
	if waited := time.Since(parked); waited < freezeGrace {
		t.Errorf("frozen %v after going idle, before the grace period of %v", waited, freezeGrace)
	}
	// No /next waits for the event: it is thawed before the hand-over.
	if thawLater, err := env.unpark(); err != nil || thawLater {
		t.Fatalf("unpark = %v, %v; want a thaw now", thawLater, err)
	}
	if got := sb.FreezeCalls(); len(got) != 2 || got[1] != "thaw" {
		t.Fatalf("calls %v, want freeze, thaw", got)
	}
}

func TestNoFreezeOnceTakenOrDestroyed(t *testing.T) {
	env, sb := newFreezeEnv(t)
	env.parkIdle()
	if _, err := env.unpark(); err != nil { // taken for an invocation before the grace ran out
		t.Fatal(err)
	}
	env.pollStarted() // not idle: no freeze
	env.pollEnded()
	env.parkIdle()
	close(env.destroyed)
	env.pollStarted()
	time.Sleep(2 * freezeGrace)
	if got := sb.FreezeCalls(); len(got) != 0 {
		t.Errorf("calls %v, want none: the environment was taken, then destroyed", got)
	}
}
