package deploy

import (
	"context"
	"strings"
	"testing"
)

const testTemplate = `Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Names:
    Type: CommaDelimitedList
    Default: a,b,c
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Mappings:
  Sizes:
    dev: {Memory: 128}
    prod: {Memory: 1024}
Globals:
  Function:
    Runtime: python3.12
    Environment:
      Variables:
        SHARED: "1"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://bucket/key.zip
      Handler: app.handler
      MemorySize: !FindInMap [Sizes, !Ref Stage, Memory]
      Environment:
        Variables:
          NAME: !Sub "${AWS::StackName}-${Stage}-${Queue.Arn}"
          SECOND: !Select [1, !Ref Names]
          JOINED: !Join ["+", !Split [",", "x,y"]]
          PROD: !If [IsProd, "yes", !Ref AWS::NoValue]
      AutoPublishAlias: live
      FunctionUrlConfig:
        AuthType: NONE
      Events:
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(5 minutes)
  Queue:
    Type: AWS::SQS::Queue
  ProdOnly:
    Type: AWS::SQS::Queue
    Condition: IsProd
Outputs:
  Url:
    Value: !GetAtt FnUrl.FunctionUrl
`

// fakeTypes accept every resource, with attributes named after it.
func fakeTypes(names ...string) map[string]*ResourceType {
	types := map[string]*ResourceType{}
	for _, n := range names {
		types[n] = &ResourceType{
			Create: func(_ context.Context, r *Resolved) (string, map[string]any, error) {
				return "phys-" + r.LogicalID, map[string]any{"Arn": "arn-" + r.LogicalID, "Version": "1", "FunctionUrl": "url"}, nil
			},
			Update: func(_ context.Context, r *Resolved, _ map[string]any) (map[string]any, error) {
				return r.Attributes, nil
			},
			Delete:  func(context.Context, *Resolved) error { return nil },
			Replace: []string{"FunctionName"},
		}
	}
	return types
}

func testEngine() *Engine {
	return &Engine{Region: "us-east-1", AccountID: "123456789012", Types: fakeTypes("AWS::Lambda::Function", "AWS::Lambda::Version",
		"AWS::Lambda::Alias", "AWS::Lambda::Url", "AWS::Lambda::Permission", "AWS::Events::Rule", "AWS::SQS::Queue", "AWS::IAM::Role",
		"AWS::SNS::Subscription", "AWS::Lambda::EventSourceMapping")}
}

func TestSAMTransformAndPlan(t *testing.T) {
	e := testEngine()
	tmpl, err := e.Prepare(testTemplate)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"Fn", "FnRole", "FnAliaslive", "FnUrl", "FnUrlPublicPermissions", "FnTick", "FnTickPermission", "Queue"} {
		if tmpl.Resources[id] == nil {
			t.Errorf("the transform made no %s (made %v)", id, sortedKeys(tmpl.Resources))
		}
	}
	changes, err := e.Plan(context.Background(), nil, "s", testTemplate, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action != ActionAdd {
			t.Errorf("a new stack's plan has %+v", c)
		}
		if c.LogicalID == "ProdOnly" {
			t.Errorf("a resource whose condition is false is planned")
		}
	}
	if _, err := e.Plan(context.Background(), nil, "s", testTemplate, map[string]string{"Stage": "test"}); err == nil ||
		!strings.Contains(err.Error(), "AllowedValues") {
		t.Errorf("a parameter outside AllowedValues: %v", err)
	}
}

func TestIntrinsics(t *testing.T) {
	e := testEngine()
	d, err := e.newDeployment(context.Background(), nil, "s", testTemplate, map[string]string{"Stage": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	d.current["Queue"] = &StackResource{LogicalID: "Queue", Type: "AWS::SQS::Queue", PhysicalID: "q", Attributes: map[string]any{"Arn": "arn:q"}}
	d.current["FnRole"] = &StackResource{LogicalID: "FnRole", Type: "AWS::IAM::Role", PhysicalID: "r", Attributes: map[string]any{"Arn": "arn:r"}}
	props, err := d.resolve("Fn")
	if err != nil {
		t.Fatal(err)
	}
	vars := Props(props).Map("Environment").Map("Variables")
	want := map[string]string{"NAME": "s-prod-arn:q", "SECOND": "b", "JOINED": "x+y", "PROD": "yes", "SHARED": "1"}
	for k, v := range want {
		if vars.Str(k) != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, vars.Str(k), v, vars)
		}
	}
	if n, _ := Props(props).Int("MemorySize"); n != 1024 {
		t.Errorf("MemorySize = %v", props["MemorySize"])
	}
}

func TestParseErrors(t *testing.T) {
	for body, want := range map[string]string{
		"Resources:\n  A:\n    Type: AWS::SQS::Queue\n  B:\n    Type: AWS::Nope::Thing\n":   "AWS::Nope::Thing (B, line 4)",
		"Resources:\n  A:\n    Properties: {}\n":                                            "line 2",
		"Resources:\n  A:\n    Type: AWS::SQS::Queue\n    Properties:\n      X: !Bogus y\n": "unknown tag !Bogus (line 5)",
		"Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: s3://b/k\n      Events:\n        E:\n          Type: DynamoDB\n": "type DynamoDB",
		"Resources:\n  A:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Ref B\n  B:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Ref A\n":                            "Circular dependency",
	} {
		e := testEngine()
		_, err := e.Plan(context.Background(), nil, "s", body, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("template %q: error %v, want it to say %q", body, err, want)
		}
	}
}

func TestPlanUpdate(t *testing.T) {
	e := testEngine()
	body := "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      VisibilityTimeout: 30\n  R:\n    Type: AWS::SQS::Queue\n"
	stack := &Stack{Name: "s", ID: "id", Resources: map[string]*StackResource{
		"Q":   {LogicalID: "Q", Type: "AWS::SQS::Queue", PhysicalID: "q", Properties: map[string]any{"VisibilityTimeout": 30.0}},
		"R":   {LogicalID: "R", Type: "AWS::SQS::Queue", PhysicalID: "r", Properties: map[string]any{}},
		"Old": {LogicalID: "Old", Type: "AWS::SQS::Queue", PhysicalID: "old"},
	}}
	changes, err := e.Plan(context.Background(), stack, "s", body, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Action != ActionRemove || changes[0].LogicalID != "Old" {
		t.Errorf("plan = %+v, want only Old removed", changes)
	}
	changes, _ = e.Plan(context.Background(), stack, "s", strings.Replace(body, "30", "60", 1), nil)
	if len(changes) != 2 || changes[0].Action != ActionModify || changes[0].Replacement {
		t.Errorf("plan = %+v, want Q modified in place and Old removed", changes)
	}
}

// TestSAMEventSources checks what the transform makes of SNS, Kinesis,
// EventBridgeRule and CloudWatchEvent events, and that an event property
// Lamina lacks is refused by name.
func TestSAMEventSources(t *testing.T) {
	const tmpl = `Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://b/k.zip
      Handler: app.handler
      Runtime: python3.12
      Events:
        Note:
          Type: SNS
          Properties: {Topic: arn:aws:sns:r:1:t, FilterPolicy: {kind: [go]}}
        Clicks:
          Type: Kinesis
          Properties: {Stream: arn:aws:kinesis:r:1:stream/s, StartingPosition: LATEST}
        Order:
          Type: EventBridgeRule
          Properties: {Pattern: {source: [x]}, EventBusName: shop, InputPath: $.detail, Target: {Id: mine}}
        Old:
          Type: CloudWatchEvent
          Properties: {Pattern: {source: [y]}}
`
	e := testEngine()
	got, err := e.Prepare(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"FnNote": "AWS::SNS::Subscription", "FnNotePermission": "AWS::Lambda::Permission",
		"FnClicks": "AWS::Lambda::EventSourceMapping", "FnOrder": "AWS::Events::Rule", "FnOrderPermission": "AWS::Lambda::Permission",
		"FnOld": "AWS::Events::Rule", "FnOldPermission": "AWS::Lambda::Permission"}
	for id, typ := range want {
		if r := got.Resources[id]; r == nil || r.Type != typ {
			t.Errorf("%s: %+v, want a %s", id, r, typ)
		}
	}
	if p := got.Resources["FnNotePermission"].Properties; p["Principal"] != "sns.amazonaws.com" || p["SourceArn"] != "arn:aws:sns:r:1:t" {
		t.Errorf("the SNS permission: %v", p)
	}
	if p := got.Resources["FnNote"].Properties; p["Protocol"] != "lambda" || canonical(p["FilterPolicy"]) != canonical(map[string]any{"kind": []any{"go"}}) {
		t.Errorf("the SNS subscription: %v", p)
	}
	if p := got.Resources["FnOrderPermission"].Properties; p["Principal"] != "events.amazonaws.com" {
		t.Errorf("the rule permission: %v", p)
	}
	rule := Props(got.Resources["FnOrder"].Properties)
	if target := rule.List("Targets")[0]; target["Id"] != "mine" || target["InputPath"] != "$.detail" || rule["EventBusName"] != "shop" {
		t.Errorf("the EventBridgeRule rule: %v", rule)
	}
	if p := got.Resources["FnClicks"].Properties; p["StartingPosition"] != "LATEST" || p["EventSourceArn"] != "arn:aws:kinesis:r:1:stream/s" {
		t.Errorf("the Kinesis mapping: %v", p)
	}

	refused := strings.Replace(tmpl, "FilterPolicy: {kind: [go]}", "SqsSubscription: true", 1)
	if _, err := e.Prepare(refused); err == nil || !strings.Contains(err.Error(), "property SqsSubscription of event Note is not supported") {
		t.Errorf("an SNS event with SqsSubscription: %v", err)
	}
}
