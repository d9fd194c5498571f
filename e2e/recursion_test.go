package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Recursive loop detection (issue 18, item 4): a function that sends its
// event back to the queue that invokes it is stopped after 16 rounds, as
// Lambda stops it, unless its RecursiveLoop is Allow.

// sqsLoop is a function in a loop through its own queue: each round it
// tells the tally queue its round and the trace header it ran with, and
// sends the next round to the queue that invoked it. Its boto3 sends the
// trace header (_X_AMZN_TRACE_ID) with every call, as in Lambda.
const sqsLoop = `import json, os
import boto3

sqs = boto3.client("sqs")

def handler(event, context):
    for record in event["Records"]:
        n = json.loads(record["body"])["round"]
        sqs.send_message(QueueUrl=os.environ["TALLY"], MessageBody=json.dumps(
            {"round": n, "trace": os.environ.get("_X_AMZN_TRACE_ID", ""),
             "header": record["attributes"].get("AWSTraceHeader", "")}))
        sqs.send_message(QueueUrl=os.environ["LOOP"], MessageBody=json.dumps({"round": n + 1}))
`

type loopRound struct {
	Round  int
	Trace  string
	Header string
}

func TestRecursiveLoopThroughSQS(t *testing.T) {
	t.Parallel()
	runtime, sdkArgs := boto3Offered(t)
	ts := startServer(t, withArgs(sdkArgs...))
	c, lc, ctx := ts.SQS(), ts.Lambda(), t.Context()

	// loop starts a function looping through its queue and returns the
	// mapping's UUID and the tally queue's URL.
	loop := func(name string) (string, string) {
		loopURL := createQueue(t, c, name, map[string]string{"VisibilityTimeout": "30"})
		tallyURL := createQueue(t, c, name+"-tally", nil)
		ts.createFunction(t, name, zipFiles(t, map[string]string{"app.py": sqsLoop}), withRuntime(runtime),
			func(in *lambda.CreateFunctionInput) {
				in.Handler, in.Timeout = aws.String("app.handler"), aws.Int32(30)
				in.Environment = &lambdatypes.Environment{Variables: map[string]string{"LOOP": loopURL, "TALLY": tallyURL}}
			})
		return loopURL, tallyURL
	}
	start := func(name, loopURL string) string {
		m, err := lc.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String(name),
			EventSourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:" + name), BatchSize: aws.Int32(1)})
		if err != nil {
			t.Fatalf("CreateEventSourceMapping %s: %v", name, err)
		}
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(loopURL), MessageBody: aws.String(`{"round":1}`)}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		return *m.UUID
	}
	// tally adds the rounds the tally queue has to rounds: until a receive
	// finds none, or, when once, of one receive (a loop that goes on never
	// leaves the tally queue empty).
	tally := func(tallyURL string, rounds map[int]loopRound, once bool) {
		var bodies []string
		if once {
			out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(tallyURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				t.Fatalf("ReceiveMessage: %v", err)
			}
			for _, m := range out.Messages {
				bodies = append(bodies, *m.Body)
				if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(tallyURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatalf("DeleteMessage: %v", err)
				}
			}
		} else {
			bodies = receiveAll(t, c, tallyURL, 1)
		}
		for _, body := range bodies {
			var r loopRound
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatalf("tally %q: %v", body, err)
			}
			if _, seen := rounds[r.Round]; seen {
				t.Errorf("round %d ran twice", r.Round)
			}
			rounds[r.Round] = r
		}
	}
	dropped := func(name string) float64 {
		return metricValue(string(ts.do(t, "GET", "/metrics", nil).Body), `lamina_recursive_invocations_dropped_total{function="`+name+`"}`)
	}

	// The default: Terminate.
	cfg, err := lc.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String("stopped")})
	if err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("GetFunctionRecursionConfig of a missing function: %v, want ResourceNotFoundException", err)
	}
	stoppedLoop, stoppedTally := loop("stopped")
	if cfg, err = lc.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String("stopped")}); err != nil || cfg.RecursiveLoop != lambdatypes.RecursiveLoopTerminate {
		t.Fatalf("GetFunctionRecursionConfig: %+v %v, want Terminate", cfg, err)
	}
	if _, err := lc.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String("stopped"), RecursiveLoop: "Sometimes"}); err == nil || !strings.Contains(err.Error(), "ValidationException") {
		t.Fatalf("PutFunctionRecursionConfig Sometimes: %v, want ValidationException", err)
	}
	start("stopped", stoppedLoop)
	waitUntil(t, "the loop to be stopped", func() bool { return dropped("stopped") == 1 })
	if !strings.Contains(ts.Output(), "stopped a recursive loop") {
		t.Errorf("no log line of the stopped loop in the server's output")
	}
	rounds := map[int]loopRound{}
	tally(stoppedTally, rounds, false)
	lineage := "Lineage=" + lamHash("stopped") + ":"
	for n := 1; n <= 16; n++ {
		r, ok := rounds[n]
		if !ok {
			t.Fatalf("round %d did not run; ran %v", n, rounds)
		}
		if !strings.HasSuffix(r.Trace, ";"+lineage+strconv.Itoa(n)) || !strings.HasPrefix(r.Trace, "Root=1-") {
			t.Errorf("round %d ran with trace %q, want its lineage %s%d", n, r.Trace, lineage, n)
		}
		if n > 1 && !strings.HasSuffix(r.Header, lineage+strconv.Itoa(n-1)) {
			t.Errorf("round %d's message had AWSTraceHeader %q, want the lineage of round %d", n, r.Header, n-1)
		}
	}
	if len(rounds) != 16 {
		t.Errorf("%d rounds ran, want 16", len(rounds))
	}
	// The 17th round's message is gone, not waiting for its visibility.
	if visible, inFlight, delayed := queueCounts(t, c, stoppedLoop); visible+inFlight+delayed != 0 {
		t.Errorf("the loop's queue holds %d/%d/%d messages, want none", visible, inFlight, delayed)
	}

	// Allow: the loop goes on until the mapping is deleted.
	allowedLoop, allowedTally := loop("allowed")
	put, err := lc.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String("allowed"), RecursiveLoop: lambdatypes.RecursiveLoopAllow})
	if err != nil || put.RecursiveLoop != lambdatypes.RecursiveLoopAllow {
		t.Fatalf("PutFunctionRecursionConfig: %+v %v", put, err)
	}
	if cfg, err = lc.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String("allowed")}); err != nil || cfg.RecursiveLoop != lambdatypes.RecursiveLoopAllow {
		t.Fatalf("GetFunctionRecursionConfig: %+v %v, want Allow", cfg, err)
	}
	uuid := start("allowed", allowedLoop)
	allowed := map[int]loopRound{}
	deadline := time.Now().Add(3 * time.Minute)
	for len(allowed) < 25 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d rounds ran", len(allowed))
		}
		tally(allowedTally, allowed, true)
	}
	if _, err := lc.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: aws.String(uuid)}); err != nil {
		t.Fatalf("DeleteEventSourceMapping: %v", err)
	}
	if r := allowed[25]; !strings.HasSuffix(r.Trace, ";Lineage="+lamHash("allowed")+":25") {
		t.Errorf("round 25 ran with trace %q", r.Trace)
	}
	if got := dropped("allowed"); got != -1 {
		t.Errorf("the allowed loop counted %v dropped invocations", got)
	}
}

// lamHash is the hash that names a function in trace headers' Lineage.
func lamHash(function string) string {
	sum := sha256.Sum256([]byte(function))
	return hex.EncodeToString(sum[:4])
}

// snsLoop is a function in a loop through a topic it is subscribed to:
// each round it tells the tally queue its round and trace header, and
// publishes the next round to the topic.
const snsLoop = `import json, os
import boto3

sns = boto3.client("sns")
sqs = boto3.client("sqs")

def handler(event, context):
    n = json.loads(event["Records"][0]["Sns"]["Message"])["round"]
    sqs.send_message(QueueUrl=os.environ["TALLY"], MessageBody=json.dumps(
        {"round": n, "trace": os.environ.get("_X_AMZN_TRACE_ID", "")}))
    sns.publish(TopicArn=os.environ["TOPIC"], Message=json.dumps({"round": n + 1}))
`

// A function that publishes its event back to the topic that invokes it
// is stopped after 16 rounds, as through a queue.
func TestRecursiveLoopThroughSNS(t *testing.T) {
	t.Parallel()
	runtime, sdkArgs := boto3Offered(t)
	ts := startServer(t, withArgs(sdkArgs...))
	ctx := t.Context()
	topic, err := ts.SNS().CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("loop")})
	if err != nil {
		t.Fatal(err)
	}
	tallyURL := createQueue(t, ts.SQS(), "loop-tally", nil)
	ts.createFunction(t, "looper", zipFiles(t, map[string]string{"app.py": snsLoop}), withRuntime(runtime),
		func(in *lambda.CreateFunctionInput) {
			in.Handler, in.Timeout = aws.String("app.handler"), aws.Int32(30)
			in.Environment = &lambdatypes.Environment{Variables: map[string]string{"TOPIC": *topic.TopicArn, "TALLY": tallyURL}}
		})
	if _, err := ts.Lambda().AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("looper"), StatementId: aws.String("sns"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("sns.amazonaws.com"), SourceArn: topic.TopicArn}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.SNS().Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("lambda"),
		Endpoint: aws.String("arn:aws:lambda:us-east-1:000000000000:function:looper")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.SNS().Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(`{"round":1}`)}); err != nil {
		t.Fatal(err)
	}
	requireStoppedLoop(t, ts, "looper", tallyURL)
}

// s3Loop is a function in a loop through a bucket whose uploads invoke
// it: each round it tells the tally queue its round and trace header, and
// uploads the next round to the bucket.
const s3Loop = `import json, os
import boto3

s3 = boto3.client("s3")
sqs = boto3.client("sqs")

def handler(event, context):
    key = event["Records"][0]["s3"]["object"]["key"]
    n = int(key.split("-")[1])
    sqs.send_message(QueueUrl=os.environ["TALLY"], MessageBody=json.dumps(
        {"round": n, "trace": os.environ.get("_X_AMZN_TRACE_ID", "")}))
    s3.put_object(Bucket="loop", Key="round-" + str(n + 1), Body=b"next")
`

// A function that uploads to the bucket whose uploads invoke it is
// stopped after 16 rounds, as through a queue.
func TestRecursiveLoopThroughS3(t *testing.T) {
	t.Parallel()
	runtime, sdkArgs := boto3Offered(t)
	ts := startServer(t, withArgs(sdkArgs...))
	ctx := t.Context()
	c := ts.s3Client(t, false)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("loop")}); err != nil {
		t.Fatal(err)
	}
	tallyURL := createQueue(t, ts.SQS(), "loop-tally", nil)
	ts.createFunction(t, "uploader", zipFiles(t, map[string]string{"app.py": s3Loop}), withRuntime(runtime),
		func(in *lambda.CreateFunctionInput) {
			in.Handler, in.Timeout = aws.String("app.handler"), aws.Int32(30)
			in.Environment = &lambdatypes.Environment{Variables: map[string]string{"TALLY": tallyURL}}
		})
	if _, err := ts.Lambda().AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("uploader"), StatementId: aws.String("s3"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("s3.amazonaws.com"), SourceArn: aws.String("arn:aws:s3:::loop")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("loop"),
		NotificationConfiguration: &s3types.NotificationConfiguration{LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{{
			LambdaFunctionArn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:uploader"),
			Events:            []s3types.Event{"s3:ObjectCreated:*"}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("loop"), Key: aws.String("round-1"), Body: strings.NewReader("first")}); err != nil {
		t.Fatal(err)
	}
	requireStoppedLoop(t, ts, "uploader", tallyURL)
}

// requireStoppedLoop waits until the loop of function is stopped, and
// requires that the tally queue at tallyURL holds exactly rounds 1 to 16,
// each run with its round as the function's lineage count.
func requireStoppedLoop(t *testing.T, ts *testServer, function, tallyURL string) {
	t.Helper()
	waitUntil(t, "the loop to be stopped", func() bool {
		return metricValue(string(ts.do(t, "GET", "/metrics", nil).Body), `lamina_recursive_invocations_dropped_total{function="`+function+`"}`) == 1
	})
	rounds := map[int]loopRound{}
	for _, body := range receiveAll(t, ts.SQS(), tallyURL, 1) {
		var r loopRound
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("tally %q: %v", body, err)
		}
		rounds[r.Round] = r
	}
	lineage := ";Lineage=" + lamHash(function) + ":"
	for n := 1; n <= 16; n++ {
		if r, ok := rounds[n]; !ok || !strings.HasSuffix(r.Trace, lineage+strconv.Itoa(n)) {
			t.Errorf("round %d: %+v (ran %v), want it run with lineage %d", n, r, ok, n)
		}
	}
	if len(rounds) != 16 {
		t.Errorf("%d rounds ran, want 16", len(rounds))
	}
}
