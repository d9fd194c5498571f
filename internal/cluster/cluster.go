// Package cluster tells which nodes form a Lamina platform. Each node writes
// a heartbeat — its ID, addresses, memory budget and use, live environments —
// every second into a JetStream key-value bucket whose entries expire after
// a few seconds; every node watches the bucket, so each knows the live
// members, and is told of joins and leaves. A node that stops cleanly
// removes its entry at once; one that dies or is cut off drops out when its
// entry expires (JetStream puts a marker in its place, which the watches
// see) or, should the marker not come, when this node has not seen a
// heartbeat of it for as long.
//
// The package also names the NATS subjects reserved for each node
// (NodeSubject): the manager sends a node's worker its requests there.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of heartbeats, one key per node ID. It
// holds nothing durable (heartbeats are kept in memory).
const Bucket = "lamina_nodes"

// Defaults of Config.
const (
	DefaultInterval = time.Second
	DefaultTTL      = 5 * time.Second
)

// Bounds of the bucket: a heartbeat is a few hundred bytes, and entries of
// nodes that left expire.
const (
	maxHeartbeatBytes = 4 << 10
	maxBucketBytes    = 16 << 20
)

// subjectPrefix starts every subject reserved for one node.
const subjectPrefix = "lamina.node."

// NodeSubject is the subject prefix reserved for requests to the node id:
// everything under NodeSubject(id)+".>" (e.g. "lamina.node.n1.invoke") is
// for that node alone. Nothing else of Lamina publishes there, and no
// stream captures it.
func NodeSubject(id string) string { return subjectPrefix + id }

// nodeIDRE is what a node ID may be: a NATS subject token, a key-value key
// and a NATS server name at once.
var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CheckNodeID returns nil when id can name a node.
func CheckNodeID(id string) error {
	if !nodeIDRE.MatchString(id) {
		return fmt.Errorf("node name %q must be 1 to 64 letters, digits, '-' or '_'", id)
	}
	return nil
}

// Node is one member as its last heartbeat described it.
type Node struct {
	ID string
	// APIEndpoint and URLEndpoint are where the node serves the Lambda API
	// and function URLs, e.g. "http://10.0.0.1:9000".
	APIEndpoint string
	URLEndpoint string
	// MemoryBudgetMB is the function memory the node runs at once; in use
	// is what its live environments reserve now: busy is that of the
	// environments running an invocation or starting, evictable that of the
	// idle on-demand environments a new one may take the place of.
	MemoryBudgetMB    int
	MemoryInUseMB     int
	MemoryBusyMB      int
	MemoryEvictableMB int
	// Environments is the number of its live execution environments.
	Environments int
	// Started is when the node's process started.
	Started time.Time
	// Heartbeat is when its last heartbeat was stored (by the store's
	// clock).
	Heartbeat time.Time
	// Instance tells the processes apart that ran as this node, one after
	// the other: a random ID per start.
	Instance string
}

// Usage is what a node reports of its load in each heartbeat.
type Usage struct {
	MemoryInUseMB     int
	MemoryBusyMB      int
	MemoryEvictableMB int
	Environments      int
}

// EventKind says whether a node joined or left.
type EventKind int

// Kinds of events.
const (
	Joined EventKind = iota + 1
	Left
)

func (k EventKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Left:
		return "left"
	}
	return "unknown"
}

// Event tells that a node joined or left.
type Event struct {
	Kind EventKind
	Node Node
}

// Config is how a node takes part.
type Config struct {
	// Self describes this node; its Instance and Started are set by Join.
	Self Node
	// Usage, when set, is called before each heartbeat.
	Usage func() Usage
	// Replicas is the replication of the bucket; zero means 1.
	Replicas int
	// Interval is the time between heartbeats; TTL how long a heartbeat
	// keeps a node a member. Zero means the defaults.
	Interval, TTL time.Duration
	Logger        *slog.Logger
}

// ErrDuplicateNode is returned by Join when another running node has the
// same ID.
var ErrDuplicateNode = errors.New("cluster: another running node has this node's name")

// Membership is this node's view of the cluster. It is safe for concurrent
// use.
type Membership struct {
	cfg  Config
	js   jetstream.JetStream
	log  *slog.Logger
	stop context.CancelFunc
	done sync.WaitGroup
	left sync.Once

	mu       sync.Mutex
	kv       jetstream.KeyValue // the bucket, made again if it is lost
	self     Node
	members  map[string]member // by ID, without this node
	watchers map[chan Event]struct{}
	// watch is the bucket's watch; it has delivered this node's own
	// heartbeat last at selfSeen, and started at watchStart.
	watch      jetstream.KeyWatcher
	selfSeen   time.Time
	watchStart time.Time
	// stored is when the last heartbeat the store took was sent.
	stored time.Time
}

// member is a node seen through its heartbeats.
type member struct {
	node     Node
	revision uint64    // of its last heartbeat
	seen     time.Time // when this node last heard of it, by its own clock
}

// watcherBuffer bounds the events waiting for one watcher; a watcher that
// falls further behind misses events (Members still tells the truth).
const watcherBuffer = 64

// Join makes this node a member: it writes its first heartbeat, loads the
// current members, and keeps both current until Close. It fails with
// ErrDuplicateNode when another running node heartbeats under the same ID.
func Join(ctx context.Context, js jetstream.JetStream, cfg Config) (*Membership, error) {
	if err := CheckNodeID(cfg.Self.ID); err != nil {
		return nil, err
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kv, err := openBucket(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	m := &Membership{cfg: cfg, js: js, kv: kv, log: cfg.Logger.With("part", "cluster"),
		members: map[string]member{}, watchers: map[chan Event]struct{}{}}
	m.self = cfg.Self
	m.self.Instance = uuid.NewString()
	m.self.Started = time.Now().UTC()
	if err := m.checkUnique(ctx); err != nil {
		return nil, err
	}
	if err := m.heartbeat(ctx); err != nil {
		return nil, fmt.Errorf("cluster: first heartbeat: %w", err)
	}
	bg, stop := context.WithCancel(context.Background())
	m.stop = stop
	if err := m.startWatch(ctx, bg); err != nil {
		stop()
		return nil, err
	}
	m.done.Add(1)
	go func() { defer m.done.Done(); m.beat(bg) }()
	return m, nil
}

// startWatch (re)starts the watch of the bucket, until bg ends: it loads
// the members as they are now, then follows their heartbeats. It returns
// once loaded, or when ctx ends.
func (m *Membership) startWatch(ctx, bg context.Context) error {
	w, err := m.bucket().WatchAll(bg)
	if err != nil {
		return fmt.Errorf("cluster: watch %s: %w", Bucket, err)
	}
	if err := m.loadInitial(ctx, w); err != nil {
		_ = w.Stop()
		return err
	}
	m.mu.Lock()
	old := m.watch
	m.watch, m.watchStart = w, time.Now()
	m.mu.Unlock()
	if old != nil {
		_ = old.Stop()
	}
	m.done.Add(1)
	go func() { defer m.done.Done(); m.follow(w) }()
	return nil
}

// watchStalled reports whether the watch has not delivered this node's own
// heartbeats for the TTL, although they were stored: a watch can stall for a
// long time after the cluster lost and regained its quorum.
func (m *Membership) watchStalled(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return now.Sub(m.selfSeen) > m.cfg.TTL && now.Sub(m.watchStart) > m.cfg.TTL
}

// openBucket creates the heartbeat bucket, or updates it to cfg.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.KeyValue, error) {
	kvCfg := jetstream.KeyValueConfig{
		Bucket:       Bucket,
		Description:  "heartbeats of the live nodes, by node name",
		History:      1,
		TTL:          cfg.TTL,
		MaxValueSize: maxHeartbeatBytes,
		MaxBytes:     maxBucketBytes,
		Storage:      jetstream.MemoryStorage,
		Replicas:     max(cfg.Replicas, 1),
		// Markers where entries expire let the watches see a node go; the
		// server keeps one for at least a second.
		LimitMarkerTTL: max(cfg.TTL, time.Second),
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, kvCfg)
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		// An older NATS server: nodes that die drop out when this node has
		// not heard of them for the TTL.
		kvCfg.LimitMarkerTTL = 0
		kv, err = js.CreateOrUpdateKeyValue(ctx, kvCfg)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// checkUnique fails when another running process heartbeats under this
// node's ID. A heartbeat of another instance that is still fresh may be
// that of this node's previous process, killed before its entry expired:
// if no new one comes within a few intervals, it is.
func (m *Membership) checkUnique(ctx context.Context) error {
	entry, err := m.bucket().Get(ctx, m.self.ID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: read %s: %w", m.self.ID, err)
	}
	if entry.Operation() != jetstream.KeyValuePut || time.Since(entry.Created()) > 2*m.cfg.Interval {
		return nil
	}
	watchCtx, cancel := context.WithTimeout(ctx, 3*m.cfg.Interval)
	defer cancel()
	w, err := m.bucket().Watch(watchCtx, m.self.ID, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("cluster: watch %s: %w", m.self.ID, err)
	}
	defer w.Stop()
	for {
		select {
		case e := <-w.Updates():
			if e == nil || e.Revision() <= entry.Revision() {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				return nil
			}
			return fmt.Errorf("%w (%q)", ErrDuplicateNode, m.self.ID)
		case <-watchCtx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		}
	}
}

// heartbeat writes this node's entry.
func (m *Membership) heartbeat(ctx context.Context) error {
	m.mu.Lock()
	if m.cfg.Usage != nil {
		u := m.cfg.Usage()
		m.self.MemoryInUseMB, m.self.MemoryBusyMB, m.self.MemoryEvictableMB = u.MemoryInUseMB, u.MemoryBusyMB, u.MemoryEvictableMB
		m.self.Environments = u.Environments
	}
	self, kv := m.self, m.kv
	m.mu.Unlock()
	data, err := json.Marshal(self)
	if err != nil {
		return err
	}
	sent := time.Now()
	if _, err = kv.Put(ctx, self.ID, data); err != nil {
		return err
	}
	m.mu.Lock()
	m.stored = sent
	m.mu.Unlock()
	return nil
}

// LastStored is when this node's last heartbeat that the store took was
// sent, by this node's clock. The other nodes count this node out a TTL
// after it: a node whose heartbeats have not been stored for nearly that
// long must act as if it were no longer a member.
func (m *Membership) LastStored() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stored
}

// TTL is how long a heartbeat keeps a node a member.
func (m *Membership) TTL() time.Duration { return m.cfg.TTL }

// bucket returns the heartbeat bucket.
func (m *Membership) bucket() jetstream.KeyValue {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.kv
}

// remakeBucket makes the heartbeat bucket again if it is gone (a single
// server's JetStream reopened to heal its storage loses the streams it kept
// in memory), and returns an error if it was not. The watch, which stopped
// with the bucket, is restarted when it is seen to have stalled.
func (m *Membership) remakeBucket(ctx context.Context) error {
	if _, err := m.js.KeyValue(ctx, Bucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
		return errors.New("cluster: the heartbeat bucket is there")
	}
	kv, err := openBucket(ctx, m.js, m.cfg)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.kv = kv
	m.mu.Unlock()
	m.log.Info("the heartbeat bucket was lost; made it again")
	return nil
}

// beat writes a heartbeat every interval until ctx ends.
func (m *Membership) beat(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := m.tend(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			m.log.Warn("heartbeats fail; other nodes will count this one out until they get through", "err", err)
			failing = true
		case err == nil && failing:
			m.log.Info("heartbeats get through again")
			failing = false
		}
		m.sweep(time.Now())
	}
}

// tend writes a heartbeat, making the bucket again if it was lost, and
// restarts the watch if it stalled. Each step is bounded by the TTL: a
// heartbeat later than that is of no use.
func (m *Membership) tend(ctx context.Context) error {
	step := func(do func(ctx context.Context) error) error {
		stepCtx, cancel := context.WithTimeout(ctx, m.cfg.TTL)
		defer cancel()
		return do(stepCtx)
	}
	err := step(m.heartbeat)
	if err != nil && step(m.remakeBucket) == nil {
		err = step(m.heartbeat)
	}
	if err == nil && m.watchStalled(time.Now()) {
		m.log.Info("restarting the watch of the nodes' heartbeats, which stalled")
		if werr := step(func(stepCtx context.Context) error { return m.startWatch(stepCtx, ctx) }); werr != nil && ctx.Err() == nil {
			m.log.Warn("cannot restart the watch of the nodes' heartbeats", "err", werr)
		}
	}
	return err
}

// loadInitial applies the entries the watch delivers first, the members
// as they are now.
func (m *Membership) loadInitial(ctx context.Context, w jetstream.KeyWatcher) error {
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return nil
			}
			m.apply(e, true)
		case <-ctx.Done():
			return fmt.Errorf("cluster: load members: %w", ctx.Err())
		}
	}
}

// follow applies what the watch sees until it ends.
func (m *Membership) follow(w jetstream.KeyWatcher) {
	for e := range w.Updates() {
		if e != nil {
			m.apply(e, false)
		}
	}
}

// apply records one entry of the bucket. An entry of the initial load is
// as old as the store says; one that arrives later is fresh.
func (m *Membership) apply(e jetstream.KeyValueEntry, initial bool) {
	id := e.Key()
	if id == m.self.ID {
		if e.Operation() == jetstream.KeyValuePut {
			m.mu.Lock()
			m.self.Heartbeat = e.Created()
			m.selfSeen = time.Now()
			m.mu.Unlock()
		}
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		m.remove(id, "stopped or expired")
		return
	}
	var n Node
	if err := json.Unmarshal(e.Value(), &n); err != nil || n.ID != id {
		m.log.Warn("unreadable heartbeat ignored", "key", id)
		return
	}
	n.Heartbeat = e.Created()
	seen := time.Now()
	if initial && e.Created().Before(seen) {
		seen = e.Created()
	}
	if time.Since(seen) > m.cfg.TTL {
		return
	}
	m.mu.Lock()
	old, known := m.members[id]
	if known && old.revision >= e.Revision() {
		// Seen already, through a watch that was replaced.
		m.mu.Unlock()
		return
	}
	m.members[id] = member{node: n, revision: e.Revision(), seen: seen}
	joined := !known || old.node.Instance != n.Instance
	if joined {
		// Told under the lock that changed the members, so that a watcher
		// that saw the members already hears of nothing older.
		if known {
			m.notifyLocked(Event{Kind: Left, Node: old.node})
		}
		m.notifyLocked(Event{Kind: Joined, Node: n})
	}
	m.mu.Unlock()
	if joined {
		m.log.Info("node joined", "node", id, "api", n.APIEndpoint)
	}
}

// sweep counts out the members not heard of for the TTL.
func (m *Membership) sweep(now time.Time) {
	m.mu.Lock()
	var gone []string
	for id, mb := range m.members {
		if now.Sub(mb.seen) > m.cfg.TTL {
			gone = append(gone, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		m.remove(id, "no heartbeat")
	}
}

// remove counts the node id out.
func (m *Membership) remove(id, why string) {
	m.mu.Lock()
	mb, known := m.members[id]
	delete(m.members, id)
	if known {
		m.notifyLocked(Event{Kind: Left, Node: mb.node})
	}
	m.mu.Unlock()
	if known {
		m.log.Info("node left", "node", id, "why", why)
	}
}

// notifyLocked sends ev to every watcher that has room for it; m.mu is
// held.
func (m *Membership) notifyLocked(ev Event) {
	for ch := range m.watchers {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Self is this node as its heartbeats describe it.
func (m *Membership) Self() Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.self
}

// Members returns the live nodes, this one included, ordered by ID.
func (m *Membership) Members() []Node {
	m.mu.Lock()
	nodes := []Node{m.self}
	for _, mb := range m.members {
		nodes = append(nodes, mb.node)
	}
	m.mu.Unlock()
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return nodes
}

// Replicas is the replication of the bucket, as Join was asked.
func (m *Membership) Replicas() int { return max(m.cfg.Replicas, 1) }

// Watch returns a channel that receives the joins and leaves of other
// nodes from now until ctx ends, when it is closed. A watcher that does not
// keep up misses events; Members always tells the truth.
func (m *Membership) Watch(ctx context.Context) <-chan Event {
	ch := make(chan Event, watcherBuffer)
	m.mu.Lock()
	m.watchers[ch] = struct{}{}
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		delete(m.watchers, ch)
		m.mu.Unlock()
		close(ch)
	}()
	return ch
}

// Close stops the heartbeats and removes this node's entry, so that the
// other nodes see it leave at once. Calls after the first do nothing.
func (m *Membership) Close(ctx context.Context) {
	m.left.Do(func() {
		m.stop()
		m.mu.Lock()
		_ = m.watch.Stop()
		m.mu.Unlock()
		m.done.Wait()
		if err := m.bucket().Delete(ctx, m.self.ID); err != nil {
			m.log.Warn("cannot remove this node's heartbeat; the others count it out when it expires", "err", err)
		}
	})
}
