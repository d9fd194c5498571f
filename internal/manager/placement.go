package manager

import (
	"cmp"
	"context"
	"hash/fnv"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/cluster"
)

// Placement: in a cluster, which node's worker runs an invocation.
//
// Every function version has an order of the live nodes, by rendezvous
// hashing (highest random weight, weighted by the nodes' memory budgets) of
// its name and version with each node's name. The first node is its home:
// invocations of the version go there, so its warm environments are there,
// and a node that joins or leaves moves only the versions it becomes or
// stops being home to. An invocation goes to the first node of the order
// that
//
//   - is live (its heartbeats are current) and not suspect (its worker did
//     not fail to answer in the last suspectFor, nor say it had no room in
//     the last fullFor for a function as large);
//   - has room for the function's memory: its budget minus what its
//     environments reserve, idle on-demand environments excepted (they are
//     evicted for new ones);
//   - stays within bounded load: its busy memory, as a share of its budget,
//     after the invocation is at most loadFloor, or at most (1+loadSlack)
//     times the cluster's average share (consistent hashing with bounded
//     loads, Mirrokni, Thorup and Zadimoghaddam, 2018).
//
// When no node satisfies all three, the least loaded node with room takes
// it; when none seems to have room, the first healthy node is asked (its
// worker knows for sure), and when every healthy node said lately it had no
// room, the least loaded of them. A node's busy memory is that of its last
// heartbeat (at most a second old) corrected by what this manager has sent
// it or seen end since. A function version with provisioned concurrency
// goes first to the node with the most of its provisioned environments that
// this manager is not using.

// Placement parameters.
const (
	// loadSlack is ε of consistent hashing with bounded loads: a node takes
	// an invocation while its busy share of memory after it is at most
	// (1+ε) times the cluster's average.
	loadSlack = 0.25
	// loadFloor is the busy share of its memory up to which a node takes
	// the invocations it is home to whatever the others' load: below it,
	// warm environments matter more than balance (a spill costs a cold
	// start; see the model in model_test.go and docs/cluster.md).
	loadFloor = 0.75
	// suspectFor is how long a node whose worker did not answer is passed
	// over (about the time its heartbeats take to expire).
	suspectFor = 5 * time.Second
	// fullFor is how long a node whose worker had no room for an
	// environment is passed over for functions as large (a heartbeat's
	// interval: its next heartbeat tells again).
	fullFor = time.Second
	// maxPlacements bounds the nodes one invocation is tried on.
	maxPlacements = 3
	// viewRefresh is how often the nodes' heartbeats are read again.
	viewRefresh = 100 * time.Millisecond
	// maxOrders bounds the cached orders of nodes by function version.
	maxOrders = 1 << 14
)

// Nodes is the membership of the cluster, as the manager sees it
// (*cluster.Membership).
type Nodes interface {
	// Self is this node.
	Self() cluster.Node
	// Members returns the live nodes, this one included.
	Members() []cluster.Node
}

// versionKey names a function version for placement: environments of a
// version are reused across its configurations' changes only on its node.
type versionKey struct{ function, version string }

func versionOf(fn *lamina.Function) versionKey {
	return versionKey{fn.Configuration.FunctionName, fn.Configuration.Version}
}

// node is one live node as placement sees it.
type node struct {
	id     string
	self   bool
	worker Worker
	hash   uint64 // of id
	// budgetMB is the node's memory budget; busyMB and roomMB its busy
	// memory and its room for new environments at its last heartbeat,
	// taken at beat.
	budgetMB, busyMB, roomMB int
	beat                     time.Time
	// mineMB is the memory of the invocations this manager has on the node
	// now; mineAtBeatMB what it was when its last heartbeat was read.
	mineMB, mineAtBeatMB int
	// suspectUntil: a worker that did not answer is passed over until then;
	// fullUntil: one without room, for functions of fullMB or more.
	suspectUntil, fullUntil time.Time
	fullMB                  int
}

// sinceBeatMB is what this manager's invocations on the node have changed
// since its last heartbeat.
func (n *node) sinceBeatMB() int { return n.mineMB - n.mineAtBeatMB }

// loadMB estimates the node's busy memory now.
func (n *node) loadMB() int { return max(n.mineMB, n.busyMB+n.sinceBeatMB()) }

// freeMB estimates the node's room for new environments now.
func (n *node) freeMB() int { return n.roomMB - n.sinceBeatMB() }

// usable reports whether the node may be given an invocation of mb now.
func (n *node) usable(mb int, now time.Time) bool {
	return n.healthy(now) && (mb < n.fullMB || !now.Before(n.fullUntil))
}

// healthy reports whether the node's worker is not suspect now.
func (n *node) healthy(now time.Time) bool { return !now.Before(n.suspectUntil) }

// placement places invocations among the nodes of a cluster.
type placement struct {
	nodes  Nodes
	self   string // this node's ID
	local  Worker
	remote func(node string) Worker
	now    func() time.Time

	mu   sync.Mutex
	byID map[string]*node
	// live are the live nodes by ID; totalBudgetMB the sum of their
	// budgets.
	live          []*node
	totalBudgetMB int
	// orders caches each function version's order of the live nodes.
	orders map[versionKey][]*node
	// provisioned is, by function version, how many provisioned
	// environments each node keeps (by node ID); provisionedInUse how many
	// of them this manager's invocations may be using.
	provisioned      map[versionKey]map[string]int
	provisionedInUse map[provisionedSlot]int
}

// provisionedSlot is a function version's provisioned environments on one
// node.
type provisionedSlot struct {
	version versionKey
	node    string
}

func newPlacement(nodes Nodes, local Worker, remote func(string) Worker) *placement {
	p := &placement{nodes: nodes, self: nodes.Self().ID, local: local, remote: remote, now: time.Now, byID: map[string]*node{},
		orders: map[versionKey][]*node{}, provisioned: map[versionKey]map[string]int{}, provisionedInUse: map[provisionedSlot]int{}}
	p.refresh()
	return p
}

// follow reads the members and their heartbeats every viewRefresh until
// ctx ends.
func (p *placement) follow(ctx context.Context) {
	t := time.NewTicker(viewRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.refresh()
	}
}

// refresh reads the members and their heartbeats again.
func (p *placement) refresh() {
	members := p.nodes.Members()
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := len(members) != len(p.live)
	seen := make(map[string]bool, len(members))
	for _, m := range members {
		seen[m.ID] = true
		n := p.byID[m.ID]
		if n == nil {
			n = &node{id: m.ID, self: m.ID == p.self, hash: hashString(m.ID)}
			if n.self {
				n.worker = p.local
			} else {
				n.worker = p.remote(m.ID)
			}
			p.byID[m.ID] = n
			changed = true
		}
		budget := max(m.MemoryBudgetMB, 1)
		if budget != n.budgetMB {
			n.budgetMB = budget
			changed = true
		}
		if !m.Heartbeat.Equal(n.beat) {
			n.beat = m.Heartbeat
			n.busyMB = m.MemoryBusyMB
			n.roomMB = m.MemoryBudgetMB - m.MemoryInUseMB + m.MemoryEvictableMB
			n.mineAtBeatMB = n.mineMB
		}
	}
	for id := range p.byID {
		if !seen[id] {
			delete(p.byID, id)
			changed = true
		}
	}
	if !changed {
		return
	}
	p.live = p.live[:0]
	p.totalBudgetMB = 0
	for _, n := range p.byID {
		p.live = append(p.live, n)
		p.totalBudgetMB += n.budgetMB
	}
	slices.SortFunc(p.live, func(a, b *node) int { return cmp.Compare(a.id, b.id) })
	clear(p.orders)
}

// alone reports whether this node is the only live one.
func (p *placement) alone() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live) <= 1
}

// order returns the live nodes in version's order, its home first. The
// caller holds p.mu.
func (p *placement) order(version versionKey) []*node {
	if o, ok := p.orders[version]; ok {
		return o
	}
	h := hashVersion(version)
	type scored struct {
		n     *node
		score float64
	}
	s := make([]scored, len(p.live))
	for i, n := range p.live {
		s[i] = scored{n, rendezvousScore(h, n.hash, n.budgetMB)}
	}
	slices.SortFunc(s, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	o := make([]*node, len(s))
	for i := range s {
		o[i] = s[i].n
	}
	if len(p.orders) >= maxOrders {
		clear(p.orders)
	}
	p.orders[version] = o
	return o
}

// take chooses the node for an invocation of version needing mb of memory,
// passing over the nodes tried already, and counts the invocation on it
// until done is called. It returns nil when no live node is left to try.
func (p *placement) take(version versionKey, mb int, tried []*node) (n *node, done func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n = p.choose(version, mb, tried, p.now())
	if n == nil {
		return nil, nil
	}
	n.mineMB += mb
	slot := provisionedSlot{version, n.id}
	_, provisioned := p.provisioned[version]
	if provisioned {
		p.provisionedInUse[slot]++
	}
	return n, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		n.mineMB -= mb
		if provisioned {
			if p.provisionedInUse[slot]--; p.provisionedInUse[slot] <= 0 {
				delete(p.provisionedInUse, slot)
			}
		}
	}
}

// choose picks the node; the caller holds p.mu.
func (p *placement) choose(version versionKey, mb int, tried []*node, now time.Time) *node {
	candidate := func(n *node) bool { return !slices.Contains(tried, n) && n.usable(mb, now) }
	order := p.order(version)
	if shares := p.provisioned[version]; shares != nil {
		var best *node
		bestFree := 0
		for _, n := range order {
			if free := shares[n.id] - p.provisionedInUse[provisionedSlot{version, n.id}]; free > bestFree && candidate(n) {
				best, bestFree = n, free
			}
		}
		if best != nil {
			return best
		}
	}
	totalLoad := 0
	for _, n := range p.live {
		totalLoad += n.loadMB()
	}
	average := float64(totalLoad+mb) / float64(p.totalBudgetMB)
	var fallback, first *node
	fallbackShare := math.Inf(1)
	for _, n := range order {
		if !candidate(n) {
			continue
		}
		if first == nil {
			first = n
		}
		if n.freeMB() < mb {
			continue
		}
		share := float64(n.loadMB()+mb) / float64(n.budgetMB)
		if share <= loadFloor || share <= (1+loadSlack)*average {
			return n
		}
		if share < fallbackShare {
			fallback, fallbackShare = n, share
		}
	}
	if fallback != nil {
		return fallback
	}
	if first != nil {
		return first
	}
	// Every healthy node said lately it had no room: ask the least loaded
	// (invocations end in milliseconds; its worker knows for sure).
	var leastLoaded *node
	for _, n := range order {
		if !slices.Contains(tried, n) && n.healthy(now) && (leastLoaded == nil || n.loadMB()*leastLoaded.budgetMB < leastLoaded.loadMB()*n.budgetMB) {
			leastLoaded = n
		}
	}
	return leastLoaded
}

// suspect passes over n for suspectFor: its worker did not answer.
func (p *placement) suspect(n *node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n.suspectUntil = p.now().Add(suspectFor)
}

// full passes over n for fullFor for functions of mb or more: its worker
// had no room.
func (p *placement) full(n *node, mb int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.After(n.fullUntil) || mb < n.fullMB {
		n.fullMB = mb
	}
	n.fullUntil = now.Add(fullFor)
}

// spread splits count provisioned environments of version, each of mb,
// among the live nodes: in proportion to their memory budgets (the largest
// remainders first, then version's order), no node given more than its
// budget holds while another has room. It returns the environments by node
// ID.
func (p *placement) spread(version versionKey, count, mb int) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return splitByBudget(count, mb, p.order(version))
}

// setProvisioned records, by function version, how many provisioned
// environments each node keeps, for placement to use them first.
func (p *placement) setProvisioned(shares map[versionKey]map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.provisioned = shares
}

// splitByBudget splits count environments of mb among nodes (in their
// order) in proportion to their budgets, capping each at what its budget
// holds while others have room.
func splitByBudget(count, mb int, nodes []*node) map[string]int {
	shares := make(map[string]int, len(nodes))
	if count <= 0 || len(nodes) == 0 {
		return shares
	}
	total := 0
	for _, n := range nodes {
		total += n.budgetMB
	}
	type remainder struct {
		n    *node
		frac float64
	}
	rest := make([]remainder, 0, len(nodes))
	given := 0
	for _, n := range nodes {
		exact := float64(count) * float64(n.budgetMB) / float64(total)
		whole := int(exact)
		shares[n.id] = whole
		given += whole
		rest = append(rest, remainder{n, exact - float64(whole)})
	}
	slices.SortStableFunc(rest, func(a, b remainder) int { return cmp.Compare(b.frac, a.frac) })
	for i := 0; given < count; i++ {
		shares[rest[i%len(rest)].n.id]++
		given++
	}
	// Move what a node cannot hold to the nodes with room, in order.
	capacity := func(n *node) int { return n.budgetMB / max(mb, 1) }
	excess := 0
	for _, n := range nodes {
		if over := shares[n.id] - capacity(n); over > 0 {
			shares[n.id] -= over
			excess += over
		}
	}
	for _, n := range nodes {
		if excess == 0 {
			break
		}
		room := min(capacity(n)-shares[n.id], excess)
		if room > 0 {
			shares[n.id] += room
			excess -= room
		}
	}
	if excess > 0 && len(nodes) > 0 { // more than the cluster holds: the home keeps asking
		shares[nodes[0].id] += excess
	}
	for id, n := range shares {
		if n == 0 {
			delete(shares, id)
		}
	}
	return shares
}

// workers returns the workers of the live nodes.
func (p *placement) workers() map[string]Worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := make(map[string]Worker, len(p.live))
	for _, n := range p.live {
		ws[n.id] = n.worker
	}
	return ws
}

// hashString is 64-bit FNV-1a of s, mixed.
func hashString(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return mix64(h.Sum64())
}

// hashVersion hashes a function version's name and version.
func hashVersion(v versionKey) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(v.function))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(v.version))
	return mix64(h.Sum64())
}

// mix64 is SplitMix64's finaliser: every bit of x affects every bit of the
// result.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// rendezvousScore is the weighted rendezvous hashing score of a node (its
// hash and weight) for a key: weight / -ln(u), u uniform in (0, 1) from the
// two hashes. The node with the highest score for a key is first with a
// probability proportional to its weight.
func rendezvousScore(key, node uint64, weight int) float64 {
	u := (float64(mix64(key^node)>>11) + 0.5) / (1 << 53)
	return float64(weight) / -math.Log(u)
}
