package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// samApp is a SAM application: an HTTP API route, an S3 trigger, a queue
// mapping and a schedule, whose functions share a layer.
const samApp = `AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: the e2e SAM application
Parameters:
  Greeting:
    Type: String
    Default: hello
Globals:
  Function:
    Runtime: python3.12
    Timeout: 10
    CodeUri: src/
    Layers:
      - !Ref HelperLayer
Resources:
  HelperLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
      CompatibleRuntimes: [python3.12]
  Api:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Environment:
        Variables:
          GREETING: !Ref Greeting
      Events:
        Hello:
          Type: HttpApi
          Properties:
            Path: /hello
            Method: get
  Uploads:
    Type: AWS::S3::Bucket
  OnObject:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.on_object
      Environment:
        Variables:
          QUEUE_URL: !Ref Seen
      Events:
        Put:
          Type: S3
          Properties:
            Bucket: !Ref Uploads
            Events: s3:ObjectCreated:*
  Seen:
    Type: AWS::SQS::Queue
  Jobs:
    Type: AWS::SQS::Queue
  OnMessage:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.on_message
      Environment:
        Variables:
          QUEUE_URL: !Ref Seen
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 5
  Tick:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.tick
      Events:
        Every:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
Outputs:
  ApiUrl:
    Value: !GetAtt ServerlessHttpApi.ApiEndpoint
  Bucket:
    Value: !Ref Uploads
  JobsUrl:
    Value: !Ref Jobs
  SeenUrl:
    Value: !Ref Seen
  TickName:
    Value: !Ref Tick
`

// samCode is the application's code; VERSION is replaced per deploy. The
// S3 and queue handlers tell the test what they saw through the Seen queue,
// with their own credentials.
const samCode = `import json, os, boto3, helper
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"msg": helper.greet(os.environ["GREETING"]), "v": "VERSION"})}
def tell(what):
    boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=what)
def on_object(event, context):
    tell("object " + event["Records"][0]["s3"]["object"]["key"])
def on_message(event, context):
    for r in event["Records"]:
        tell("message " + r["body"])
def tick(event, context):
    return "tick"
`

func (ts *testServer) cloudFormation() *cloudformation.Client {
	id, secret := ts.Credentials()
	return cloudformation.New(cloudformation.Options{Region: testRegion, BaseEndpoint: aws.String(ts.Endpoint()),
		Credentials: staticCredentials(id, secret)})
}

func (ts *testServer) sqsClient() *sqs.Client {
	id, secret := ts.Credentials()
	return sqs.New(sqs.Options{Region: testRegion, BaseEndpoint: aws.String(ts.Endpoint()), Credentials: staticCredentials(id, secret)})
}

// stackOutputs returns a stack's status and outputs.
func stackOutputs(t *testing.T, c *cloudformation.Client, name string) (cfntypes.StackStatus, map[string]string) {
	t.Helper()
	out, err := c.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeStacks %s: %v", name, err)
	}
	m := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		m[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return out.Stacks[0].StackStatus, m
}

// callAPI sends GET path to an HTTP API by its host name.
func (ts *testServer) callAPI(t *testing.T, apiURL, path string) (int, string) {
	t.Helper()
	u, err := url.Parse(apiURL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URLEndpoint()+path, nil)
	req.Host = u.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// awaitMessage waits for a message with body want on the queue.
func awaitMessage(t *testing.T, c *sqs.Client, queueURL, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), WaitTimeSeconds: 2, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if aws.ToString(m.Body) == want {
				return
			}
			seen = append(seen, aws.ToString(m.Body))
		}
	}
	t.Fatalf("no message %q on %s within 60s (saw %q)", want, queueURL, seen)
}

func writeSAMApp(t *testing.T, dir, version, template string) string {
	t.Helper()
	writeTree(t, dir, map[string]string{
		"src/app.py":             strings.ReplaceAll(samCode, "VERSION", version),
		"layer/python/helper.py": "def greet(g):\n    return g + ' from the layer'\n",
		"template.yaml":          template,
	}, nil)
	return filepath.Join(dir, "template.yaml")
}

// TestDeploySAM deploys a SAM application with `lamina deploy`, calls each
// of its triggers, redeploys it unchanged (nothing happens), changed (in
// place, with a function removed), broken (rolled back), with a resource
// type Lamina lacks (refused by name and line), and destroys it.
func TestDeploySAM(t *testing.T) {
	t.Parallel()
	runtime, sdkArgs := boto3Offered(t)
	ts := startServer(t, withArgs(sdkArgs...))
	ctx := t.Context()
	cf, q, l := ts.cloudFormation(), ts.sqsClient(), ts.Lambda()
	dir := t.TempDir()
	samApp := strings.ReplaceAll(samApp, "python3.12", runtime)
	tmpl := writeSAMApp(t, dir, "1", samApp)

	stdout, stderr, code := ts.Run("deploy", tmpl, "--stack-name", "app", "--parameter-overrides", "Greeting=hi")
	requireOK(t, "lamina deploy", stdout, stderr, code)
	for _, want := range []string{"Plan for stack app:", "Add     Api ", "AWS::Lambda::EventSourceMapping", "CREATE_COMPLETE              Uploads",
		"Stack app: CREATE_COMPLETE", "Uploading HelperLayer:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lamina deploy's output lacks %q:\n%s", want, stdout)
		}
	}
	status, outs := stackOutputs(t, cf, "app")
	if status != cfntypes.StackStatusCreateComplete {
		t.Fatalf("stack status %s", status)
	}

	// The API route runs the function with the layer and the parameter.
	if st, body := ts.callAPI(t, outs["ApiUrl"], "/hello"); st != 200 || !strings.Contains(body, `"hi from the layer"`) || !strings.Contains(body, `"v": "1"`) {
		t.Fatalf("GET /hello = %d %s", st, body)
	}
	// The S3 trigger and the queue mapping run theirs.
	if _, err := ts.s3Client(t, false).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(outs["Bucket"]), Key: aws.String("in.txt"),
		Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, q, outs["SeenUrl"], "object in.txt")
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(outs["JobsUrl"]), MessageBody: aws.String("job-1")}); err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, q, outs["SeenUrl"], "message job-1")
	// The schedule is a rule with the function as its target.
	targets := awsCLI(t, ts, "events", "list-targets-by-rule", "--rule", resourceID(t, cf, "app", "TickEvery"))
	if !strings.Contains(targets, functionARN(outs["TickName"])) {
		t.Errorf("the schedule rule does not target %s: %s", outs["TickName"], targets)
	}

	// Again, unchanged: nothing to do.
	stdout, stderr, code = ts.Run("deploy", tmpl, "--stack-name", "app", "--parameter-overrides", "Greeting=hi")
	requireOK(t, "lamina deploy (again)", stdout, stderr, code)
	if !strings.Contains(stdout, "No changes: stack app is up to date") {
		t.Errorf("a second deploy did something:\n%s", stdout)
	}

	// Changed: new code, more memory, the schedule's function gone.
	changed := strings.Replace(samApp, "      Handler: app.handler\n", "      Handler: app.handler\n      MemorySize: 256\n", 1)
	changed = changed[:strings.Index(changed, "  Tick:")] + "Outputs:" + strings.SplitN(changed[strings.Index(changed, "Outputs:"):], "Outputs:", 2)[1]
	changed = strings.Replace(changed, "  TickName:\n    Value: !Ref Tick\n", "", 1)
	tmpl = writeSAMApp(t, dir, "2", changed)
	stdout, stderr, code = ts.Run("deploy", tmpl, "--stack-name", "app", "--parameter-overrides", "Greeting=hi")
	requireOK(t, "lamina deploy (changed)", stdout, stderr, code)
	for _, want := range []string{"Modify  Api ", "Remove  Tick ", "Remove  TickEvery ", "DELETE_COMPLETE              Tick ", "Stack app: UPDATE_COMPLETE"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the changed deploy's output lacks %q:\n%s", want, stdout)
		}
	}
	if st, body := ts.callAPI(t, outs["ApiUrl"], "/hello"); st != 200 || !strings.Contains(body, `"v": "2"`) {
		t.Errorf("after the update GET /hello = %d %s", st, body)
	}
	fn, err := l.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(resourceID(t, cf, "app", "Api"))})
	if err != nil || aws.ToInt32(fn.Configuration.MemorySize) != 256 {
		t.Errorf("Api after the update: %v %v", err, fn)
	}
	if _, err := l.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(outs["TickName"])}); err == nil {
		t.Errorf("the function that left the template still exists")
	}

	// Broken: the new queue is made, the function fails, and both go.
	broken := strings.Replace(changed, "Outputs:", `  Another:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: app-extra
  Broken:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: cobol85
Outputs:`, 1)
	tmpl = writeSAMApp(t, dir, "3", broken)
	stdout, stderr, code = ts.Run("deploy", tmpl, "--stack-name", "app", "--parameter-overrides", "Greeting=hi")
	requireCLIError(t, "lamina deploy (broken)", stdout, stderr, code, "rolled back", "UPDATE_ROLLBACK_COMPLETE", "Broken", "cobol85")
	if !strings.Contains(stdout, "DELETE_COMPLETE              Another") {
		t.Errorf("the rollback did not remove the new queue:\n%s", stdout)
	}
	if _, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("app-extra")}); err == nil {
		t.Errorf("the rolled-back queue still exists")
	}
	if st, body := ts.callAPI(t, outs["ApiUrl"], "/hello"); st != 200 || !strings.Contains(body, `"v": "2"`) {
		t.Errorf("after the rollback GET /hello = %d %s", st, body)
	}

	// A resource type Lamina lacks is refused by name and line.
	unknown := strings.Replace(changed, "Outputs:", "  Table:\n    Type: AWS::DynamoDB::Table\nOutputs:", 1)
	line := strings.Count(unknown[:strings.Index(unknown, "  Table:")], "\n") + 1
	tmpl = writeSAMApp(t, dir, "2", unknown)
	stdout, stderr, code = ts.Run("deploy", tmpl, "--stack-name", "app")
	requireCLIError(t, "lamina deploy (unknown type)", stdout, stderr, code, "AWS::DynamoDB::Table (Table, line "+itoa(line)+")")

	// Destroy: every resource goes (the bucket once it is empty).
	if _, err := ts.s3Client(t, false).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(outs["Bucket"]), Key: aws.String("in.txt")}); err != nil {
		t.Fatal(err)
	}
	api := resourceID(t, cf, "app", "Api")
	stdout, stderr, code = ts.Run("destroy", "app")
	requireOK(t, "lamina destroy", stdout, stderr, code)
	if _, err := l.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(api)}); err == nil {
		t.Errorf("function %s outlived its stack", api)
	}
	if _, err := ts.s3Client(t, false).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(outs["Bucket"])}); err == nil {
		t.Errorf("bucket %s outlived its stack", outs["Bucket"])
	}
	if _, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("app")}); err == nil ||
		!strings.Contains(err.Error(), "Stack with id app does not exist") {
		t.Errorf("DescribeStacks after destroy: %v", err)
	}
}

// resourceID returns a stack resource's physical ID.
func resourceID(t *testing.T, c *cloudformation.Client, stack, logical string) string {
	t.Helper()
	out, err := c.DescribeStackResource(t.Context(), &cloudformation.DescribeStackResourceInput{StackName: aws.String(stack),
		LogicalResourceId: aws.String(logical)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.StackResourceDetail.PhysicalResourceId)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestDeployAWSCLI deploys a SAM template with inline code through the
// unmodified AWS CLI v2 (`aws cloudformation deploy`: change sets, the
// SAM transform on the server), redeploys it unchanged, and deletes it.
func TestDeployAWSCLI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(tmpl, []byte(`Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      InlineCode: |
        def handler(event, context):
            return {"statusCode": 200, "body": "hello from cloudformation"}
      Events:
        Root:
          Type: HttpApi
Outputs:
  ApiUrl:
    Value: !GetAtt ServerlessHttpApi.ApiEndpoint
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := awsCLI(t, ts, "cloudformation", "deploy", "--template-file", tmpl, "--stack-name", "cli-stack", "--capabilities", "CAPABILITY_IAM")
	if !strings.Contains(out, "Successfully created/updated stack - cli-stack") {
		t.Errorf("aws cloudformation deploy: %s", out)
	}
	cf := ts.cloudFormation()
	status, outs := stackOutputs(t, cf, "cli-stack")
	if status != cfntypes.StackStatusCreateComplete {
		t.Fatalf("status %s", status)
	}
	if st, body := ts.callAPI(t, outs["ApiUrl"], "/anything"); st != 200 || body != "hello from cloudformation" {
		t.Errorf("GET /anything = %d %q", st, body)
	}
	// Unchanged: the CLI's "no changes" path, from the change set's reason.
	stdout, stderr, code := awsCLIResult(t, ts, dir, "cloudformation", "deploy", "--template-file", tmpl, "--stack-name", "cli-stack")
	if code != 0 && !strings.Contains(stdout+stderr, "No changes to deploy") {
		t.Errorf("second deploy: %d %s %s", code, stdout, stderr)
	}
	awsCLI(t, ts, "cloudformation", "delete-stack", "--stack-name", "cli-stack")
	if _, err := cf.DescribeStacks(context.Background(), &cloudformation.DescribeStacksInput{StackName: aws.String("cli-stack")}); err == nil {
		t.Errorf("the stack outlived delete-stack")
	}
}
