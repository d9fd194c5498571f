package manager

import (
	"context"
	"time"
)

// Provisioned concurrency: the stored configs (PutProvisionedConcurrencyConfig)
// say how many environments of a version or alias to keep initialised; the
// manager applies them to the workers and reports what the workers have
// ready.

// provisionInterval is how often the provisioned concurrency configs are
// applied to the workers.
const provisionInterval = time.Second

// Run keeps the workers' provisioned environments as the stored provisioned
// concurrency configs ask, applying them every provisionInterval (so that a
// config changed through any node, a new version an alias points to, or a
// changed configuration of the version reaches the workers), until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(provisionInterval)
	defer t.Stop()
	active := map[string]string{} // config key → function, as last applied
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		active = m.provision(ctx, active)
	}
}

// provision applies every stored config once, gives up the environments of
// the configs in active that are gone, and returns the configs it applied.
func (m *Manager) provision(ctx context.Context, active map[string]string) map[string]string {
	applied := map[string]string{}
	for _, pc := range m.store.ListProvisionedConcurrency(ctx, "") {
		key := ProvisionedKey(pc.Function, pc.Qualifier)
		fn, err := m.store.ResolveFunction(ctx, pc.Function, pc.Qualifier)
		if err != nil {
			m.log.Warn("provisioned concurrency for a missing version", "config", key, "err", err)
			continue
		}
		applied[key] = pc.Function
		if err := m.workerFor(pc.Function).Provision(ctx, Provision{Config: key, Function: fn, Count: pc.Requested}); err != nil {
			m.log.Warn("cannot provision environments", "config", key, "err", err)
		}
	}
	for key, function := range active {
		if _, ok := applied[key]; ok {
			continue
		}
		if err := m.workerFor(function).Provision(ctx, Provision{Config: key}); err != nil {
			m.log.Warn("cannot give up provisioned environments", "config", key, "err", err)
			applied[key] = function // try again next time
		}
	}
	return applied
}

// Provisioned returns how many environments the workers have initialised
// (allocated) for the provisioned concurrency config of function's
// qualifier, and how many of them are idle (available), counting only
// environments of the version and configuration the qualifier names now.
// A worker that cannot tell counts none.
func (m *Manager) Provisioned(ctx context.Context, function, qualifier string) (allocated, available int) {
	fn, err := m.store.ResolveFunction(ctx, function, qualifier)
	if err != nil {
		return 0, 0
	}
	state, err := m.workerFor(function).State(ctx)
	if err != nil {
		m.log.Warn("a worker cannot report its provisioned environments", "function", function, "err", err)
		return 0, 0
	}
	if ps, ok := state.Provisioned[ProvisionedKey(function, qualifier)]; ok && ps.Runs(fn) {
		return ps.Allocated, ps.Available
	}
	return 0, 0
}
