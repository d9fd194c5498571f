package e2e

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// samEventsApp is a SAM application whose one function is triggered by an
// SNS topic (with a filter policy), a Kinesis stream and an EventBridge
// rule on a bus of its own; beside it, plain CloudFormation subscribes
// the Seen queue to the topic (raw, filtered on the body) and routes the
// bus's events to it through an input transformer.
const samEventsApp = `AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Topic:
    Type: AWS::SNS::Topic
  TopicPolicy:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref Topic]
      PolicyDocument: {Statement: []}
  Stream:
    Type: AWS::Kinesis::Stream
    Properties:
      ShardCount: 1
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub ${AWS::StackName}-bus
  Seen:
    Type: AWS::SQS::Queue
  OnEvent:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Timeout: 10
      CodeUri: src/
      Handler: app.on_event
      Environment:
        Variables:
          QUEUE_URL: !Ref Seen
      Events:
        Note:
          Type: SNS
          Properties:
            Topic: !Ref Topic
            FilterPolicy:
              kind: [go]
        Clicks:
          Type: Kinesis
          Properties:
            Stream: !GetAtt Stream.Arn
            StartingPosition: TRIM_HORIZON
            BatchSize: 10
        Order:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [app.test]
            InputPath: $.detail
  RawToQueue:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref Topic
      Protocol: sqs
      Endpoint: !GetAtt Seen.Arn
      RawMessageDelivery: true
      FilterPolicyScope: MessageBody
      FilterPolicy: {kind: [body]}
  OrdersToQueue:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !GetAtt Bus.Arn
      EventPattern: {source: [app.test], detail: {n: [{numeric: [">", 5]}]}}
      Targets:
        - Id: seen
          Arn: !GetAtt Seen.Arn
          InputTransformer:
            InputPathsMap: {n: $.detail.n}
            InputTemplate: queued <n>
Outputs:
  TopicArn:
    Value: !Ref Topic
  StreamName:
    Value: !Ref Stream
  BusName:
    Value: !GetAtt Bus.Name
  SeenUrl:
    Value: !Ref Seen
  Function:
    Value: !Ref OnEvent
`

// samEventsCode tells the test, through the Seen queue, what triggered it.
const samEventsCode = `import base64, json, os, boto3
def tell(what):
    boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=what)
def on_event(event, context):
    for r in event.get("Records", []):
        if r.get("EventSource") == "aws:sns":
            tell("sns " + r["Sns"]["Message"])
        elif r.get("eventSource") == "aws:kinesis":
            tell("kinesis " + base64.b64decode(r["kinesis"]["data"]).decode())
    if "Records" not in event:
        tell("rule " + json.dumps(event, sort_keys=True))
`

// TestDeploySAMEvents deploys a SAM application with SNS, Kinesis and
// EventBridgeRule events, and plain SNS subscriptions and rules, and
// proves each trigger runs its target: the function through the
// permissions SAM gives sns.amazonaws.com and events.amazonaws.com.
func TestDeploySAMEvents(t *testing.T) {
	t.Parallel()
	runtime, sdkArgs := boto3Offered(t)
	ts := startServer(t, withArgs(sdkArgs...))
	ctx := t.Context()
	cf, q := ts.cloudFormation(), ts.sqsClient()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"src/app.py":    samEventsCode,
		"template.yaml": strings.ReplaceAll(samEventsApp, "python3.12", runtime),
	}, nil)
	stdout, stderr, code := ts.Run("deploy", dir+"/template.yaml", "--stack-name", "events")
	requireOK(t, "lamina deploy", stdout, stderr, code)
	for _, want := range []string{"AWS::SNS::Subscription", "AWS::Kinesis::Stream", "AWS::Events::EventBus", "OnEventOrderPermission",
		"OnEventNotePermission", "Stack events: CREATE_COMPLETE"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lamina deploy's output lacks %q:\n%s", want, stdout)
		}
	}
	_, outs := stackOutputs(t, cf, "events")

	// SNS: the filter policy keeps "skip" from the function; the raw
	// queue subscription takes only bodies its policy matches.
	for _, m := range []struct{ body, kind string }{{"skip", "no"}, {"hello", "go"}, {`{"kind":"body","v":1}`, "no"}} {
		if _, err := ts.SNS().Publish(ctx, &sns.PublishInput{TopicArn: aws.String(outs["TopicArn"]), Message: aws.String(m.body),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String(m.kind)}}}); err != nil {
			t.Fatal(err)
		}
	}
	awaitMessage(t, q, outs["SeenUrl"], "sns hello")
	attrs, err := ts.SNS().GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(resourceID(t, cf, "events", "OnEventNote"))})
	if err != nil || attrs.Attributes["FilterPolicy"] != `{"kind":["go"]}` || attrs.Attributes["Protocol"] != "lambda" {
		t.Errorf("the SNS event's subscription: %v %v", err, attrs)
	}
	awaitMessage(t, q, outs["SeenUrl"], `{"kind":"body","v":1}`)

	// Kinesis: the mapping reads the stream from its start.
	if _, err := ts.Kinesis().PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(outs["StreamName"]), PartitionKey: aws.String("k"),
		Data: []byte("click-1")}); err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, q, outs["SeenUrl"], "kinesis click-1")

	// EventBridge: the SAM rule gives the function the event's detail;
	// the plain rule gives the queue its transformed input.
	if out, err := ts.eventsClient().PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		EventBusName: aws.String(outs["BusName"]), Source: aws.String("app.test"), DetailType: aws.String("order"), Detail: aws.String(`{"n": 7}`)}}}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %v %v", err, out)
	}
	awaitMessage(t, q, outs["SeenUrl"], `rule {"n": 7}`)
	awaitMessage(t, q, outs["SeenUrl"], "queued 7")

	// Destroy removes the triggers with the function.
	stdout, stderr, code = ts.Run("destroy", "events")
	requireOK(t, "lamina destroy", stdout, stderr, code)
	if _, err := ts.SNS().GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(outs["TopicArn"])}); err == nil {
		t.Errorf("topic %s outlived its stack", outs["TopicArn"])
	}
	if _, err := ts.Kinesis().DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(outs["StreamName"])}); err == nil {
		t.Errorf("stream %s outlived its stack", outs["StreamName"])
	}
	if _, err := ts.eventsClient().DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String(outs["BusName"])}); err == nil {
		t.Errorf("bus %s outlived its stack", outs["BusName"])
	}
	if _, err := ts.Lambda().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(outs["Function"])}); err == nil {
		t.Errorf("function %s outlived its stack", outs["Function"])
	}
}
