package e2e

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lamina-project/lamina/internal/sdkhttp"
)

// SQS: the queue service through unmodified clients — aws-sdk-go-v2 and
// boto3 (JSON 1.0), the AWS CLI v2 of Debian 12 (2.9, the query
// protocol) — and event source mappings from queues to functions
// (issue 14, items 1 and 3).

// SQS returns an SQS client of the server.
func (ts *testServer) SQS() *sqs.Client {
	id, secret := ts.Credentials()
	return sqs.New(sqs.Options{Region: ts.region(), BaseEndpoint: aws.String(ts.Endpoint()),
		Credentials: staticCredentials(id, secret), RetryMaxAttempts: 3, HTTPClient: sdkhttp.Client()})
}

// createQueue creates a queue and returns its URL.
func createQueue(t *testing.T, c *sqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	out, err := c.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	return *out.QueueUrl
}

// receiveAll receives (and deletes) messages of a queue until a receive
// of waitSeconds finds none, and returns their bodies.
func receiveAll(t *testing.T, c *sqs.Client, queueURL string, waitSeconds int32) []string {
	t.Helper()
	var bodies []string
	for {
		out, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		if len(out.Messages) == 0 {
			return bodies
		}
		var entries []types.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			bodies = append(bodies, *m.Body)
			entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		del, err := c.DeleteMessageBatch(t.Context(), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
		if err != nil || len(del.Failed) > 0 {
			t.Fatalf("DeleteMessageBatch: %v %+v", err, del)
		}
	}
}

// queueCounts returns a queue's ApproximateNumberOfMessages, …NotVisible
// and …Delayed.
func queueCounts(t *testing.T, c *sqs.Client, queueURL string) (visible, inFlight, delayed int) {
	t.Helper()
	out, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	n := func(k string) int { v, _ := strconv.Atoi(out.Attributes[k]); return v }
	return n("ApproximateNumberOfMessages"), n("ApproximateNumberOfMessagesNotVisible"), n("ApproximateNumberOfMessagesDelayed")
}

// TestSQSGoSDK drives the queue operations with aws-sdk-go-v2 (JSON 1.0),
// which checks the MD5 of every body it sends and receives.
func TestSQSGoSDK(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	c := ts.SQS()
	ctx := t.Context()

	url := createQueue(t, c, "orders", map[string]string{"VisibilityTimeout": "1", "MessageRetentionPeriod": "3600"})
	if !strings.HasPrefix(url, ts.Endpoint()+"/000000000000/orders") && !strings.HasSuffix(url, "/orders") {
		t.Fatalf("QueueUrl %s", url)
	}
	// Creating it again with the same attributes returns it; with others
	// fails with QueueNameExists.
	if again := createQueue(t, c, "orders", map[string]string{"VisibilityTimeout": "1"}); again != url {
		t.Errorf("CreateQueue again: %s, want %s", again, url)
	}
	_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders"), Attributes: map[string]string{"VisibilityTimeout": "5"}})
	var exists *types.QueueNameExists
	if !errors.As(err, &exists) {
		t.Errorf("CreateQueue with other attributes: %v, want QueueNameExists", err)
	}
	_, err = c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
	var missing *types.QueueDoesNotExist
	if !errors.As(err, &missing) {
		t.Errorf("GetQueueUrl nope: %v, want QueueDoesNotExist", err)
	}

	// A message with attributes: the MD5s are SQS's.
	sent, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("héllo <world> & \"q\""),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"color": {DataType: aws.String("String"), StringValue: aws.String("red")},
			"n":     {DataType: aws.String("Number"), StringValue: aws.String("42")},
			"raw":   {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2, 255}},
		}})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	// The MD5 of these attributes as AWS computes it (its algorithm: see
	// the sqs package; this value is checked by the Java and Go v1 SDKs).
	if sent.MD5OfMessageAttributes == nil || len(*sent.MD5OfMessageAttributes) != 32 {
		t.Errorf("MD5OfMessageAttributes %v", sent.MD5OfMessageAttributes)
	}
	got, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
		MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}, WaitTimeSeconds: 1})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("ReceiveMessage: %v %+v", err, got)
	}
	m := got.Messages[0]
	if *m.MessageId != *sent.MessageId || *m.Body != "héllo <world> & \"q\"" || *m.MD5OfMessageAttributes != *sent.MD5OfMessageAttributes ||
		m.Attributes["ApproximateReceiveCount"] != "1" || string(m.MessageAttributes["raw"].BinaryValue) != "\x00\x01\x02\xff" {
		t.Errorf("received %+v", m)
	}
	// Invisible for its VisibilityTimeout (1 s), then received again.
	if again, _ := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); len(again.Messages) != 0 {
		t.Errorf("received while invisible: %+v", again.Messages)
	}
	again, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 5,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{"ApproximateReceiveCount"}})
	if err != nil || len(again.Messages) != 1 || again.Messages[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("received again: %v %+v", err, again)
	}
	// The old receipt handle no longer deletes it; the new one does.
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url),
		ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 10}); err == nil {
		t.Errorf("ChangeMessageVisibility with a stale handle succeeded")
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: again.Messages[0].ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}

	// Long polling: a receive waits for a message sent meanwhile.
	go func() {
		time.Sleep(500 * time.Millisecond)
		_, _ = c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("late")})
	}()
	start := time.Now()
	late, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 10})
	if err != nil || len(late.Messages) != 1 || *late.Messages[0].Body != "late" {
		t.Fatalf("long poll: %v %+v", err, late)
	}
	if waited := time.Since(start); waited >= 10*time.Second {
		t.Errorf("the long poll waited %v, its whole wait", waited)
	}
	t.Logf("long poll answered %v after the receive began", time.Since(start).Round(time.Millisecond))

	// Batches, delays, counts, purge.
	var entries []types.SendMessageBatchRequestEntry
	for i := range 10 {
		e := types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("e", i)), MessageBody: aws.String(fmt.Sprint("b", i))}
		if i == 9 {
			e.DelaySeconds = 60
		}
		entries = append(entries, e)
	}
	batch, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
	if err != nil || len(batch.Successful) != 10 || len(batch.Failed) != 0 {
		t.Fatalf("SendMessageBatch: %v %+v", err, batch)
	}
	if visible, inFlight, delayed := queueCounts(t, c, url); visible != 9 || inFlight != 1 || delayed != 1 {
		t.Errorf("counts visible %d in flight %d delayed %d, want 9 1 1", visible, inFlight, delayed)
	}
	if _, err := c.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatalf("PurgeQueue: %v", err)
	}
	if visible, _, delayed := queueCounts(t, c, url); visible != 0 || delayed != 0 {
		t.Errorf("after purge: %d visible, %d delayed", visible, delayed)
	}

	// FIFO: each group in order, one batch of a group in flight at a time,
	// duplicates within 5 minutes dropped (explicit and content-based).
	fifo := createQueue(t, c, "jobs.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "30"})
	for i := range 6 {
		group := []string{"a", "b"}[i%2]
		out, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(fifo), MessageBody: aws.String(fmt.Sprint(group, i)), MessageGroupId: aws.String(group)})
		if err != nil || out.SequenceNumber == nil {
			t.Fatalf("SendMessage FIFO: %v %+v", err, out)
		}
	}
	dup, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(fifo), MessageBody: aws.String("a0"), MessageGroupId: aws.String("a")})
	if err != nil {
		t.Fatalf("SendMessage duplicate: %v", err)
	}
	for range 2 {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(fifo), MessageBody: aws.String("x"), MessageGroupId: aws.String("c"),
			MessageDeduplicationId: aws.String("same")}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(fifo), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range first.Messages {
		bodies = append(bodies, *m.Body)
		if m.Attributes["MessageGroupId"] == "" || m.Attributes["SequenceNumber"] == "" {
			t.Errorf("FIFO message lacks its attributes: %+v", m.Attributes)
		}
	}
	if want := []string{"a0", "b1", "a2", "b3", "a4", "b5", "x"}; !slices.Equal(bodies, want) {
		t.Errorf("FIFO received %v, want %v (duplicate %s dropped)", bodies, want, *dup.MessageId)
	}
	if more, _ := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(fifo)}); len(more.Messages) != 0 {
		t.Errorf("a group in flight gave more: %+v", more.Messages)
	}

	// Dead letters: after maxReceiveCount receives a message moves.
	dlq := createQueue(t, c, "orders-dlq", nil)
	src := createQueue(t, c, "orders-src", map[string]string{"VisibilityTimeout": "0",
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:orders-dlq","maxReceiveCount":2}`})
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(src), MessageBody: aws.String("poison")}); err != nil {
		t.Fatal(err)
	}
	receives := 0
	for range 5 {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(src)})
		if err != nil {
			t.Fatal(err)
		}
		receives += len(out.Messages)
	}
	dead, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), WaitTimeSeconds: 2,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}})
	if err != nil || receives != 2 || len(dead.Messages) != 1 || *dead.Messages[0].Body != "poison" ||
		!strings.HasSuffix(dead.Messages[0].Attributes["DeadLetterQueueSourceArn"], ":orders-src") {
		t.Fatalf("dead letter: %d receives, %v %+v", receives, err, dead)
	}
	sources, err := c.ListDeadLetterSourceQueues(ctx, &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlq)})
	if err != nil || len(sources.QueueUrls) != 1 || !strings.HasSuffix(sources.QueueUrls[0], "/orders-src") {
		t.Errorf("ListDeadLetterSourceQueues: %v %+v", err, sources)
	}

	// Deleting a queue: gone, its name free.
	if _, err := c.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(src)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(src), MessageBody: aws.String("x")}); !errors.As(err, &missing) {
		t.Errorf("send to a deleted queue: %v", err)
	}
	list, err := c.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("orders")})
	if err != nil || len(list.QueueUrls) != 2 {
		t.Errorf("ListQueues orders: %v %+v", err, list)
	}
}

// TestSQSAWSCLI drives queues with the AWS CLI v2 of Debian 12, which
// speaks SQS's query protocol.
func TestSQSAWSCLI(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	var created struct{ QueueUrl string }
	_ = json.Unmarshal([]byte(awsCLI(t, ts, "sqs", "create-queue", "--queue-name", "cli", "--attributes", "DelaySeconds=0,VisibilityTimeout=7")), &created)
	if !strings.HasSuffix(created.QueueUrl, "/000000000000/cli") {
		t.Fatalf("create-queue: %q", created.QueueUrl)
	}
	var sent struct{ MessageId, MD5OfMessageBody, MD5OfMessageAttributes string }
	_ = json.Unmarshal([]byte(awsCLI(t, ts, "sqs", "send-message", "--queue-url", created.QueueUrl, "--message-body", "from the cli",
		"--message-attributes", `{"k":{"DataType":"String","StringValue":"v"}}`)), &sent)
	if sent.MD5OfMessageBody != md5Hex("from the cli") || len(sent.MD5OfMessageAttributes) != 32 {
		t.Fatalf("send-message: %+v", sent)
	}
	var got struct {
		Messages []struct {
			MessageId, Body, ReceiptHandle, MD5OfMessageAttributes string
			Attributes                                             map[string]string
		}
	}
	_ = json.Unmarshal([]byte(awsCLI(t, ts, "sqs", "receive-message", "--queue-url", created.QueueUrl, "--attribute-names", "All",
		"--message-attribute-names", "All", "--wait-time-seconds", "2")), &got)
	if len(got.Messages) != 1 || got.Messages[0].Body != "from the cli" || got.Messages[0].MessageId != sent.MessageId ||
		got.Messages[0].MD5OfMessageAttributes != sent.MD5OfMessageAttributes || got.Messages[0].Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("receive-message: %+v (sent %+v)", got, sent)
	}
	awsCLI(t, ts, "sqs", "delete-message", "--queue-url", created.QueueUrl, "--receipt-handle", got.Messages[0].ReceiptHandle)
	var attrs struct{ Attributes map[string]string }
	_ = json.Unmarshal([]byte(awsCLI(t, ts, "sqs", "get-queue-attributes", "--queue-url", created.QueueUrl, "--attribute-names", "All")), &attrs)
	if attrs.Attributes["VisibilityTimeout"] != "7" || attrs.Attributes["ApproximateNumberOfMessages"] != "0" ||
		attrs.Attributes["QueueArn"] != "arn:aws:sqs:"+testRegion+":000000000000:cli" {
		t.Errorf("get-queue-attributes: %+v", attrs)
	}
	// An error carries the query protocol's code.
	id, secret := ts.Credentials()
	cmd := exec.Command("/usr/bin/aws", "sqs", "get-queue-url", "--queue-name", "nope", "--endpoint-url", ts.Endpoint(), "--region", testRegion)
	cmd.Env = append(hermeticEnv(), "HOME="+t.TempDir(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_MAX_ATTEMPTS=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "AWS.SimpleQueueService.NonExistentQueue") {
		t.Errorf("get-queue-url nope: %v\n%s", err, out)
	}
}

// boto3Python is the interpreter that has boto3 on this machine (and on
// CI images built like it); the test is skipped without one.
func boto3Python(t *testing.T) string {
	t.Helper()
	home, _ := os.UserHomeDir()
	candidates, _ := filepath.Glob(filepath.Join(home, ".pyenv/versions/*/bin/python3"))
	for _, py := range append([]string{"/usr/bin/python3.11", "/usr/bin/python3"}, candidates...) {
		if exec.Command(py, "-c", "import boto3").Run() == nil {
			return py
		}
	}
	t.Skip("no Python interpreter here has boto3")
	return ""
}

const boto3Script = `
import os, sys, boto3, botocore
sqs = boto3.client("sqs", endpoint_url=os.environ["ENDPOINT"], region_name=os.environ["REGION"])
url = sqs.create_queue(QueueName="py", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
sent = sqs.send_message(QueueUrl=url, MessageBody="from boto3",
    MessageAttributes={"n": {"DataType": "Number", "StringValue": "7"}, "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
batch = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m%d" % i} for i in range(3)])
assert len(batch["Successful"]) == 3 and not batch.get("Failed"), batch
got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"], WaitTimeSeconds=2)
msgs = got["Messages"]
first = [m for m in msgs if m["MessageId"] == sent["MessageId"]][0]
assert first["Body"] == "from boto3" and first["MessageAttributes"]["b"]["BinaryValue"] == b"\x00\x01", first
assert first["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"], (first, sent)
res = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
assert len(res["Successful"]) == len(msgs), res
try:
    sqs.get_queue_url(QueueName="nope")
    sys.exit("no error")
except sqs.exceptions.QueueDoesNotExist as e:
    assert e.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue", e.response
try:
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    sys.exit("no error")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidParameterValue", e.response
print("received", len(msgs), "OK")
`

// TestSQSBoto3 drives queues with boto3 (JSON 1.0), whose errors come from
// x-amzn-query-error.
func TestSQSBoto3(t *testing.T) {
	t.Parallel()
	py := boto3Python(t)
	ts := startServer(t, withArgs("--sandbox", "process"))
	id, secret := ts.Credentials()
	cmd := exec.Command(py, "-c", boto3Script)
	cmd.Env = append(hermeticEnv(), "HOME="+t.TempDir(), "ENDPOINT="+ts.Endpoint(), "REGION="+testRegion,
		"AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_MAX_ATTEMPTS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "received 4 OK") {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
}

// TestSQSWithJavaScriptSDK drives the queues with @aws-sdk/client-sqs
// unmodified (e2e/testdata/js/sqs.mjs): create, attributes, send and
// receive with message attributes, visibility, batches, delay, purge,
// FIFO order and deduplication, delete. .ci/run installs the SDK into
// e2e/testdata/js.
func TestSQSWithJavaScriptSDK(t *testing.T) {
	t.Parallel()
	dir, _ := filepath.Abs("testdata/js")
	if _, err := os.Stat(filepath.Join(dir, "node_modules/@aws-sdk/client-sqs")); err != nil {
		t.Skipf("@aws-sdk/client-sqs is not installed in %s (npm install --prefix %s)", dir, dir)
	}
	ts := startServer(t)
	id, secret := ts.Credentials()
	cmd := exec.Command("/usr/bin/node", filepath.Join(dir, "sqs.mjs"), ts.Endpoint())
	cmd.Dir = dir
	cmd.Env = append(hermeticEnv(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "HOME="+t.TempDir(), "NODE_NO_WARNINGS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("node sqs.mjs: %v\n%s", err, out)
	}
}

// TestSQSNothingLostOnKill: every message whose send was acknowledged is
// received after the server is killed with SIGKILL in the middle of a
// burst of sends.
func TestSQSNothingLostOnKill(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	c := ts.SQS()
	url := createQueue(t, c, "durable", nil)
	const total, senders = 4000, 8
	acked := make([]bool, total)
	var next, nAcked atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	client := sqs.New(sqs.Options{Region: ts.region(), BaseEndpoint: aws.String(ts.Endpoint()),
		Credentials: staticCredentials(ts.Credentials()), RetryMaxAttempts: 1, HTTPClient: sdkhttp.Client()})
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1) - 1
				if n >= total {
					return
				}
				_, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(strconv.FormatInt(n, 10))})
				if err != nil {
					return // the server is gone
				}
				acked[n] = true
				nAcked.Add(1)
			}
		}()
	}
	for nAcked.Load() < total/2 {
		time.Sleep(time.Millisecond)
	}
	ts.Kill()
	wg.Wait()
	elapsed := time.Since(start)
	ts.Restart()
	bodies := receiveAll(t, ts.SQS(), url, 2)
	seen := map[int]bool{}
	for _, b := range bodies {
		n, _ := strconv.Atoi(b)
		seen[n] = true
	}
	lost := 0
	for n, ok := range acked {
		if ok && !seen[n] {
			lost++
		}
	}
	t.Logf("%d sends acknowledged in %v before SIGKILL, %d messages received after the restart", nAcked.Load(), elapsed.Round(time.Millisecond), len(seen))
	if lost > 0 {
		t.Fatalf("%d acknowledged messages were lost", lost)
	}
}

// esmPy is a function that fails, through ReportBatchItemFailures, every
// record whose body starts with "bad", and prints the first record it
// gets whose body is "shape".
const esmPy = `import json
def handler(event, context):
    failures = []
    for r in event["Records"]:
        if r["body"] == "shape":
            print("RECORD " + json.dumps(r))
        if r["body"].startswith("bad"):
            failures.append({"itemIdentifier": r["messageId"]})
    return {"batchItemFailures": failures}
`

// TestSQSEventSourceMapping: a mapping delivers a queue's messages to a
// function that fails some of them through ReportBatchItemFailures; the
// successful ones are deleted, the failed ones received again until the
// queue's RedrivePolicy moves them to the dead-letter queue. 1,000 messages
// (LAMINA_E2E_SQS_MESSAGES sets more, e.g. the 10,000).
func TestSQSEventSourceMapping(t *testing.T) {
	t.Parallel()
	total := 1000
	if s := os.Getenv("LAMINA_E2E_SQS_MESSAGES"); s != "" {
		total, _ = strconv.Atoi(s)
	}
	ts := startServer(t)
	c := ts.SQS()
	ctx := t.Context()
	ts.createFunction(t, "consumer", zipFiles(t, map[string]string{"app.py": esmPy}), func(in *lambda.CreateFunctionInput) {
		in.Handler = aws.String("app.handler")
	}, withTimeout(3))
	dlq := createQueue(t, c, "esm-dlq", nil)
	src := createQueue(t, c, "esm-src", map[string]string{"VisibilityTimeout": "3",
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:esm-dlq","maxReceiveCount":"2"}`})
	srcARN := "arn:aws:sqs:us-east-1:000000000000:esm-src"

	// Checks of the API first: a queue whose visibility is shorter than the
	// function's timeout, a stream parameter, a missing queue.
	lc := ts.Lambda()
	createQueue(t, c, "esm-short", map[string]string{"VisibilityTimeout": "1"})
	for _, in := range []*lambda.CreateEventSourceMappingInput{
		{FunctionName: aws.String("consumer"), EventSourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:esm-short")},
		{FunctionName: aws.String("consumer"), EventSourceArn: aws.String(srcARN), StartingPosition: lambdatypes.EventSourcePositionLatest},
		{FunctionName: aws.String("consumer"), EventSourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:nope")},
		{FunctionName: aws.String("consumer"), EventSourceArn: aws.String(srcARN), BatchSize: aws.Int32(100)},
	} {
		var invalid *lambdatypes.InvalidParameterValueException
		if _, err := lc.CreateEventSourceMapping(ctx, in); !errors.As(err, &invalid) {
			t.Errorf("CreateEventSourceMapping %+v: %v, want InvalidParameterValueException", in, err)
		}
	}

	// Send first, then map: the pollers meet a backlog.
	bad := map[string]bool{}
	start := time.Now()
	var wg sync.WaitGroup
	bodies := make(chan string, total+1)
	for i := range total {
		body := fmt.Sprint("ok", i)
		if i%100 == 7 {
			body = fmt.Sprint("bad", i)
			bad[body] = true
		}
		bodies <- body
	}
	bodies <- "shape"
	close(bodies)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []types.SendMessageBatchRequestEntry
			flush := func() {
				if len(batch) == 0 {
					return
				}
				out, err := c.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(src), Entries: batch})
				if err != nil || len(out.Failed) > 0 {
					t.Errorf("SendMessageBatch: %v %+v", err, out)
				}
				batch = nil
			}
			for b := range bodies {
				batch = append(batch, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(len(batch))), MessageBody: aws.String(b),
					MessageAttributes: map[string]types.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String("test")}}})
				if len(batch) == 10 {
					flush()
				}
			}
			flush()
		}()
	}
	wg.Wait()
	sendTime := time.Since(start)

	mapStart := time.Now()
	created, err := lc.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("consumer"),
		EventSourceArn: aws.String(srcARN), BatchSize: aws.Int32(10),
		FunctionResponseTypes: []lambdatypes.FunctionResponseType{lambdatypes.FunctionResponseTypeReportBatchItemFailures},
		ScalingConfig:         &lambdatypes.ScalingConfig{MaximumConcurrency: aws.Int32(4)}})
	if err != nil {
		t.Fatalf("CreateEventSourceMapping: %v", err)
	}
	if *created.State != "Creating" || *created.BatchSize != 10 || *created.ScalingConfig.MaximumConcurrency != 4 || len(*created.UUID) != 36 {
		t.Errorf("created %+v", created)
	}
	if _, err := lc.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("consumer"), EventSourceArn: aws.String(srcARN)}); err == nil {
		t.Errorf("a second mapping of the same queue and function was created")
	}

	// Wait until the source queue is empty and the dead letters are all
	// there.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		visible, inFlight, _ := queueCounts(t, c, src)
		dead, deadInFlight, _ := queueCounts(t, c, dlq)
		if visible+inFlight == 0 && dead+deadInFlight >= len(bad) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes: source %d visible %d in flight, dead-letter queue %d (want %d)", visible, inFlight, dead, len(bad))
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(mapStart)
	got, err := lc.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: created.UUID})
	if err != nil || *got.State != "Enabled" || *got.FunctionArn != "arn:aws:lambda:us-east-1:000000000000:function:consumer" {
		t.Errorf("GetEventSourceMapping: %v %+v", err, got)
	}
	// Exactly the failed messages are dead letters: the others were deleted
	// after their batch succeeded, and none went twice.
	dead := receiveAll(t, c, dlq, 1)
	slices.Sort(dead)
	var wantDead []string
	for b := range bad {
		wantDead = append(wantDead, b)
	}
	slices.Sort(wantDead)
	if !slices.Equal(dead, wantDead) {
		t.Errorf("dead letters %v, want %v", dead, wantDead)
	}
	t.Logf("%d messages sent in %v (%.0f/s); the mapping emptied the queue in %v (%.0f messages/s end to end), %d dead letters",
		total+1, sendTime.Round(time.Millisecond), float64(total+1)/sendTime.Seconds(), elapsed.Round(time.Millisecond),
		float64(total+1)/elapsed.Seconds(), len(dead))

	// The record has Lambda's shape.
	events := ts.waitLogEvents(t, "consumer", "RECORD ")
	for _, e := range events {
		msg, ok := strings.CutPrefix(strings.TrimSpace(*e.Message), "RECORD ")
		if !ok {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(msg), &r); err != nil {
			t.Fatalf("record %s: %v", msg, err)
		}
		attrs, _ := r["attributes"].(map[string]any)
		kind, _ := r["messageAttributes"].(map[string]any)["kind"].(map[string]any)
		if r["eventSource"] != "aws:sqs" || r["eventSourceARN"] != srcARN || r["awsRegion"] != testRegion || r["body"] != "shape" ||
			r["md5OfBody"] != md5Hex("shape") || attrs["ApproximateReceiveCount"] != "1" ||
			attrs["SentTimestamp"] == nil || kind["stringValue"] != "test" || kind["dataType"] != "String" || kind["stringListValues"] == nil {
			t.Errorf("record %s", msg)
		}
		break
	}

	// Disable, delete: gone.
	if up, err := lc.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: created.UUID, Enabled: aws.Bool(false)}); err != nil || *up.State != "Updating" {
		t.Fatalf("UpdateEventSourceMapping: %v %+v", err, up)
	}
	waitState(t, lc, *created.UUID, "Disabled")
	list, err := lc.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String("consumer")})
	if err != nil || len(list.EventSourceMappings) != 1 {
		t.Errorf("ListEventSourceMappings: %v %+v", err, list)
	}
	if del, err := lc.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: created.UUID}); err != nil || *del.State != "Deleting" {
		t.Fatalf("DeleteEventSourceMapping: %v %+v", err, del)
	}
	var notFound *lambdatypes.ResourceNotFoundException
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, err := lc.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: created.UUID})
		if errors.As(err, &notFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted mapping is still there: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// md5Hex is the hex MD5 of s, as SQS shows a body's.
func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// waitState waits until a mapping is in state.
func waitState(t *testing.T, lc *lambda.Client, uuid, state string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		m, err := lc.GetEventSourceMapping(t.Context(), &lambda.GetEventSourceMappingInput{UUID: aws.String(uuid)})
		if err == nil && *m.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mapping %s is not %s: %v %+v", uuid, state, err, m)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sqsRecorderPy writes every invocation to SEEN_FILE, one JSON line: when
// it started and ended (after SLEEP_MS) and the bodies it got.
const sqsRecorderPy = `import json, os, time
def handler(event, context):
    start = time.time()
    time.sleep(int(os.environ.get("SLEEP_MS", "0")) / 1000)
    line = json.dumps({"start": start, "end": time.time(), "bodies": [r["body"] for r in event["Records"]]})
    with open(os.environ["SEEN_FILE"], "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
`

// TestSQSMappingConcurrency: a mapping's pollers scale with a backlog up
// to the function's concurrency and no further: with reserved concurrency
// 2, two invocations at a time and never a throttle (the pollers ask for
// no more than the function may run); with MaximumConcurrency 8, more
// than the five pollers a mapping starts with, and never more than 8.
func TestSQSMappingConcurrency(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	c, lc := ts.SQS(), ts.Lambda()
	for _, tc := range []struct {
		function       string
		messages       int
		reserved       int32
		maxConcurrency int32
		want           int // the most invocations at once
		atLeast        int
	}{
		{function: "reserved", messages: 40, reserved: 2, want: 2, atLeast: 2},
		{function: "scaled", messages: 160, maxConcurrency: 8, want: 8, atLeast: 6},
	} {
		t.Run(tc.function, func(t *testing.T) {
			t.Parallel()
			seen := filepath.Join(t.TempDir(), "seen")
			ts.createFunction(t, tc.function, zipFiles(t, map[string]string{"app.py": sqsRecorderPy}), withTimeout(5),
				withEnvironment(map[string]string{"SEEN_FILE": seen, "SLEEP_MS": "400"}))
			if tc.reserved > 0 {
				ts.putReserved(t, tc.function, tc.reserved)
			}
			url := createQueue(t, c, tc.function, map[string]string{"VisibilityTimeout": "30"})
			for from := 0; from < tc.messages; from += 10 {
				var entries []types.SendMessageBatchRequestEntry
				for i := from; i < from+10; i++ {
					entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(strconv.Itoa(i))})
				}
				if out, err := c.SendMessageBatch(t.Context(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); err != nil || len(out.Failed) > 0 {
					t.Fatalf("SendMessageBatch: %v %+v", err, out)
				}
			}
			in := &lambda.CreateEventSourceMappingInput{FunctionName: aws.String(tc.function),
				EventSourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:" + tc.function), BatchSize: aws.Int32(1)}
			if tc.maxConcurrency > 0 {
				in.ScalingConfig = &lambdatypes.ScalingConfig{MaximumConcurrency: aws.Int32(tc.maxConcurrency)}
			}
			if _, err := lc.CreateEventSourceMapping(t.Context(), in); err != nil {
				t.Fatal(err)
			}
			type invocation struct {
				Start, End float64
				Bodies     []string
			}
			var invs []invocation
			for deadline := time.Now().Add(2 * time.Minute); ; {
				data, _ := os.ReadFile(seen)
				invs = nil
				for _, line := range strings.Split(string(data), "\n") {
					var inv invocation
					if json.Unmarshal([]byte(line), &inv) == nil {
						invs = append(invs, inv)
					}
				}
				if len(invs) >= tc.messages {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d messages delivered in 2 minutes", len(invs), tc.messages)
				}
				time.Sleep(200 * time.Millisecond)
			}
			got := map[string]int{}
			type edge struct {
				at    float64
				delta int
			}
			var edges []edge
			for _, inv := range invs {
				for _, b := range inv.Bodies {
					got[b]++
				}
				edges = append(edges, edge{inv.Start, 1}, edge{inv.End, -1})
			}
			if len(got) != tc.messages {
				t.Errorf("%d distinct messages delivered, want %d", len(got), tc.messages)
			}
			slices.SortFunc(edges, func(a, b edge) int {
				if a.at != b.at {
					return cmp.Compare(a.at, b.at)
				}
				return a.delta - b.delta
			})
			inFlight, most := 0, 0
			for _, e := range edges {
				inFlight += e.delta
				most = max(most, inFlight)
			}
			throttles := metricValue(string(ts.do(t, "GET", "/metrics", nil).Body), `lamina_throttles_total{function="`+tc.function+`"}`)
			t.Logf("%d messages, at most %d invocations at once, %v throttles", tc.messages, most, max(throttles, 0))
			if most > tc.want || most < tc.atLeast {
				t.Errorf("at most %d invocations at once, want between %d and %d", most, tc.atLeast, tc.want)
			}
			if throttles > 0 {
				t.Errorf("%v invocations throttled: the pollers asked for more than the function's concurrency", throttles)
			}
		})
	}
}
