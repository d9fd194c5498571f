package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/lamina-project/lamina/internal/sdkhttp"
)

// SNS: topics through unmodified clients — aws-sdk-go-v2, boto3 and the AWS
// CLI v2 (all on SNS's query protocol) — fanning messages out to functions
// (asynchronous invocations) and queues, with filter policies (issue 13,
// item 3).

// SNS returns an SNS client of the server.
func (ts *testServer) SNS() *sns.Client {
	id, secret := ts.Credentials()
	return sns.New(sns.Options{Region: ts.region(), BaseEndpoint: aws.String(ts.Endpoint()),
		Credentials: staticCredentials(id, secret), RetryMaxAttempts: 3, HTTPClient: sdkhttp.Client()})
}

func topicARN(name string) string {
	return "arn:aws:sns:" + testRegion + ":" + testAccountID + ":" + name
}

func queueARN(name string) string {
	return "arn:aws:sqs:" + testRegion + ":" + testAccountID + ":" + name
}

// allowTopic lets a topic invoke a function, as `aws lambda add-permission
// --principal sns.amazonaws.com --source-arn <topic>` does.
func allowTopic(t *testing.T, c *lambda.Client, function, topicArn string) {
	t.Helper()
	_, err := c.AddPermission(t.Context(), &lambda.AddPermissionInput{FunctionName: aws.String(function),
		StatementId: aws.String("sns"), Action: aws.String("lambda:InvokeFunction"),
		Principal: aws.String("sns.amazonaws.com"), SourceArn: aws.String(topicArn)})
	if err != nil {
		t.Fatalf("AddPermission for topic %s on %s: %v", topicArn, function, err)
	}
}

// subscribe subscribes an endpoint and returns the subscription's ARN.
func subscribe(t *testing.T, c *sns.Client, topic, protocol, endpoint string, attrs map[string]string) string {
	t.Helper()
	out, err := c.Subscribe(t.Context(), &sns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String(protocol),
		Endpoint: aws.String(endpoint), Attributes: attrs, ReturnSubscriptionArn: true})
	if err != nil {
		t.Fatalf("Subscribe %s %s: %v", protocol, endpoint, err)
	}
	return aws.ToString(out.SubscriptionArn)
}

// snsRecords returns the SNS records a pyApp echo function printed.
func snsRecords(t *testing.T, events []map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range events {
		records, _ := e["Records"].([]any)
		if len(records) != 1 {
			t.Fatalf("an SNS event with %d records: %s", len(records), jsonOf(t, e))
		}
		out = append(out, records[0].(map[string]any))
	}
	return out
}

// TestSNSFanOut: a topic fans one message out to three functions, one of
// which its filter policy filters out, and to a queue (in SNS's JSON
// envelope and raw); a function whose policy does not allow SNS receives
// nothing and the failed delivery is logged.
func TestSNSFanOut(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c, lc, qc := ts.SNS(), ts.Lambda(), ts.SQS()
	ctx := t.Context()
	out, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("orders")})
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	topic := aws.ToString(out.TopicArn)
	if topic != topicARN("orders") {
		t.Fatalf("TopicArn = %s", topic)
	}
	again, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("orders")})
	if err != nil || aws.ToString(again.TopicArn) != topic {
		t.Fatalf("CreateTopic again: %v %v", again, err)
	}
	for _, fn := range []string{"all", "red", "blue", "unpermitted"} {
		ts.createPy(t, fn, "echo")
		if fn != "unpermitted" {
			allowTopic(t, lc, fn, topic)
		}
	}
	subAll := subscribe(t, c, topic, "lambda", functionARN("all"), nil)
	subscribe(t, c, topic, "lambda", functionARN("red"), map[string]string{"FilterPolicy": `{"color":["red"],"size":[{"numeric":[">",2]}]}`})
	subscribe(t, c, topic, "lambda", functionARN("blue"), map[string]string{"FilterPolicy": `{"color":[{"prefix":"bl"}]}`})
	subscribe(t, c, topic, "lambda", functionARN("unpermitted"), nil)
	envelopeURL := createQueue(t, qc, "envelope", nil)
	rawURL := createQueue(t, qc, "raw", nil)
	subQueue := subscribe(t, c, topic, "sqs", queueARN("envelope"), nil)
	subscribe(t, c, topic, "sqs", queueARN("raw"), map[string]string{"RawMessageDelivery": "true"})
	// Subscribing again returns the same subscription.
	if again := subscribe(t, c, topic, "lambda", functionARN("all"), nil); again != subAll {
		t.Errorf("subscribing again gave %s, want %s", again, subAll)
	}
	// Protocols Lamina does not deliver to are refused.
	_, err = c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("email"), Endpoint: aws.String("a@example.com")})
	requireAPIError(t, err, "InvalidParameter", 400)
	_, err = c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("lambda"), Endpoint: aws.String(functionARN("all")),
		Attributes: map[string]string{"FilterPolicy": `{"a":{"nested":["x"]}}`}})
	requireAPIError(t, err, "InvalidParameter", 400)
	subs, err := c.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
	if err != nil || len(subs.Subscriptions) != 6 {
		t.Fatalf("ListSubscriptionsByTopic: %v, %d subscriptions", err, len(subs.Subscriptions))
	}

	// One red message of size 3: all, red, unpermitted (refused), the
	// queues.
	pub, err := c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String(`{"order":1}`), Subject: aws.String("new order"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"color": {DataType: aws.String("String"), StringValue: aws.String("red")},
			"size":  {DataType: aws.String("Number"), StringValue: aws.String("3")},
			"raw":   {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
		}})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	id := aws.ToString(pub.MessageId)
	// A blue one through PublishBatch, with a second entry nobody filters
	// for but "all".
	batch, err := c.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(topic), PublishBatchRequestEntries: []snstypes.PublishBatchRequestEntry{
		{Id: aws.String("b1"), Message: aws.String("blue one"), MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"color": {DataType: aws.String("String"), StringValue: aws.String("blue")}}},
		{Id: aws.String("b2"), Message: aws.String("plain")},
	}})
	if err != nil || len(batch.Successful) != 2 || len(batch.Failed) != 0 {
		t.Fatalf("PublishBatch: %v %s", err, jsonOf(t, batch))
	}

	all := snsRecords(t, ts.waitSawEvents(t, "all", "three messages", func(s []map[string]any) bool { return len(s) >= 3 }))
	var rec map[string]any
	for _, r := range all {
		if r["Sns"].(map[string]any)["MessageId"] == id {
			rec = r
		}
	}
	if rec == nil {
		t.Fatalf("function all never received message %s: %s", id, jsonOf(t, all))
	}
	n := rec["Sns"].(map[string]any)
	if rec["EventSource"] != "aws:sns" || rec["EventVersion"] != "1.0" || rec["EventSubscriptionArn"] != subAll ||
		n["Type"] != "Notification" || n["TopicArn"] != topic || n["Subject"] != "new order" || n["Message"] != `{"order":1}` ||
		n["SignatureVersion"] != "1" || n["Signature"] == "" || n["SigningCertUrl"] == nil || !strings.Contains(fmt.Sprint(n["UnsubscribeUrl"]), "Action=Unsubscribe") {
		t.Errorf("the SNS record: %s", jsonOf(t, rec))
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", fmt.Sprint(n["Timestamp"])); err != nil {
		t.Errorf("Timestamp %v: %v", n["Timestamp"], err)
	}
	if got := jsonOf(t, n["MessageAttributes"]); got != `{"color":{"Type":"String","Value":"red"},"raw":{"Type":"Binary","Value":"AAEC"},"size":{"Type":"String","Value":"3"}}` {
		t.Errorf("MessageAttributes = %s", got)
	}
	red := snsRecords(t, ts.waitSawEvents(t, "red", "the red message", func(s []map[string]any) bool { return len(s) >= 1 }))
	blue := snsRecords(t, ts.waitSawEvents(t, "blue", "the blue message", func(s []map[string]any) bool { return len(s) >= 1 }))
	if red[0]["Sns"].(map[string]any)["MessageId"] != id || blue[0]["Sns"].(map[string]any)["Message"] != "blue one" {
		t.Errorf("red got %s, blue got %s", jsonOf(t, red), jsonOf(t, blue))
	}
	// The envelope and the raw message reached the queues.
	bodies := receiveAll(t, qc, envelopeURL, 1)
	if len(bodies) != 3 {
		t.Fatalf("the envelope queue got %d messages, want 3: %q", len(bodies), bodies)
	}
	var env map[string]any
	for _, b := range bodies {
		var m map[string]any
		_ = json.Unmarshal([]byte(b), &m)
		if m["MessageId"] == id {
			env = m
		}
	}
	if env == nil || env["Type"] != "Notification" || env["Message"] != `{"order":1}` || env["Subject"] != "new order" || env["TopicArn"] != topic ||
		env["SigningCertURL"] == nil || !strings.Contains(fmt.Sprint(env["UnsubscribeURL"]), strings.ReplaceAll(subQueue, ":", "%3A")) {
		t.Errorf("the queue's envelope: %s", jsonOf(t, env))
	}
	raw, err := qc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(rawURL), MaxNumberOfMessages: 10,
		MessageAttributeNames: []string{"All"}, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	var rawBodies []string
	for _, m := range raw.Messages {
		rawBodies = append(rawBodies, aws.ToString(m.Body))
		if aws.ToString(m.Body) == `{"order":1}` && aws.ToString(m.MessageAttributes["color"].StringValue) != "red" {
			t.Errorf("the raw message lacks its attributes: %s", jsonOf(t, m.MessageAttributes))
		}
	}
	sort.Strings(rawBodies)
	if !slices.Equal(rawBodies, []string{"blue one", "plain", `{"order":1}`}) {
		t.Errorf("the raw queue got %q", rawBodies)
	}

	// Each subscription got each message once; the filtered-out and the
	// unpermitted got nothing.
	time.Sleep(time.Second)
	if got := len(sawEvents(t, ts.functionLogEvents(t, ts.Logs(), "all"))); got != 3 {
		t.Errorf("function all ran %d times, want 3", got)
	}
	if got := len(sawEvents(t, ts.functionLogEvents(t, ts.Logs(), "red"))); got != 1 {
		t.Errorf("function red ran %d times, want 1 (the blue and plain messages are filtered out)", got)
	}
	if got := len(sawEvents(t, ts.functionLogEvents(t, ts.Logs(), "unpermitted"))); got != 0 {
		t.Errorf("a function whose policy does not allow SNS ran %d times", got)
	}
	if !strings.Contains(ts.Output(), "delivery failed") {
		t.Error("the refused delivery to the unpermitted function was not logged")
	}

	// Errors in SNS's shape.
	_, err = c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topicARN("missing")), Message: aws.String("x")})
	requireAPIError(t, err, "NotFound", 404)
	_, err = c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String(strings.Repeat("x", 256*1024+1))})
	requireAPIError(t, err, "InvalidParameter", 400)
	_, err = c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("orders.fifo"), Attributes: map[string]string{"FifoTopic": "true"}})
	requireAPIError(t, err, "InvalidParameter", 400, "FIFO")

	// Unsubscribe and DeleteTopic.
	if _, err := c.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(subAll)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(topic)}); err != nil {
		t.Fatal(err)
	}
	left, err := c.ListSubscriptions(ctx, &sns.ListSubscriptionsInput{})
	if err != nil || len(left.Subscriptions) != 0 {
		t.Errorf("subscriptions after DeleteTopic: %v %s", err, jsonOf(t, left))
	}
}

// snsBoto3Script drives topics with boto3: a body-scoped filter policy on a
// queue subscription, attributes, tags and errors.
const snsBoto3Script = `
import json, os, boto3, botocore
kw = dict(endpoint_url=os.environ["ENDPOINT"], region_name=os.environ["REGION"])
sns, sqs = boto3.client("sns", **kw), boto3.client("sqs", **kw)
arn = sns.create_topic(Name="boto", Tags=[{"Key": "team", "Value": "a"}])["TopicArn"]
url = sqs.create_queue(QueueName="boto-q")["QueueUrl"]
qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, ReturnSubscriptionArn=True,
    Attributes={"RawMessageDelivery": "true", "FilterPolicyScope": "MessageBody",
                "FilterPolicy": json.dumps({"order": {"total": [{"numeric": [">=", 100]}]}})})["SubscriptionArn"]
attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
assert attrs["FilterPolicyScope"] == "MessageBody" and attrs["RawMessageDelivery"] == "true" and attrs["Protocol"] == "sqs", attrs
sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
    AttributeValue=json.dumps({"order": {"total": [{"numeric": [">=", 50]}]}}))
sns.publish(TopicArn=arn, Message=json.dumps({"order": {"total": 10}}))
sns.publish(TopicArn=arn, Message=json.dumps({"order": {"total": 70}}))
sns.publish(TopicArn=arn, Message="not json")
got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
assert [json.loads(m["Body"]) for m in got] == [{"order": {"total": 70}}], got
sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Boto topic")
ta = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
assert ta["DisplayName"] == "Boto topic" and ta["SubscriptionsConfirmed"] == "1", ta
assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == []
assert arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
r = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
    {"Id": "ok", "Message": "fine"},
    {"Id": "bad", "Message": "x", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "nan-ish"}}}])
assert [s["Id"] for s in r["Successful"]] == ["ok"] and r["Failed"][0]["Id"] == "bad" and r["Failed"][0]["SenderFault"], r
try:
    sns.get_topic_attributes(TopicArn=arn + "-missing")
    raise SystemExit("no error for a missing topic")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "NotFound" and e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
try:
    sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[{"Id": "same", "Message": "a"}, {"Id": "same", "Message": "b"}])
    raise SystemExit("no error for duplicate ids")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "BatchEntryIdsNotDistinct", e.response
sns.delete_topic(TopicArn=arn)
print("OK")
`

// TestSNSBoto3AndCLI drives topics with boto3 and the AWS CLI v2.
func TestSNSBoto3AndCLI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	py := boto3Python(t)
	id, secret := ts.Credentials()
	cmd := exec.Command(py, "-c", snsBoto3Script)
	cmd.Env = append(hermeticEnv(), "ENDPOINT="+ts.Endpoint(), "REGION="+testRegion, "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("boto3: %v\n%s", err, out)
	}

	var created struct{ TopicArn string }
	_ = json.Unmarshal([]byte(awsCLI(t, ts, "sns", "create-topic", "--name", "cli")), &created)
	if created.TopicArn != topicARN("cli") {
		t.Fatalf("aws sns create-topic: %+v", created)
	}
	ts.createPy(t, "cli-fn", "echo")
	awsCLI(t, ts, "lambda", "add-permission", "--function-name", "cli-fn", "--statement-id", "sns", "--action", "lambda:InvokeFunction",
		"--principal", "sns.amazonaws.com", "--source-arn", created.TopicArn)
	var sub struct{ SubscriptionArn string }
	_ = json.Unmarshal([]byte(awsCLI(t, ts, "sns", "subscribe", "--topic-arn", created.TopicArn, "--protocol", "lambda",
		"--notification-endpoint", functionARN("cli-fn"), "--attributes", `{"FilterPolicy":"{\"kind\":[{\"anything-but\":[\"spam\"]}]}"}`)), &sub)
	if !strings.HasPrefix(sub.SubscriptionArn, created.TopicArn+":") {
		t.Fatalf("aws sns subscribe: %+v", sub)
	}
	awsCLI(t, ts, "sns", "publish", "--topic-arn", created.TopicArn, "--message", "spam!", "--message-attributes", `{"kind":{"DataType":"String","StringValue":"spam"}}`)
	awsCLI(t, ts, "sns", "publish", "--topic-arn", created.TopicArn, "--message", "from the cli", "--subject", "hello",
		"--message-attributes", `{"kind":{"DataType":"String","StringValue":"ham"}}`)
	ts.waitSawEvents(t, "cli-fn", "the ham message", func(s []map[string]any) bool { return len(s) >= 1 })
	time.Sleep(500 * time.Millisecond)
	records := snsRecords(t, sawEvents(t, ts.functionLogEvents(t, ts.Logs(), "cli-fn")))
	if len(records) != 1 || records[0]["Sns"].(map[string]any)["Message"] != "from the cli" || records[0]["Sns"].(map[string]any)["Subject"] != "hello" {
		t.Errorf("the function received %s, want only the ham message", jsonOf(t, records))
	}
	out := awsCLI(t, ts, "sns", "list-subscriptions-by-topic", "--topic-arn", created.TopicArn)
	if !strings.Contains(out, sub.SubscriptionArn) {
		t.Errorf("aws sns list-subscriptions-by-topic: %s", out)
	}
	awsCLI(t, ts, "sns", "tag-resource", "--resource-arn", created.TopicArn, "--tags", "Key=k,Value=v")
	if out := awsCLI(t, ts, "sns", "list-tags-for-resource", "--resource-arn", created.TopicArn); !strings.Contains(out, `"k"`) {
		t.Errorf("aws sns list-tags-for-resource: %s", out)
	}
	awsCLI(t, ts, "sns", "unsubscribe", "--subscription-arn", sub.SubscriptionArn)
	awsCLI(t, ts, "sns", "delete-topic", "--topic-arn", created.TopicArn)
}

// TestSNSNothingLostOnKill: every Publish acknowledged before a SIGKILL is
// delivered after the restart, to a function (through the async queue) and
// to a queue, once each per subscription (the function may see one twice,
// as Lambda's at-least-once delivery allows; it must see every one).
func TestSNSNothingLostOnKill(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--async-time-scale", asyncTimeScale))
	c, qc := ts.SNS(), ts.SQS()
	ctx := t.Context()
	topic := topicARN("durable")
	if _, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("durable")}); err != nil {
		t.Fatal(err)
	}
	ts.createPy(t, "durable-fn", "echo")
	allowTopic(t, ts.Lambda(), "durable-fn", topic)
	url := createQueue(t, qc, "durable-q", nil)
	subscribe(t, c, topic, "lambda", functionARN("durable-fn"), nil)
	subscribe(t, c, topic, "sqs", queueARN("durable-q"), map[string]string{"RawMessageDelivery": "true"})

	const total, publishers = 400, 4
	client := sns.New(sns.Options{Region: ts.region(), BaseEndpoint: aws.String(ts.Endpoint()),
		Credentials: staticCredentials(ts.Credentials()), RetryMaxAttempts: 1, HTTPClient: sdkhttp.Client()})
	acked := make([]atomic.Bool, total)
	var next, nAcked atomic.Int64
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1) - 1
				if n >= total {
					return
				}
				if _, err := client.Publish(context.Background(), &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String(strconv.FormatInt(n, 10))}); err != nil {
					return // the server is gone
				}
				acked[n].Store(true)
				nAcked.Add(1)
			}
		}()
	}
	for nAcked.Load() < total/4 {
		time.Sleep(time.Millisecond)
	}
	ts.Kill()
	wg.Wait()
	ts.Restart()
	want := 0
	for i := range acked {
		if acked[i].Load() {
			want++
		}
	}
	t.Logf("%d publishes acknowledged before SIGKILL", want)
	inQueue := map[string]bool{}
	for _, b := range receiveAll(t, ts.SQS(), url, 2) {
		inQueue[b] = true
	}
	seen := func(s []map[string]any) map[string]bool {
		m := map[string]bool{}
		for _, r := range snsRecords(t, s) {
			m[fmt.Sprint(r["Sns"].(map[string]any)["Message"])] = true
		}
		return m
	}
	ts.waitSawEvents(t, "durable-fn", "every acknowledged message", func(s []map[string]any) bool {
		got := seen(s)
		for i := range acked {
			if acked[i].Load() && !got[strconv.Itoa(i)] {
				return false
			}
		}
		return true
	})
	for i := range acked {
		if acked[i].Load() && !inQueue[strconv.Itoa(i)] {
			t.Errorf("acknowledged message %d never reached the queue", i)
		}
	}
}

// TestSNSThroughput measures publishes per second to a topic with one
// function subscription, and the latency from Publish to the function's
// start (its first log line), p50 and p99. Run with LAMINA_BENCH_SNS=N
// (messages); CI skips it.
func TestSNSThroughput(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LAMINA_BENCH_SNS"))
	if n <= 0 {
		t.Skip("set LAMINA_BENCH_SNS=<messages> to measure SNS throughput and latency")
	}
	ts := startServer(t)
	c := ts.SNS()
	ctx := t.Context()
	topic := topicARN("bench")
	if _, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("bench")}); err != nil {
		t.Fatal(err)
	}
	ts.createPy(t, "bench-fn", "echo")
	allowTopic(t, ts.Lambda(), "bench-fn", topic)
	subscribe(t, c, topic, "lambda", functionARN("bench-fn"), nil)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := c.Publish(context.Background(), &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("m")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var latencies []time.Duration
	deadline := time.Now().Add(5 * time.Minute)
	for {
		latencies = latencies[:0]
		for _, e := range ts.functionLogEvents(t, ts.Logs(), "bench-fn") {
			msg, ok := strings.CutPrefix(aws.ToString(e.Message), "python saw ")
			if !ok {
				continue
			}
			var ev struct {
				Records []struct{ Sns struct{ Timestamp string } }
			}
			if json.Unmarshal([]byte(msg), &ev) != nil || len(ev.Records) != 1 {
				continue
			}
			published, err := time.Parse("2006-01-02T15:04:05.000Z", ev.Records[0].Sns.Timestamp)
			if err == nil {
				latencies = append(latencies, time.UnixMilli(aws.ToInt64(e.Timestamp)).Sub(published))
			}
		}
		if len(latencies) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	slices.Sort(latencies)
	if len(latencies) == 0 {
		t.Fatal("the function ran no message")
	}
	p := func(q float64) time.Duration { return latencies[min(len(latencies)-1, int(q*float64(len(latencies))))] }
	t.Logf("SNS: %d publishes in %v = %.0f publish/s (16 clients); %d deliveries, publish→function start p50 %v p99 %v",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), len(latencies), p(0.5), p(0.99))
}
