package e2e

// The rest of Lambda's operations end to end: code signing configs and
// their policies, runtime management configs, ListFunctions with
// FunctionVersion=ALL and the operations Lamina refuses, with
// aws-sdk-go-v2, the AWS CLI and boto3.

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func TestCodeSigningConfigs(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	ctx := context.Background()
	lc := ts.Lambda()
	publishers := &types.AllowedPublishers{SigningProfileVersionArns: []string{"arn:aws:signer:us-east-1:000000000000:/signing-profiles/p/abcdefghij"}}

	created, err := lc.CreateCodeSigningConfig(ctx, &lambda.CreateCodeSigningConfigInput{AllowedPublishers: publishers, Description: aws.String("first")})
	if err != nil {
		t.Fatal(err)
	}
	csc := created.CodeSigningConfig
	arn := aws.ToString(csc.CodeSigningConfigArn)
	if csc.CodeSigningPolicies == nil || csc.CodeSigningPolicies.UntrustedArtifactOnDeployment != types.CodeSigningPolicyWarn ||
		!strings.HasSuffix(arn, ":code-signing-config:"+aws.ToString(csc.CodeSigningConfigId)) || aws.ToString(csc.LastModified) == "" {
		t.Fatalf("CreateCodeSigningConfig = %+v", csc)
	}
	got, err := lc.GetCodeSigningConfig(ctx, &lambda.GetCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)})
	if err != nil || aws.ToString(got.CodeSigningConfig.Description) != "first" ||
		!slices.Equal(got.CodeSigningConfig.AllowedPublishers.SigningProfileVersionArns, publishers.SigningProfileVersionArns) {
		t.Fatalf("GetCodeSigningConfig = %+v, %v", got, err)
	}
	listed, err := lc.ListCodeSigningConfigs(ctx, &lambda.ListCodeSigningConfigsInput{})
	if err != nil || len(listed.CodeSigningConfigs) != 1 {
		t.Fatalf("ListCodeSigningConfigs = %+v, %v", listed, err)
	}

	// Warn: code is deployed, unverified.
	ts.createPy(t, "signed", "echo", func(in *lambda.CreateFunctionInput) { in.CodeSigningConfigArn = aws.String(arn) })
	attached, err := lc.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String("signed")})
	if err != nil || aws.ToString(attached.CodeSigningConfigArn) != arn || aws.ToString(attached.FunctionName) != "signed" {
		t.Fatalf("GetFunctionCodeSigningConfig = %+v, %v", attached, err)
	}
	users, err := lc.ListFunctionsByCodeSigningConfig(ctx, &lambda.ListFunctionsByCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)})
	if err != nil || len(users.FunctionArns) != 1 || !strings.HasSuffix(users.FunctionArns[0], ":function:signed") {
		t.Fatalf("ListFunctionsByCodeSigningConfig = %+v, %v", users, err)
	}
	ts.invokeOK(t, "signed", `{}`)
	_, err = lc.DeleteCodeSigningConfig(ctx, &lambda.DeleteCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)})
	requireTyped[*types.ResourceConflictException](t, err)

	// Enforce: Lamina verifies nothing, so it deploys nothing.
	if _, err := lc.UpdateCodeSigningConfig(ctx, &lambda.UpdateCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn),
		CodeSigningPolicies: &types.CodeSigningPolicies{UntrustedArtifactOnDeployment: types.CodeSigningPolicyEnforce}}); err != nil {
		t.Fatal(err)
	}
	_, err = lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("signed"), ZipFile: pyAppZip(t)})
	requireTyped[*types.CodeVerificationFailedException](t, err)
	requireAPIError(t, err, "CodeVerificationFailedException", http.StatusBadRequest, "cannot verify code signatures", "Warn")
	_, err = lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("enforced"), Runtime: types.RuntimePython312,
		Handler: aws.String("app.echo"), Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: pyAppZip(t)}, CodeSigningConfigArn: aws.String(arn)})
	requireTyped[*types.CodeVerificationFailedException](t, err)

	// Detached, the code deploys again; unused, the config can go.
	if _, err := lc.DeleteFunctionCodeSigningConfig(ctx, &lambda.DeleteFunctionCodeSigningConfigInput{FunctionName: aws.String("signed")}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("signed"), ZipFile: pyAppZip(t)}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.DeleteCodeSigningConfig(ctx, &lambda.DeleteCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = lc.GetCodeSigningConfig(ctx, &lambda.GetCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)})
	requireTyped[*types.ResourceNotFoundException](t, err)
	_, err = lc.PutFunctionCodeSigningConfig(ctx, &lambda.PutFunctionCodeSigningConfigInput{FunctionName: aws.String("signed"), CodeSigningConfigArn: aws.String(arn)})
	requireTyped[*types.ResourceNotFoundException](t, err)
}

func TestRuntimeManagementAndListAll(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	ctx := context.Background()
	lc := ts.Lambda()
	ts.createPy(t, "managed-rt", "echo")

	got, err := lc.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("managed-rt")})
	if err != nil || got.UpdateRuntimeOn != types.UpdateRuntimeOnAuto || !strings.HasSuffix(aws.ToString(got.FunctionArn), ":function:managed-rt") {
		t.Fatalf("GetRuntimeManagementConfig = %+v, %v; want Auto", got, err)
	}
	_, err = lc.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("managed-rt"),
		UpdateRuntimeOn: types.UpdateRuntimeOnManual, RuntimeVersionArn: aws.String("arn:aws:lambda:us-east-1::runtime:" + strings.Repeat("a", 64))})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "one version of each runtime")
	current := "arn:aws:lambda:" + testRegion + "::runtime:" + strings.Repeat("0", 64)
	put, err := lc.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("managed-rt"),
		UpdateRuntimeOn: types.UpdateRuntimeOnManual, RuntimeVersionArn: aws.String(current)})
	if err != nil || put.UpdateRuntimeOn != types.UpdateRuntimeOnManual || aws.ToString(put.RuntimeVersionArn) != current {
		t.Fatalf("PutRuntimeManagementConfig = %+v, %v", put, err)
	}
	// The ARN is the one INIT_START shows.
	r := ts.invokeOK(t, "managed-rt", `{}`)
	ts.waitLogEvents(t, "managed-rt", "Runtime Version ARN: "+current, "REPORT RequestId: "+r.RequestID)

	if _, err := lc.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("managed-rt")}); err != nil {
		t.Fatal(err)
	}
	all, err := lc.ListFunctions(ctx, &lambda.ListFunctionsInput{FunctionVersion: types.FunctionVersionAll})
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, fn := range all.Functions {
		versions = append(versions, aws.ToString(fn.Version))
	}
	if !slices.Equal(versions, []string{"$LATEST", "1"}) {
		t.Errorf("ListFunctions FunctionVersion=ALL versions %q, want $LATEST and 1", versions)
	}
	latest, err := lc.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(latest.Functions) != 1 {
		t.Errorf("ListFunctions = %d functions, %v; want $LATEST only", len(latest.Functions), err)
	}

	// Refused operations say why.
	_, err = lc.GetFunctionScalingConfig(ctx, &lambda.GetFunctionScalingConfigInput{FunctionName: aws.String("managed-rt"), Qualifier: aws.String("1")})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "Lambda Managed Instances")
	_, err = lc.ListCapacityProviders(ctx, &lambda.ListCapacityProvidersInput{})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "capacity providers")

	t.Run("aws cli", func(t *testing.T) {
		var listed struct{ Functions []struct{ Version string } }
		if err := json.Unmarshal([]byte(awsCLI(t, ts, "lambda", "list-functions", "--function-version", "ALL")), &listed); err != nil || len(listed.Functions) != 2 {
			t.Errorf("aws lambda list-functions --function-version ALL: %+v, %v", listed, err)
		}
		var rm struct{ UpdateRuntimeOn, RuntimeVersionArn string }
		if err := json.Unmarshal([]byte(awsCLI(t, ts, "lambda", "get-runtime-management-config", "--function-name", "managed-rt")), &rm); err != nil ||
			rm.UpdateRuntimeOn != "Manual" || rm.RuntimeVersionArn != current {
			t.Errorf("aws lambda get-runtime-management-config: %+v, %v", rm, err)
		}
		out := awsCLI(t, ts, "lambda", "create-code-signing-config", "--allowed-publishers", "SigningProfileVersionArns=arn:aws:signer:us-east-1:000000000000:/signing-profiles/p/abc")
		if !strings.Contains(out, `"UntrustedArtifactOnDeployment": "Warn"`) {
			t.Errorf("aws lambda create-code-signing-config printed %s", out)
		}
	})

	t.Run("boto3", func(t *testing.T) {
		py := boto3Python(t)
		id, secret := ts.Credentials()
		cmd := exec.Command(py, "-c", boto3OperationsScript)
		cmd.Env = append(hermeticEnv(), "HOME="+t.TempDir(), "ENDPOINT="+ts.Endpoint(), "REGION="+testRegion,
			"AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_MAX_ATTEMPTS=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "boto3 operations OK") {
			t.Fatalf("boto3: %v\n%s", err, out)
		}
	})
}

const boto3OperationsScript = `
import os, boto3
lc = boto3.client("lambda", endpoint_url=os.environ["ENDPOINT"], region_name=os.environ["REGION"])
csc = lc.create_code_signing_config(AllowedPublishers={"SigningProfileVersionArns": ["arn:aws:signer:us-east-1:000000000000:/signing-profiles/p/abc"]},
    CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"})["CodeSigningConfig"]
lc.put_function_code_signing_config(FunctionName="managed-rt", CodeSigningConfigArn=csc["CodeSigningConfigArn"])
assert lc.get_function_code_signing_config(FunctionName="managed-rt")["CodeSigningConfigArn"] == csc["CodeSigningConfigArn"]
try:
    lc.update_function_code(FunctionName="managed-rt", ZipFile=b"PK\x05\x06" + b"\x00" * 18)
    raise SystemExit("Enforce let unverified code through")
except lc.exceptions.CodeVerificationFailedException as e:
    assert "cannot verify" in str(e), e
lc.delete_function_code_signing_config(FunctionName="managed-rt")
assert lc.get_runtime_management_config(FunctionName="managed-rt")["UpdateRuntimeOn"] == "Manual"
settings = lc.get_account_settings()
assert settings["AccountUsage"]["FunctionCount"] == 1 and settings["AccountLimit"]["CodeSizeZipped"] == 52428800, settings
try:
    lc.get_durable_execution(DurableExecutionArn="arn:aws:lambda:us-east-1:000000000000:function:managed-rt:$LATEST/durable-execution/x/y")
    raise SystemExit("a durable execution was found")
except lc.exceptions.InvalidParameterValueException as e:
    assert "durable functions" in str(e), e
print("boto3 operations OK")
`
