package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// consoleXSS is a name or body that would run script if the console
// inserted it as HTML.
const consoleXSS = `<img src=x onerror="window.__xss=1">`

// slowConsumerPy takes a second per batch, so that a backlog makes a lag.
const slowConsumerPy = `import time

def handler(event, context):
    time.sleep(1)
    return {"records": len(event["Records"])}
`

// TestConsoleServicesInBrowser drives the console's pages of the services
// beside Lambda in headless Chromium (e2e/console/services.mjs): a queue
// (send a message and see the count, receive it, purge with confirmation),
// a bucket (browse by prefix, an object key that is markup shown as text,
// upload, list, download, the notification configuration), a stream and
// its shards, an event source mapping with its lag chart and disabling it,
// the cluster's nodes, keyboard-only use of the queue page and a 400 px
// window on the bucket page. The queues, bucket, stream, function and
// mapping it looks at are made here with the AWS SDK.
func TestConsoleServicesInBrowser(t *testing.T) {
	t.Parallel()
	skipWithoutBrowser(t)
	ts := startServer(t)
	ctx := t.Context()

	q := ts.SQS()
	createQueue(t, q, "console-dlq", nil)
	createQueue(t, q, "console-queue", map[string]string{
		"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":"arn:aws:sqs:%s:%s:console-dlq","maxReceiveCount":"3"}`, testRegion, testAccountID)})
	src := createQueue(t, q, "console-src", map[string]string{"VisibilityTimeout": "30"})
	for i := range 30 {
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(src), MessageBody: aws.String(fmt.Sprint("backlog ", i))}); err != nil {
			t.Fatal(err)
		}
	}

	ts.createFunction(t, "console-consumer", zipFiles(t, map[string]string{"app.py": slowConsumerPy}), func(in *lambda.CreateFunctionInput) {
		in.Handler = aws.String("app.handler")
	}, withTimeout(10))
	m, err := ts.Lambda().CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("console-consumer"),
		EventSourceArn: aws.String(fmt.Sprintf("arn:aws:sqs:%s:%s:console-src", testRegion, testAccountID)), BatchSize: aws.Int32(1),
		ScalingConfig: &lambdatypes.ScalingConfig{MaximumConcurrency: aws.Int32(2)}})
	if err != nil {
		t.Fatal(err)
	}

	c := ts.s3Client(t, false)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("console-bucket")}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"top.txt", "dir/" + consoleXSS + ".txt", "dir/sub/deep.txt"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("console-bucket"), Key: aws.String(key),
			Body: strings.NewReader("content of " + key), ContentType: aws.String("text/plain"), Metadata: map[string]string{"origin": "e2e"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.Lambda().AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("console-consumer"), StatementId: aws.String("s3"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("s3.amazonaws.com"), SourceArn: aws.String("arn:aws:s3:::console-bucket")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("console-bucket"),
		NotificationConfiguration: &s3types.NotificationConfiguration{LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{{
			Id:                aws.String("uploads-to-consumer"),
			LambdaFunctionArn: aws.String(fmt.Sprintf("arn:aws:lambda:%s:%s:function:console-consumer", testRegion, testAccountID)),
			Events:            []s3types.Event{"s3:ObjectCreated:Put"},
			Filter: &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: []s3types.FilterRule{
				{Name: s3types.FilterRuleNameSuffix, Value: aws.String(".never")}}}}}}}}); err != nil {
		t.Fatal(err)
	}

	if _, err := ts.Kinesis().CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("console-stream"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}

	topic, err := ts.SNS().CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("console-topic")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.SNS().Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("lambda"),
		Endpoint: aws.String(fmt.Sprintf("arn:aws:lambda:%s:%s:function:console-consumer", testRegion, testAccountID))}); err != nil {
		t.Fatal(err)
	}

	runBrowserScript(t, ts, "console/services.mjs", "MAPPING_UUID="+*m.UUID, "XSS="+consoleXSS)
}
