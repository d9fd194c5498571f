package manager

import (
	"context"
	"sync"
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
// changed configuration of the version reaches the workers), and in a
// cluster follows the nodes' heartbeats for placement, until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	if m.placement != nil {
		go m.placement.follow(ctx)
	}
	t := time.NewTicker(provisionInterval)
	defer t.Stop()
	active := map[string]bool{} // config keys, as last applied
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		active = m.provision(ctx, active)
	}
}

// provision applies every stored config once to this node's worker, gives
// up the environments of the configs in active that are gone, and returns
// the configs it applied. In a cluster, a config's environments are spread
// over the live nodes (placement.spread) and each node's manager keeps its
// own worker's share: every node computes the same split from the same
// members, and a node that joins or leaves changes the shares of all.
func (m *Manager) provision(ctx context.Context, active map[string]bool) map[string]bool {
	applied := map[string]bool{}
	shares := map[versionKey]map[string]int{}
	for _, pc := range m.store.ListProvisionedConcurrency(ctx, "") {
		key := ProvisionedKey(pc.Function, pc.Qualifier)
		fn, err := m.store.ResolveFunction(ctx, pc.Function, pc.Qualifier)
		if err != nil {
			m.log.Warn("provisioned concurrency for a missing version", "config", key, "err", err)
			continue
		}
		applied[key] = true
		count := pc.Requested
		if m.placement != nil {
			version := versionOf(fn)
			split := m.placement.spread(version, count, fn.Configuration.MemorySize)
			if shares[version] == nil {
				shares[version] = map[string]int{}
			}
			for node, n := range split {
				shares[version][node] += n
			}
			count = split[m.placement.self]
		}
		if err := m.worker.Provision(ctx, Provision{Config: key, Function: fn, Count: count}); err != nil {
			m.log.Warn("cannot provision environments", "config", key, "err", err)
		}
	}
	if m.placement != nil {
		m.placement.setProvisioned(shares)
	}
	for key := range active {
		if applied[key] {
			continue
		}
		if err := m.worker.Provision(ctx, Provision{Config: key}); err != nil {
			m.log.Warn("cannot give up provisioned environments", "config", key, "err", err)
			applied[key] = true // try again next time
		}
	}
	return applied
}

// Provisioned returns how many environments the workers have initialised
// (allocated) for the provisioned concurrency config of function's
// qualifier, and how many of them are idle (available), counting only
// environments of the version and configuration the qualifier names now:
// in a cluster, those of every live node. A worker that cannot tell counts
// none.
func (m *Manager) Provisioned(ctx context.Context, function, qualifier string) (allocated, available int) {
	fn, err := m.store.ResolveFunction(ctx, function, qualifier)
	if err != nil {
		return 0, 0
	}
	workers := map[string]Worker{"": m.worker}
	if m.placement != nil {
		workers = m.placement.workers()
	}
	key := ProvisionedKey(function, qualifier)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for node, w := range workers {
		wg.Go(func() {
			state, err := w.State(ctx)
			if err != nil {
				m.log.Warn("a worker cannot report its provisioned environments", "node", node, "function", function, "err", err)
				return
			}
			if ps, ok := state.Provisioned[key]; ok && ps.Runs(fn) {
				mu.Lock()
				allocated += ps.Allocated
				available += ps.Available
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return allocated, available
}
