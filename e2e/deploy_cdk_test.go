package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestDeployCDKAssembly deploys the cloud assembly a real `cdk synth` made
// of e2e/testdata/cdkapp (aws-cdk-lib from npm; see its README.md): a
// function with a URL, and a bucket whose uploads under in/ invoke it
// through CDK's Custom::S3BucketNotifications. The URL answers, an upload
// invokes the function, and destroy removes the stack.
func TestDeployCDKAssembly(t *testing.T) {
	t.Parallel()
	runtime, sdkArgs := boto3Offered(t)
	ts := startServer(t, withArgs(sdkArgs...))
	ctx := t.Context()
	cf, q := ts.cloudFormation(), ts.sqsClient()

	// The assembly as synthesized, but with the Python runtime this
	// machine offers with boto3 (as TestDeploySAM does).
	src := filepath.Join("testdata", "cdkapp", "cdk.out")
	asm := filepath.Join(t.TempDir(), "cdk.out")
	if err := os.CopyFS(asm, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	tmplPath := filepath.Join(asm, "CdkApp.template.json")
	tmpl, err := os.ReadFile(tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, synthesized := range []string{`"python3.12"`, `"python3.13"`} {
		tmpl = []byte(strings.ReplaceAll(string(tmpl), synthesized, `"`+runtime+`"`))
	}
	if err := os.WriteFile(tmplPath, tmpl, 0o644); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := ts.Run("deploy", asm)
	requireOK(t, "lamina deploy cdk.out", stdout, stderr, code)
	for _, want := range []string{"Custom::S3BucketNotifications", "AWS::Lambda::Url", "Stack CdkApp: CREATE_COMPLETE"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lamina deploy's output lacks %q:\n%s", want, stdout)
		}
	}
	_, outs := stackOutputs(t, cf, "CdkApp")

	// The URL answers without signing (AuthType NONE, and the two
	// permissions CDK gives "*").
	if st, body := ts.callAPI(t, outs["Url"], "/hi"); st != 200 || !strings.Contains(body, `"hello": "from cdk"`) || !strings.Contains(body, `"path": "/hi"`) {
		t.Fatalf("GET %s/hi = %d %s", outs["Url"], st, body)
	}
	// An upload under in/ invokes the function.
	if _, err := ts.s3Client(t, false).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(outs["Bucket"]), Key: aws.String("in/photo.jpg"),
		Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, q, outs["SeenUrl"], "object in/photo.jpg")
	got, err := ts.s3Client(t, false).GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String(outs["Bucket"])})
	if err != nil || len(got.LambdaFunctionConfigurations) != 1 {
		t.Errorf("the bucket's notification configuration: %v %v", err, got)
	}

	fn := resourceID(t, cf, "CdkApp", "Handler886CB40B")
	if _, err := ts.s3Client(t, false).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(outs["Bucket"]), Key: aws.String("in/photo.jpg")}); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = ts.Run("destroy", "CdkApp")
	requireOK(t, "lamina destroy", stdout, stderr, code)
	if _, err := ts.Lambda().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)}); err == nil {
		t.Errorf("function %s outlived its stack", fn)
	}
	if _, err := ts.s3Client(t, false).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(outs["Bucket"])}); err == nil {
		t.Errorf("bucket %s outlived its stack", outs["Bucket"])
	}
}
