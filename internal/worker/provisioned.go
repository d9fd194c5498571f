package worker

import (
	"context"
	"time"

	"github.com/lamina-project/lamina"
)

// Provisioned concurrency: environments started and initialised ahead of
// invocations, kept out of idle expiry and eviction, replaced when they fail.

// provisionSet is one provisioned concurrency config's environments.
type provisionSet struct {
	fn       *lamina.Function
	want     int
	envs     map[*environment]bool // initialised and live
	starting int
}

// Provision keeps n environments of fn initialised ahead of invocations,
// under key (the config's function and qualifier). A new fn (another
// version, or a changed configuration) replaces the environments; n = 0
// gives them up (they become ordinary environments and expire when idle).
func (w *Worker) Provision(ctx context.Context, key string, fn *lamina.Function, n int) {
	w.mu.Lock()
	set := w.provisioned[key]
	if set == nil {
		if n == 0 {
			w.mu.Unlock()
			return
		}
		set = &provisionSet{envs: map[*environment]bool{}}
		w.provisioned[key] = set
	}
	if set.fn != nil && (fn == nil || keyOf(set.fn) != keyOf(fn)) {
		w.demote(set, len(set.envs))
	}
	set.fn, set.want = fn, n
	w.mu.Unlock()
	w.reconcile(ctx, key)
}

// demote turns up to n of a set's idle environments into on-demand ones.
// The caller holds w.mu.
func (w *Worker) demote(set *provisionSet, n int) {
	for env := range set.envs {
		if n == 0 {
			return
		}
		if env.idle {
			env.provisioned = ""
			delete(set.envs, env)
			n--
		}
	}
}

// Provisioned returns how many environments of key running fn (the version
// the config names now) are initialised (allocated), and how many of them
// are idle (available). Environments of a version the config named before do
// not count.
func (w *Worker) Provisioned(key string, fn *lamina.Function) (allocated, available int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	set := w.provisioned[key]
	if set == nil || fn == nil {
		return 0, 0
	}
	for env := range set.envs {
		if env.key != keyOf(fn) {
			continue
		}
		allocated++
		if env.idle {
			available++
		}
	}
	return allocated, available
}

// reconcileProvisioned brings every set to its count.
func (w *Worker) reconcileProvisioned(ctx context.Context) {
	w.mu.Lock()
	keys := make([]string, 0, len(w.provisioned))
	for key := range w.provisioned {
		keys = append(keys, key)
	}
	w.mu.Unlock()
	for _, key := range keys {
		w.reconcile(ctx, key)
	}
}

// reconcile starts the environments a set lacks and gives up the ones it
// has too many of.
func (w *Worker) reconcile(ctx context.Context, key string) {
	w.mu.Lock()
	set := w.provisioned[key]
	if set == nil || w.closed {
		w.mu.Unlock()
		return
	}
	if extra := len(set.envs) + set.starting - set.want; extra > 0 {
		w.demote(set, extra)
	}
	if set.want == 0 && len(set.envs) == 0 && set.starting == 0 {
		delete(w.provisioned, key)
	}
	missing := set.want - len(set.envs) - set.starting
	set.starting += max(missing, 0)
	fn := set.fn
	w.mu.Unlock()
	for range missing {
		go w.startProvisioned(ctx, key, set, fn)
	}
}

// startProvisioned starts and initialises one environment of set. A
// failure is logged; the next reconciliation tries again.
func (w *Worker) startProvisioned(ctx context.Context, key string, set *provisionSet, fn *lamina.Function) {
	done := func(env *environment) {
		w.mu.Lock()
		set.starting--
		if env != nil && set.fn != nil && keyOf(set.fn) == keyOf(fn) {
			set.envs[env] = true
		} else if env != nil {
			env.provisioned = "" // the config changed meanwhile
		}
		w.mu.Unlock()
	}
	if w.stale(keyOf(fn)) { // the version is gone; its config goes next
		done(nil)
		return
	}
	if err := w.reserve(fn.Configuration.MemorySize); err != nil {
		w.log.Warn("no memory for a provisioned environment", "config", key, "err", err)
		done(nil)
		return
	}
	started := time.Now()
	env, err := w.start(ctx, fn, key)
	if err != nil {
		w.unreserve(fn.Configuration.MemorySize)
		w.log.Warn("provisioned environment failed to start", "config", key, "err", err)
		done(nil)
		return
	}
	w.track(env)
	init := env.waitInit(started, w.cfg.InitTimeout)
	rec := &record{w: w, req: &lamina.Invocation{Function: fn}}
	rec.initLog(env, init)
	w.cfg.Logs.Append(fn.Configuration.FunctionName, rec.events...)
	if init.failure != nil {
		w.log.Warn("provisioned environment failed to initialise", "config", key, "error_type", init.failure.errorType)
		w.retire(env)
		done(nil)
		return
	}
	done(env)
	w.release(env)
}
