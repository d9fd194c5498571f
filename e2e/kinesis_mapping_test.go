package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Stream mappings' options, each proven end to end with a function that
// writes every invocation it gets to a file of the test's (the process
// sandbox): tumbling windows, parallelization, filters, partial batch
// failures, starting positions, retries and record age (issue 14, item 3).

// streamRecorderPy writes every invocation to SEEN_FILE, one JSON line:
// its records, window, state and when it ran. It sleeps SLEEP_MS first;
// it raises on a batch that holds a record starting with "poison"; it
// reports, through ReportBatchItemFailures, a record starting with "flaky"
// as failed the first time it gets it. In a tumbling window it returns as
// state {"n": records of the window so far}.
const streamRecorderPy = `import json, base64, os, time
def handler(event, context):
    start = time.time()
    recs = event.get("Records") or []
    datas = [base64.b64decode(r["kinesis"]["data"]).decode() for r in recs]
    time.sleep(int(os.environ.get("SLEEP_MS", "0")) / 1000)
    seen = os.environ["SEEN_FILE"]
    failed = []
    for r, d in zip(recs, datas):
        marker = seen + "." + r["kinesis"]["sequenceNumber"]
        if d.startswith("flaky") and not os.path.exists(marker):
            open(marker, "w").close()
            failed.append(r["kinesis"]["sequenceNumber"])
    raised = any(d.startswith("poison") for d in datas)
    line = json.dumps({"start": start, "end": time.time(), "keys": [r["kinesis"]["partitionKey"] for r in recs],
        "seqs": [r["kinesis"]["sequenceNumber"] for r in recs], "datas": datas,
        "arrivals": [r["kinesis"]["approximateArrivalTimestamp"] for r in recs],
        "window": event.get("window"), "state": event.get("state"), "final": event.get("isFinalInvokeForWindow"),
        "failed": failed, "raised": raised})
    with open(seen, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    if raised:
        raise Exception("poisoned batch")
    out = {}
    if "window" in event:
        out["state"] = {"n": (event.get("state") or {}).get("n", 0) + len(recs)}
    if failed:
        out["batchItemFailures"] = [{"itemIdentifier": s} for s in failed]
    return out
`

// streamInvocation is one line streamRecorderPy wrote.
type streamInvocation struct {
	Start, End float64
	Keys, Seqs []string
	Datas      []string
	Arrivals   []float64
	Window     *struct{ Start, End string }
	State      json.RawMessage
	Final      *bool
	Failed     []string
	Raised     bool
}

// streamRecorder is a function running streamRecorderPy in the process
// sandbox, and the file it writes.
type streamRecorder struct {
	name, seen string
}

// newStreamRecorder creates a recorder function; env adds variables.
func newStreamRecorder(t *testing.T, ts *testServer, name string, env map[string]string) *streamRecorder {
	t.Helper()
	r := &streamRecorder{name: name, seen: filepath.Join(t.TempDir(), name)}
	vars := map[string]string{"SEEN_FILE": r.seen}
	for k, v := range env {
		vars[k] = v
	}
	ts.createFunction(t, name, zipFiles(t, map[string]string{"app.py": streamRecorderPy}), withTimeout(10), withEnvironment(vars))
	return r
}

// invocations reads what the recorder wrote, in the order it wrote it.
func (r *streamRecorder) invocations(t *testing.T) []streamInvocation {
	t.Helper()
	data, err := os.ReadFile(r.seen)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []streamInvocation
	for _, line := range strings.Split(string(data), "\n") {
		var inv streamInvocation
		if json.Unmarshal([]byte(line), &inv) == nil {
			out = append(out, inv)
		}
	}
	return out
}

// delivered counts the deliveries of each record, by data.
func delivered(invs []streamInvocation) map[string]int {
	n := map[string]int{}
	for _, inv := range invs {
		for _, d := range inv.Datas {
			n[d]++
		}
	}
	return n
}

// waitFor polls the recorder until done holds of its invocations, or
// fails the test after a minute.
func (r *streamRecorder) waitFor(t *testing.T, what string, done func([]streamInvocation) bool) []streamInvocation {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		invs := r.invocations(t)
		if done(invs) {
			return invs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after a minute; %d invocations: %+v", r.name, len(invs), invs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// putData writes up to 500 records in order with one PutRecords call,
// record i under the partition key keyOf(i) (nil: "k<i>").
func putData(t *testing.T, kc *kinesis.Client, stream string, datas []string, keyOf func(i int) string) {
	t.Helper()
	if keyOf == nil {
		keyOf = func(i int) string { return fmt.Sprint("k", i) }
	}
	var entries []ktypes.PutRecordsRequestEntry
	for i, d := range datas {
		entries = append(entries, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(keyOf(i)), Data: []byte(d)})
	}
	out, err := kc.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil || *out.FailedRecordCount != 0 {
		t.Fatalf("PutRecords: %v %+v", err, out)
	}
}

// createStream creates a stream of shards shards.
func createStream(t *testing.T, kc *kinesis.Client, name string, shards int32) string {
	t.Helper()
	if _, err := kc.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	return "arn:aws:kinesis:us-east-1:000000000000:stream/" + name
}

// mapStream creates a mapping of the stream to the function, with set's
// changes; it fails the test on an error.
func mapStream(t *testing.T, lc *lambda.Client, function, streamARN string, set func(in *lambda.CreateEventSourceMappingInput)) *lambda.CreateEventSourceMappingOutput {
	t.Helper()
	in := &lambda.CreateEventSourceMappingInput{FunctionName: aws.String(function), EventSourceArn: aws.String(streamARN),
		StartingPosition: lambdatypes.EventSourcePositionTrimHorizon}
	if set != nil {
		set(in)
	}
	out, err := lc.CreateEventSourceMapping(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateEventSourceMapping %s: %v", function, err)
	}
	return out
}

// numbered is n data strings prefix0…prefix(n-1).
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

// TestKinesisMappingTumblingWindow: records in two 2-second windows reach
// the function in batches that never span a window; each batch carries the
// state the previous invocation of its window returned; every window ends
// with one final invocation (no records, isFinalInvokeForWindow) carrying
// the window's whole state, after its batches.
func TestKinesisMappingTumblingWindow(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--stream-unthrottled", "--sandbox", "process"))
	kc, lc := ts.Kinesis(), ts.Lambda()
	rec := newStreamRecorder(t, ts, "windowed", nil)
	arn := createStream(t, kc, "windows", 1)
	m := mapStream(t, lc, "windowed", arn, func(in *lambda.CreateEventSourceMappingInput) {
		in.TumblingWindowInSeconds, in.BatchSize = aws.Int32(2), aws.Int32(4)
	})
	if *m.TumblingWindowInSeconds != 2 {
		t.Errorf("created with TumblingWindowInSeconds %v", m.TumblingWindowInSeconds)
	}
	// Ten records, then ten more in the next window.
	putData(t, kc, "windows", numbered("a", 10), nil)
	first := time.Now()
	time.Sleep(time.Until(first.Truncate(2 * time.Second).Add(2*time.Second + 100*time.Millisecond)))
	putData(t, kc, "windows", numbered("b", 10), nil)

	finals := func(invs []streamInvocation) int {
		n := 0
		for _, inv := range invs {
			if inv.Final != nil && *inv.Final {
				n++
			}
		}
		return n
	}
	invs := rec.waitFor(t, "20 records and 2 final invocations", func(invs []streamInvocation) bool {
		return len(delivered(invs)) >= 20 && finals(invs) >= 2
	})
	time.Sleep(2500 * time.Millisecond) // nothing more comes
	invs = rec.invocations(t)
	if n := finals(invs); n != 2 {
		t.Errorf("%d final invocations, want 2", n)
	}
	type window struct {
		records int
		closed  bool
	}
	windows := map[string]*window{}
	var order []string
	for i, inv := range invs {
		if inv.Window == nil {
			t.Fatalf("invocation %d has no window: %+v", i, inv)
		}
		start, err1 := time.Parse(time.RFC3339, inv.Window.Start)
		end, err2 := time.Parse(time.RFC3339, inv.Window.End)
		if err1 != nil || err2 != nil || end.Sub(start) != 2*time.Second || start.Unix()%2 != 0 {
			t.Errorf("invocation %d: window %+v", i, inv.Window)
		}
		w := windows[inv.Window.Start]
		if w == nil {
			w = &window{}
			windows[inv.Window.Start] = w
			order = append(order, inv.Window.Start)
		}
		var state struct{ N int }
		if err := json.Unmarshal(inv.State, &state); err != nil {
			t.Errorf("invocation %d: state %s", i, inv.State)
		}
		if state.N != w.records {
			t.Errorf("invocation %d of window %s: state %s, want n %d (the state its last invocation returned)", i, inv.Window.Start, inv.State, w.records)
		}
		if w.closed {
			t.Errorf("invocation %d of window %s after its final invocation", i, inv.Window.Start)
		}
		if inv.Final != nil && *inv.Final {
			if len(inv.Datas) != 0 {
				t.Errorf("final invocation %d has records %v", i, inv.Datas)
			}
			w.closed = true
			continue
		}
		for j, at := range inv.Arrivals {
			if at < float64(start.Unix()) || at >= float64(end.Unix()) {
				t.Errorf("invocation %d: record %s arrived at %.3f, outside its window %+v", i, inv.Datas[j], at, inv.Window)
			}
		}
		w.records += len(inv.Datas)
	}
	if len(order) != 2 || windows[order[0]].records != 10 || windows[order[1]].records != 10 {
		t.Errorf("windows %v: want two of 10 records each", order)
	}
	for _, d := range append(numbered("a", 10), numbered("b", 10)...) {
		if n := delivered(invs)[d]; n != 1 {
			t.Errorf("record %s delivered %d times", d, n)
		}
	}
}

// TestKinesisMappingParallelization: with ParallelizationFactor 4 one
// shard's records are in more than one invocation at a time, and each
// partition key's records are delivered in order, one batch after the
// other.
func TestKinesisMappingParallelization(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--stream-unthrottled", "--sandbox", "process"))
	kc, lc := ts.Kinesis(), ts.Lambda()
	rec := newStreamRecorder(t, ts, "parallel", map[string]string{"SLEEP_MS": "300"})
	arn := createStream(t, kc, "wide", 1)
	const total, keys = 160, 16
	datas := numbered("r", total)
	putData(t, kc, "wide", datas, func(i int) string { return fmt.Sprint("key", i%keys) })
	mapStream(t, lc, "parallel", arn, func(in *lambda.CreateEventSourceMappingInput) {
		in.ParallelizationFactor, in.BatchSize = aws.Int32(4), aws.Int32(5)
	})
	invs := rec.waitFor(t, "all records", func(invs []streamInvocation) bool { return len(delivered(invs)) >= total })
	for d, n := range delivered(invs) {
		if n != 1 {
			t.Errorf("record %s delivered %d times", d, n)
		}
	}
	// In flight at once: the most invocations whose runs overlap.
	type edge struct {
		at    float64
		delta int
	}
	var edges []edge
	for _, inv := range invs {
		edges = append(edges, edge{inv.Start, 1}, edge{inv.End, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		return edges[i].at < edges[j].at || (edges[i].at == edges[j].at && edges[i].delta < edges[j].delta)
	})
	inFlight, most := 0, 0
	for _, e := range edges {
		inFlight += e.delta
		most = max(most, inFlight)
	}
	if most < 2 {
		t.Errorf("at most %d batches of the shard in flight at once, want more than 1", most)
	}
	// Per key: in put order, and a key's batches never overlap.
	type span struct {
		start, end float64
		index      []int
	}
	byKey := map[string][]span{}
	for _, inv := range invs {
		perKey := map[string][]int{}
		for j, k := range inv.Keys {
			var i int
			fmt.Sscan(strings.TrimPrefix(inv.Datas[j], "r"), &i)
			perKey[k] = append(perKey[k], i)
		}
		for k, idx := range perKey {
			byKey[k] = append(byKey[k], span{inv.Start, inv.End, idx})
		}
	}
	for k, spans := range byKey {
		sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
		var seen []int
		for i, s := range spans {
			if i > 0 && s.start < spans[i-1].end {
				t.Errorf("key %s: two batches in flight at once", k)
			}
			seen = append(seen, s.index...)
		}
		if !slices.IsSorted(seen) || len(seen) != total/keys {
			t.Errorf("key %s delivered as %v, want %d records in order", k, seen, total/keys)
		}
	}
	t.Logf("%d records of one shard in %d invocations, at most %d at once", total, len(invs), most)
}

// TestKinesisMappingFiltersAndItemFailures: FilterCriteria match the
// records' data decoded as JSON (no other record reaches the function);
// with ReportBatchItemFailures a batch is tried again from its lowest
// failed record, and the records before it are not delivered again.
func TestKinesisMappingFiltersAndItemFailures(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--stream-unthrottled", "--sandbox", "process"))
	kc, lc := ts.Kinesis(), ts.Lambda()

	filtered := newStreamRecorder(t, ts, "filtered", nil)
	filterARN := createStream(t, kc, "kinds", 2)
	var datas []string
	for i := range 40 {
		kind := []string{"keep", "drop", "other"}[i%3]
		datas = append(datas, fmt.Sprintf(`{"kind":%q,"i":%d}`, kind, i))
	}
	datas = append(datas, "plain text", `{"kind":"keep","i":40}`)
	putData(t, kc, "kinds", datas, nil)
	mapStream(t, lc, "filtered", filterARN, func(in *lambda.CreateEventSourceMappingInput) {
		in.FilterCriteria = &lambdatypes.FilterCriteria{Filters: []lambdatypes.Filter{{Pattern: aws.String(`{"data":{"kind":["keep"]}}`)}}}
	})

	partial := newStreamRecorder(t, ts, "partial", nil)
	partialARN := createStream(t, kc, "partial", 1)
	items := numbered("r", 40)
	items[4], items[17], items[18], items[33] = "flaky4", "flaky17", "flaky18", "flaky33"
	putData(t, kc, "partial", items, nil)
	mapStream(t, lc, "partial", partialARN, func(in *lambda.CreateEventSourceMappingInput) {
		in.BatchSize = aws.Int32(10)
		in.FunctionResponseTypes = []lambdatypes.FunctionResponseType{lambdatypes.FunctionResponseTypeReportBatchItemFailures}
	})

	// Filters: exactly the "keep" records, each once (the shards' records
	// after the last keep are done too: nothing waits).
	invs := filtered.waitFor(t, "the last keep record", func(invs []streamInvocation) bool { return delivered(invs)[datas[len(datas)-1]] > 0 })
	time.Sleep(time.Second)
	invs = filtered.invocations(t)
	got := delivered(invs)
	for _, d := range datas {
		want := 0
		if strings.Contains(d, `"keep"`) {
			want = 1
		}
		if got[d] != want {
			t.Errorf("filtered: %s delivered %d times, want %d", d, got[d], want)
		}
	}

	// Partial failures: every record; after an invocation that reported
	// failures the next starts at the lowest of them; a record is
	// delivered again only when an earlier delivery failed at or before it.
	invs = partial.waitFor(t, "every record", func(invs []streamInvocation) bool { return len(delivered(invs)) >= len(items) })
	time.Sleep(time.Second)
	invs = partial.invocations(t)
	want := map[string]int{}
	for i, inv := range invs {
		for _, d := range inv.Datas {
			want[d]++
		}
		if len(inv.Failed) == 0 {
			continue
		}
		lowest := slices.Min(inv.Failed)
		if i+1 >= len(invs) || invs[i+1].Seqs[0] != lowest {
			t.Errorf("invocation %d reported %v failed; the next does not start at %s: %+v", i, inv.Failed, lowest, invs[min(i+1, len(invs)-1)])
		}
	}
	// want counts what was delivered; check it against what should have
	// been: once, plus once for every failure reported at or before it in
	// a batch that held it.
	should := map[string]int{}
	for _, d := range items {
		should[d] = 1
	}
	for _, inv := range invs {
		if len(inv.Failed) == 0 {
			continue
		}
		lowest := slices.Min(inv.Failed)
		for j, s := range inv.Seqs {
			if s >= lowest {
				should[inv.Datas[j]]++
			}
		}
	}
	for _, d := range items {
		if want[d] != should[d] {
			t.Errorf("partial: %s delivered %d times, want %d", d, want[d], should[d])
		}
	}
	reported := 0
	for _, inv := range invs {
		reported += len(inv.Failed)
	}
	if reported != 4 {
		t.Errorf("%d failures reported, want 4 (each flaky record once)", reported)
	}
}

// TestKinesisMappingStartingPositions: LATEST skips what the stream held
// when the mapping started and delivers everything after; AT_TIMESTAMP
// delivers exactly the records that arrived from the timestamp on.
func TestKinesisMappingStartingPositions(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--stream-unthrottled", "--sandbox", "process"))
	kc, lc := ts.Kinesis(), ts.Lambda()

	latest := newStreamRecorder(t, ts, "latest", nil)
	latestARN := createStream(t, kc, "latest", 2)
	putData(t, kc, "latest", numbered("old", 20), nil)
	m := mapStream(t, lc, "latest", latestARN, func(in *lambda.CreateEventSourceMappingInput) {
		in.StartingPosition = lambdatypes.EventSourcePositionLatest
	})
	waitState(t, lc, *m.UUID, "Enabled")

	stamped := newStreamRecorder(t, ts, "stamped", nil)
	stampedARN := createStream(t, kc, "stamped", 2)
	putData(t, kc, "stamped", numbered("before", 20), nil)
	time.Sleep(1100 * time.Millisecond)
	at := time.Now()
	time.Sleep(1100 * time.Millisecond)
	putData(t, kc, "stamped", numbered("after", 20), nil)
	mapStream(t, lc, "stamped", stampedARN, func(in *lambda.CreateEventSourceMappingInput) {
		in.StartingPosition, in.StartingPositionTimestamp = lambdatypes.EventSourcePositionAtTimestamp, aws.Time(at)
	})

	// LATEST starts when the poller does: probe until a record comes
	// through, then everything from there on arrives.
	var probes []string
	for deadline := time.Now().Add(time.Minute); len(latest.invocations(t)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no probe record reached the LATEST mapping in a minute")
		}
		p := fmt.Sprint("probe", len(probes))
		probes = append(probes, p)
		putData(t, kc, "latest", []string{p}, nil)
		time.Sleep(300 * time.Millisecond)
	}
	tail := numbered("new", 20)
	putData(t, kc, "latest", tail, nil)
	invs := latest.waitFor(t, "the new records", func(invs []streamInvocation) bool {
		got := delivered(invs)
		for _, d := range tail {
			if got[d] == 0 {
				return false
			}
		}
		return true
	})
	got := delivered(invs)
	for _, d := range numbered("old", 20) {
		if got[d] > 0 {
			t.Errorf("LATEST delivered %s, put before the mapping", d)
		}
	}
	firstProbe := slices.IndexFunc(probes, func(p string) bool { return got[p] > 0 })
	for _, p := range probes[firstProbe+1:] {
		if got[p] != 1 {
			t.Errorf("LATEST: %s, put after %s was delivered, delivered %d times", p, probes[firstProbe], got[p])
		}
	}
	t.Logf("LATEST: %d probes before one was delivered", firstProbe+1)

	invs = stamped.waitFor(t, "the records after the timestamp", func(invs []streamInvocation) bool { return len(delivered(invs)) >= 20 })
	time.Sleep(time.Second)
	got = delivered(stamped.invocations(t))
	for _, d := range numbered("before", 20) {
		if got[d] > 0 {
			t.Errorf("AT_TIMESTAMP delivered %s, put before the timestamp", d)
		}
	}
	for _, d := range numbered("after", 20) {
		if got[d] != 1 {
			t.Errorf("AT_TIMESTAMP delivered %s %d times", d, got[d])
		}
	}
}

// streamFailure is what a stream mapping sends to its on-failure queue.
type streamFailure struct {
	RequestContext struct {
		Condition              string
		ApproximateInvokeCount int
	}
	ResponseContext  struct{ FunctionError string }
	KinesisBatchInfo struct {
		StartSequenceNumber, EndSequenceNumber string
		BatchSize                              int
	}
}

// waitFailures waits until the on-failure queue holds n records and
// returns them.
func waitFailures(t *testing.T, ts *testServer, url string, n int, within time.Duration) []streamFailure {
	t.Helper()
	var out []streamFailure
	for deadline := time.Now().Add(within); len(out) < n; {
		for _, body := range receiveAll(t, ts.SQS(), url, 1) {
			var f streamFailure
			if err := json.Unmarshal([]byte(body), &f); err != nil {
				t.Fatalf("on-failure record %s: %v", body, err)
			}
			out = append(out, f)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d on-failure records after %v, want %d", len(out), within, n)
		}
	}
	return out
}

// TestKinesisMappingRetriesAndRecordAge: a failing batch is invoked
// MaximumRetryAttempts+1 times, then sent to the on-failure queue and the
// shard goes on; with MaximumRecordAgeInSeconds a batch failing without
// end is given up on once its records are older than that (60 s, the
// least Lambda allows: this test waits for it) and what came after it is
// delivered.
func TestKinesisMappingRetriesAndRecordAge(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--stream-unthrottled", "--sandbox", "process"))
	kc, lc, qc := ts.Kinesis(), ts.Lambda(), ts.SQS()

	retried := newStreamRecorder(t, ts, "retried", nil)
	retriedARN := createStream(t, kc, "retried", 1)
	retryQueue := createQueue(t, qc, "retry-failures", nil)
	items := numbered("r", 12)
	items[5] = "poison5"
	putData(t, kc, "retried", items[:10], nil)
	mapStream(t, lc, "retried", retriedARN, func(in *lambda.CreateEventSourceMappingInput) {
		in.BatchSize, in.MaximumRetryAttempts = aws.Int32(10), aws.Int32(2)
		in.DestinationConfig = &lambdatypes.DestinationConfig{OnFailure: &lambdatypes.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:retry-failures")}}
	})

	aged := newStreamRecorder(t, ts, "aged", nil)
	agedARN := createStream(t, kc, "aged", 1)
	agedQueue := createQueue(t, qc, "age-failures", nil)
	putData(t, kc, "aged", []string{"poison-old"}, nil)
	agedPut := time.Now()
	mapStream(t, lc, "aged", agedARN, func(in *lambda.CreateEventSourceMappingInput) {
		in.BatchSize, in.MaximumRecordAgeInSeconds = aws.Int32(10), aws.Int32(60)
		in.DestinationConfig = &lambdatypes.DestinationConfig{OnFailure: &lambdatypes.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:age-failures")}}
	})

	// Retries: the batch is all of the first ten records, or, should
	// they have come in parts, the part with the poison.
	f := waitFailures(t, ts, retryQueue, 1, time.Minute)[0]
	putData(t, kc, "retried", items[10:], nil)
	invs := retried.waitFor(t, "the records after the failed batch", func(invs []streamInvocation) bool { return delivered(invs)["r11"] > 0 })
	withPoison := 0
	for _, inv := range invs {
		if slices.Contains(inv.Datas, "poison5") {
			withPoison++
		}
	}
	if withPoison != 3 || f.RequestContext.Condition != "RetryAttemptsExhausted" || f.RequestContext.ApproximateInvokeCount != 3 ||
		f.ResponseContext.FunctionError != "Unhandled" {
		t.Errorf("the poisoned batch was invoked %d times, want 3; on-failure record %+v", withPoison, f)
	}
	got := delivered(invs)
	for _, d := range items[10:] {
		if got[d] != 1 {
			t.Errorf("%s, after the batch given up on, delivered %d times", d, got[d])
		}
	}

	// Record age: a record put 20 s after the poisoned one waits behind
	// it, and comes through once the poisoned one is given up on.
	time.Sleep(time.Until(agedPut.Add(20 * time.Second)))
	putData(t, kc, "aged", []string{"young"}, nil)
	f = waitFailures(t, ts, agedQueue, 1, 2*time.Minute)[0]
	giveUp := time.Since(agedPut)
	invs = aged.waitFor(t, "the young record", func(invs []streamInvocation) bool { return delivered(invs)["young"] > 0 })
	if f.RequestContext.Condition != "RecordAgeExceeded" || f.KinesisBatchInfo.BatchSize != 1 || giveUp < 60*time.Second {
		t.Errorf("on-failure record %+v %v after the put", f, giveUp)
	}
	got = delivered(invs)
	if got["young"] != 1 || got["poison-old"] < 1 {
		t.Errorf("deliveries %v", got)
	}
	t.Logf("the failing record was given up on %v after its put, after %d invocations", giveUp.Round(time.Second), got["poison-old"])
}
