package eventsource

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/eventpattern"
	"github.com/lamina-project/lamina/internal/services/kinesis"
	"github.com/lamina-project/lamina/internal/services/sqs"
	"github.com/lamina-project/lamina/internal/store"
)

// Kinesis is the Kinesis streams of this node's stream service as event
// sources, polled as Lambda polls them:
//
//   - every shard is read in order from its checkpoint (or the mapping's
//     StartingPosition the first time); with ParallelizationFactor N a
//     shard's records are spread over N lanes by partition key, each lane
//     in order, so that a key's records stay in order;
//   - a lane collects a batch (BatchSize records within
//     MaximumBatchingWindowInSeconds and 6 MB; with TumblingWindowInSeconds
//     never across a window) and invokes the function, one batch at a time;
//   - a failed batch is tried again, blocking its lane, until it succeeds,
//     MaximumRetryAttempts are spent or its oldest record passes
//     MaximumRecordAgeInSeconds; with BisectBatchOnFunctionError it is
//     halved first (halving is no retry), with ReportBatchItemFailures it
//     resumes from the lowest sequence number reported. What is given up
//     on goes to DestinationConfig.OnFailure (an SQS queue) as Lambda's
//     on-failure record; throttles are tried again without end;
//   - the checkpoint — the first record of the shard not yet done, and the
//     tumbling windows' state — is stored after every batch, so a node
//     that stops (or is killed) resumes there: records may be delivered
//     again, none is skipped.
type Kinesis struct {
	Streams           *kinesis.Service
	Queues            *sqs.Service
	Region, AccountID string
	Logger            *slog.Logger

	checkpoints *store.Table[checkpoint]
}

// checkpointsBucket holds the shards' checkpoints by mapping and shard;
// part of the on-disk format.
const checkpointsBucket = "lamina_stream_checkpoints"

// NewKinesis opens the checkpoints' bucket.
func NewKinesis(ctx context.Context, st *store.Store, k Kinesis) (*Kinesis, error) {
	t, err := store.OpenTable[checkpoint](ctx, st, checkpointsBucket, "stream checkpoint")
	if err != nil {
		return nil, fmt.Errorf("stream checkpoints: %w", err)
	}
	k.checkpoints = t
	return &k, nil
}

// checkpoint is where a mapping stands in a shard.
type checkpoint struct {
	// Seq is the position of the first record not yet done.
	Seq uint64
	// Windows are the lanes' tumbling windows, by lane.
	Windows map[int]*tumblingWindow `json:",omitempty"`
}

// tumblingWindow is a lane's current window and the state the function
// returned in it.
type tumblingWindow struct {
	Start int64 // unix ms
	State json.RawMessage
}

// Bounds and defaults of stream mappings, Lambda's.
const (
	defaultStreamBatchSize = 100
	maxParallelization     = 10
	maxRetryAttempts       = 10000
	minRecordAge           = 60
	maxRecordAge           = 604800
	maxTumblingWindow      = 900
	// retryBackoff bounds the wait between tries of a failed batch.
	minRetryBackoff, maxRetryBackoff = 100 * time.Millisecond, 10 * time.Second
	// streamCheckEvery is how often a poller checks that its stream is
	// still there.
	streamCheckEvery = 10 * time.Second
)

// Owns reports whether arn names a stream.
func (k *Kinesis) Owns(arn string) bool { return strings.HasPrefix(arn, "arn:aws:kinesis:") }

// Prepare checks a stream mapping's parameters and fills in its defaults.
func (k *Kinesis) Prepare(ctx context.Context, m *Mapping, in *Input, fn *lamina.Function) error {
	for name, given := range map[string]bool{
		"ScalingConfig": in.ScalingConfig != nil, "Topics": len(in.Topics) > 0, "Queues": len(in.Queues) > 0,
		"SourceAccessConfigurations": len(in.SourceAccessConfigurations) > 0, "SelfManagedEventSource": len(in.SelfManagedEventSource) > 0,
	} {
		if given {
			return invalid("Unsupported %s parameter for Kinesis event sources.", name)
		}
	}
	if _, err := k.Streams.StreamByARN(ctx, m.EventSourceArn); err != nil {
		if errors.Is(err, kinesis.ErrStreamNotFound) {
			return invalid("Stream not found: %s", m.EventSourceArn)
		}
		return err
	}
	if p := in.StartingPosition; p != nil {
		if m.StartingPosition != "" && m.StartingPosition != *p {
			return invalid("The StartingPosition of a mapping cannot be changed.")
		}
		switch *p {
		case "TRIM_HORIZON", "LATEST":
		case "AT_TIMESTAMP":
			if in.StartingPositionTimestamp == nil {
				return invalid("StartingPositionTimestamp is required when StartingPosition is AT_TIMESTAMP.")
			}
			m.StartingPositionTimestamp = in.StartingPositionTimestamp
		default:
			return invalid("Unsupported starting position %s: it must be TRIM_HORIZON, LATEST or AT_TIMESTAMP.", *p)
		}
		m.StartingPosition = *p
	}
	if m.StartingPosition == "" {
		return invalid("1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null")
	}
	if m.BatchSize == 0 {
		m.BatchSize = defaultStreamBatchSize
	}
	if m.MaximumBatchingWindowInSeconds == nil {
		zero := 0
		m.MaximumBatchingWindowInSeconds = &zero
	}
	if f := in.ParallelizationFactor; f != nil {
		if *f < 1 || *f > maxParallelization {
			return invalid("ParallelizationFactor must be between 1 and %d.", maxParallelization)
		}
		m.ParallelizationFactor = *f
	}
	if m.ParallelizationFactor == 0 {
		m.ParallelizationFactor = 1
	}
	if b := in.BisectBatchOnFunctionError; b != nil {
		m.BisectBatchOnFunctionError = b
	}
	if m.BisectBatchOnFunctionError == nil {
		no := false
		m.BisectBatchOnFunctionError = &no
	}
	if r := in.MaximumRetryAttempts; r != nil {
		if *r < -1 || *r > maxRetryAttempts {
			return invalid("MaximumRetryAttempts must be between -1 and %d.", maxRetryAttempts)
		}
		m.MaximumRetryAttempts = r
	}
	if m.MaximumRetryAttempts == nil {
		infinite := -1
		m.MaximumRetryAttempts = &infinite
	}
	if a := in.MaximumRecordAgeInSeconds; a != nil {
		if *a != -1 && (*a < minRecordAge || *a > maxRecordAge) {
			return invalid("MaximumRecordAgeInSeconds must be -1 or between %d and %d.", minRecordAge, maxRecordAge)
		}
		m.MaximumRecordAgeInSeconds = a
	}
	if m.MaximumRecordAgeInSeconds == nil {
		infinite := -1
		m.MaximumRecordAgeInSeconds = &infinite
	}
	if w := in.TumblingWindowInSeconds; w != nil {
		if *w < 0 || *w > maxTumblingWindow {
			return invalid("TumblingWindowInSeconds must be between 0 and %d.", maxTumblingWindow)
		}
		m.TumblingWindowInSeconds = w
		if *w == 0 {
			m.TumblingWindowInSeconds = nil
		}
	}
	if len(in.DestinationConfig) > 0 {
		var dc DestinationConfig
		if err := json.Unmarshal(in.DestinationConfig, &dc); err != nil {
			return invalid("Invalid DestinationConfig: %v.", err)
		}
		m.DestinationConfig = nil
		if dc.OnFailure != nil && dc.OnFailure.Destination != "" {
			if _, err := k.Queues.QueueByARN(ctx, dc.OnFailure.Destination); err != nil {
				return invalid("The OnFailure destination %s is not an SQS queue of this account and region: Lamina sends stream records it gives up on to SQS queues.", dc.OnFailure.Destination)
			}
			m.DestinationConfig = &dc
		}
	}
	return nil
}

// Forget deletes a mapping's checkpoints.
func (k *Kinesis) Forget(ctx context.Context, m *Mapping) error {
	for _, key := range k.checkpoints.Keys(m.UUID + ".") {
		if _, err := k.checkpoints.Remove(ctx, key, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Poll runs a poller for every shard of the stream until ctx ends, the
// stream is deleted or a shard's poller fails.
func (k *Kinesis) Poll(ctx context.Context, m *Mapping, t Target) error {
	stream, err := k.Streams.StreamByARN(ctx, m.EventSourceArn)
	if err != nil {
		return err
	}
	log := k.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for shard := range stream.Shards() {
		sp := &shardPoller{k: k, m: m, t: t, stream: stream, shard: shard, shardID: kinesis.ShardID(shard), filters: m.filters(),
			log: log.With("part", "eventsource", "uuid", m.UUID, "shard", kinesis.ShardID(shard))}
		wg.Go(func() {
			if err := sp.run(ctx); err != nil && ctx.Err() == nil {
				cancel(err)
			}
		})
	}
	wg.Go(func() {
		for {
			sleep(ctx, streamCheckEvery)
			if ctx.Err() != nil {
				return
			}
			if ok, err := stream.Current(ctx); err == nil && !ok {
				cancel(kinesis.ErrStreamNotFound)
				return
			}
		}
	})
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// shardPoller polls one shard.
type shardPoller struct {
	k       *Kinesis
	m       *Mapping
	t       Target
	stream  *kinesis.Stream
	shard   int
	shardID string
	filters []*eventpattern.Pattern
	log     *slog.Logger

	mu      sync.Mutex
	pending []uint64        // the positions read, in order, not yet done…
	done    map[uint64]bool // …of which these are done
	next    uint64          // the position after the last read
	saved   uint64          // the checkpoint stored
	windows map[int]*tumblingWindow
}

// key is the shard's checkpoint's key.
func (sp *shardPoller) key() string { return sp.m.UUID + "." + strconv.Itoa(sp.shard) }

// run reads the shard and feeds its lanes until ctx ends or reading fails.
func (sp *shardPoller) run(ctx context.Context) error {
	start, err := sp.start(ctx)
	if err != nil {
		return err
	}
	reader, err := sp.stream.Read(ctx, sp.shard, start)
	if err != nil {
		return err
	}
	defer reader.Close()
	lanes := make([]chan *kinesis.Record, sp.m.ParallelizationFactor)
	var wg sync.WaitGroup
	lctx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	for i := range lanes {
		lanes[i] = make(chan *kinesis.Record, sp.m.BatchSize)
		l := &lane{sp: sp, index: i, in: lanes[i]}
		wg.Go(func() { l.run(lctx) })
	}
	for {
		rec, err := reader.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		sp.mu.Lock()
		sp.pending = append(sp.pending, rec.Seq)
		sp.next = rec.Seq + 1
		sp.mu.Unlock()
		select {
		case lanes[laneOf(rec.PartitionKey, len(lanes))] <- rec:
		case <-ctx.Done():
			return nil
		}
	}
}

// laneOf is the lane of a partition key among n.
func laneOf(partitionKey string, n int) int {
	if n == 1 {
		return 0
	}
	sum := md5.Sum([]byte(partitionKey))
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(n))
}

// start returns where reading begins: the checkpoint, or the mapping's
// StartingPosition the first time (LATEST is stored at once, so that a
// restart does not skip what was written meanwhile).
func (sp *shardPoller) start(ctx context.Context) (kinesis.Position, error) {
	cp, err := sp.k.checkpoints.Get(ctx, sp.key())
	switch {
	case err == nil:
		sp.windows = map[int]*tumblingWindow{}
		for i, w := range cp.Windows {
			sp.windows[i] = w
		}
		sp.saved, sp.next = cp.Seq, cp.Seq
		return kinesis.Position{Seq: cp.Seq}, nil
	case !errors.Is(err, store.ErrNotFound):
		return kinesis.Position{}, err
	}
	sp.windows = map[int]*tumblingWindow{}
	switch sp.m.StartingPosition {
	case "LATEST":
		seq, err := sp.stream.Latest(ctx)
		if err != nil {
			return kinesis.Position{}, err
		}
		if err := sp.k.checkpoints.Create(ctx, sp.key(), &checkpoint{Seq: seq}); err != nil && !errors.Is(err, store.ErrExists) {
			return kinesis.Position{}, err
		}
		sp.saved, sp.next = seq, seq
		return kinesis.Position{Seq: seq}, nil
	case "AT_TIMESTAMP":
		ts := *sp.m.StartingPositionTimestamp
		return kinesis.Position{Time: time.UnixMilli(int64(math.Round(ts * 1000)))}, nil
	}
	return kinesis.Position{}, nil
}

// finish marks records done and stores the checkpoint (and window) if it
// moved: the first record not done, or after the last read.
func (sp *shardPoller) finish(ctx context.Context, recs []*kinesis.Record, lane int, w *tumblingWindow) error {
	sp.mu.Lock()
	if sp.done == nil {
		sp.done = map[uint64]bool{}
	}
	for _, r := range recs {
		sp.done[r.Seq] = true
	}
	n := 0
	for n < len(sp.pending) && sp.done[sp.pending[n]] {
		delete(sp.done, sp.pending[n])
		n++
	}
	sp.pending = sp.pending[n:]
	cp := sp.next
	if len(sp.pending) > 0 {
		cp = sp.pending[0]
	}
	windowChanged := false
	if sp.m.TumblingWindowInSeconds != nil {
		windowChanged = true
		sp.windows[lane] = w
	}
	moved := cp > sp.saved
	windows := map[int]*tumblingWindow{}
	for i, w := range sp.windows {
		windows[i] = w
	}
	sp.mu.Unlock()
	if !moved && !windowChanged {
		return nil
	}
	_, err := sp.k.checkpoints.Update(ctx, sp.key(), func(c *checkpoint) error {
		c.Seq = max(c.Seq, cp)
		c.Windows = windows
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		err = sp.k.checkpoints.Create(ctx, sp.key(), &checkpoint{Seq: cp, Windows: windows})
	}
	if err != nil {
		return err
	}
	sp.mu.Lock()
	sp.saved = max(sp.saved, cp)
	sp.mu.Unlock()
	return nil
}

// lane is one of a shard's lanes: it processes its records in order, one
// batch at a time.
type lane struct {
	sp     *shardPoller
	index  int
	in     chan *kinesis.Record
	carry  *kinesis.Record // read, not yet in a batch
	window *tumblingWindow
}

// run collects batches and delivers them until ctx ends.
func (l *lane) run(ctx context.Context) {
	sp := l.sp
	sp.mu.Lock()
	l.window = sp.windows[l.index]
	sp.mu.Unlock()
	for ctx.Err() == nil {
		batch, ok := l.collect(ctx)
		if !ok {
			return
		}
		if len(batch) == 0 {
			continue
		}
		sp.t.ReportLag(time.Since(batch[len(batch)-1].Arrival))
		if !l.deliver(ctx, batch) {
			return
		}
	}
}

// tumbling is the mapping's tumbling window, zero when it has none.
func (l *lane) tumbling() time.Duration {
	if w := l.sp.m.TumblingWindowInSeconds; w != nil {
		return time.Duration(*w) * time.Second
	}
	return 0
}

// windowStart is the start of the tumbling window a record falls in.
func (l *lane) windowStart(r *kinesis.Record) int64 {
	size := l.tumbling().Milliseconds()
	at := r.Arrival.UnixMilli()
	return at - at%size
}

// collect waits for a record, then gathers a batch: up to BatchSize
// records within the batching window and the payload bound, in one
// tumbling window. It returns false when ctx ended.
func (l *lane) collect(ctx context.Context) ([]*kinesis.Record, bool) {
	sp := l.sp
	first := l.carry
	l.carry = nil
	for first == nil {
		wait := time.Duration(-1)
		if l.window != nil {
			// A window that has ended already (the lane lagged, or the
			// node was down) closes now if no record is waiting.
			wait = max(time.Until(time.UnixMilli(l.window.Start).Add(l.tumbling())), 0)
		}
		var ok bool
		first, ok = l.receive(ctx, wait)
		if !ok {
			return nil, false
		}
		if first == nil { // the tumbling window ended with no record
			if !l.closeWindow(ctx, false) {
				return nil, false
			}
		}
	}
	if l.tumbling() > 0 {
		if start := l.windowStart(first); l.window == nil || l.window.Start != start {
			if l.window != nil && !l.closeWindow(ctx, false) {
				return nil, false
			}
			l.window = &tumblingWindow{Start: start}
		}
	}
	batch := []*kinesis.Record{first}
	size := recordWeight(first)
	deadline := time.Now().Add(sp.m.batchingWindow())
	for len(batch) < sp.m.BatchSize {
		r, ok := l.receive(ctx, max(time.Until(deadline), 0))
		if !ok {
			return nil, false
		}
		if r == nil {
			break
		}
		if size+recordWeight(r) > lamina.MaxSyncPayload-4096 || (l.window != nil && l.windowStart(r) != l.window.Start) {
			l.carry = r
			break
		}
		batch = append(batch, r)
		size += recordWeight(r)
	}
	return batch, true
}

// receive returns the lane's next record, waiting up to wait (forever
// when negative): nil when none came; false when ctx ended.
func (l *lane) receive(ctx context.Context, wait time.Duration) (*kinesis.Record, bool) {
	if wait == 0 {
		select {
		case r := <-l.in:
			return r, true
		default:
			return nil, ctx.Err() == nil
		}
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case r := <-l.in:
		return r, true
	case <-timeout:
		return nil, true
	case <-ctx.Done():
		return nil, false
	}
}

// recordWeight approximates the bytes a record takes in an event.
func recordWeight(r *kinesis.Record) int {
	return (len(r.Data)+2)/3*4 + len(r.PartitionKey) + 512
}

// closeWindow makes the final invocation of the lane's tumbling window
// (no records, its state, isFinalInvokeForWindow) and starts none.
func (l *lane) closeWindow(ctx context.Context, early bool) bool {
	if l.window == nil {
		return true
	}
	ok := l.deliverFinal(ctx, early)
	if ok {
		l.window = nil
	}
	return ok
}

// kinesisRecord is one record of a Kinesis event, as Lambda sends it.
type kinesisRecord struct {
	Kinesis struct {
		KinesisSchemaVersion        string  `json:"kinesisSchemaVersion"`
		PartitionKey                string  `json:"partitionKey"`
		SequenceNumber              string  `json:"sequenceNumber"`
		Data                        []byte  `json:"data"`
		ApproximateArrivalTimestamp float64 `json:"approximateArrivalTimestamp"`
	} `json:"kinesis"`
	EventSource       string `json:"eventSource"`
	EventVersion      string `json:"eventVersion"`
	EventID           string `json:"eventID"`
	EventName         string `json:"eventName"`
	InvokeIdentityArn string `json:"invokeIdentityArn"`
	AWSRegion         string `json:"awsRegion"`
	EventSourceARN    string `json:"eventSourceARN"`
}

// kinesisEvent is what the function gets: the records and, with a
// tumbling window, the window's fields.
type kinesisEvent struct {
	Records                 []kinesisRecord  `json:"Records"`
	Window                  *windowRange     `json:"window,omitempty"`
	State                   *json.RawMessage `json:"state,omitempty"`
	ShardID                 string           `json:"shardId,omitempty"`
	EventSourceARN          string           `json:"eventSourceARN,omitempty"`
	IsFinalInvokeForWindow  *bool            `json:"isFinalInvokeForWindow,omitempty"`
	IsWindowTerminatedEarly *bool            `json:"isWindowTerminatedEarly,omitempty"`
}

// windowRange is a tumbling window's bounds, as Lambda writes them.
type windowRange struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// epochSeconds is a time as Kinesis events have it.
func epochSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// event makes the event of a batch.
func (l *lane) event(ctx context.Context, batch []*kinesis.Record, final, early bool) []byte {
	sp := l.sp
	role := sp.t.Role(ctx)
	ev := kinesisEvent{Records: make([]kinesisRecord, len(batch))}
	for i, r := range batch {
		kr := &ev.Records[i]
		kr.Kinesis.KinesisSchemaVersion, kr.Kinesis.PartitionKey, kr.Kinesis.SequenceNumber = "1.0", r.PartitionKey, r.SequenceNumber
		kr.Kinesis.Data, kr.Kinesis.ApproximateArrivalTimestamp = r.Data, epochSeconds(r.Arrival)
		if kr.Kinesis.Data == nil {
			kr.Kinesis.Data = []byte{}
		}
		kr.EventSource, kr.EventVersion, kr.EventName = "aws:kinesis", "1.0", "aws:kinesis:record"
		kr.EventID = sp.shardID + ":" + r.SequenceNumber
		kr.InvokeIdentityArn, kr.AWSRegion, kr.EventSourceARN = role, sp.k.Region, sp.m.EventSourceArn
	}
	if l.window != nil {
		start := time.UnixMilli(l.window.Start).UTC()
		ev.Window = &windowRange{Start: start.Format("2006-01-02T15:04:05Z"), End: start.Add(l.tumbling()).Format("2006-01-02T15:04:05Z")}
		state := l.window.State
		if len(state) == 0 {
			state = json.RawMessage("{}")
		}
		ev.State = &state
		ev.ShardID, ev.EventSourceARN = sp.shardID, sp.m.EventSourceArn
		ev.IsFinalInvokeForWindow, ev.IsWindowTerminatedEarly = &final, &early
	}
	payload, _ := json.Marshal(ev)
	return payload
}

// matches reports whether a filter matches a record: its data, as JSON
// when it decodes (Lambda filters Kinesis records on data alone).
func (sp *shardPoller) matches(r *kinesis.Record) bool {
	data, err := eventpattern.Decode(r.Data)
	if err != nil {
		return false
	}
	event := map[string]any{"data": data}
	for _, f := range sp.filters {
		if f.Match(event) {
			return true
		}
	}
	return false
}

// attempt is a part of a batch being delivered, and how it has fared.
type attempt struct {
	recs    []*kinesis.Record
	retries int
	invokes int
	last    *lamina.InvocationResult
}

// deliver delivers a batch: filtered, invoked, tried again, bisected and
// given up on as the mapping says; every record ends done. It returns
// false when ctx ended first (what is not done is read again later).
func (l *lane) deliver(ctx context.Context, batch []*kinesis.Record) bool {
	sp := l.sp
	if len(sp.filters) > 0 {
		var kept, dropped []*kinesis.Record
		for _, r := range batch {
			if sp.matches(r) {
				kept = append(kept, r)
			} else {
				dropped = append(dropped, r)
			}
		}
		if len(dropped) > 0 && !l.markDone(ctx, dropped) {
			return false
		}
		if batch = kept; len(batch) == 0 {
			return true
		}
	}
	work := []*attempt{{recs: batch}}
	backoff := minRetryBackoff
	for len(work) > 0 {
		a := work[0]
		if age := *sp.m.MaximumRecordAgeInSeconds; age >= 0 && time.Since(a.recs[0].Arrival) > time.Duration(age)*time.Second {
			if !l.giveUp(ctx, a, "RecordAgeExceeded") {
				return false
			}
			work = work[1:]
			continue
		}
		res, failedAt, ok := l.invoke(ctx, a)
		if !ok {
			return false
		}
		a.last = res
		if failedAt < 0 { // success
			if !l.markDone(ctx, a.recs) {
				return false
			}
			work, backoff = work[1:], minRetryBackoff
			continue
		}
		if failedAt > 0 { // records before the lowest reported one succeeded
			if !l.markDone(ctx, a.recs[:failedAt]) {
				return false
			}
			a.recs = a.recs[failedAt:]
		}
		if *sp.m.BisectBatchOnFunctionError && len(a.recs) > 1 {
			half := len(a.recs) / 2
			work = append([]*attempt{{recs: a.recs[:half]}, {recs: a.recs[half:]}}, work[1:]...)
			continue
		}
		if r := *sp.m.MaximumRetryAttempts; r >= 0 && a.retries >= r {
			if !l.giveUp(ctx, a, "RetryAttemptsExhausted") {
				return false
			}
			work, backoff = work[1:], minRetryBackoff
			continue
		}
		a.retries++
		sleep(ctx, backoff)
		backoff = min(2*backoff, maxRetryBackoff)
	}
	return ctx.Err() == nil
}

// invoke runs the function with a part of a batch, trying again while it
// is throttled or cannot be invoked (neither counts as a retry). It
// returns the index of the first record that failed: -1 when all
// succeeded, 0 when the whole part failed. ok is false when ctx ended.
func (l *lane) invoke(ctx context.Context, a *attempt) (res *lamina.InvocationResult, failedAt int, ok bool) {
	sp := l.sp
	payload := l.event(ctx, a.recs, false, false)
	backoff := minRetryBackoff
	for {
		var err error
		res, err = sp.t.Invoke(context.WithoutCancel(ctx), payload, "")
		if err == nil {
			break
		}
		if !isThrottle(err) {
			sp.log.Warn("invoking the function failed; the batch is tried again", "err", err)
		}
		sleep(ctx, backoff)
		if ctx.Err() != nil {
			return nil, 0, false
		}
		backoff = min(2*backoff, maxRetryBackoff)
	}
	a.invokes++
	if res.FunctionError != "" {
		return res, 0, true
	}
	if l.window != nil {
		l.window.State = responseState(res.Payload)
	}
	if !sp.m.reportsItemFailures() {
		return res, -1, true
	}
	ids := make(map[string]bool, len(a.recs))
	for _, r := range a.recs {
		ids[r.SequenceNumber] = true
	}
	failed, valid := batchItemFailures(res.Payload, ids)
	if !valid {
		return res, 0, true
	}
	for i, r := range a.recs {
		if failed[r.SequenceNumber] {
			return res, i, true
		}
	}
	return res, -1, true
}

// responseState is the state a function returned in a tumbling window.
func responseState(payload []byte) json.RawMessage {
	var resp struct {
		State json.RawMessage `json:"state"`
	}
	if json.Unmarshal(payload, &resp) != nil || len(resp.State) == 0 || string(resp.State) == "null" {
		return nil
	}
	return resp.State
}

// deliverFinal makes a tumbling window's final invocation; a failure is
// tried again as a batch's is.
func (l *lane) deliverFinal(ctx context.Context, early bool) bool {
	sp := l.sp
	payload := l.event(ctx, nil, true, early)
	backoff := minRetryBackoff
	for retries := 0; ; retries++ {
		res, err := sp.t.Invoke(context.WithoutCancel(ctx), payload, "")
		if err == nil && res.FunctionError == "" {
			break
		}
		if r := *sp.m.MaximumRetryAttempts; err == nil && r >= 0 && retries >= r {
			break
		}
		sleep(ctx, backoff)
		if ctx.Err() != nil {
			return false
		}
		backoff = min(2*backoff, maxRetryBackoff)
	}
	return l.markDone(ctx, nil)
}

// markDone marks records done and stores the checkpoint, trying again
// while the store fails; false when ctx ended first.
func (l *lane) markDone(ctx context.Context, recs []*kinesis.Record) bool {
	for {
		var w *tumblingWindow
		if l.window != nil {
			c := *l.window
			w = &c
		}
		err := l.sp.finish(context.WithoutCancel(ctx), recs, l.index, w)
		if err == nil {
			return true
		}
		l.sp.log.Warn("storing a checkpoint failed; trying again", "err", err)
		recs = nil // marked already
		sleep(ctx, time.Second)
		if ctx.Err() != nil {
			return false
		}
	}
}

// onFailureRecord is what Lambda sends to a stream mapping's on-failure
// destination: the batch's coordinates, not its records.
type onFailureRecord struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError"`
	} `json:"responseContext"`
	Version          string `json:"version"`
	Timestamp        string `json:"timestamp"`
	KinesisBatchInfo struct {
		ShardID                         string `json:"shardId"`
		StartSequenceNumber             string `json:"startSequenceNumber"`
		EndSequenceNumber               string `json:"endSequenceNumber"`
		ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
		ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
		BatchSize                       int    `json:"batchSize"`
		StreamArn                       string `json:"streamArn"`
	} `json:"KinesisBatchInfo"`
}

// isoMillis is a time as on-failure records write it.
func isoMillis(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// giveUp sends a part of a batch's on-failure record to the destination
// (trying again while it fails) and marks it done.
func (l *lane) giveUp(ctx context.Context, a *attempt, condition string) bool {
	sp := l.sp
	first, last := a.recs[0], a.recs[len(a.recs)-1]
	sp.log.Info("records given up on", "condition", condition, "records", len(a.recs), "first", first.SequenceNumber, "invokes", a.invokes)
	if dc := sp.m.DestinationConfig; dc != nil && dc.OnFailure != nil && dc.OnFailure.Destination != "" {
		var rec onFailureRecord
		rec.RequestContext.RequestID = uuid.NewString()
		rec.RequestContext.FunctionArn, rec.RequestContext.Condition = sp.t.ARN(), condition
		rec.RequestContext.ApproximateInvokeCount = a.invokes
		rec.ResponseContext.StatusCode = 200
		if a.last != nil {
			rec.ResponseContext.ExecutedVersion, rec.ResponseContext.FunctionError = a.last.ExecutedVersion, a.last.FunctionError
		}
		rec.Version, rec.Timestamp = "1.0", isoMillis(time.Now())
		b := &rec.KinesisBatchInfo
		b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber = sp.shardID, first.SequenceNumber, last.SequenceNumber
		b.ApproximateArrivalOfFirstRecord, b.ApproximateArrivalOfLastRecord = isoMillis(first.Arrival), isoMillis(last.Arrival)
		b.BatchSize, b.StreamArn = len(a.recs), sp.m.EventSourceArn
		body, _ := json.Marshal(rec)
		backoff := minRetryBackoff
		for {
			err := l.sendOnFailure(ctx, dc.OnFailure.Destination, string(body))
			if err == nil {
				break
			}
			sp.log.Warn("sending to the on-failure destination failed; trying again", "destination", dc.OnFailure.Destination, "err", err)
			sleep(ctx, backoff)
			if ctx.Err() != nil {
				return false
			}
			backoff = min(2*backoff, maxRetryBackoff)
		}
	}
	return l.markDone(ctx, a.recs)
}

// sendOnFailure sends an on-failure record to an SQS queue.
func (l *lane) sendOnFailure(ctx context.Context, arn, body string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	q, err := l.sp.k.Queues.QueueByARN(ctx, arn)
	if err != nil {
		return err
	}
	_, err = q.Send(ctx, &sqs.OutgoingMessage{Body: body})
	return err
}
