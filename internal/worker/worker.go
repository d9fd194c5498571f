// Package worker runs execution environments on one node: it creates them
// in sandboxes (cold starts), feeds them invocations through the Runtime API
// each one polls, keeps idle ones warm for reuse, scales out to one
// environment per concurrent invocation, and stops them when they fail, idle
// too long, or their memory is needed. It writes every invocation's log
// (START, the function's output, END, REPORT) and meters it.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/logs"
	"github.com/lamina-project/lamina/internal/manager"
	"github.com/lamina-project/lamina/internal/runtimes"
	"github.com/lamina-project/lamina/internal/sandbox"
	"github.com/lamina-project/lamina/internal/store"
)

// Store is what the worker reads from the store (*store.Store).
type Store interface {
	// ReadCode returns the code or layer archive with a digest.
	ReadCode(ctx context.Context, digest string) ([]byte, error)
	// ResolveFunction returns the record of a function version, or an error
	// wrapping store.ErrNotFound when it is gone.
	ResolveFunction(ctx context.Context, function, qualifier string) (*lamina.Function, error)
	// OnFunctionChange registers f to be called with the function and
	// version of every record that is created, replaced or deleted.
	OnFunctionChange(f func(function, version string))
}

// Logs receives the log events of invocations (*logs.Store), by log group
// (the function's LoggingConfig.LogGroup). Append must not block.
type Logs interface {
	Append(group string, events ...logs.Event)
}

// Config is what a worker needs.
type Config struct {
	Region   string
	CacheDir string // code is unpacked under CacheDir/code
	Sandbox  sandbox.Provider
	Runtimes *runtimes.Set
	// Store holds the functions' code and records (required). The worker
	// subscribes to its changes of function records (OnFunctionChange) to
	// stop the environments of a deleted or changed function at once.
	Store   Store
	Logs    Logs
	Metrics *Metrics
	// IdleTimeout is how long an idle environment is kept; zero means 10
	// minutes.
	IdleTimeout time.Duration
	// MemoryBudgetMB bounds the sum of MemorySize of live environments.
	MemoryBudgetMB int
	// InitTimeout bounds a cold start's init; zero means 10 seconds.
	InitTimeout time.Duration
	// Endpoint gives environments temporary credentials and an AWS
	// endpoint (endpoint.go); nil gives them neither.
	Endpoint *Endpoint
	Logger   *slog.Logger
}

// Worker manages the execution environments of one node: the in-process
// implementation of manager.Worker. It is safe for concurrent use.
type Worker struct {
	cfg  Config
	code *codeCache
	log  *slog.Logger

	mu          sync.Mutex
	idle        map[envKey][]*environment // idle environments, most recently used last
	live        map[*environment]struct{}
	memoryUsed  int                      // MB reserved by live and starting environments
	provisioned map[string]*provisionSet // by provisioned concurrency config
	closed      bool
	sessions    sessions       // environments whose credentials are valid
	destroying  sync.WaitGroup // environments being destroyed in the background
	background  sync.WaitGroup // invocations ending in the background (extensions)
}

var _ manager.Worker = (*Worker)(nil)

// New returns a worker. Call Run to expire idle environments and Close to
// stop every environment.
func New(cfg Config) *Worker {
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.InitTimeout == 0 {
		cfg.InitTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	w := &Worker{
		cfg:         cfg,
		code:        newCodeCache(cfg.CacheDir, cfg.Store),
		log:         cfg.Logger,
		idle:        map[envKey][]*environment{},
		live:        map[*environment]struct{}{},
		provisioned: map[string]*provisionSet{},
	}
	cfg.Store.OnFunctionChange(w.RetireStale)
	if cfg.Metrics.reg != nil {
		cfg.Metrics.reg.MustRegister(environmentGauges{w})
	}
	return w
}

// Invoke runs an invocation in a warm environment of its function version,
// or a new one, and returns how it ended, as manager.Worker promises. A
// function failure is a result with FunctionError set, not an error; errors
// are manager.ErrNoMemory when the memory budget has no room for a new
// environment, and Lamina's own failures.
func (w *Worker) Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error) {
	ctx = context.WithoutCancel(ctx) // an invocation runs to its end even if the caller leaves
	fn := req.Function
	rec := &record{w: w, req: req}
	var out outcome
	var env *environment
	for {
		env = w.takeIdle(keyOf(fn))
		cold := env == nil
		if cold {
			if err := w.reserve(fn.Configuration.MemorySize); err != nil {
				return nil, err
			}
			var ok bool
			env, ok = w.coldStart(ctx, rec)
			if !ok {
				return rec.result()
			}
		}
		out = env.invoke(req)
		if !out.stale {
			break
		}
		if cold { // it exited right after init: that is this invocation's crash
			out.stale, out.crashed, out.answer = false, true, env.exitAnswer(req.RequestID)
			break
		}
		env.collect() // what it wrote before exiting belongs to no invocation
		w.retire(env)
	}
	if !out.timedOut && !out.crashed && env.hasExtensions() {
		return w.finishWithExtensions(env, rec, out), nil
	}
	rec.invoked(env, out)
	switch {
	case out.timedOut:
		env.retireFor("timeout")
		w.retire(env)
	case out.crashed:
		env.retireFor("failure")
		w.retire(env)
	default:
		w.release(env)
	}
	return rec.result()
}

// finishWithExtensions returns the result of an invocation whose runtime
// has answered, as Lambda answers the caller at once, and ends its invoke
// phase in the background once every extension has finished it (asked for
// its next event), or at the invocation's deadline: then the log gets END
// and REPORT, whose Duration includes the extensions' time after the
// runtime's answer, and the environment is released, or retired if an
// extension did not finish or ended.
func (w *Worker) finishWithExtensions(env *environment, rec *record, out outcome) *lamina.InvocationResult {
	rec.answered(env, out)
	res := rec.early(out)
	answered := time.Now()
	w.background.Add(1)
	go func() {
		defer w.background.Done()
		finished := env.awaitExtensions(out.deadline)
		out.duration += time.Since(answered)
		if !finished {
			rec.line(time.Now(), "[lamina] the extensions did not finish the invocation by its deadline: the environment is stopped")
		}
		rec.ended(env, out)
		rec.publish()
		if crashed := env.crashedExtension(); !finished || crashed != "" {
			env.retireFor("failure")
			w.retire(env)
			return
		}
		w.release(env)
	}()
	return res
}

// coldStart creates and initialises an environment for rec's invocation.
// When init fails, the failure is recorded as the invocation's result and ok
// is false. An init that runs out of its own time limit is tried once more,
// bounded by the function's timeout, as Lambda does.
func (w *Worker) coldStart(ctx context.Context, rec *record) (env *environment, ok bool) {
	fn := rec.req.Function
	limit := w.cfg.InitTimeout
	for attempt := 1; ; attempt++ {
		started := time.Now()
		env, err := w.start(ctx, fn, "")
		if err != nil {
			w.unreserve(fn.Configuration.MemorySize)
			rec.startFailed(err)
			return nil, false
		}
		w.track(env)
		init := env.waitInit(started, limit)
		rec.initialized(env, init)
		if init.failure == nil {
			w.cfg.Metrics.coldStart(fn.Configuration.FunctionName)
			return env, true
		}
		w.retire(env)
		if init.failure.errorType != lamina.ErrorTypeTimeout || attempt == 2 {
			rec.initFailed(init.failure)
			return nil, false
		}
		limit = time.Duration(fn.Configuration.Timeout) * time.Second
		if !w.reserveOrFail(fn.Configuration.MemorySize, rec) {
			return nil, false
		}
	}
}

// reserveOrFail reserves memory for a retried init, recording a throttle as
// the result when there is none.
func (w *Worker) reserveOrFail(mb int, rec *record) bool {
	if err := w.reserve(mb); err != nil {
		rec.startFailed(err)
		return false
	}
	return true
}

// takeIdle returns the most recently used idle environment for key, or nil.
// Idle environments of an older configuration of the same function version
// are stopped on the way: they will never be used again.
func (w *Worker) takeIdle(key envKey) *environment {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.idle[key]
	if n := len(list); n > 0 {
		env := list[n-1]
		w.idle[key] = list[:n-1]
		env.idle = false
		return env
	}
	for k, stale := range w.idle {
		if k.function == key.function && k.version == key.version && k.revision != key.revision {
			delete(w.idle, k)
			for _, env := range stale {
				w.forget(env)
				w.destroyLater(env)
			}
		}
	}
	return nil
}

// reserve accounts mb of memory for a new environment, evicting idle
// environments least recently used first when the budget is full. It
// returns manager.ErrNoMemory when even that leaves no room.
func (w *Worker) reserve(mb int) error {
	var evicted []*environment
	defer func() {
		for _, env := range evicted {
			w.destroyLater(env)
		}
	}()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return lamina.ErrService("the worker is shutting down")
	}
	for w.memoryUsed+mb > w.cfg.MemoryBudgetMB {
		lru := w.leastRecentlyUsedIdle()
		if lru == nil {
			return manager.ErrNoMemory
		}
		w.removeIdle(lru)
		w.forget(lru)
		evicted = append(evicted, lru)
	}
	w.memoryUsed += mb
	return nil
}

func (w *Worker) unreserve(mb int) {
	w.mu.Lock()
	w.memoryUsed -= mb
	w.mu.Unlock()
}

// track records a started environment as live.
func (w *Worker) track(env *environment) {
	w.mu.Lock()
	w.live[env] = struct{}{}
	w.mu.Unlock()
}

// forget removes env from the live set (and from its provisioned set) and
// returns its memory. The caller holds w.mu and destroys env.
func (w *Worker) forget(env *environment) {
	if _, ok := w.live[env]; ok {
		delete(w.live, env)
		w.memoryUsed -= env.memoryMB
	}
	if set := w.provisioned[env.provisioned]; set != nil {
		delete(set.envs, env)
	}
}

// leastRecentlyUsedIdle returns the idle on-demand environment used least
// recently; provisioned environments are never evicted.
func (w *Worker) leastRecentlyUsedIdle() *environment {
	var lru *environment
	for _, list := range w.idle {
		for _, env := range list {
			if env.provisioned == "" && (lru == nil || env.lastUsed.Before(lru.lastUsed)) {
				lru = env
			}
		}
	}
	return lru
}

func (w *Worker) removeIdle(env *environment) {
	list := w.idle[env.key]
	for i, e := range list {
		if e == env {
			w.idle[env.key] = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(w.idle[env.key]) == 0 {
		delete(w.idle, env.key)
	}
	env.idle = false
}

// destroyLater destroys env in the background; Close waits for it.
func (w *Worker) destroyLater(env *environment) {
	w.destroying.Add(1)
	go func() {
		defer w.destroying.Done()
		env.destroy()
	}()
}

// release returns a healthy environment to the idle pool, unless what it
// runs has been deleted or replaced meanwhile, or its credentials expire
// soon.
func (w *Worker) release(env *environment) {
	if w.stale(env.key) || env.credentialsEnding(time.Now()) {
		w.retire(env)
		return
	}
	env.parkIdle() // freeze it soon; before it is in the pool, where an invocation may take it
	w.mu.Lock()
	if w.closed {
		w.forget(env)
		w.mu.Unlock()
		env.destroy()
		return
	}
	env.lastUsed = time.Now()
	env.idle = true
	w.idle[env.key] = append(w.idle[env.key], env)
	w.mu.Unlock()
}

// retire stops an environment that must not be reused; one with
// extensions in the background, as they get time to shut down.
func (w *Worker) retire(env *environment) {
	w.mu.Lock()
	w.forget(env)
	w.mu.Unlock()
	if env.hasExtensions() {
		w.destroyLater(env)
		return
	}
	env.destroy()
}

// RetireStale stops the environments of a function version that run what
// the store no longer holds: a deleted function or version, or an older
// configuration or code of it (another RevisionId). Idle ones stop at once,
// busy ones when their invocation ends (release). The worker calls it on
// every change of a function record the store reports, from any node.
func (w *Worker) RetireStale(function, version string) {
	current, err := w.revisionOf(function, version) // not under w.mu: a store read may call back
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		w.log.Warn("cannot tell which environments a change makes stale", "function", function, "version", version, "err", err)
		return
	}
	var stale []*environment
	w.mu.Lock()
	for key, list := range w.idle {
		if key.function != function || key.version != version || (err == nil && key.revision == current) {
			continue
		}
		delete(w.idle, key)
		for _, env := range list {
			env.idle = false
			w.forget(env)
			stale = append(stale, env)
		}
	}
	w.mu.Unlock()
	for _, env := range stale {
		w.destroyLater(env)
	}
	if len(stale) > 0 {
		w.log.Debug("environments of a changed function stopped", "function", function, "version", version, "count", len(stale))
	}
}

// revisionOf returns the RevisionId the store holds for a function version,
// or an error (store.ErrNotFound when it is gone).
func (w *Worker) revisionOf(function, version string) (string, error) {
	fn, err := w.cfg.Store.ResolveFunction(context.Background(), function, version)
	if err != nil {
		return "", err
	}
	return fn.Configuration.RevisionId, nil
}

// stale reports whether the store no longer holds what environments of key
// run. When the store cannot tell, they are not stale. The caller must not
// hold w.mu: a store read may report a change (RetireStale).
func (w *Worker) stale(key envKey) bool {
	current, err := w.revisionOf(key.function, key.version)
	if err != nil {
		return errors.Is(err, store.ErrNotFound)
	}
	return current != key.revision
}

// Run stops environments idle for longer than the idle timeout and keeps
// provisioned environments at their count, until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	every := min(max(w.cfg.IdleTimeout/10, 100*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.expireIdle(time.Now().Add(-w.cfg.IdleTimeout))
		w.reconcileProvisioned(ctx)
	}
}

// expireIdle stops idle environments last used before cutoff, and those
// (provisioned ones too) whose credentials expire soon.
func (w *Worker) expireIdle(cutoff time.Time) {
	var expired []*environment
	now := time.Now()
	w.mu.Lock()
	for key, list := range w.idle {
		keep := list[:0]
		for _, env := range list {
			if env.provisioned == "" && env.lastUsed.Before(cutoff) || env.credentialsEnding(now) {
				w.forget(env)
				env.idle = false
				expired = append(expired, env)
			} else {
				keep = append(keep, env)
			}
		}
		if len(keep) == 0 {
			delete(w.idle, key)
		} else {
			w.idle[key] = keep
		}
	}
	w.mu.Unlock()
	for _, env := range expired {
		if env.hasExtensions() {
			w.destroyLater(env) // they get time to shut down
		} else {
			env.destroy()
		}
	}
	if len(expired) > 0 {
		w.log.Debug("idle environments stopped", "count", len(expired))
	}
}

// Close stops every environment. Invocations in flight end as crashes.
func (w *Worker) Close() {
	w.mu.Lock()
	w.closed = true
	envs := make([]*environment, 0, len(w.live))
	for env := range w.live {
		envs = append(envs, env)
	}
	w.idle = map[envKey][]*environment{}
	w.mu.Unlock()
	for _, env := range envs {
		w.destroyLater(env)
	}
	w.background.Wait()
	w.destroying.Wait()
}

// errorTypeOf classifies an error that kept an environment from starting.
func errorTypeOf(err error) string {
	var ep *runtimes.EntrypointError
	if errors.As(err, &ep) {
		return lamina.ErrorTypeInvalidEntrypoint
	}
	return lamina.ErrorTypeSandboxFailure
}
