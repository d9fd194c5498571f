// Package concurrency makes the concurrency limits — each function's
// reserved concurrency and the account's unreserved pool — hold across the
// nodes of a cluster, by leases of shares of each pool kept in the store.
//
// A pool's record (one key of the lamina_concurrency bucket) says how many
// shares each node holds. A node admits an invocation when it holds a share
// no invocation of it uses; otherwise it takes more shares from the pool
// with a compare-and-set of the record, which succeeds only if the shares
// held by the live nodes stay within the pool's capacity. So the shares held
// never exceed the capacity, and the invocations running never exceed the
// shares. A node keeps the shares it used in the last trimWindow (steady
// traffic costs no writes) and gives back the rest; a node that finds the
// pool taken asks the others (a NATS message) to give back what they hold
// unused at once, and looks again before it throttles. A node asked keeps,
// for a while, no more in use than its fair part of the pool (the capacity
// over the live nodes) and gives back each share it frees, so that nodes
// that all want more than the pool share it rather than the first keeping
// it. Shares of a node that restarted count as free at once, those of a
// node that is no longer a member once it has been out for ReclaimAfter; a
// node whose own heartbeats have not been stored for a while (Fresh) stops
// admitting, earlier than the others take its shares back, so that it
// never uses shares they have taken. A store that loses a leader for some
// seconds (a node killed) thus stops no node that holds the shares it
// uses.
package concurrency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/manager"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Bucket is the key-value bucket of the pools' records.
const Bucket = "lamina_concurrency"

// wantedSubject is where a node that finds a pool taken asks the others to
// give back what they do not use; the message is the pool's key.
const wantedSubject = "lamina.concurrency.wanted"

// Timings.
const (
	// trimWindow: a node keeps the most shares it used in the last window
	// and gives back the rest at its end.
	trimWindow = time.Second
	// contendWait is how long a node that found a pool taken waits for the
	// others to give back unused shares before it looks again.
	contendWait = 25 * time.Millisecond
	// exhaustedFor is how long a pool found taken, even after asking, is
	// taken as such: invocations beyond the node's shares are throttled
	// without asking the store again.
	exhaustedFor = 50 * time.Millisecond
	// casAttempts bounds the compare-and-set attempts of one change.
	casAttempts = 16
	// yieldWindows is how many trim windows a node asked for shares of a
	// pool shares it.
	yieldWindows = 2
	// wantedBuffer bounds the trims waiting to be done at once; beyond it
	// the window's trim does them.
	wantedBuffer = 256
	// absentMemory is how long past ReclaimAfter a member that went out is
	// remembered; maxAbsent bounds how many are.
	absentMemory = time.Minute
	maxAbsent    = 4096
)

// Bounds of the bucket: a record holds one entry per node.
const (
	maxRecordBytes = 64 << 10
	maxBucketBytes = 64 << 20
)

// Config is what the leases need.
type Config struct {
	// Node is this node's ID; Instance tells this process from the node's
	// earlier ones (cluster.Node.Instance).
	Node, Instance string
	// Members returns the live nodes' instances by node ID.
	Members func() map[string]string
	// ReclaimAfter is how long the shares of a node out of Members stay
	// its own; they count as free after (0: at once). It must be longer
	// than the time after which a node that is counted out stops admitting
	// (Fresh), counted from when the others count it out.
	ReclaimAfter time.Duration
	// Fresh reports whether this node's heartbeats are current enough for
	// it to be a member in the others' eyes.
	Fresh func() bool
	// Replicas is the bucket's replication.
	Replicas int
	Metrics  *Metrics
	Logger   *slog.Logger
}

// Leases counts invocations against the cluster-wide limits: a
// manager.Counter. It is safe for concurrent use.
type Leases struct {
	cfg Config
	kv  jetstream.KeyValue
	nc  *nats.Conn
	log *slog.Logger

	// window is trimWindow (tests shorten it).
	window time.Duration

	mu    sync.Mutex
	pools map[string]*pool
	// absent holds, by node and instance, when members went out (or
	// holders of shares were first seen out); lastLive are the members at
	// the last look.
	absent   map[memberKey]time.Time
	lastLive map[string]string
	// wanted are the pools to trim at once: asked for by others, or with a
	// share freed while yielding.
	wanted chan wantedTrim
}

// wantedTrim is a pool to trim at once; asked is set when another node
// asked for its shares.
type wantedTrim struct {
	key   string
	asked bool
}

// pool is this node's side of one pool.
type pool struct {
	key string
	// inUse counts this node's invocations in the pool; held the shares
	// it holds; peak the most in use in the current trim window.
	inUse, held, peak int
	// capacity is the pool's limit, as last asked; overTaken is set when
	// the record showed more shares held than that.
	capacity  int
	overTaken bool
	// acquiring is closed when the acquisition under way ends; waiting
	// counts the Takes that wait for it.
	acquiring chan struct{}
	waiting   int
	// exhaustedUntil: the pool was found taken; Takes beyond the shares
	// held are throttled until then.
	exhaustedUntil time.Time
	// yieldUntil: another node asked for shares of the pool; until then
	// this node admits no more than fair at once, so that the shares it
	// frees go back to the pool and the nodes share it.
	yieldUntil time.Time
	fair       int
	// trimQueued is set while a trim of the pool waits in wanted.
	trimQueued bool
}

// record is a pool's entry in the bucket.
type record struct {
	Holders map[string]holding `json:"holders"`
}

// holding is what one node holds of a pool.
type holding struct {
	Instance string `json:"instance"`
	Shares   int    `json:"shares"`
}

// Open opens (creating it if need be) the bucket of the pools' records on
// js, and returns the leases, which send and take their requests for
// shares on nc. Run must run for unused shares to be given back.
func Open(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, cfg Config) (*Leases, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	replicas := max(cfg.Replicas, 1)
	_, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:       Bucket,
			Description:  "shares of the concurrency limits each node holds, by pool",
			History:      1,
			MaxValueSize: maxRecordBytes,
			MaxBytes:     maxBucketBytes,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			err = nil
		}
	}
	if err == nil {
		err = store.ReadFromLeader(ctx, js, "KV_"+Bucket, func(c *jetstream.StreamConfig) { c.Replicas = replicas })
	}
	var kv jetstream.KeyValue
	if err == nil {
		kv, err = js.KeyValue(ctx, Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("concurrency: bucket %s: %w", Bucket, err)
	}
	return &Leases{cfg: cfg, kv: kv, nc: nc, log: cfg.Logger.With("part", "concurrency"), window: trimWindow,
		pools: map[string]*pool{}, absent: map[memberKey]time.Time{}, wanted: make(chan wantedTrim, wantedBuffer)}, nil
}

var _ manager.Counter = (*Leases)(nil)

// keyOf is a pool's key in the bucket.
func keyOf(p manager.Pool) string {
	if p.Function == "" {
		return "account"
	}
	return "function." + p.Function
}

// errNotFresh is Take's error while this node's heartbeats are not being
// stored: the others may count it out and take its shares.
var errNotFresh = lamina.ErrService("This node cannot reach the cluster's store: its invocations cannot be counted against the concurrency limits. Retry through another node.")

// Take counts one invocation into the pool, taking a share from the store
// when this node has none unused, as manager.Counter promises.
func (l *Leases) Take(ctx context.Context, p manager.Pool, capacity int) (func(), bool, error) {
	if !l.cfg.Fresh() {
		return nil, false, errNotFresh
	}
	key := keyOf(p)
	l.mu.Lock()
	pl := l.pools[key]
	if pl == nil {
		pl = &pool{key: key}
		l.pools[key] = pl
	}
	pl.capacity = capacity
	for {
		if pl.inUse >= capacity {
			l.mu.Unlock()
			return nil, false, nil
		}
		if pl.inUse < pl.held && (pl.inUse < pl.fair || time.Now().After(pl.yieldUntil)) {
			pl.inUse++
			pl.peak = max(pl.peak, pl.inUse)
			l.mu.Unlock()
			return l.releaser(pl), true, nil
		}
		if pl.inUse < pl.held || time.Now().Before(pl.exhaustedUntil) {
			// Yielding to other nodes, or the pool was just found taken.
			l.mu.Unlock()
			return nil, false, nil
		}
		if ch := pl.acquiring; ch != nil {
			pl.waiting++
			l.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				l.mu.Lock()
				pl.waiting--
				l.mu.Unlock()
				return nil, false, ctx.Err()
			}
			l.mu.Lock()
			pl.waiting--
			continue
		}
		ch := make(chan struct{})
		pl.acquiring = ch
		want := 1 + pl.waiting + pl.held/2 // what waits, and room to grow
		held := pl.held
		l.mu.Unlock()
		nowHeld, err := l.acquire(ctx, key, capacity, held, want)
		l.mu.Lock()
		pl.acquiring = nil
		close(ch)
		if err != nil {
			l.mu.Unlock()
			return nil, false, err
		}
		if nowHeld <= pl.inUse {
			pl.exhaustedUntil = time.Now().Add(exhaustedFor)
		}
		pl.held = nowHeld
	}
}

// releaser returns the func that counts an invocation out of pl. While
// this node yields the pool to others, the freed share goes back at once.
func (l *Leases) releaser(pl *pool) func() {
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		pl.inUse--
		if time.Now().Before(pl.yieldUntil) {
			l.queueTrim(pl)
		}
	}
}

// queueTrim asks Run to trim pl to what it uses now, unless it was asked
// already. The caller holds l.mu.
func (l *Leases) queueTrim(pl *pool) {
	if pl.trimQueued {
		return
	}
	select {
	case l.wanted <- wantedTrim{key: pl.key}:
		pl.trimQueued = true
	default: // the window's trim gives it back
	}
}

// acquire takes up to want more shares of the pool key for this node, which
// holds held, and returns how many it holds now. When the pool has none
// free it asks the others to give back unused shares, and looks once more
// after contendWait.
func (l *Leases) acquire(ctx context.Context, key string, capacity, held, want int) (int, error) {
	grant := func(mine, others int) int { return mine + max(0, min(want, capacity-others-mine)) }
	for asked := false; ; asked = true {
		now, err := l.change(ctx, key, grant, held)
		if errors.Is(err, errContended) {
			// Other nodes are taking and giving back shares of this pool
			// right now: none for this node this time, which throttles the
			// invocation with the pool's reason, as a taken pool does.
			return held, nil
		}
		if err != nil {
			return held, err
		}
		if now > held {
			l.cfg.Metrics.writes.WithLabelValues("acquire").Inc()
			return now, nil
		}
		if asked {
			return now, nil
		}
		// Taken: ask the others for what they do not use, and look again.
		l.cfg.Metrics.contended.Inc()
		if err := l.nc.Publish(wantedSubject, []byte(key)); err != nil {
			return now, nil
		}
		select {
		case <-time.After(contendWait):
		case <-ctx.Done():
			return now, ctx.Err()
		}
		held = now
	}
}

// change sets what this node holds of the pool key to what decide says,
// given what it holds (mine: what the record says, but at most held, what
// this node believes it holds — shares the others took back while it was
// counted out are gone) and what the live others hold. It writes the
// record only when that differs from it, retrying on conflicts (up to
// casAttempts, then errContended), and returns what this node holds after.
func (l *Leases) change(ctx context.Context, key string, decide func(mine, others int) int, held int) (int, error) {
	for range casAttempts {
		rec := record{Holders: map[string]holding{}}
		var revision uint64
		entry, err := l.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return held, l.storeErr(err)
		default:
			revision = entry.Revision()
			if err := json.Unmarshal(entry.Value(), &rec); err != nil || rec.Holders == nil {
				rec = record{Holders: map[string]holding{}}
			}
		}
		live := l.cfg.Members()
		recorded, others := 0, 0
		for node, h := range rec.Holders {
			switch {
			case node == l.cfg.Node:
				if h.Instance == l.cfg.Instance {
					recorded = h.Shares
				}
			case l.holds(node, h, live):
				others += h.Shares
			default:
				delete(rec.Holders, node) // a node gone, or restarted: it holds nothing
			}
		}
		mine := min(recorded, held)
		if mine < held {
			l.log.Warn("shares this node held were taken back (it was counted out)", "pool", key, "held", held, "recorded", recorded)
		}
		l.overTaken(key, mine+others)
		want := decide(mine, others)
		if want == recorded {
			return want, nil
		}
		if want > 0 {
			rec.Holders[l.cfg.Node] = holding{Instance: l.cfg.Instance, Shares: want}
		} else {
			delete(rec.Holders, l.cfg.Node)
		}
		data, _ := json.Marshal(&rec)
		if revision == 0 {
			_, err = l.kv.Create(ctx, key, data)
		} else {
			_, err = l.kv.Update(ctx, key, data, revision)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			l.cfg.Metrics.writes.WithLabelValues("conflict").Inc()
			continue
		}
		if err != nil {
			return held, l.storeErr(err)
		}
		return want, nil
	}
	return held, errContended
}

// errContended says that the record of a pool kept changing under this
// node's writes, casAttempts times: the pool is as contended as it gets.
var errContended = errors.New("concurrency: the pool's record is changed by too many nodes at once")

// holds reports whether node still holds what its entry h of a record says:
// while it is a member, and for ReclaimAfter after it went out of the
// members (or was first seen out of them), unless it runs again as another
// instance.
func (l *Leases) holds(node string, h holding, live map[string]string) bool {
	if instance, member := live[node]; member {
		return instance == h.Instance // else restarted: its earlier process holds nothing
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key := memberKey{node, h.Instance}
	since, seen := l.absent[key]
	if !seen {
		since = time.Now()
		l.noteAbsentLocked(key, since)
	}
	return time.Since(since) < l.cfg.ReclaimAfter
}

// memberKey is one process of a node.
type memberKey struct{ node, instance string }

// noteMembers records when the nodes that were members at the last call
// went out, and forgets what is long past. Run calls it every window.
func (l *Leases) noteMembers() {
	live := l.cfg.Members()
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for node, instance := range l.lastLive {
		if live[node] != instance {
			l.noteAbsentLocked(memberKey{node, instance}, now)
		}
	}
	for key, since := range l.absent {
		if now.Sub(since) > absentMemory+l.cfg.ReclaimAfter {
			delete(l.absent, key)
		}
	}
	l.lastLive = live
}

// noteAbsentLocked records that key went out of the members at since,
// within the bound of the record. The caller holds l.mu.
func (l *Leases) noteAbsentLocked(key memberKey, since time.Time) {
	if _, seen := l.absent[key]; !seen && len(l.absent) < maxAbsent {
		l.absent[key] = since
	}
}

// overTaken records whether the record of a pool shows more shares held
// than its capacity (it was lowered): then this node keeps no spare.
func (l *Leases) overTaken(key string, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pl := l.pools[key]; pl != nil {
		pl.overTaken = total > pl.capacity
	}
}

// storeErr turns a failure of the store into the error a caller gets.
func (l *Leases) storeErr(err error) error {
	l.log.Warn("the concurrency pools cannot be read or written", "err", err)
	return lamina.ErrService("The concurrency limits cannot be counted: the cluster's store is unavailable (%v). Retry later.", err)
}

// Run gives back the shares this node does not use — every trimWindow
// those beyond the most it used in the window, and at once all it does not
// use of a pool another node asks for — until ctx ends, then gives back
// every unused share.
func (l *Leases) Run(ctx context.Context) {
	sub, err := l.nc.Subscribe(wantedSubject, func(msg *nats.Msg) {
		select {
		case l.wanted <- wantedTrim{key: string(msg.Data), asked: true}:
		default: // the window's trim gives them back
		}
	})
	if err != nil {
		l.log.Error("cannot hear other nodes ask for shares; unused shares are given back every window only", "err", err)
	} else {
		defer sub.Unsubscribe()
	}
	t := time.NewTicker(l.window)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			l.trimAll(stopCtx, true)
			cancel()
			return
		case w := <-l.wanted:
			if w.asked {
				l.yield(w.key)
			}
			l.trim(ctx, w.key, true)
		case <-t.C:
			l.noteMembers()
			l.trimAll(ctx, false)
		}
	}
}

// yield makes this node share the pool key with the others that ask for
// it: for yieldWindows windows it admits no more than its fair part of the
// capacity (by the live nodes) at once, and gives back every share it does
// not use.
func (l *Leases) yield(key string) {
	live := len(l.cfg.Members())
	l.mu.Lock()
	defer l.mu.Unlock()
	pl := l.pools[key]
	if pl == nil || pl.held == 0 {
		return
	}
	pl.fair = (pl.capacity + live - 1) / max(live, 1)
	pl.yieldUntil = time.Now().Add(yieldWindows * l.window)
}

// trimAll trims every pool; it forgets the pools this node neither uses
// nor holds.
func (l *Leases) trimAll(ctx context.Context, all bool) {
	l.mu.Lock()
	keys := make([]string, 0, len(l.pools))
	for key, pl := range l.pools {
		if pl.inUse == 0 && pl.held == 0 && pl.acquiring == nil && pl.peak == 0 {
			delete(l.pools, key)
			continue
		}
		keys = append(keys, key)
	}
	l.mu.Unlock()
	for _, key := range keys {
		l.trim(ctx, key, all)
	}
}

// trim gives back the shares of pool key beyond what this node needs:
// what it uses now when all is set (or the pool is over its capacity), else
// the most it used in the window that ends.
func (l *Leases) trim(ctx context.Context, key string, all bool) {
	l.mu.Lock()
	pl := l.pools[key]
	if pl == nil || pl.acquiring != nil {
		l.mu.Unlock()
		return
	}
	target := max(pl.peak, pl.inUse)
	if all || pl.overTaken || time.Now().Before(pl.yieldUntil) {
		target = pl.inUse
	}
	pl.peak = pl.inUse
	pl.trimQueued = false
	held := pl.held
	ch := make(chan struct{})
	pl.acquiring = ch // no acquisition meanwhile
	l.mu.Unlock()
	now := held
	if target < held {
		var err error
		if now, err = l.change(ctx, key, func(mine, _ int) int { return min(mine, target) }, held); err != nil {
			now = held
		} else if now < held {
			l.cfg.Metrics.writes.WithLabelValues("give-back").Inc()
		}
	}
	l.mu.Lock()
	pl.acquiring = nil
	pl.held = now
	close(ch)
	l.mu.Unlock()
}

// Metrics count the leases' traffic with the store.
type Metrics struct {
	writes    *prometheus.CounterVec
	contended prometheus.Counter
}

// NewMetrics creates the counters and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_concurrency_store_writes_total",
			Help: "Writes of concurrency shares to the store: acquire, give-back, conflict (a compare-and-set lost to another node).",
		}, []string{"kind"}),
		contended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lamina_concurrency_contended_total",
			Help: "Times this node found a concurrency pool taken and asked the others for unused shares.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.writes, m.contended)
	}
	return m
}
