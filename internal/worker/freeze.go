package worker

import (
	"log/slog"
	"sync"
	"time"
)

// Idle environments are frozen, as Lambda freezes them: between invocations
// nothing a function left running (threads, child processes, a process
// that polls the Runtime API itself) makes progress, and the sandbox uses no
// CPU. An idle environment is frozen freezeAfterAsk after its runtime waits
// in GET /next for the next event, so that after the thaw the event goes
// straight to that waiting request, or freezeGrace after it went idle if the
// runtime does not ask. It is thawed for the next invocation: once the event is handed to
// the runtime's waiting /next, so that the runtime finds it as it resumes,
// or before, if the runtime was frozen without asking. Destroying a frozen
// environment needs no thaw: the sandbox kills frozen processes.

// freezeGrace is how long an idle environment whose runtime has not asked
// for the next event yet runs on before it is frozen all the same.
const freezeGrace = 100 * time.Millisecond

// freezeAfterAsk is how long an idle environment whose runtime waits for the
// next event runs on before it is frozen. Under load the next invocation
// comes sooner, and the environment is neither frozen nor thawed: freezing
// at once cost 10% of the server's CPU at concurrency 32 and 4–10% of the
// warm latency (BENCHMARKS.md, "What would move the numbers"). What a
// function left running gets at most this long after each invocation.
const freezeAfterAsk = 2 * time.Millisecond

// freezer tracks whether an environment may be frozen, and is.
type freezer struct {
	mu     sync.Mutex
	idle   bool // in the worker's idle pool
	polls  int  // GET /next requests waiting
	frozen bool
	timer  *time.Timer  // freezes an idle environment after freezeGrace
	log    *slog.Logger // nil means slog.Default()
}

func (f *freezer) logger() *slog.Logger {
	if f.log == nil {
		return slog.Default()
	}
	return f.log
}

// parkIdle is called as env goes to the idle pool, before any invocation
// can take it from there. It freezes env soon: freezeAfterAsk from now if
// its runtime already waits for the next event, else freezeAfterAsk after
// the runtime asks, or after freezeGrace, whichever comes first.
func (env *environment) parkIdle() {
	f := &env.freezer
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idle = true
	delay := freezeGrace
	if f.polls > 0 {
		delay = freezeAfterAsk
	}
	if f.timer == nil {
		f.timer = time.AfterFunc(delay, env.freezeIfIdle)
	} else {
		f.timer.Reset(delay)
	}
}

// pollStarted is called when the runtime (or anything in the sandbox) asks
// for the next event; an idle environment is frozen freezeAfterAsk later.
func (env *environment) pollStarted() {
	f := &env.freezer
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	if f.idle && !f.frozen {
		f.timer.Reset(freezeAfterAsk)
	}
}

// pollEnded is called when a GET /next request ends.
func (env *environment) pollEnded() {
	f := &env.freezer
	f.mu.Lock()
	f.polls--
	f.mu.Unlock()
}

func (env *environment) freezeIfIdle() {
	f := &env.freezer
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.idle {
		env.freezeLocked()
	}
}

// freezeLocked freezes env unless it is frozen or destroyed. The caller
// holds f.mu.
func (env *environment) freezeLocked() {
	f := &env.freezer
	if f.frozen {
		return
	}
	select {
	case <-env.destroyed:
		return
	default:
	}
	f.timer.Stop()
	if err := env.sb.Freeze(); err != nil {
		select {
		case <-env.destroyed: // destroyed meanwhile
		default:
			f.logger().Warn("cannot freeze an idle environment", "environment", env.id, "err", err)
		}
		return
	}
	f.frozen = true
}

// unpark is called before env is handed an invocation. A frozen env whose
// runtime waits in GET /next stays frozen until the event is handed over:
// thawLater says so, and the caller then calls thaw. Thawed after the event
// is on its way, the runtime finds it as it resumes, instead of going back
// to sleep until it arrives. Any other frozen env is thawed now. An error
// means env cannot run the invocation.
func (env *environment) unpark() (thawLater bool, err error) {
	f := &env.freezer
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idle = false
	if f.timer != nil {
		f.timer.Stop()
	}
	if f.frozen && f.polls > 0 {
		return true, nil
	}
	return false, env.thawLocked()
}

// thaw thaws env if it is frozen.
func (env *environment) thaw() error {
	f := &env.freezer
	f.mu.Lock()
	defer f.mu.Unlock()
	return env.thawLocked()
}

func (env *environment) thawLocked() error {
	f := &env.freezer
	if !f.frozen {
		return nil
	}
	f.frozen = false
	err := env.sb.Thaw()
	if err != nil {
		f.logger().Warn("cannot thaw an environment: it is stopped", "environment", env.id, "err", err)
	}
	return err
}
