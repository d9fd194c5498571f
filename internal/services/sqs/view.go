package sqs

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A view is one node's picture of a queue, from which it chooses the
// messages a receive claims. It follows two streams with ordered consumers
// (ephemeral, cheap): the queue's messages (headers only) and their
// receive states. What it holds may lag what another node just did; that
// is safe, because every change of a message's state is a compare-and-set
// on the state stream (see claim.go): a view that chose a message another
// node has claimed loses the race and learns the message's state. A view
// is loaded when a node first serves its queue, and dropped after it has
// been idle for a while.

// state is a message's receive state, the last entry on its subject in the
// state stream (lamina.sqs.s.<queue id>.<message seq>). A message never
// received has none.
type state struct {
	// Claim is the nonce of the last receive, which its receipt handle
	// carries.
	Claim string `json:"c,omitempty"`
	// Count is ApproximateReceiveCount.
	Count int `json:"n,omitempty"`
	// First and Claimed are unix ms of the first and last receive.
	First   int64 `json:"f,omitempty"`
	Claimed int64 `json:"r,omitempty"`
	// Until is when (unix ms) the message becomes visible again.
	Until int64 `json:"u,omitempty"`
	// Deleted marks a deleted message (a tombstone, which expires).
	Deleted bool `json:"d,omitempty"`
}

// entry is one message in a view.
type entry struct {
	seq            uint64
	sent, visible  int64 // unix ms; visible > sent for a delayed message
	expires        int64 // unix ms its retention ends
	size           int
	group, dedup   string
	sender, source string
	msgID          string // a moved message's original id; "" means derived
	st             state
	rev            uint64 // state stream sequence of st; 0 when never received
	busy           bool   // a receive on this node is claiming it
	inReady        bool   // it is in the ready heap
}

// availableAt is when the message can be received.
func (e *entry) availableAt() int64 { return max(e.visible, e.st.Until) }

// seqHeap orders messages by sequence: oldest first.
type seqHeap []uint64

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// timed is a message that becomes receivable at a time.
type timed struct {
	at  int64
	seq uint64
}

// timeHeap orders messages by when they become receivable.
type timeHeap []timed

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(timed)) }
func (h *timeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// stateAt is a state seen before its message.
type stateAt struct {
	st  state
	rev uint64
}

type view struct {
	s    *Service
	id   string // the queue's ID
	name string
	fifo bool

	ctx     context.Context // the followers'
	cancel  context.CancelFunc
	loaded  chan struct{}      // closed once both followers caught up (or failed)
	msgCons jetstream.Consumer // the messages' follower, set before loaded is closed

	mu      sync.Mutex
	entries map[uint64]*entry
	ready   seqHeap  // receivable now (lazily: checked when popped)
	waiting timeHeap // receivable later (lazily: checked when popped)
	groups  map[string][]uint64
	early   map[uint64]stateAt // states of messages the view has not seen yet
	msgPos  uint64             // the last message sequence the follower delivered
	purged  uint64             // messages up to this sequence were purged
	changed chan struct{}      // closed and replaced when messages may have become receivable
	polls   int                // long polls waiting on this view
	lastUse time.Time
	err     error // why the view stopped following; it must be loaded again
}

func newView(s *Service, q *queueRecord) *view {
	ctx, cancel := context.WithCancel(s.ctx)
	return &view{s: s, id: q.ID, name: q.Name, fifo: q.FIFO, ctx: ctx, cancel: cancel, loaded: make(chan struct{}),
		entries: map[uint64]*entry{}, groups: map[string][]uint64{}, early: map[uint64]stateAt{},
		purged: q.PurgedThrough, changed: make(chan struct{}), lastUse: time.Now()}
}

// Subjects of a queue's messages and of its messages' states.
func messagesSubject(queueID string) string { return messagesPrefix + queueID }
func statesFilter(queueID string) string    { return statesPrefix + queueID + ".*" }
func stateSubject(queueID string, seq uint64) string {
	return statesPrefix + queueID + "." + strconv.FormatUint(seq, 10)
}

// load starts both followers and returns once they have caught up with
// the streams: the states first, so that messages arrive with theirs.
func (v *view) load() error {
	defer close(v.loaded)
	_, err := v.follow(v.s.states, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{statesFilter(v.id)}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	}, v.applyStateMsg)
	if err == nil {
		v.msgCons, err = v.follow(v.s.messages, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{messagesSubject(v.id)}, HeadersOnly: true,
		}, v.applyMessage)
	}
	if err != nil {
		v.fail(err)
	}
	return err
}

// loadTimeout bounds how long loading a view may take before a request
// that waits for it fails (the load goes on).
const loadTimeout = 30 * time.Second

// follow consumes stream through an ordered consumer until the view is
// closed, applying each message, and returns once it has applied every
// message the stream held when it started.
func (v *view) follow(stream jetstream.Stream, cfg jetstream.OrderedConsumerConfig, apply func(jetstream.Msg)) (jetstream.Consumer, error) {
	cons, err := stream.OrderedConsumer(v.ctx, cfg)
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return nil, err
	}
	caughtUp := make(chan struct{})
	var once sync.Once
	done := func() { once.Do(func() { close(caughtUp) }) }
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		done()
	}
	var applied uint64 // the last stream sequence applied, for the fallback below
	var appliedMu sync.Mutex
	go func() {
		<-v.ctx.Done()
		it.Stop()
	}()
	go func() {
		for {
			msg, err := it.Next()
			if err != nil {
				if v.ctx.Err() == nil {
					v.fail(fmt.Errorf("sqs: following %s: %w", cfg.FilterSubjects[0], err))
				}
				done()
				return
			}
			apply(msg)
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			appliedMu.Lock()
			applied = md.Sequence.Stream
			appliedMu.Unlock()
			if md.NumPending == 0 {
				done()
			}
		}
	}()
	// Should the last messages pending at the start be deleted before they
	// are delivered, no message says it is the last: ask the server.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(loadTimeout)
	for {
		select {
		case <-caughtUp:
			return cons, v.err0()
		case <-v.ctx.Done():
			return nil, v.ctx.Err()
		case <-deadline:
			return nil, errors.New("sqs: loading the queue took too long")
		case <-tick.C:
			ctx, cancel := context.WithTimeout(v.ctx, 5*time.Second)
			info, err := cons.Info(ctx)
			cancel()
			appliedMu.Lock()
			upToDate := err == nil && info.NumPending == 0 && applied >= info.Delivered.Stream
			appliedMu.Unlock()
			if upToDate {
				done()
			}
		}
	}
}

// err0 returns why the view failed, or nil.
func (v *view) err0() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// fail stops the view: the next request loads the queue again.
func (v *view) fail(err error) {
	v.mu.Lock()
	if v.err == nil {
		v.err = err
	}
	v.signal()
	v.mu.Unlock()
	v.cancel()
}

// close stops the followers.
func (v *view) close() { v.fail(errViewClosed) }

var errViewClosed = errors.New("sqs: view closed")

// applyMessage adds a message the follower delivered.
func (v *view) applyMessage(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	e := entryFromHeaders(md.Sequence.Stream, msg.Headers())
	v.mu.Lock()
	defer v.mu.Unlock()
	v.msgPos = max(v.msgPos, e.seq)
	v.insert(e, time.Now().UnixMilli())
}

// entryFromHeaders makes an entry of a message's headers.
func entryFromHeaders(seq uint64, h map[string][]string) *entry {
	e := &entry{seq: seq}
	e.sent, e.visible, e.expires, e.group, e.dedup, e.sender, e.msgID, e.source = messageHeaders(h)
	if sizes := h[hdrSize]; len(sizes) > 0 {
		e.size, _ = strconv.Atoi(sizes[0])
	}
	return e
}

// applyStateMsg applies a state the follower delivered.
func (v *view) applyStateMsg(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	subject := msg.Subject()
	seq, err := strconv.ParseUint(subject[strings.LastIndexByte(subject, '.')+1:], 10, 64)
	if err != nil {
		return
	}
	var st state
	if json.Unmarshal(msg.Data(), &st) != nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.setState(seq, st, md.Sequence.Stream, time.Now().UnixMilli())
}

// The methods below run with v.mu held.

// insert adds a message, unless the view has it or it was purged.
func (v *view) insert(e *entry, now int64) {
	if e.seq <= v.purged || v.entries[e.seq] != nil {
		return
	}
	if early, ok := v.early[e.seq]; ok {
		delete(v.early, e.seq)
		if early.st.Deleted {
			return
		}
		e.st, e.rev = early.st, early.rev
	}
	v.entries[e.seq] = e
	if v.fifo {
		g := v.groups[e.group]
		i, _ := slices.BinarySearch(g, e.seq)
		v.groups[e.group] = slices.Insert(g, i, e.seq)
	}
	v.place(e, now)
	v.signal()
}

// setState records a message's state at rev, unless the view knows a newer
// one.
func (v *view) setState(seq uint64, st state, rev uint64, now int64) {
	e := v.entries[seq]
	if e == nil {
		// A state of a message the follower has not delivered yet waits for
		// it; one whose message it passed belongs to a message gone.
		if seq > v.purged && seq > v.msgPos && rev > v.early[seq].rev {
			v.early[seq] = stateAt{st, rev}
		}
		return
	}
	if rev <= e.rev {
		return
	}
	if st.Deleted {
		v.remove(seq)
		return
	}
	e.st, e.rev = st, rev
	v.place(e, now)
	v.signal()
}

// remove forgets a message.
func (v *view) remove(seq uint64) {
	e := v.entries[seq]
	if e == nil {
		return
	}
	delete(v.entries, seq)
	if v.fifo {
		g := v.groups[e.group]
		if i, ok := slices.BinarySearch(g, seq); ok {
			g = slices.Delete(g, i, i+1)
		}
		if len(g) == 0 {
			delete(v.groups, e.group)
		} else {
			v.groups[e.group] = g
		}
	}
	// A FIFO group may be free again.
	v.signal()
}

// place puts a message in the heap of when it can be received.
func (v *view) place(e *entry, now int64) {
	if e.busy {
		return
	}
	if at := e.availableAt(); at > now {
		heap.Push(&v.waiting, timed{at, e.seq})
	} else if !e.inReady {
		e.inReady = true
		heap.Push(&v.ready, e.seq)
	}
}

// signal wakes the long polls waiting on the view.
func (v *view) signal() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// promote moves the messages that have become receivable to the ready heap.
func (v *view) promote(now int64) {
	for len(v.waiting) > 0 && v.waiting[0].at <= now {
		t := heap.Pop(&v.waiting).(timed)
		if e := v.entries[t.seq]; e != nil {
			v.place(e, now)
		}
	}
}

// next returns when the earliest waiting message becomes receivable, or 0.
func (v *view) next() int64 {
	if len(v.waiting) == 0 {
		return 0
	}
	return v.waiting[0].at
}

// purge drops the messages a PurgeQueue removed.
func (v *view) purge(through uint64) {
	if through <= v.purged {
		return
	}
	v.purged = through
	for seq := range v.entries {
		if seq <= through {
			v.remove(seq)
		}
	}
	for seq := range v.early {
		if seq <= through {
			delete(v.early, seq)
		}
	}
}

// groupBlocked reports whether a FIFO group has a message in flight, or
// being claimed here: the messages of a group are received in order, so
// those received are the group's first.
func (v *view) groupBlocked(group string, now int64) bool {
	for _, seq := range v.groups[group] {
		e := v.entries[seq]
		if e.busy || e.st.Until > now {
			return true
		}
		if e.st.Count == 0 {
			return false
		}
	}
	return false
}

// pick chooses up to n receivable messages, oldest first, and marks them
// busy; for a FIFO queue, only from groups with nothing in flight, each
// group's messages in order.
func (v *view) pick(n int, now int64) []*entry {
	v.promote(now)
	var picked, aside []*entry
	chosen := map[string][]uint64{} // FIFO: the messages picked of each group
	blocked := map[string]bool{}
	for len(picked) < n && len(v.ready) > 0 {
		seq := heap.Pop(&v.ready).(uint64)
		e := v.entries[seq]
		if e == nil || !e.inReady {
			continue
		}
		e.inReady = false
		if e.busy {
			continue
		}
		if e.availableAt() > now {
			v.place(e, now)
			continue
		}
		if v.fifo {
			if blocked[e.group] || (chosen[e.group] == nil && v.groupBlocked(e.group, now)) || !v.nextInGroup(e, chosen[e.group]) {
				blocked[e.group] = true
				aside = append(aside, e)
				continue
			}
			chosen[e.group] = append(chosen[e.group], e.seq)
		}
		picked = append(picked, e)
	}
	for _, e := range aside {
		e.inReady = true
		heap.Push(&v.ready, e.seq)
	}
	for _, e := range picked {
		e.busy = true
	}
	return picked
}

// nextInGroup reports whether e is its group's first message after those
// already picked.
func (v *view) nextInGroup(e *entry, picked []uint64) bool {
	g := v.groups[e.group]
	return len(g) > len(picked) && g[len(picked)] == e.seq
}

// counts returns how many messages are receivable, in flight and delayed.
func (v *view) counts(now int64) (visible, inFlight, delayed int) {
	for _, e := range v.entries {
		switch {
		case e.visible > now:
			delayed++
		case e.busy || e.st.Until > now:
			inFlight++
		default:
			visible++
		}
	}
	return
}

// expired returns the messages whose retention (retention seconds, as the
// queue says now) has ended, and forgets them.
func (v *view) expired(now int64, retention int) []uint64 {
	var gone []uint64
	for seq, e := range v.entries {
		if (e.expires > 0 && e.expires <= now) || e.sent+int64(retention)*1000 <= now {
			gone = append(gone, seq)
			v.remove(seq)
		}
	}
	for seq := range v.early {
		if seq <= v.msgPos {
			delete(v.early, seq)
		}
	}
	return gone
}
