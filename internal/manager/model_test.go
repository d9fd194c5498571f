package manager

import (
	"container/heap"
	"container/list"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lamina-project/lamina/internal/cluster"
)

// A model of placement at scale: the real placement (this package's
// placement type) driven by simulated time, nodes and functions. Run the
// full scale (100 nodes, 10,000 functions, 10 managers, 60 simulated
// seconds) with
//
//	LAMINA_MODEL=1 go test -run TestPlacementModel -v ./internal/manager/
//
// Without LAMINA_MODEL it runs at a tenth of the scale, as a test that the
// model runs and that placement beats the baselines it is compared with.
//
// What is simulated: invocations arrive as a Poisson process; functions are
// chosen by a Zipf law (a few are hot, most are rare); each function has a
// memory size (128 MB to 1 GB) and a mean duration (log-normal, median
// 150 ms), each invocation an exponential duration around it. Every
// invocation goes through one of the managers, chosen at random; each
// manager has its own view of the nodes' load: their heartbeats (every
// simulated second) and its own invocations since. A node runs an
// invocation in an idle environment of the version if it has one (warm),
// else starts one (cold, modelCold more), evicting idle environments, least
// recently used first, for room; with no room even so it refuses, and the
// manager tries the next node (as a worker's "no room" does). Midway one
// node fails and leaves the members.

// modelScale is the model's size.
type modelScale struct {
	nodes, functions, managers int
	seconds                    float64
	// busyTarget is the share of the cluster's memory the arrival rate is
	// set to keep busy.
	busyTarget float64
}

// modelCold is the added time of a cold start.
const modelCold = 250 * time.Millisecond

// modelFunction is a simulated function.
type modelFunction struct {
	key  versionKey
	mb   int
	mean float64 // seconds
}

// modelEnv is an idle environment on a node.
type modelEnv struct {
	version versionKey
	mb      int
}

// modelNode is a simulated node's worker.
type modelNode struct {
	id       string
	budgetMB int
	busyMB   int
	idleMB   int
	idle     *list.List // of *modelEnv, least recently used first
	byVer    map[versionKey][]*list.Element
	failed   bool
	// evicted counts idle environments evicted for room.
	evicted int
}

// room makes room for mb, evicting idle environments; false if it cannot.
func (n *modelNode) room(mb int) bool {
	for n.busyMB+n.idleMB+mb > n.budgetMB {
		e := n.idle.Front()
		if e == nil {
			return false
		}
		n.removeIdle(e)
		n.evicted++
	}
	return true
}

func (n *modelNode) removeIdle(e *list.Element) {
	env := e.Value.(*modelEnv)
	n.idle.Remove(e)
	n.idleMB -= env.mb
	els := n.byVer[env.version]
	i := slices.Index(els, e)
	els = slices.Delete(els, i, i+1)
	if len(els) == 0 {
		delete(n.byVer, env.version)
	} else {
		n.byVer[env.version] = els
	}
}

// takeIdle takes the most recently used idle environment of version.
func (n *modelNode) takeIdle(version versionKey) bool {
	els := n.byVer[version]
	if len(els) == 0 {
		return false
	}
	n.removeIdle(els[len(els)-1])
	return true
}

func (n *modelNode) addIdle(version versionKey, mb int) {
	e := n.idle.PushBack(&modelEnv{version, mb})
	n.byVer[version] = append(n.byVer[version], e)
	n.idleMB += mb
}

// modelNodes is one manager's membership: the nodes' last heartbeats.
type modelNodes struct {
	self    string
	members []cluster.Node
}

func (m *modelNodes) Self() cluster.Node      { return cluster.Node{ID: m.self} }
func (m *modelNodes) Members() []cluster.Node { return m.members }

// modelEvent is an invocation ending.
type modelEvent struct {
	at      float64
	node    *modelNode
	version versionKey
	mb      int
	done    func()
}

type modelEvents []modelEvent

func (q modelEvents) Len() int           { return len(q) }
func (q modelEvents) Less(i, j int) bool { return q[i].at < q[j].at }
func (q modelEvents) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *modelEvents) Push(x any)        { *q = append(*q, x.(modelEvent)) }
func (q *modelEvents) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// modelChooser picks a node for an invocation: the placement under test or
// a baseline. It returns nil when it has no node left to try.
type modelChooser interface {
	choose(manager int, f *modelFunction, tried []string) (n *modelNode, done func())
	noRoom(manager int, n *modelNode, mb int)
	heartbeat(now time.Time)
	fail(id string)
}

// modelResult is what a run measured.
type modelResult struct {
	invocations, cold, spilled, refusedOnce, rejected, evicted int
	// maxShare and meanShare: the busiest node's busy share of its memory,
	// and the mean, averaged over the heartbeats.
	maxShare, meanShare float64
	// envNodes: on how many nodes the hottest functions and the others
	// have environments, on average, at the end.
	hotEnvNodes, restEnvNodes float64
	// movedHomes is the share of functions whose home changed when a node
	// failed; coldAfterFailure the cold-start share in the 5 s after.
	movedHomes, coldAfterFailure float64
}

// runModel simulates scale with the chooser made by newChooser.
func runModel(scale modelScale, seed uint64, newChooser func([]*modelNode, []*modelFunction, *float64) modelChooser) modelResult {
	rng := rand.New(rand.NewPCG(seed, 1))
	nodes := make([]*modelNode, scale.nodes)
	totalMB := 0
	for i := range nodes {
		budget := 64 << 10
		if i%4 == 0 {
			budget = 128 << 10 // a quarter of the nodes are twice as large
		}
		nodes[i] = &modelNode{id: fmt.Sprintf("node-%03d", i), budgetMB: budget, idle: list.New(), byVer: map[versionKey][]*list.Element{}}
		totalMB += budget
	}
	sizes := []int{128, 128, 128, 128, 256, 256, 256, 512, 512, 1024}
	functions := make([]*modelFunction, scale.functions)
	meanWork := 0.0 // MB·s of an invocation, averaged over the Zipf law
	zipfS := 1.1
	harmonic := 0.0
	for k := 1; k <= scale.functions; k++ {
		harmonic += 1 / math.Pow(float64(k), zipfS)
	}
	for i := range functions {
		f := &modelFunction{key: versionKey{fmt.Sprintf("fn-%05d", i), "$LATEST"}, mb: sizes[rng.IntN(len(sizes))],
			mean: min(2, 0.15*math.Exp(0.7*rng.NormFloat64()))}
		functions[i] = f
		p := 1 / math.Pow(float64(i+1), zipfS) / harmonic
		meanWork += p * float64(f.mb) * f.mean
	}
	rate := scale.busyTarget * float64(totalMB) / meanWork // invocations per second
	zipf := rand.NewZipf(rand.New(rand.NewPCG(seed, 2)), zipfS, 1, uint64(scale.functions-1))

	now := 0.0
	chooser := newChooser(nodes, functions, &now)
	var res modelResult
	var events modelEvents
	nextBeat := 0.0
	beats := 0
	failAt := scale.seconds * 0.6
	failed := false
	coldAfter, invocationsAfter := 0, 0
	warmup := scale.seconds * 0.2
	for now < scale.seconds {
		now += rng.ExpFloat64() / rate
		for len(events) > 0 && events[0].at <= now {
			ev := heap.Pop(&events).(modelEvent)
			ev.node.busyMB -= ev.mb
			if !ev.node.failed {
				ev.node.addIdle(ev.version, ev.mb)
			}
			ev.done()
		}
		for now >= nextBeat {
			chooser.heartbeat(time.Unix(0, 0).Add(time.Duration(nextBeat * float64(time.Second))))
			if nextBeat >= warmup {
				most, sum := 0.0, 0.0
				live := 0
				for _, n := range nodes {
					if n.failed {
						continue
					}
					share := float64(n.busyMB) / float64(n.budgetMB)
					most, sum = max(most, share), sum+share
					live++
				}
				res.maxShare += most
				res.meanShare += sum / float64(live)
				beats++
			}
			nextBeat++
		}
		if !failed && now >= failAt {
			failed = true
			victim := nodes[len(nodes)/2]
			before := homes(chooser, functions)
			victim.failed = true
			chooser.fail(victim.id)
			after := homes(chooser, functions)
			moved := 0
			for i := range before {
				if before[i] != after[i] {
					moved++
				}
			}
			res.movedHomes = float64(moved) / float64(len(functions))
		}
		f := functions[zipf.Uint64()]
		manager := rng.IntN(scale.managers)
		var tried []string
		placed := false
		for attempt := range maxPlacements {
			n, done := chooser.choose(manager, f, tried)
			if n == nil {
				break
			}
			if attempt > 0 {
				res.refusedOnce++
			}
			cold := !n.takeIdle(f.key)
			if cold && !n.room(f.mb) {
				done()
				chooser.noRoom(manager, n, f.mb)
				tried = append(tried, n.id)
				continue
			}
			n.busyMB += f.mb
			d := rng.ExpFloat64() * f.mean
			if cold {
				d += modelCold.Seconds()
			}
			heap.Push(&events, modelEvent{at: now + d, node: n, version: f.key, mb: f.mb, done: done})
			if now >= warmup {
				res.invocations++
				if cold {
					res.cold++
				}
				if h := modelHome(chooser, f); h != n.id {
					res.spilled++
				}
			}
			if failed && now < failAt+5 {
				invocationsAfter++
				if cold {
					coldAfter++
				}
			}
			placed = true
			break
		}
		if !placed && now >= warmup {
			res.rejected++
		}
	}
	for _, n := range nodes {
		res.evicted += n.evicted
	}
	res.maxShare /= float64(beats)
	res.meanShare /= float64(beats)
	res.coldAfterFailure = float64(coldAfter) / float64(max(invocationsAfter, 1))
	// Spread of environments: the 100 hottest functions against the rest.
	spread := map[versionKey]int{}
	for _, n := range nodes {
		if n.failed {
			continue
		}
		for v := range n.byVer {
			spread[v]++
		}
	}
	hot := min(100, len(functions)/10)
	var hotSum, restSum, restCount float64
	for i, f := range functions {
		if i < hot {
			hotSum += float64(spread[f.key])
		} else if spread[f.key] > 0 {
			restSum += float64(spread[f.key])
			restCount++
		}
	}
	res.hotEnvNodes = hotSum / float64(hot)
	res.restEnvNodes = restSum / max(restCount, 1)
	return res
}

// homer is a chooser that knows functions' homes.
type homer interface{ homeOf(f *modelFunction) string }

func modelHome(c modelChooser, f *modelFunction) string {
	if h, ok := c.(homer); ok {
		return h.homeOf(f)
	}
	return ""
}

func homes(c modelChooser, functions []*modelFunction) []string {
	out := make([]string, len(functions))
	for i, f := range functions {
		out[i] = modelHome(c, f)
	}
	return out
}

// placementChooser is this package's placement, one per manager.
type placementChooser struct {
	nodes      []*modelNode
	byID       map[string]*modelNode
	views      []*modelNodes
	placements []*placement
	now        *float64
	// homeOnly turns the bounded load off: every invocation goes to the
	// first usable node of its order (plain consistent hashing).
	homeOnly bool
}

func newPlacementChooser(managers int, homeOnly bool) func([]*modelNode, []*modelFunction, *float64) modelChooser {
	return func(nodes []*modelNode, _ []*modelFunction, now *float64) modelChooser {
		c := &placementChooser{nodes: nodes, byID: map[string]*modelNode{}, now: now, homeOnly: homeOnly}
		for _, n := range nodes {
			c.byID[n.id] = n
		}
		for i := range managers {
			view := &modelNodes{self: nodes[i%len(nodes)].id}
			c.views = append(c.views, view)
			p := newPlacement(view, nil, func(string) Worker { return nil })
			p.now = func() time.Time { return time.Unix(0, 0).Add(time.Duration(*now * float64(time.Second))) }
			c.placements = append(c.placements, p)
		}
		c.heartbeat(time.Unix(0, 0))
		return c
	}
}

func (c *placementChooser) heartbeat(at time.Time) {
	var members []cluster.Node
	for _, n := range c.nodes {
		if n.failed {
			continue
		}
		members = append(members, cluster.Node{ID: n.id, MemoryBudgetMB: n.budgetMB, MemoryInUseMB: n.busyMB + n.idleMB,
			MemoryBusyMB: n.busyMB, MemoryEvictableMB: n.idleMB, Heartbeat: at})
	}
	for i, v := range c.views {
		v.members = members
		c.placements[i].refresh()
	}
}

func (c *placementChooser) choose(manager int, f *modelFunction, tried []string) (*modelNode, func()) {
	p := c.placements[manager]
	var skip []*node
	p.mu.Lock()
	for _, id := range tried {
		if n := p.byID[id]; n != nil {
			skip = append(skip, n)
		}
	}
	if c.homeOnly {
		for _, n := range p.order(f.key) {
			if !slices.Contains(skip, n) && n.usable(f.mb, p.now()) {
				p.mu.Unlock()
				return c.byID[n.id], func() {}
			}
		}
		p.mu.Unlock()
		return nil, nil
	}
	p.mu.Unlock()
	n, done := p.take(f.key, f.mb, skip)
	if n == nil {
		return nil, nil
	}
	return c.byID[n.id], done
}

func (c *placementChooser) noRoom(manager int, n *modelNode, mb int) {
	p := c.placements[manager]
	p.mu.Lock()
	pn := p.byID[n.id]
	p.mu.Unlock()
	if pn != nil {
		p.full(pn, mb)
	}
}

func (c *placementChooser) fail(string) {
	c.heartbeat(time.Unix(0, 0).Add(time.Duration(*c.now * float64(time.Second))))
}

func (c *placementChooser) homeOf(f *modelFunction) string {
	p := c.placements[0]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.order(f.key)[0].id
}

// leastLoadedChooser is a baseline without affinity: the less busy of two
// nodes picked at random (power of two choices), by the managers' shared,
// exact view.
type leastLoadedChooser struct {
	nodes []*modelNode
	rng   *rand.Rand
}

func newLeastLoaded(nodes []*modelNode, _ []*modelFunction, _ *float64) modelChooser {
	return &leastLoadedChooser{nodes: nodes, rng: rand.New(rand.NewPCG(7, 7))}
}

func (c *leastLoadedChooser) choose(_ int, f *modelFunction, tried []string) (*modelNode, func()) {
	var pick *modelNode
	for range 8 {
		a, b := c.nodes[c.rng.IntN(len(c.nodes))], c.nodes[c.rng.IntN(len(c.nodes))]
		if float64(b.busyMB)/float64(b.budgetMB) < float64(a.busyMB)/float64(a.budgetMB) {
			a = b
		}
		if !a.failed && !slices.Contains(tried, a.id) {
			pick = a
			break
		}
	}
	if pick == nil {
		return nil, nil
	}
	return pick, func() {}
}

func (c *leastLoadedChooser) noRoom(int, *modelNode, int) {}
func (c *leastLoadedChooser) heartbeat(time.Time)         {}
func (c *leastLoadedChooser) fail(string)                 {}

// TestPlacementModel runs the model for the placement and two baselines,
// and prints a table of what each measured.
func TestPlacementModel(t *testing.T) {
	scale := modelScale{nodes: 10, functions: 1000, managers: 3, seconds: 30, busyTarget: 0.5}
	if os.Getenv("LAMINA_MODEL") != "" {
		scale = modelScale{nodes: 100, functions: 10000, managers: 10, seconds: 60, busyTarget: 0.5}
	} else {
		t.Parallel()
	}
	type run struct {
		name   string
		target float64
		choose func([]*modelNode, []*modelFunction, *float64) modelChooser
	}
	var runs []run
	for _, target := range []float64{0.3, 0.6} {
		runs = append(runs,
			run{"placement (bounded load)", target, newPlacementChooser(scale.managers, false)},
			run{"home only (consistent hashing)", target, newPlacementChooser(scale.managers, true)},
			run{"least loaded of two, no affinity", target, newLeastLoaded})
	}
	var out strings.Builder
	fmt.Fprintf(&out, "%d nodes, %d functions, %d managers, %.0f simulated s\n", scale.nodes, scale.functions, scale.managers, scale.seconds)
	fmt.Fprintf(&out, "| busy target | chooser | invocations | cold | spilled | retried | rejected | busiest node | mean node | hot fn on nodes | other fn on nodes | homes moved by a failure | cold in 5 s after | evictions |\n")
	fmt.Fprintf(&out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	results := map[string]modelResult{}
	started := time.Now()
	for _, r := range runs {
		s := scale
		s.busyTarget = r.target
		res := runModel(s, 1, r.choose)
		results[fmt.Sprintf("%s@%.1f", r.name, r.target)] = res
		pct := func(n int) string { return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(max(res.invocations, 1))) }
		fmt.Fprintf(&out, "| %.0f%% | %s | %d | %s | %s | %s | %s | %.0f%% | %.0f%% | %.1f | %.2f | %.2f%% | %.2f%% | %s |\n",
			100*r.target, r.name, res.invocations, pct(res.cold), pct(res.spilled), pct(res.refusedOnce), pct(res.rejected),
			100*res.maxShare, 100*res.meanShare, res.hotEnvNodes, res.restEnvNodes, 100*res.movedHomes, 100*res.coldAfterFailure, pct(res.evicted))
	}
	t.Logf("model of placement (%v of computing):\n%s", time.Since(started).Round(time.Millisecond), out.String())
	keys := make([]string, 0, len(results))
	for k := range results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, target := range []string{"0.3"} {
		placed := results["placement (bounded load)@"+target]
		random := results["least loaded of two, no affinity@"+target]
		if placed.cold >= random.cold {
			t.Errorf("busy %s: placement had %d cold starts, no affinity %d; want fewer", target, placed.cold, random.cold)
		}
		if placed.rejected > placed.invocations/100 {
			t.Errorf("busy %s: placement found no room for %d of %d invocations", target, placed.rejected, placed.invocations)
		}
	}
}

// BenchmarkPlacementTake measures one placement decision among 100 nodes
// (the node order of each of 10,000 function versions cached after its
// first use), as a manager makes it for every invocation.
func BenchmarkPlacementTake(b *testing.B) {
	view := &modelNodes{self: "node-000"}
	for i := range 100 {
		view.members = append(view.members, cluster.Node{ID: fmt.Sprintf("node-%03d", i), MemoryBudgetMB: 64 << 10,
			MemoryInUseMB: 20 << 10, MemoryBusyMB: 10 << 10, MemoryEvictableMB: 10 << 10, Heartbeat: time.Unix(1, 0)})
	}
	p := newPlacement(view, nil, func(string) Worker { return nil })
	versions := make([]versionKey, 10000)
	for i := range versions {
		versions[i] = versionKey{fmt.Sprintf("fn-%05d", i), "$LATEST"}
	}
	b.ResetTimer()
	for i := range b.N {
		_, done := p.take(versions[i%len(versions)], 256, nil)
		done()
	}
}
