package eventsource

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/services/kinesis"
	"github.com/lamina-project/lamina/internal/store"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// openStore opens a store on an embedded JetStream of the test's.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), nc, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return st
}

// fakeTarget is a function the test scripts: respond answers each
// invocation's event; it records the events it got.
type fakeTarget struct {
	respond func(ev *kinesisEvent) *lamina.InvocationResult

	mu     sync.Mutex
	events []*kinesisEvent
}

// ReportLag is not looked at here.
func (f *fakeTarget) ReportLag(time.Duration) {}

func (f *fakeTarget) Admit(ctx context.Context, trace string) (string, bool) { return trace, true }

func (f *fakeTarget) Invoke(ctx context.Context, payload []byte, trace string) (*lamina.InvocationResult, error) {
	ev := &kinesisEvent{}
	if err := json.Unmarshal(payload, ev); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.events = append(f.events, ev)
	f.mu.Unlock()
	if f.respond == nil {
		return &lamina.InvocationResult{}, nil
	}
	return f.respond(ev), nil
}

func (f *fakeTarget) MaxConcurrency() int                   { return 1 }
func (f *fakeTarget) Timeout(context.Context) time.Duration { return time.Second }
func (f *fakeTarget) Role(context.Context) string           { return "role" }
func (f *fakeTarget) ARN() string                           { return "arn:aws:lambda:us-east-1:000000000000:function:f" }

// invoked is the data of the records of every invocation, in order, a
// final window invocation as "final".
func (f *fakeTarget) invoked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, ev := range f.events {
		var datas []string
		for _, r := range ev.Records {
			datas = append(datas, string(r.Kinesis.Data))
		}
		if ev.IsFinalInvokeForWindow != nil && *ev.IsFinalInvokeForWindow {
			datas = append(datas, "final")
		}
		out = append(out, strings.Join(datas, ","))
	}
	return out
}

// failing is a function error result.
var failing = &lamina.InvocationResult{FunctionError: "Unhandled", Payload: []byte(`{"errorMessage":"boom"}`)}

// testMapping is a stream mapping with Lambda's defaults, changed by set.
func testMapping(set func(m *Mapping)) *Mapping {
	no, infinite, zero := false, -1, 0
	m := &Mapping{Configuration: Configuration{UUID: "m", EventSourceArn: "arn:aws:kinesis:us-east-1:000000000000:stream/s",
		BatchSize: 100, MaximumBatchingWindowInSeconds: &zero, ParallelizationFactor: 1, BisectBatchOnFunctionError: &no,
		MaximumRetryAttempts: &infinite, MaximumRecordAgeInSeconds: &infinite, StartingPosition: "TRIM_HORIZON"}}
	if set != nil {
		set(m)
	}
	return m
}

// testShard is a shard poller of m that invokes f, with its checkpoints
// in a store of the test's; records are r0…r(n-1), at positions 1…n,
// read and arrived at arrival.
func testShard(t *testing.T, m *Mapping, f *fakeTarget, n int, arrival time.Time) (*shardPoller, []*kinesis.Record) {
	t.Helper()
	k, err := NewKinesis(t.Context(), openStore(t), Kinesis{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	sp := &shardPoller{k: k, m: m, t: f, shardID: "shardId-000000000000", filters: m.filters(), log: slog.New(slog.DiscardHandler),
		windows: map[int]*tumblingWindow{}}
	recs := make([]*kinesis.Record, n)
	for i := range recs {
		seq := uint64(i + 1)
		recs[i] = &kinesis.Record{Seq: seq, SequenceNumber: fmt.Sprintf("%056d", seq), PartitionKey: fmt.Sprint("k", i),
			Data: []byte(fmt.Sprint("r", i)), Arrival: arrival}
		sp.pending = append(sp.pending, seq)
		sp.next = seq + 1
	}
	return sp, recs
}

// checkpointOf is the position the shard's checkpoint holds, 0 for none.
func checkpointOf(t *testing.T, sp *shardPoller) uint64 {
	t.Helper()
	cp, err := sp.k.checkpoints.Get(context.Background(), sp.key())
	if err != nil {
		return 0
	}
	return cp.Seq
}

func TestBisectIsolatesThePoisonedRecord(t *testing.T) {
	f := &fakeTarget{respond: func(ev *kinesisEvent) *lamina.InvocationResult {
		for _, r := range ev.Records {
			if string(r.Kinesis.Data) == "r5" {
				return failing
			}
		}
		return &lamina.InvocationResult{}
	}}
	yes, once := true, 1
	sp, recs := testShard(t, testMapping(func(m *Mapping) { m.BisectBatchOnFunctionError, m.MaximumRetryAttempts = &yes, &once }), f, 8, time.Now())
	l := &lane{sp: sp}
	if !l.deliver(t.Context(), recs) {
		t.Fatal("deliver ended early")
	}
	// Halving is no retry; the poisoned record alone is tried once more,
	// then given up on, and the rest delivered.
	want := []string{"r0,r1,r2,r3,r4,r5,r6,r7", "r0,r1,r2,r3", "r4,r5,r6,r7", "r4,r5", "r4", "r5", "r5", "r6,r7"}
	if got := f.invoked(); !slices.Equal(got, want) {
		t.Errorf("invocations\n%q\nwant\n%q", got, want)
	}
	if cp := checkpointOf(t, sp); cp != 9 {
		t.Errorf("checkpoint %d, want 9 (after the batch)", cp)
	}
}

func TestItemFailuresCheckpointAtTheLowestFailed(t *testing.T) {
	var sp *shardPoller
	var recs []*kinesis.Record
	var checkpointAtRetry uint64
	calls := 0
	f := &fakeTarget{respond: func(ev *kinesisEvent) *lamina.InvocationResult {
		calls++
		if calls == 1 { // r7 and r4 fail: r0…r3 are done, r4… tried again
			return &lamina.InvocationResult{Payload: []byte(fmt.Sprintf(`{"batchItemFailures":[{"itemIdentifier":%q},{"itemIdentifier":%q}]}`,
				recs[7].SequenceNumber, recs[4].SequenceNumber))}
		}
		checkpointAtRetry = checkpointOf(t, sp)
		return &lamina.InvocationResult{Payload: []byte(`{"batchItemFailures":[]}`)}
	}}
	sp, recs = testShard(t, testMapping(func(m *Mapping) { m.FunctionResponseTypes = []string{ReportBatchItemFailures} }), f, 10, time.Now())
	l := &lane{sp: sp}
	if !l.deliver(t.Context(), recs) {
		t.Fatal("deliver ended early")
	}
	want := []string{"r0,r1,r2,r3,r4,r5,r6,r7,r8,r9", "r4,r5,r6,r7,r8,r9"}
	if got := f.invoked(); !slices.Equal(got, want) {
		t.Errorf("invocations %q, want %q", got, want)
	}
	if checkpointAtRetry != recs[4].Seq {
		t.Errorf("checkpoint while r4 was tried again: %d, want %d (r4's)", checkpointAtRetry, recs[4].Seq)
	}
	if cp := checkpointOf(t, sp); cp != 11 {
		t.Errorf("checkpoint %d, want 11", cp)
	}
}

func TestInvalidItemFailuresFailTheWholeBatch(t *testing.T) {
	calls := 0
	f := &fakeTarget{respond: func(ev *kinesisEvent) *lamina.InvocationResult {
		calls++
		if calls == 1 {
			return &lamina.InvocationResult{Payload: []byte(`{"batchItemFailures":[{"itemIdentifier":"not-a-sequence-number"}]}`)}
		}
		return &lamina.InvocationResult{}
	}}
	sp, recs := testShard(t, testMapping(func(m *Mapping) { m.FunctionResponseTypes = []string{ReportBatchItemFailures} }), f, 3, time.Now())
	if !(&lane{sp: sp}).deliver(t.Context(), recs) {
		t.Fatal("deliver ended early")
	}
	if got, want := f.invoked(), []string{"r0,r1,r2", "r0,r1,r2"}; !slices.Equal(got, want) {
		t.Errorf("invocations %q, want %q", got, want)
	}
}

func TestMaximumRetryAttempts(t *testing.T) {
	for _, retries := range []int{0, 2} {
		f := &fakeTarget{respond: func(*kinesisEvent) *lamina.InvocationResult { return failing }}
		sp, recs := testShard(t, testMapping(func(m *Mapping) { m.MaximumRetryAttempts = &retries }), f, 3, time.Now())
		if !(&lane{sp: sp}).deliver(t.Context(), recs) {
			t.Fatal("deliver ended early")
		}
		if got := len(f.invoked()); got != retries+1 {
			t.Errorf("MaximumRetryAttempts %d: %d invocations, want %d", retries, got, retries+1)
		}
		if cp := checkpointOf(t, sp); cp != 4 {
			t.Errorf("MaximumRetryAttempts %d: checkpoint %d, want 4 (the batch given up on)", retries, cp)
		}
	}
}

func TestMaximumRecordAgeSkipsOldRecords(t *testing.T) {
	// Records older than the age are given up on without an invocation;
	// a failing batch is given up on once it grows older than that.
	age := 60
	f := &fakeTarget{}
	sp, recs := testShard(t, testMapping(func(m *Mapping) { m.MaximumRecordAgeInSeconds = &age }), f, 3, time.Now().Add(-61*time.Second))
	if !(&lane{sp: sp}).deliver(t.Context(), recs) {
		t.Fatal("deliver ended early")
	}
	if got := f.invoked(); len(got) != 0 {
		t.Errorf("old records were invoked: %q", got)
	}
	if cp := checkpointOf(t, sp); cp != 4 {
		t.Errorf("checkpoint %d, want 4", cp)
	}

	f = &fakeTarget{respond: func(*kinesisEvent) *lamina.InvocationResult { return failing }}
	sp, recs = testShard(t, testMapping(func(m *Mapping) { m.MaximumRecordAgeInSeconds = &age }), f, 2, time.Now().Add(-59500*time.Millisecond))
	if !(&lane{sp: sp}).deliver(t.Context(), recs) {
		t.Fatal("deliver ended early")
	}
	if n := len(f.invoked()); n < 1 || n > 10 {
		t.Errorf("%d invocations of a failing batch that grew too old within a second", n)
	}
	if cp := checkpointOf(t, sp); cp != 3 {
		t.Errorf("checkpoint %d, want 3", cp)
	}
}

func TestFilterCriteriaOnRecordData(t *testing.T) {
	f := &fakeTarget{}
	sp, recs := testShard(t, testMapping(func(m *Mapping) {
		m.FilterCriteria = &FilterCriteria{Filters: []Filter{{Pattern: `{"data":{"kind":["keep"]}}`}}}
	}), f, 4, time.Now())
	recs[0].Data = []byte(`{"kind":"keep","n":0}`)
	recs[1].Data = []byte(`{"kind":"drop","n":1}`)
	recs[2].Data = []byte(`not json`)
	recs[3].Data = []byte(`{"kind":"keep","n":3}`)
	if !(&lane{sp: sp}).deliver(t.Context(), recs) {
		t.Fatal("deliver ended early")
	}
	if got, want := f.invoked(), []string{`{"kind":"keep","n":0},{"kind":"keep","n":3}`}; !slices.Equal(got, want) {
		t.Errorf("invocations %q, want %q", got, want)
	}
	if cp := checkpointOf(t, sp); cp != 5 {
		t.Errorf("checkpoint %d, want 5 (the dropped records are done too)", cp)
	}
}

func TestCheckpointWaitsForTheSlowestLane(t *testing.T) {
	// Lanes finish out of order: the checkpoint is the first record not
	// done, so that a restart delivers again, and skips nothing.
	sp, recs := testShard(t, testMapping(func(m *Mapping) { m.ParallelizationFactor = 2 }), &fakeTarget{}, 6, time.Now())
	ctx := t.Context()
	for _, step := range []struct {
		done []int
		want uint64
	}{
		{[]int{1, 3}, 1}, // r0 is not done: it is next
		{[]int{0}, 3},    // r0, r1 done: r2 is next
		{[]int{4, 5}, 3}, // r2 still not done
		{[]int{2}, 7},    // all done: after the last read
	} {
		var done []*kinesis.Record
		for _, i := range step.done {
			done = append(done, recs[i])
		}
		if err := sp.finish(ctx, done, 0, nil); err != nil {
			t.Fatal(err)
		}
		if cp := checkpointOf(t, sp); cp != step.want {
			t.Errorf("after %v: checkpoint %d, want %d", step.done, cp, step.want)
		}
	}
}

func TestLanesKeepPartitionKeysTogether(t *testing.T) {
	counts := make([]int, 4)
	for i := range 1000 {
		key := fmt.Sprint("key", i)
		l := laneOf(key, 4)
		if l != laneOf(key, 4) {
			t.Fatalf("%s changes lanes", key)
		}
		counts[l]++
	}
	for l, n := range counts {
		if n < 150 {
			t.Errorf("lane %d got %d of 1000 keys: %v", l, n, counts)
		}
	}
	if laneOf("anything", 1) != 0 {
		t.Error("one lane is lane 0")
	}
}

func TestTumblingWindow(t *testing.T) {
	// A one-second window: records of the window come in batches that
	// carry the state the last invocation returned; a record of the next
	// window ends the window with a final invocation; the last window's
	// final invocation comes once it has ended, though no record follows it.
	window := 1
	f := &fakeTarget{respond: func(ev *kinesisEvent) *lamina.InvocationResult {
		var state struct{ N int }
		if ev.State != nil {
			json.Unmarshal(*ev.State, &state)
		}
		state.N += len(ev.Records)
		return &lamina.InvocationResult{Payload: []byte(fmt.Sprintf(`{"state":{"N":%d}}`, state.N))}
	}}
	// Windows start on the second: the records arrived in two windows
	// that have ended (a lane that lags behind its shard), and no record
	// follows them.
	first := time.Now().Truncate(time.Second).Add(-3 * time.Second)
	sp, recs := testShard(t, testMapping(func(m *Mapping) { m.TumblingWindowInSeconds, m.BatchSize = &window, 2 }), f, 5, first)
	for _, r := range recs[3:] {
		r.Arrival = first.Add(time.Second)
	}
	l := &lane{sp: sp, in: make(chan *kinesis.Record, len(recs))}
	for _, r := range recs {
		l.in <- r
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx) }()
	want := []string{"r0,r1", "r2", "final", "r3,r4", "final"}
	for deadline := time.Now().Add(10 * time.Second); len(f.invoked()) < len(want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := f.invoked(); !slices.Equal(got, want) {
		t.Fatalf("invocations %q, want %q", got, want)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, wantState := range []string{`{}`, `{"N":2}`, `{"N":3}`, `{}`, `{"N":2}`} {
		ev := f.events[i]
		start := first
		if i >= 3 {
			start = first.Add(time.Second)
		}
		if ev.State == nil || string(*ev.State) != wantState || ev.Window == nil ||
			ev.Window.Start != start.UTC().Format(time.RFC3339) || ev.Window.End != start.Add(time.Second).UTC().Format(time.RFC3339) ||
			ev.ShardID != "shardId-000000000000" || ev.IsWindowTerminatedEarly == nil || *ev.IsWindowTerminatedEarly {
			data, _ := json.Marshal(ev)
			t.Errorf("invocation %d: %s, want state %s, window from %v", i, data, wantState, start.UTC())
		}
	}
	if cp := checkpointOf(t, sp); cp != 6 {
		t.Errorf("checkpoint %d, want 6", cp)
	}
}
