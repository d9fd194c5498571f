package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lamina-project/lamina/internal/sdkhttp"
)

// Kinesis: the stream service through aws-sdk-go-v2, the AWS CLI v2 and
// boto3, and event source mappings from streams to functions (issue 14,
// items 2 and 3).

// Kinesis returns a Kinesis client of the server.
func (ts *testServer) Kinesis() *kinesis.Client {
	id, secret := ts.Credentials()
	return kinesis.New(kinesis.Options{Region: ts.region(), BaseEndpoint: aws.String(ts.Endpoint()),
		Credentials: staticCredentials(id, secret), RetryMaxAttempts: 3, HTTPClient: sdkhttp.Client()})
}

// TestKinesisGoSDK drives the stream API with aws-sdk-go-v2.
func TestKinesisGoSDK(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	c := ts.Kinesis()
	ctx := t.Context()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("clicks"), ShardCount: aws.Int32(4)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	var inUse *ktypes.ResourceInUseException
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("clicks"), ShardCount: aws.Int32(1)}); !errors.As(err, &inUse) {
		t.Errorf("CreateStream again: %v, want ResourceInUseException", err)
	}
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("od"), StreamModeDetails: &ktypes.StreamModeDetails{StreamMode: ktypes.StreamModeOnDemand}}); err != nil {
		t.Fatalf("CreateStream ON_DEMAND: %v", err)
	}
	var limit *ktypes.LimitExceededException
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("huge"), ShardCount: aws.Int32(100000)}); !errors.As(err, &limit) {
		t.Errorf("CreateStream of 100000 shards: %v, want LimitExceededException", err)
	}
	d, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("clicks")})
	if err != nil || d.StreamDescription.StreamStatus != ktypes.StreamStatusActive || len(d.StreamDescription.Shards) != 4 ||
		*d.StreamDescription.Shards[1].ShardId != "shardId-000000000001" || *d.StreamDescription.RetentionPeriodHours != 24 ||
		*d.StreamDescription.Shards[1].HashKeyRange.StartingHashKey != "85070591730234615865843651857942052864" ||
		*d.StreamDescription.StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/clicks" {
		t.Fatalf("DescribeStream: %v %+v", err, d)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: d.StreamDescription.StreamARN})
	if err != nil || *sum.StreamDescriptionSummary.OpenShardCount != 4 {
		t.Errorf("DescribeStreamSummary: %v %+v", err, sum)
	}
	if od, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("od")}); err != nil ||
		*od.StreamDescriptionSummary.OpenShardCount != 4 || od.StreamDescriptionSummary.StreamModeDetails.StreamMode != ktypes.StreamModeOnDemand {
		t.Errorf("DescribeStreamSummary od: %v %+v", err, od)
	}
	list, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
	if err != nil || !slices.Equal(list.StreamNames, []string{"clicks", "od"}) || len(list.StreamSummaries) != 2 {
		t.Errorf("ListStreams: %v %+v", err, list)
	}
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("clicks"), MaxResults: aws.Int32(3)})
	if err != nil || len(shards.Shards) != 3 || shards.NextToken == nil {
		t.Fatalf("ListShards: %v %+v", err, shards)
	}
	if more, err := c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: shards.NextToken}); err != nil || len(more.Shards) != 1 || *more.Shards[0].ShardId != "shardId-000000000003" {
		t.Errorf("ListShards NextToken: %v %+v", err, more)
	}

	// Partition key "a" hashes (MD5) below 2^128/4: shard 0; an explicit
	// hash key picks the shard.
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("clicks"), PartitionKey: aws.String("a"), Data: []byte("first")})
	if err != nil || *put.ShardId != "shardId-000000000000" || len(*put.SequenceNumber) != 56 {
		t.Fatalf("PutRecord: %v %+v", err, put)
	}
	// Timestamps have milliseconds: "first" arrived in an earlier one.
	time.Sleep(5 * time.Millisecond)
	before := time.Now()
	time.Sleep(5 * time.Millisecond)
	var entries []ktypes.PutRecordsRequestEntry
	for i := range 10 {
		entries = append(entries, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String("x"), Data: []byte(fmt.Sprint("r", i)),
			ExplicitHashKey: aws.String("340282366920938463463374607431768211455")})
	}
	entries = append(entries, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String("a"), Data: []byte("second")})
	puts, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: entries})
	if err != nil || *puts.FailedRecordCount != 0 || len(puts.Records) != 11 || *puts.Records[0].ShardId != "shardId-000000000003" ||
		*puts.Records[10].ShardId != "shardId-000000000000" || *puts.Records[10].SequenceNumber <= *put.SequenceNumber {
		t.Fatalf("PutRecords: %v %+v", err, puts)
	}
	iter := func(shard string, typ ktypes.ShardIteratorType, seq *string, at *time.Time) *string {
		t.Helper()
		out, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("clicks"), ShardId: aws.String(shard),
			ShardIteratorType: typ, StartingSequenceNumber: seq, Timestamp: at})
		if err != nil {
			t.Fatalf("GetShardIterator %s %s: %v", shard, typ, err)
		}
		return out.ShardIterator
	}
	datas := func(it *string, limit int32) ([]string, *kinesis.GetRecordsOutput) {
		t.Helper()
		in := &kinesis.GetRecordsInput{ShardIterator: it}
		if limit > 0 {
			in.Limit = aws.Int32(limit)
		}
		out, err := c.GetRecords(ctx, in)
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		var got []string
		for _, r := range out.Records {
			got = append(got, string(r.Data))
		}
		return got, out
	}
	if got, out := datas(iter("shardId-000000000000", ktypes.ShardIteratorTypeTrimHorizon, nil, nil), 0); !slices.Equal(got, []string{"first", "second"}) ||
		*out.Records[0].PartitionKey != "a" || *out.Records[0].SequenceNumber != *put.SequenceNumber || out.NextShardIterator == nil {
		t.Errorf("TRIM_HORIZON: %v %+v", got, out)
	}
	got, out := datas(iter("shardId-000000000003", ktypes.ShardIteratorTypeTrimHorizon, nil, nil), 4)
	if len(got) != 4 || got[0] != "r0" {
		t.Errorf("TRIM_HORIZON limit 4: %v", got)
	}
	if rest, _ := datas(out.NextShardIterator, 0); len(rest) != 6 || rest[0] != "r4" {
		t.Errorf("NextShardIterator: %v", rest)
	}
	if got, _ := datas(iter("shardId-000000000003", ktypes.ShardIteratorTypeAtSequenceNumber, puts.Records[5].SequenceNumber, nil), 2); !slices.Equal(got, []string{"r5", "r6"}) {
		t.Errorf("AT_SEQUENCE_NUMBER: %v", got)
	}
	if got, _ := datas(iter("shardId-000000000003", ktypes.ShardIteratorTypeAfterSequenceNumber, puts.Records[5].SequenceNumber, nil), 2); !slices.Equal(got, []string{"r6", "r7"}) {
		t.Errorf("AFTER_SEQUENCE_NUMBER: %v", got)
	}
	if got, _ := datas(iter("shardId-000000000000", ktypes.ShardIteratorTypeAtTimestamp, nil, &before), 0); !slices.Equal(got, []string{"second"}) {
		t.Errorf("AT_TIMESTAMP: %v", got)
	}
	latest := iter("shardId-000000000000", ktypes.ShardIteratorTypeLatest, nil, nil)
	if got, _ := datas(latest, 0); len(got) != 0 {
		t.Errorf("LATEST before a put: %v", got)
	}
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("clicks"), PartitionKey: aws.String("a"), Data: []byte("third")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := datas(latest, 0); !slices.Equal(got, []string{"third"}) {
		t.Errorf("LATEST after a put: %v", got)
	}
	// A sequence number of another shard is refused.
	var invalidArg *ktypes.InvalidArgumentException
	if _, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("clicks"), ShardId: aws.String("shardId-000000000001"),
		ShardIteratorType: ktypes.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: put.SequenceNumber}); !errors.As(err, &invalidArg) {
		t.Errorf("GetShardIterator with another shard's sequence number: %v", err)
	}
	// Bounds: a record over 1 MiB, more than 500 records.
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("clicks"), PartitionKey: aws.String("a"), Data: make([]byte, 1<<20)}); err == nil {
		t.Errorf("a record of 1 MiB and its key was taken")
	}
	many := make([]ktypes.PutRecordsRequestEntry, 501)
	for i := range many {
		many[i] = ktypes.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("x")}
	}
	if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: many}); err == nil {
		t.Errorf("501 records were taken")
	}
	// A shard takes 1,000 records a second: a burst of 1,500 to one shard
	// has some refused, in place, with HTTP 200.
	throttled := 0
	for range 3 {
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: many[:500]})
		if err != nil {
			t.Fatalf("PutRecords burst: %v", err)
		}
		throttled += int(*out.FailedRecordCount)
		for _, r := range out.Records {
			if r.ErrorCode != nil && *r.ErrorCode != "ProvisionedThroughputExceededException" {
				t.Errorf("error code %s", *r.ErrorCode)
			}
		}
	}
	if throttled == 0 {
		t.Errorf("1,500 records to one shard at once: none refused")
	}
	// Retention.
	if _, err := c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("clicks"), RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatalf("IncreaseStreamRetentionPeriod: %v", err)
	}
	if _, err := c.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("clicks"), RetentionPeriodHours: aws.Int32(72)}); !errors.As(err, &invalidArg) {
		t.Errorf("DecreaseStreamRetentionPeriod to more: %v", err)
	}
	if s, _ := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("clicks")}); *s.StreamDescriptionSummary.RetentionPeriodHours != 48 {
		t.Errorf("retention %d", *s.StreamDescriptionSummary.RetentionPeriodHours)
	}
	// Delete: gone, and its iterators with it.
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("clicks")}); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	var notFound *ktypes.ResourceNotFoundException
	if _, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("clicks")}); !errors.As(err, &notFound) {
		t.Errorf("DescribeStream after delete: %v", err)
	}
	if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: latest}); !errors.As(err, &notFound) {
		t.Errorf("GetRecords after delete: %v", err)
	}
}

// TestKinesisAWSCLIAndBoto3 drives streams with the AWS CLI v2 and boto3.
func TestKinesisAWSCLIAndBoto3(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	awsCLI(t, ts, "kinesis", "create-stream", "--stream-name", "cli", "--shard-count", "2")
	awsCLI(t, ts, "kinesis", "wait", "stream-exists", "--stream-name", "cli")
	var put struct{ ShardId, SequenceNumber string }
	_ = json.Unmarshal([]byte(awsCLI(t, ts, "kinesis", "put-record", "--stream-name", "cli", "--partition-key", "a", "--data", "aGVsbG8=")), &put)
	if put.ShardId != "shardId-000000000000" || len(put.SequenceNumber) != 56 {
		t.Fatalf("put-record: %+v", put)
	}
	var it struct{ ShardIterator string }
	_ = json.Unmarshal([]byte(awsCLI(t, ts, "kinesis", "get-shard-iterator", "--stream-name", "cli", "--shard-id", "shardId-000000000000",
		"--shard-iterator-type", "AT_SEQUENCE_NUMBER", "--starting-sequence-number", put.SequenceNumber)), &it)
	var recs struct {
		Records []struct{ Data, PartitionKey, SequenceNumber string }
	}
	_ = json.Unmarshal([]byte(awsCLI(t, ts, "kinesis", "get-records", "--shard-iterator", it.ShardIterator)), &recs)
	if len(recs.Records) != 1 || recs.Records[0].Data != "aGVsbG8=" || recs.Records[0].SequenceNumber != put.SequenceNumber {
		t.Fatalf("get-records: %+v", recs)
	}

	py := boto3Python(t)
	id, secret := ts.Credentials()
	cmd := exec.Command(py, "-c", `
import os, sys, time, boto3, botocore
k = boto3.client("kinesis", endpoint_url=os.environ["ENDPOINT"], region_name=os.environ["REGION"])
k.create_stream(StreamName="py", ShardCount=3)
k.get_waiter("stream_exists").wait(StreamName="py")
out = k.put_records(StreamName="py", Records=[{"Data": b"d%d" % i, "PartitionKey": "key%d" % i} for i in range(30)])
assert out["FailedRecordCount"] == 0, out
got = {}
for shard in k.list_shards(StreamName="py")["Shards"]:
    it = k.get_shard_iterator(StreamName="py", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    recs = k.get_records(ShardIterator=it)["Records"]
    for r in recs:
        got[r["Data"]] = shard["ShardId"]
        assert isinstance(r["ApproximateArrivalTimestamp"], __import__("datetime").datetime)
assert len(got) == 30, got
for i, r in enumerate(out["Records"]):
    assert got[b"d%d" % i] == r["ShardId"], (i, r)
try:
    k.describe_stream(StreamName="nope")
    sys.exit("no error")
except k.exceptions.ResourceNotFoundException:
    pass
print("boto3 OK", len(set(got.values())))
`)
	cmd.Env = append(hermeticEnv(), "HOME="+t.TempDir(), "ENDPOINT="+ts.Endpoint(), "REGION="+testRegion,
		"AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_MAX_ATTEMPTS=1")
	outb, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(outb), "boto3 OK 3") {
		t.Fatalf("boto3: %v\n%s", err, outb)
	}
}

// streamConsumerPy logs every batch it takes (shard, sequence numbers,
// data, and how long after its put each record reached the function) and
// fails every batch that holds the record "poison". SLEEP_MS makes it wait
// after logging, so that its log is stored before the batch is done.
const streamConsumerPy = `import json, base64, os, time
def handler(event, context):
    start = time.time()
    recs = event["Records"]
    datas = [base64.b64decode(r["kinesis"]["data"]).decode() for r in recs]
    if "poison" in datas:
        raise Exception("poisoned batch")
    lat = []
    for d in datas:
        if d.startswith("{"):
            lat.append(round(start * 1000 - json.loads(d)["t"], 1))
    for r, d in zip(recs, datas):
        if d == "shape":
            print("RECORD " + json.dumps(r))
    line = "BATCH " + json.dumps([recs[0]["eventID"].split(":")[0], [r["kinesis"]["sequenceNumber"] for r in recs], datas, lat])
    print(line, flush=True)
    if "SEEN_FILE" in os.environ:
        with open(os.environ["SEEN_FILE"], "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
    time.sleep(int(os.environ.get("SLEEP_MS", "0")) / 1000)
`

// batchLog is what the consumer logged: the records it took, by shard,
// and the latencies it saw.
type batchLog struct {
	seqs    map[string]map[string]string // shard → sequence number → data
	batches int
	lat     []float64
}

// readBatches reads the consumer's log; it fails the test when a batch's
// sequence numbers do not increase.
func readBatches(t *testing.T, ts *testServer, function string) *batchLog {
	t.Helper()
	var lines []string
	for _, e := range ts.filterLogEvents(t, function, "") {
		lines = append(lines, *e.Message)
	}
	return parseBatches(t, lines)
}

// readBatchesFile reads the batches the consumer wrote to the file path.
func readBatchesFile(t *testing.T, path string) *batchLog {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	text := string(data)
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i] // a line still being written is not a batch yet
	} else {
		text = ""
	}
	return parseBatches(t, strings.Split(text, "\n"))
}

// parseBatches reads the consumer's BATCH lines; it fails the test when a
// batch's sequence numbers do not increase.
func parseBatches(t *testing.T, lines []string) *batchLog {
	t.Helper()
	bl := &batchLog{seqs: map[string]map[string]string{}}
	for _, line := range lines {
		msg, ok := strings.CutPrefix(strings.TrimSpace(line), "BATCH ")
		if !ok {
			continue
		}
		var b []json.RawMessage
		var shard string
		var seqs, datas []string
		var lat []float64
		if json.Unmarshal([]byte(msg), &b) != nil || len(b) != 4 || json.Unmarshal(b[0], &shard) != nil ||
			json.Unmarshal(b[1], &seqs) != nil || json.Unmarshal(b[2], &datas) != nil || json.Unmarshal(b[3], &lat) != nil {
			t.Fatalf("batch log %q", msg)
		}
		if !slices.IsSorted(seqs) {
			t.Errorf("a batch of %s is out of order: %v", shard, seqs)
		}
		if bl.seqs[shard] == nil {
			bl.seqs[shard] = map[string]string{}
		}
		for i, s := range seqs {
			bl.seqs[shard][s] = datas[i]
		}
		bl.batches++
		bl.lat = append(bl.lat, lat...)
	}
	return bl
}

// count is how many distinct records were taken.
func (bl *batchLog) count() int {
	n := 0
	for _, m := range bl.seqs {
		n += len(m)
	}
	return n
}

// putStream writes records with PutRecords from one client, in order, 500
// at a time; keys are k0…k63. It returns each record's shard and sequence
// number by index.
func putStream(t *testing.T, c *kinesis.Client, stream string, datas []string) (shards, seqs []string) {
	t.Helper()
	for from := 0; from < len(datas); from += 500 {
		var entries []ktypes.PutRecordsRequestEntry
		for i := from; i < min(from+500, len(datas)); i++ {
			entries = append(entries, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i%64)), Data: []byte(datas[i])})
		}
		out, err := c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err != nil || *out.FailedRecordCount != 0 {
			t.Fatalf("PutRecords: %v %+v", err, out)
		}
		for _, r := range out.Records {
			shards, seqs = append(shards, *r.ShardId), append(seqs, *r.SequenceNumber)
		}
	}
	return shards, seqs
}

// streamRecords is how many records the stream mapping tests put
// (LAMINA_E2E_KINESIS_RECORDS sets more, e.g. the 100,000).
func streamRecords() int {
	if n, err := strconv.Atoi(os.Getenv("LAMINA_E2E_KINESIS_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 5000
}

// percentile is the p-th percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p/100))]
}

// TestKinesisEventSourceMapping: a mapping delivers a 4-shard stream's
// records to a function, each shard in order; the one poisoned record is
// bisected out of its batch and is exactly what reaches the on-failure
// queue; the record has Lambda's shape. It reports throughput and the
// latency from put to function start.
func TestKinesisEventSourceMapping(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--stream-unthrottled"))
	ctx := t.Context()
	kc, lc, qc := ts.Kinesis(), ts.Lambda(), ts.SQS()
	ts.createFunction(t, "streamer", zipFiles(t, map[string]string{"app.py": streamConsumerPy}), withTimeout(10))
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("events"), ShardCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	failuresURL := createQueue(t, qc, "stream-failures", nil)
	streamARN := "arn:aws:kinesis:us-east-1:000000000000:stream/events"
	for _, in := range []*lambda.CreateEventSourceMappingInput{
		{FunctionName: aws.String("streamer"), EventSourceArn: aws.String(streamARN)}, // no StartingPosition
		{FunctionName: aws.String("streamer"), EventSourceArn: aws.String(streamARN), StartingPosition: lambdatypes.EventSourcePositionTrimHorizon, ParallelizationFactor: aws.Int32(11)},
		{FunctionName: aws.String("streamer"), EventSourceArn: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/nope"), StartingPosition: lambdatypes.EventSourcePositionLatest},
	} {
		var invalid *lambdatypes.InvalidParameterValueException
		if _, err := lc.CreateEventSourceMapping(ctx, in); !errors.As(err, &invalid) {
			t.Errorf("CreateEventSourceMapping %+v: %v, want InvalidParameterValueException", in, err)
		}
	}

	total := streamRecords()
	poison := total / 3
	datas := make([]string, total)
	for i := range datas {
		datas[i] = fmt.Sprint("r", i)
	}
	datas[poison], datas[1] = "poison", "shape"
	start := time.Now()
	shards, seqs := putStream(t, kc, "events", datas)
	putTime := time.Since(start)

	created, err := lc.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("streamer"),
		EventSourceArn: aws.String(streamARN), StartingPosition: lambdatypes.EventSourcePositionTrimHorizon, BatchSize: aws.Int32(100),
		BisectBatchOnFunctionError: aws.Bool(true), MaximumRetryAttempts: aws.Int32(1),
		DestinationConfig: &lambdatypes.DestinationConfig{OnFailure: &lambdatypes.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:stream-failures")}}})
	if err != nil {
		t.Fatalf("CreateEventSourceMapping: %v", err)
	}
	if created.StartingPosition != lambdatypes.EventSourcePositionTrimHorizon || *created.ParallelizationFactor != 1 || *created.MaximumRecordAgeInSeconds != -1 ||
		*created.DestinationConfig.OnFailure.Destination != "arn:aws:sqs:us-east-1:000000000000:stream-failures" {
		t.Errorf("created %+v", created)
	}
	deadline := time.Now().Add(3 * time.Minute)
	var bl *batchLog
	for {
		bl = readBatches(t, ts, "streamer")
		if bl.count() >= total-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes %d of %d records were delivered", bl.count(), total-1)
		}
		time.Sleep(300 * time.Millisecond)
	}
	elapsed := time.Since(start)
	// Every record but the poisoned one, under the shard it was put to, in
	// the order it was put (its sequence number).
	for i, d := range datas {
		got, ok := bl.seqs[shards[i]][seqs[i]]
		if d == "poison" {
			if ok {
				t.Errorf("the poisoned record was delivered in a successful batch")
			}
			continue
		}
		if got != d {
			t.Fatalf("record %d (%s %s): delivered as %q", i, shards[i], seqs[i], got)
		}
	}
	// Exactly the poisoned record is in the on-failure queue.
	failures := receiveAll(t, qc, failuresURL, 2)
	if len(failures) != 1 {
		t.Fatalf("on-failure records: %v", failures)
	}
	var rec struct {
		RequestContext struct {
			Condition, FunctionArn string
			ApproximateInvokeCount int
		}
		ResponseContext struct {
			FunctionError string
			StatusCode    int
		}
		Version          string
		KinesisBatchInfo struct {
			ShardID, StartSequenceNumber, EndSequenceNumber, StreamArn string
			BatchSize                                                  int
		}
	}
	if err := json.Unmarshal([]byte(failures[0]), &rec); err != nil {
		t.Fatal(err)
	}
	b := rec.KinesisBatchInfo
	if rec.RequestContext.Condition != "RetryAttemptsExhausted" || rec.RequestContext.ApproximateInvokeCount != 2 || rec.ResponseContext.FunctionError != "Unhandled" ||
		rec.Version != "1.0" || b.BatchSize != 1 || b.StartSequenceNumber != seqs[poison] || b.EndSequenceNumber != seqs[poison] ||
		b.ShardID != shards[poison] || b.StreamArn != streamARN || rec.RequestContext.FunctionArn != "arn:aws:lambda:us-east-1:000000000000:function:streamer" {
		t.Errorf("on-failure record %s (poison %s %s)", failures[0], shards[poison], seqs[poison])
	}
	t.Logf("%d records put in %v (%.0f/s); all delivered %v after the first put (%.0f records/s end to end) in %d batches",
		total, putTime.Round(time.Millisecond), float64(total)/putTime.Seconds(), elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), bl.batches)

	// The record's shape.
	for _, e := range ts.waitLogEvents(t, "streamer", "RECORD ") {
		msg, ok := strings.CutPrefix(strings.TrimSpace(*e.Message), "RECORD ")
		if !ok {
			continue
		}
		var r struct {
			Kinesis struct {
				KinesisSchemaVersion, PartitionKey, SequenceNumber, Data string
				ApproximateArrivalTimestamp                              float64
			}
			EventSource, EventVersion, EventID, EventName, InvokeIdentityArn, AwsRegion, EventSourceARN string
		}
		if err := json.Unmarshal([]byte(msg), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kinesis.KinesisSchemaVersion != "1.0" || r.Kinesis.PartitionKey != "k1" || r.Kinesis.SequenceNumber != seqs[1] || r.Kinesis.Data != "c2hhcGU=" ||
			r.Kinesis.ApproximateArrivalTimestamp < float64(start.Unix()) || r.EventSource != "aws:kinesis" || r.EventVersion != "1.0" ||
			r.EventID != shards[1]+":"+seqs[1] || r.EventName != "aws:kinesis:record" || r.InvokeIdentityArn != testRole ||
			r.AwsRegion != testRegion || r.EventSourceARN != streamARN {
			t.Errorf("record %s", msg)
		}
		break
	}

	// Latency from put to function start, one record at a time.
	const trickle = 100
	for i := range trickle {
		d := fmt.Sprintf(`{"i":%d,"t":%d}`, i, time.Now().UnixMilli())
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String(fmt.Sprint("t", i)), Data: []byte(d)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		bl = readBatches(t, ts, "streamer")
		if len(bl.lat) >= trickle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d trickled records delivered", len(bl.lat), trickle)
		}
		time.Sleep(300 * time.Millisecond)
	}
	sort.Float64s(bl.lat)
	t.Logf("put → function start, %d records one at a time: p50 %.1f ms, p99 %.1f ms", len(bl.lat), percentile(bl.lat, 50), percentile(bl.lat, 99))
}

// TestKinesisMappingResumesAfterKill: a mapping's server is killed with
// SIGKILL in the middle of a stream; after the restart it resumes from its
// checkpoints and every record is delivered, none skipped.
func TestKinesisMappingResumesAfterKill(t *testing.T) {
	t.Parallel()
	// The process sandbox, so that the consumer writes what it took to a
	// file of the test's, synced before its invocation ends: the server's
	// logs, in its memory for up to 200 ms, die with it.
	ts := startServer(t, withArgs("--stream-unthrottled", "--sandbox", "process"))
	ctx := t.Context()
	kc, lc := ts.Kinesis(), ts.Lambda()
	seen := filepath.Join(t.TempDir(), "batches")
	ts.createFunction(t, "resumer", zipFiles(t, map[string]string{"app.py": streamConsumerPy}), withTimeout(10),
		withEnvironment(map[string]string{"SLEEP_MS": "200", "SEEN_FILE": seen}))
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("durable"), ShardCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	total := min(streamRecords(), 4000)
	datas := make([]string, total)
	for i := range datas {
		datas[i] = fmt.Sprint("r", i)
	}
	shards, seqs := putStream(t, kc, "durable", datas)
	if _, err := lc.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("resumer"),
		EventSourceArn: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/durable"), StartingPosition: lambdatypes.EventSourcePositionTrimHorizon,
		BatchSize: aws.Int32(100)}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		if n := readBatchesFile(t, seen).count(); n >= total/4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress before the kill")
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := readBatchesFile(t, seen).count()
	ts.Kill()
	ts.Restart()
	deadline := time.Now().Add(3 * time.Minute)
	var bl *batchLog
	for {
		bl = readBatchesFile(t, seen)
		if bl.count() >= total {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	missing := 0
	for i, d := range datas {
		if bl.seqs[shards[i]][seqs[i]] != d {
			if missing < 5 {
				t.Logf("never delivered: record %d, %s %s", i, shards[i], seqs[i])
			}
			missing++
		}
	}
	t.Logf("%d of %d records delivered before SIGKILL; after the restart all %d delivered: %v", before, total, bl.count(), missing == 0)
	if missing > 0 {
		t.Fatalf("%d records were never delivered after the restart", missing)
	}
}
