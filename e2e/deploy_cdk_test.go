package e2e

import (
	"os"
	"os/exec"
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

// cdkModules is the node_modules directory with aws-cdk (the CLI) and
// aws-cdk-lib that TestDeployWithCDKCLI runs; e2e/testdata/cdkapp/README.md
// says how to install it (.ci/run does).
func cdkModules(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LAMINA_E2E_CDK_MODULES")
	if dir == "" {
		cache, _ := os.UserCacheDir() // $XDG_CACHE_HOME or ~/.cache
		dir = filepath.Join(cache, "lamina-e2e", "cdk", "node_modules")
	}
	for _, need := range []string{".bin/cdk", "aws-cdk-lib/package.json"} {
		if _, err := os.Stat(filepath.Join(dir, need)); err != nil {
			t.Skipf("the cdk CLI and aws-cdk-lib are not installed in %s (install them as e2e/testdata/cdkapp/README.md says, or set LAMINA_E2E_CDK_MODULES): %v", dir, err)
		}
	}
	return dir
}

// TestDeployWithCDKCLI runs the real CDK CLI against Lamina, with
// AWS_ENDPOINT_URL and the admin key pair in the environment, as a user
// would: `cdk bootstrap` (STS, the CDKToolkit stack with its SSM version
// parameter and staging bucket), `cdk deploy` of e2e/testdata/cdkapp
// (assets published to the staging bucket with an assumed role's
// credentials, the change set's TemplateURL, the bootstrap version read
// from SSM), then the function URL answers and an upload invokes the
// function, and `cdk destroy` removes the stack.
func TestDeployWithCDKCLI(t *testing.T) {
	t.Parallel()
	modules := cdkModules(t)
	runtime, sdkArgs := boto3Offered(t)
	ts := startServer(t, withArgs(sdkArgs...))
	ctx := t.Context()

	// The app as committed, with the Python runtime this machine offers
	// with boto3.
	app := t.TempDir()
	if err := os.CopyFS(app, os.DirFS(filepath.Join("testdata", "cdkapp"))); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(app, "cdk.out")); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(app, "app.js"))
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), "lambda.Runtime.PYTHON_3_12", "new lambda.Runtime('"+runtime+"', lambda.RuntimeFamily.PYTHON)", 1))
	if err := os.WriteFile(filepath.Join(app, "app.js"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(modules, filepath.Join(app, "node_modules")); err != nil {
		t.Fatal(err)
	}
	id, secret := ts.Credentials()
	home := t.TempDir()
	cdk := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(modules, ".bin", "cdk"), append(args, "--no-notices")...)
		cmd.Dir = app
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
			"AWS_ENDPOINT_URL=" + ts.Endpoint(), "AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=" + secret,
			"AWS_REGION=" + testRegion, "AWS_DEFAULT_REGION=" + testRegion,
			"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
			"AWS_EC2_METADATA_DISABLED=true", "CDK_DISABLE_VERSION_CHECK=1", "CI=true"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cdk %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	if out := cdk("bootstrap"); !strings.Contains(out, "bootstrapped") {
		t.Errorf("cdk bootstrap's output:\n%s", out)
	}
	cf := ts.cloudFormation()
	if status, _ := stackOutputs(t, cf, "CDKToolkit"); status != "CREATE_COMPLETE" {
		t.Errorf("CDKToolkit is %s", status)
	}
	staging := "cdk-hnb659fds-assets-000000000000-" + testRegion
	if _, err := ts.s3Client(t, false).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(staging)}); err != nil {
		t.Errorf("the staging bucket %s: %v", staging, err)
	}

	out := cdk("deploy", "--require-approval", "never")
	if !strings.Contains(out, "CREATE_COMPLETE") || !strings.Contains(out, "Publishing Handler/Code") {
		t.Errorf("cdk deploy's output:\n%s", out)
	}
	// The function's code and the template went through the staging
	// bucket.
	if objs, err := ts.s3Client(t, false).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(staging)}); err != nil || len(objs.Contents) < 2 {
		t.Errorf("the staging bucket holds %v (%v), want the code's zip and the template", objs, err)
	}
	status, outs := stackOutputs(t, cf, "CdkApp")
	if status != "CREATE_COMPLETE" {
		t.Fatalf("CdkApp is %s", status)
	}
	if st, body := ts.callAPI(t, outs["Url"], "/hi"); st != 200 || !strings.Contains(body, `"hello": "from cdk"`) {
		t.Fatalf("GET %s/hi = %d %s", outs["Url"], st, body)
	}
	if _, err := ts.s3Client(t, false).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(outs["Bucket"]), Key: aws.String("in/photo.jpg"),
		Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, ts.sqsClient(), outs["SeenUrl"], "object in/photo.jpg")

	fn := resourceID(t, cf, "CdkApp", "Handler886CB40B")
	if _, err := ts.s3Client(t, false).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(outs["Bucket"]), Key: aws.String("in/photo.jpg")}); err != nil {
		t.Fatal(err)
	}
	if out := cdk("destroy", "--force"); !strings.Contains(out, "destroyed") {
		t.Errorf("cdk destroy's output:\n%s", out)
	}
	if _, err := ts.Lambda().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)}); err == nil {
		t.Errorf("function %s outlived its stack", fn)
	}
}
