package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/lamina-project/lamina/internal/sdkhttp"
)

// Functions reach the API from inside their sandboxes as on Lambda: with
// the temporary credentials of their environment and the SDK the runtime
// offers, through the environment's AWS endpoint (AWS_ENDPOINT_URL), and
// no endpoint configuration in their code.

// boto3Caller invokes the function event["callee"] with boto3, tries
// management operations, and returns what happened and its credentials.
const boto3Caller = `import json
import os

import boto3
import botocore


def _refusal(call):
    try:
        call()
        return "allowed"
    except botocore.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                "message": e.response["Error"]["Message"]}


def handler(event, context):
    client = boto3.client("lambda")
    out = {"boto3": boto3.__version__, "endpoint": client.meta.endpoint_url}
    reply = client.invoke(FunctionName=event["callee"], Payload=json.dumps({"from": "boto3"}))
    out["invoked"] = json.loads(reply["Payload"].read())
    out["create"] = _refusal(lambda: client.create_function(FunctionName="made-inside", Runtime="python3.12",
        Role="arn:aws:iam::000000000000:role/x", Handler="app.handler", Code={"ZipFile": b"PK"}))
    out["list"] = _refusal(lambda: client.list_functions())
    out["credentials"] = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
    return out
`

// bundledBoto3 is a function that brings its own (stand-in) boto3.
var bundledBoto3 = map[string]string{
	"boto3.py": "__version__ = 'bundled-by-the-function'\n",
	"app.py":   "import boto3\n\ndef handler(event, context):\n    return {'boto3': boto3.__version__, 'file': boto3.__file__}\n",
}

// callerResult is what boto3Caller and nodeCaller return.
type callerResult struct {
	Boto3    string
	Endpoint string
	Invoked  struct {
		Echo map[string]string
	}
	Create, List struct {
		Code    string
		Status  int
		Message string
		Name    string // the JavaScript SDK's error name
	}
	Credentials struct {
		AccessKeyID     string `json:"AWS_ACCESS_KEY_ID"`
		SecretAccessKey string `json:"AWS_SECRET_ACCESS_KEY"`
		SessionToken    string `json:"AWS_SESSION_TOKEN"`
	}
}

// boto3Check exits 0 in an interpreter that has a boto3 that reads
// AWS_ENDPOINT_URL (the releases since late 2023; Debian 12's does not), and
// prints the site-packages directory it is in.
const boto3Check = `import os, sys, boto3, botocore.configprovider as c
if "ignore_configured_endpoint_urls" not in c.BOTOCORE_DEFAUT_SESSION_VARIABLES:
    sys.exit(1)
print(os.path.dirname(os.path.dirname(boto3.__file__)))`

// pythonWithBoto3 returns a Python runtime of the server whose interpreter
// has boto3 in its own site-packages, and that site-packages directory; ok
// is false when none has.
func pythonWithBoto3(t *testing.T, ts *testServer) (runtime, sitePackages string, ok bool) {
	t.Helper()
	for _, rd := range ts.describeRuntimes(t).Runtimes {
		if !strings.HasPrefix(rd.Runtime, "python") || rd.Interpreter == "" {
			continue
		}
		if out, err := exec.Command(rd.Interpreter, "-c", boto3Check).Output(); err == nil {
			return rd.Runtime, strings.TrimSpace(string(out)), true
		}
	}
	return "", "", false
}

// pythonSDKDir is a directory of boto3 for --sdk python=DIR:
// LAMINA_TEST_PYTHON_SDK, or the one .ci/run makes when no interpreter has
// boto3 (pip install --target). "" when there is none.
func pythonSDKDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LAMINA_TEST_PYTHON_SDK")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(cache, "lamina-e2e", "python-sdk")
	}
	if _, err := os.Stat(filepath.Join(dir, "boto3", "__init__.py")); err != nil {
		return ""
	}
	return dir
}

// boto3Offered returns how a server offers functions boto3: a runtime
// whose interpreter has it (no flag), or python3.12 with --sdk python=DIR.
// It skips the test when this machine has neither.
func boto3Offered(t *testing.T) (runtime string, args []string) {
	t.Helper()
	probe := startServer(t)
	defer probe.Stop()
	if runtime, _, ok := pythonWithBoto3(t, probe); ok {
		return runtime, nil
	}
	if dir := pythonSDKDir(t); dir != "" {
		return "python3.12", []string{"--sdk", "python=" + dir}
	}
	t.Skip("no interpreter of this machine has a boto3 that reads AWS_ENDPOINT_URL, and there is no directory of one (.ci/run makes it: pip install --target ~/.cache/lamina-e2e/python-sdk boto3)")
	return "", nil
}

// TestFunctionCallsTheAPIWithBoto3, in the namespace sandbox (the default;
// the process sandbox when the tests do not run as root) and in the
// process sandbox.
func TestFunctionCallsTheAPIWithBoto3(t *testing.T) {
	t.Parallel()
	runtime, sdkArgs := boto3Offered(t)
	for _, sandbox := range []struct {
		name string
		args []string
	}{{"default", nil}, {"process", []string{"--sandbox", "process"}}} {
		t.Run(sandbox.name, func(t *testing.T) {
			t.Parallel()
			testFunctionCallsTheAPIWithBoto3(t, startServer(t, withArgs(append(sandbox.args, sdkArgs...)...)), runtime)
		})
	}
}

func testFunctionCallsTheAPIWithBoto3(t *testing.T, ts *testServer, runtime string) {
	c := ts.Lambda()
	ctx := t.Context()
	ts.createPy(t, "callee", "echo")
	ts.createFunction(t, "caller", zipFiles(t, map[string]string{"app.py": boto3Caller}), withRuntime(runtime),
		func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(30) })

	res := ts.invokeOK(t, "caller", `{"callee":"callee"}`)
	var got callerResult
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		t.Fatalf("caller answered %s: %v", res.Payload, err)
	}
	t.Logf("caller: %s", res.Payload)
	if got.Invoked.Echo["from"] != "boto3" {
		t.Errorf("the callee, invoked with boto3 %s through %s, answered %+v", got.Boto3, got.Endpoint, got.Invoked)
	}
	if got.Create.Code != "AccessDeniedException" || got.Create.Status != http.StatusForbidden ||
		!strings.Contains(got.Create.Message, "assumed-role/lamina-e2e/caller is not authorized to perform: lambda:CreateFunction") {
		t.Errorf("CreateFunction from inside the function: %+v, want 403 AccessDeniedException", got.Create)
	}
	if got.List.Code != "AccessDeniedException" {
		t.Errorf("ListFunctions from inside the function: %+v, want AccessDeniedException", got.List)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("made-inside")}); err == nil {
		t.Error("the function created a function")
	}

	// The credentials work from outside too (on the node that runs the
	// environment), within their scope, while the environment lives.
	creds := got.Credentials
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" {
		t.Fatalf("the function's credentials: %+v", creds)
	}
	clientWith := func(key, secret, token string) *lambda.Client {
		return ts.LambdaWith(func(o *lambda.Options) {
			o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: token}, nil
			})
		})
	}
	asFunction := clientWith(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
	if _, err := asFunction.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("callee"), Payload: []byte(`{}`)}); err != nil {
		t.Errorf("Invoke with the function's credentials: %v", err)
	}
	_, err := asFunction.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("callee")})
	requireAPIError(t, err, "AccessDeniedException", http.StatusForbidden)
	// Queues: messages yes (the operation is named in the body), queues no.
	queueURL := createQueue(t, ts.SQS(), "from-a-function", nil)
	sqsAsFunction := sqs.New(sqs.Options{Region: ts.region(), BaseEndpoint: aws.String(ts.Endpoint()), HTTPClient: sdkhttp.Client(),
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken))})
	if _, err := sqsAsFunction.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String("hi")}); err != nil {
		t.Errorf("SendMessage with the function's credentials: %v", err)
	}
	_, err = sqsAsFunction.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("made-by-a-function")})
	var denied smithy.APIError
	if !errors.As(err, &denied) || denied.ErrorCode() != "AccessDeniedException" {
		t.Errorf("CreateQueue with the function's credentials: %v, want AccessDeniedException", err)
	}

	// Forged tokens are refused: one whose MAC was changed, the function's
	// key without its token, the admin key with a token.
	adminID, adminSecret := ts.Credentials()
	for name, forged := range map[string]*lambda.Client{
		"a forged token":                   clientWith(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken[:len(creds.SessionToken)-2]+"AA"),
		"the function's key without token": clientWith(creds.AccessKeyID, creds.SecretAccessKey, ""),
		"the admin key with a token":       clientWith(adminID, adminSecret, creds.SessionToken),
	} {
		_, err := forged.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("callee"), Payload: []byte(`{}`)})
		t.Logf("%s: %v", name, err)
		requireAPIError(t, err, "UnrecognizedClientException", http.StatusForbidden, "The security token included in the request is invalid.")
	}

	// Once the environment is gone, so are its credentials.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("caller")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the credentials of a deleted function's environment are refused", func() error {
		_, err := asFunction.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("callee"), Payload: []byte(`{}`)})
		if err == nil {
			return errors.New("still accepted")
		}
		return nil
	})
	_, err = asFunction.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("callee"), Payload: []byte(`{}`)})
	requireAPIError(t, err, "ExpiredTokenException", http.StatusForbidden, "The security token included in the request is expired")

	// The admin key's power is unchanged.
	ts.createPy(t, "admin-made", "echo")

	// A function that brings its own boto3 runs with it, before the
	// interpreter's.
	ts.createFunction(t, "bundled", zipFiles(t, bundledBoto3), withRuntime(runtime))
	if res := ts.invokeOK(t, "bundled", `{}`); !strings.Contains(string(res.Payload), `"boto3": "bundled-by-the-function"`) {
		t.Errorf("a function with its own boto3 ran with %s", res.Payload)
	}
}

// TestSDKFromAnOperatorDirectory: --sdk python=DIR offers boto3 from DIR
// to a runtime whose interpreter has none, below the function's own; a
// runtime with neither runs functions that bring their own.
func TestSDKFromAnOperatorDirectory(t *testing.T) {
	t.Parallel()
	sitePackages := pythonSDKDir(t)
	if sitePackages == "" {
		probe := startServer(t)
		_, sitePackages, _ = pythonWithBoto3(t, probe)
		probe.Stop()
	}
	if sitePackages == "" {
		t.Skip("no directory of a boto3 that reads AWS_ENDPOINT_URL on this machine (.ci/run makes one)")
	}

	ts := startServer(t, withArgs("--sdk", "python="+sitePackages))
	ts.createPy(t, "callee", "echo")
	// python3.12, the tests' runtime, has no boto3 of its own here.
	ts.createFunction(t, "caller", zipFiles(t, map[string]string{"app.py": boto3Caller}),
		func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(30) })
	res := ts.invokeOK(t, "caller", `{"callee":"callee"}`)
	var got callerResult
	if err := json.Unmarshal(res.Payload, &got); err != nil || got.Invoked.Echo["from"] != "boto3" || got.Create.Code != "AccessDeniedException" {
		t.Errorf("python3.12 with the operator's boto3: %s (%v)", res.Payload, err)
	}
	ts.createFunction(t, "bundled", zipFiles(t, bundledBoto3))
	if res := ts.invokeOK(t, "bundled", `{}`); !strings.Contains(string(res.Payload), `"boto3": "bundled-by-the-function"`) {
		t.Errorf("a function with its own boto3 ran with %s", res.Payload)
	}

	// Without --sdk, python3.12 offers none, and a function that brings
	// its own runs.
	ts.Reconfigure()
	ts.Restart()
	if res := ts.invokeOK(t, "bundled", `{}`); !strings.Contains(string(res.Payload), `"boto3": "bundled-by-the-function"`) {
		t.Errorf("without an SDK, a function with its own boto3 ran with %s", res.Payload)
	}
	if runtime, _, ok := pythonWithBoto3(t, ts); ok && runtime == "python3.12" {
		return // python3.12's interpreter has boto3 of its own here
	}
	if res := ts.invoke(t, "caller", `{"callee":"callee"}`); res.FunctionError == "" || !strings.Contains(string(res.Payload), "No module named 'boto3'") {
		t.Errorf("without an SDK, a function that imports boto3: %s %s", res.FunctionError, res.Payload)
	}
}

// nodeCaller is boto3Caller with the AWS SDK for JavaScript v3.
const nodeCaller = `const { LambdaClient, InvokeCommand, CreateFunctionCommand } = require("@aws-sdk/client-lambda");

exports.handler = async (event) => {
  const client = new LambdaClient({});
  const reply = await client.send(new InvokeCommand({ FunctionName: event.callee, Payload: Buffer.from(JSON.stringify({ from: "node" })) }));
  const out = { invoked: JSON.parse(Buffer.from(reply.Payload).toString()) };
  try {
    await client.send(new CreateFunctionCommand({ FunctionName: "made-inside", Runtime: "nodejs20.x",
      Role: "arn:aws:iam::000000000000:role/x", Handler: "index.handler", Code: { ZipFile: Buffer.from("PK") } }));
    out.create = "allowed";
  } catch (e) {
    out.create = { name: e.name, status: e.$metadata && e.$metadata.httpStatusCode, message: e.message };
  }
  return out;
};
`

// nodeSDKDir is a directory whose node_modules holds
// @aws-sdk/client-lambda: LAMINA_TEST_NODE_SDK, or the one .ci/run makes.
func nodeSDKDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LAMINA_TEST_NODE_SDK")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Skip(err)
		}
		dir = filepath.Join(cache, "lamina-e2e", "node-sdk")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@aws-sdk", "client-lambda")); err != nil {
		t.Skipf("no @aws-sdk/client-lambda in %s (.ci/run installs it: npm install --prefix %s @aws-sdk/client-lambda@3)", dir, dir)
	}
	return dir
}

func TestFunctionCallsTheAPIWithTheJavaScriptSDK(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sdk", "nodejs="+nodeSDKDir(t)))
	ts.createPy(t, "callee", "echo")
	ts.createFunction(t, "caller", zipFiles(t, map[string]string{"index.js": nodeCaller}), withRuntime("nodejs20.x"),
		func(in *lambda.CreateFunctionInput) {
			in.Handler, in.Timeout = aws.String("index.handler"), aws.Int32(30)
		})
	res := ts.invokeOK(t, "caller", `{"callee":"callee"}`)
	var got callerResult
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		t.Fatalf("caller answered %s: %v", res.Payload, err)
	}
	if got.Invoked.Echo["from"] != "node" {
		t.Errorf("the callee, invoked with the JavaScript SDK, answered %+v", got.Invoked)
	}
	if got.Create.Name != "AccessDeniedException" || got.Create.Status != http.StatusForbidden {
		t.Errorf("CreateFunction from inside the function: %+v, want 403 AccessDeniedException", got.Create)
	}

	// An ES module imports it too.
	ts.createFunction(t, "esm-caller", zipFiles(t, map[string]string{"index.mjs": esmCaller}), withRuntime("nodejs20.x"),
		func(in *lambda.CreateFunctionInput) {
			in.Handler, in.Timeout = aws.String("index.handler"), aws.Int32(30)
		})
	if res := ts.invokeOK(t, "esm-caller", `{"callee":"callee"}`); !strings.Contains(string(res.Payload), `"from":"esm"`) {
		t.Errorf("an ES module with the JavaScript SDK: %s", res.Payload)
	}

	// A function that bundles its own SDK runs with it, as CommonJS and as
	// an ES module.
	for file, code := range map[string]string{
		"index.js":  `const sdk = require("@aws-sdk/client-lambda"); exports.handler = async () => ({ sdk: sdk.bundled });`,
		"index.mjs": `import { bundled } from "@aws-sdk/client-lambda"; export const handler = async () => ({ sdk: bundled });`,
	} {
		name := "bundled-" + strings.TrimPrefix(filepath.Ext(file), ".")
		ts.createFunction(t, name, zipFiles(t, map[string]string{file: code,
			"node_modules/@aws-sdk/client-lambda/package.json": `{"name":"@aws-sdk/client-lambda","main":"index.js","exports":{"import":"./index.mjs","require":"./index.js"}}`,
			"node_modules/@aws-sdk/client-lambda/index.js":     `exports.bundled = "by-the-function";`,
			"node_modules/@aws-sdk/client-lambda/index.mjs":    `export const bundled = "by-the-function";`,
		}), withRuntime("nodejs20.x"), func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("index.handler") })
		if res := ts.invokeOK(t, name, `{}`); string(res.Payload) != `{"sdk":"by-the-function"}` {
			t.Errorf("%s bundling its own SDK ran with %s", file, res.Payload)
		}
	}
}

// esmCaller invokes the function event.callee from an ES module.
const esmCaller = `import { LambdaClient, InvokeCommand } from "@aws-sdk/client-lambda";

const client = new LambdaClient({});

export const handler = async (event) => {
  const reply = await client.send(new InvokeCommand({ FunctionName: event.callee, Payload: Buffer.from(JSON.stringify({ from: "esm" })) }));
  return JSON.parse(Buffer.from(reply.Payload).toString());
};
`
