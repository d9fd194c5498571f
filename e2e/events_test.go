package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// EventBridge events (issue 14, item 4) and destinations, dead-letter
// targets and rule targets of every kind (item 5).

// TestEventBridgeRoutesEvents: an event-pattern rule on a custom bus routes
// PutEvents to a queue (the whole event) and to a function (through an
// input transformer); a rule on the default bus forwards to that bus and to
// a topic; events the patterns do not match go nowhere.
func TestEventBridgeRoutesEvents(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ev, qc := ts.eventsClient(), ts.SQS()
	ctx := t.Context()
	bus, err := ev.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("shop")})
	if err != nil {
		t.Fatalf("CreateEventBus: %v", err)
	}
	busArn := "arn:aws:events:" + testRegion + ":" + testAccountID + ":event-bus/shop"
	if aws.ToString(bus.EventBusArn) != busArn {
		t.Errorf("EventBusArn = %s", aws.ToString(bus.EventBusArn))
	}
	buses, err := ev.ListEventBuses(ctx, &eventbridge.ListEventBusesInput{})
	if err != nil || len(buses.EventBuses) != 2 || aws.ToString(buses.EventBuses[0].Name) != "default" || aws.ToString(buses.EventBuses[1].Name) != "shop" {
		t.Errorf("ListEventBuses: %v %s", err, jsonOf(t, buses))
	}
	queueURL := createQueue(t, qc, "big-orders", nil)
	ts.createPy(t, "notify", "echo")
	pattern := `{"source":["com.shop"],"detail-type":[{"prefix":"Order"}],"detail":{"total":[{"numeric":[">",100]}],"$or":[{"vip":[true]},{"country":[{"anything-but":"XX"}]}]}}`
	rule, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("big"), EventBusName: aws.String("shop"), EventPattern: aws.String(pattern)})
	if err != nil {
		t.Fatalf("PutRule: %v", err)
	}
	ruleArn := "arn:aws:events:" + testRegion + ":" + testAccountID + ":rule/shop/big"
	if aws.ToString(rule.RuleArn) != ruleArn {
		t.Errorf("RuleArn = %s, want %s", aws.ToString(rule.RuleArn), ruleArn)
	}
	allowRule(t, ts.Lambda(), "notify", ruleArn)
	pt, err := ev.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("big"), EventBusName: aws.String("shop"), Targets: []ebtypes.Target{
		{Id: aws.String("queue"), Arn: aws.String(queueARN("big-orders"))},
		{Id: aws.String("fn"), Arn: aws.String(functionARN("notify")), InputTransformer: &ebtypes.InputTransformer{
			InputPathsMap: map[string]string{"who": "$.detail.customer", "total": "$.detail.total", "first": "$.detail.items[0]"},
			InputTemplate: aws.String(`{"text": "<who> paid <total>", "customer": <who>, "total": <total>, "first": <first>, "rule": <aws.events.rule-name>}`),
		}},
	}})
	if err != nil || pt.FailedEntryCount != 0 {
		t.Fatalf("PutTargets: %v %s", err, jsonOf(t, pt))
	}
	_, err = ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("bad"), EventBusName: aws.String("shop"), EventPattern: aws.String(`{"source":"not an array"}`)})
	requireAPIError(t, err, "InvalidEventPatternException", 400)
	names, err := ev.ListRuleNamesByTarget(ctx, &eventbridge.ListRuleNamesByTargetInput{TargetArn: aws.String(functionARN("notify")), EventBusName: aws.String("shop")})
	if err != nil || len(names.RuleNames) != 1 || names.RuleNames[0] != "big" {
		t.Errorf("ListRuleNamesByTarget: %v %v", err, names)
	}
	// The default bus forwards com.shop events to the shop bus, and sends
	// them to a topic whose queue subscription shows them.
	topic := topicARN("shop-events")
	if _, err := ts.SNS().CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("shop-events")}); err != nil {
		t.Fatal(err)
	}
	topicQueueURL := createQueue(t, qc, "from-topic", nil)
	subscribe(t, ts.SNS(), topic, "sqs", queueARN("from-topic"), map[string]string{"RawMessageDelivery": "true"})
	if _, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("forward"), EventPattern: aws.String(`{"source":[{"wildcard":"com.*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if pt, err := ev.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("forward"), Targets: []ebtypes.Target{
		{Id: aws.String("bus"), Arn: aws.String(busArn)},
		{Id: aws.String("topic"), Arn: aws.String(topic), InputPath: aws.String("$.detail")},
	}}); err != nil || pt.FailedEntryCount != 0 {
		t.Fatalf("PutTargets forward: %v %v", err, pt)
	}

	put, err := ev.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
		{EventBusName: aws.String("shop"), Source: aws.String("com.shop"), DetailType: aws.String("Order Placed"), Resources: []string{"arn:aws:shop:order/1"},
			Detail: aws.String(`{"customer":"ana","total":250,"country":"FR","items":["book","pen"]}`)},
		{EventBusName: aws.String("shop"), Source: aws.String("com.shop"), DetailType: aws.String("Order Placed"), Detail: aws.String(`{"customer":"bo","total":50,"country":"FR"}`)},
		{EventBusName: aws.String("shop"), Source: aws.String("com.shop"), DetailType: aws.String("Order Placed"), Detail: aws.String(`{"customer":"cy","total":500,"country":"XX"}`)},
		{EventBusName: aws.String("shop"), Source: aws.String("com.shop"), DetailType: aws.String("Order Placed"), Detail: aws.String(`not json`)},
		{Source: aws.String("com.shop"), DetailType: aws.String("Order Shipped"), Detail: aws.String(`{"customer":"di","total":900,"vip":true}`)},
	}})
	if err != nil {
		t.Fatalf("PutEvents: %v", err)
	}
	if put.FailedEntryCount != 1 || len(put.Entries) != 5 || aws.ToString(put.Entries[3].ErrorCode) != "MalformedDetail" || aws.ToString(put.Entries[0].EventId) == "" {
		t.Errorf("PutEvents answer: %s", jsonOf(t, put))
	}

	// The queue got the two matching events (ana's, and di's forwarded
	// from the default bus), whole.
	bodies := receiveAll(t, qc, queueURL, 2)
	if len(bodies) != 2 {
		t.Fatalf("the queue got %d events, want 2: %q", len(bodies), bodies)
	}
	var ana map[string]any
	for _, b := range bodies {
		var e map[string]any
		if err := json.Unmarshal([]byte(b), &e); err != nil {
			t.Fatalf("a queued event is not JSON: %q", b)
		}
		if e["detail"].(map[string]any)["customer"] == "ana" {
			ana = e
		}
	}
	if ana == nil || ana["version"] != "0" || ana["id"] != aws.ToString(put.Entries[0].EventId) || ana["detail-type"] != "Order Placed" ||
		ana["source"] != "com.shop" || ana["account"] != testAccountID || ana["region"] != testRegion || jsonOf(t, ana["resources"]) != `["arn:aws:shop:order/1"]` {
		t.Errorf("the queued event: %s", jsonOf(t, ana))
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(ana["time"])); err != nil {
		t.Errorf("event time %v: %v", ana["time"], err)
	}
	// The function got the transformed inputs.
	saw := ts.waitSawEvents(t, "notify", "two transformed events", func(s []map[string]any) bool { return len(s) >= 2 })
	var got []string
	for _, e := range saw {
		got = append(got, jsonOf(t, e))
	}
	wantAna := `{"customer":"ana","first":"book","rule":"big","text":"ana paid 250","total":250}`
	if !strings.Contains(strings.Join(got, "\n"), wantAna) {
		t.Errorf("the function received %q, want among them %s", got, wantAna)
	}
	// The topic got di's detail (InputPath), and nothing else.
	fromTopic := receiveAll(t, qc, topicQueueURL, 1)
	if len(fromTopic) != 1 || !strings.Contains(fromTopic[0], `"customer":"di"`) || strings.Contains(fromTopic[0], "detail-type") {
		t.Errorf("the topic's queue got %q, want di's detail", fromTopic)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(sawEvents(t, ts.functionLogEvents(t, ts.Logs(), "notify"))); n != 2 {
		t.Errorf("the function ran %d times, want 2", n)
	}

	test, err := ev.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: aws.String(`{"detail":{"n":[{"numeric":["<",5]}]}}`),
		Event: aws.String(`{"id":"1","source":"x","detail-type":"y","account":"1","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{"n":3}}`)})
	if err != nil || !test.Result {
		t.Errorf("TestEventPattern: %v %v", err, test)
	}
	_, err = ev.DeleteEventBus(ctx, &eventbridge.DeleteEventBusInput{Name: aws.String("shop")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ev.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String("shop")})
	requireAPIError(t, err, "ResourceNotFoundException", 400)
}

// TestDestinationsOfEveryKind: a failing asynchronous function's OnFailure
// destination is a queue that receives Lambda's invocation record; a
// succeeding one's OnSuccess destination is an event bus whose rule sends
// the record to a queue; a function with no destination but a dead-letter
// queue sends it the event with Lambda's attributes.
func TestDestinationsOfEveryKind(t *testing.T) {
	t.Parallel()
	ts := startAsyncServer(t)
	lc, qc, ev := ts.Lambda(), ts.SQS(), ts.eventsClient()
	ctx := t.Context()
	failuresURL := createQueue(t, qc, "failures", nil)
	successesURL := createQueue(t, qc, "successes", nil)
	dlqURL := createQueue(t, qc, "dlq", nil)
	ts.createPy(t, "failing", "fail")
	ts.createPy(t, "succeeding", "echo")
	ts.createPy(t, "dead-lettered", "fail", func(in *lambda.CreateFunctionInput) {
		in.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String(queueARN("dlq"))}
	})
	ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("failing"), MaximumRetryAttempts: aws.Int32(0),
		DestinationConfig: destinationConfig("", queueARN("failures"))})
	ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("succeeding"),
		DestinationConfig: destinationConfig("arn:aws:events:"+testRegion+":"+testAccountID+":event-bus/default", "")})
	ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("dead-lettered"), MaximumRetryAttempts: aws.Int32(0)})
	if _, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("results"),
		EventPattern: aws.String(`{"source":["lambda"],"detail-type":["Lambda Function Invocation Result - Success"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ev.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("results"), Targets: []ebtypes.Target{
		{Id: aws.String("q"), Arn: aws.String(queueARN("successes"))}}}); err != nil {
		t.Fatal(err)
	}
	for fn, payload := range map[string]string{"failing": `{"why":"because"}`, "succeeding": `{"hello":"world"}`, "dead-lettered": `{"why":"dlq"}`} {
		if _, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), InvocationType: types.InvocationTypeEvent, Payload: []byte(payload)}); err != nil {
			t.Fatalf("Invoke %s: %v", fn, err)
		}
	}
	waitOne := func(url, what string) *sqsMessage {
		t.Helper()
		deadline := time.Now().Add(asyncPollTimeout)
		for time.Now().Before(deadline) {
			out, err := qc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Messages) > 0 {
				m := out.Messages[0]
				attrs := map[string]string{}
				for k, v := range m.MessageAttributes {
					attrs[k] = aws.ToString(v.DataType) + ":" + aws.ToString(v.StringValue)
				}
				return &sqsMessage{body: aws.ToString(m.Body), attrs: attrs}
			}
		}
		t.Fatalf("no %s reached its queue in %v", what, asyncPollTimeout)
		return nil
	}
	var rec map[string]any
	failure := waitOne(failuresURL, "failure record")
	if err := json.Unmarshal([]byte(failure.body), &rec); err != nil {
		t.Fatalf("the failure record is not JSON: %q", failure.body)
	}
	rc, _ := rec["requestContext"].(map[string]any)
	resp, _ := rec["responseContext"].(map[string]any)
	if rec["version"] != "1.0" || rc["condition"] != "RetriesExhausted" || rc["functionArn"] != functionARN("failing")+":$LATEST" ||
		fmt.Sprint(rc["approximateInvokeCount"]) != "1" || jsonOf(t, rec["requestPayload"]) != `{"why":"because"}` ||
		resp["functionError"] != "Unhandled" || fmt.Sprint(resp["statusCode"]) != "200" ||
		!strings.Contains(jsonOf(t, rec["responsePayload"]), "boom because") {
		t.Errorf("the failure record: %s", failure.body)
	}
	success := waitOne(successesURL, "success event")
	var ok map[string]any
	_ = json.Unmarshal([]byte(success.body), &ok)
	detail, _ := ok["detail"].(map[string]any)
	if ok["source"] != "lambda" || ok["detail-type"] != "Lambda Function Invocation Result - Success" ||
		detail["requestContext"].(map[string]any)["condition"] != "Success" || jsonOf(t, detail["requestPayload"]) != `{"hello":"world"}` {
		t.Errorf("the success event on the bus: %s", success.body)
	}
	dead := waitOne(dlqURL, "dead letter")
	if dead.body != `{"why":"dlq"}` || !strings.HasPrefix(dead.attrs["RequestID"], "String:") || dead.attrs["ErrorCode"] != "Number:200" ||
		!strings.Contains(dead.attrs["ErrorMessage"], "boom dlq") {
		t.Errorf("the dead letter: %q %v", dead.body, dead.attrs)
	}
}

// sqsMessage is a received message's body and attributes (DataType:value).
type sqsMessage struct {
	body  string
	attrs map[string]string
}
