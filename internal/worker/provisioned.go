package worker

import (
	"context"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/manager"
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

// Provision keeps p.Count environments of p.Function initialised ahead of
// invocations for the config p.Config, as manager.Worker promises. A new
// function (another version, or a changed configuration) replaces the
// environments; Count 0 gives them up (they become ordinary environments
// and expire when idle).
func (w *Worker) Provision(ctx context.Context, p manager.Provision) error {
	fn, n := p.Function, p.Count
	if fn == nil {
		n = 0
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return lamina.ErrService("the worker is shutting down")
	}
	set := w.provisioned[p.Config]
	if set == nil {
		if n == 0 {
			w.mu.Unlock()
			return nil
		}
		set = &provisionSet{envs: map[*environment]bool{}}
		w.provisioned[p.Config] = set
	}
	if set.fn != nil && (fn == nil || keyOf(set.fn) != keyOf(fn)) {
		w.demote(set, len(set.envs))
	}
	set.fn, set.want = fn, n
	w.mu.Unlock()
	w.reconcile(ctx, p.Config)
	return nil
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

// State reports the worker's memory (how much of it busy and how much
// evictable), its environments and, for each provisioned concurrency
// config, how many environments of the version it names now are initialised
// (allocated) and idle (available); environments of a version the config
// named before do not count.
func (w *Worker) State(context.Context) (manager.WorkerState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := manager.WorkerState{
		MemoryBudgetMB: w.cfg.MemoryBudgetMB,
		MemoryUsedMB:   w.memoryUsed,
		BusyMB:         w.memoryUsed,
		Environments:   len(w.live),
	}
	for _, list := range w.idle {
		st.Idle += len(list)
		for _, env := range list {
			st.BusyMB -= env.memoryMB
			if env.provisioned == "" {
				st.EvictableMB += env.memoryMB
			}
		}
	}
	for key, set := range w.provisioned {
		if set.fn == nil {
			continue
		}
		ps := manager.ProvisionedState{Version: set.fn.Configuration.Version, RevisionId: set.fn.Configuration.RevisionId}
		for env := range set.envs {
			if env.key != keyOf(set.fn) {
				continue
			}
			ps.Allocated++
			if env.idle {
				ps.Available++
			}
		}
		if st.Provisioned == nil {
			st.Provisioned = map[string]manager.ProvisionedState{}
		}
		st.Provisioned[key] = ps
	}
	return st, nil
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
	w.cfg.Logs.Append(fn.Configuration.LogGroupName(), rec.events...)
	if init.failure != nil {
		w.log.Warn("provisioned environment failed to initialise", "config", key, "error_type", init.failure.errorType)
		w.retire(env)
		done(nil)
		return
	}
	done(env)
	w.release(env)
}
