package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestPermissionAPI drives AddPermission, GetPolicy and RemovePermission
// with the SDK and compares the documents with AWS's, as LocalStack's
// snapshot tests recorded them from AWS.
func TestPermissionAPI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	ts.createPy(t, "perm", "echo")
	arn := functionARN("perm")

	add := func(in *lambda.AddPermissionInput) (*lambda.AddPermissionOutput, error) {
		if in.FunctionName == nil {
			in.FunctionName = aws.String("perm")
		}
		if in.Action == nil {
			in.Action = aws.String("lambda:InvokeFunction")
		}
		return c.AddPermission(ctx, in)
	}
	out, err := add(&lambda.AddPermissionInput{StatementId: aws.String("s3"), Principal: aws.String("s3.amazonaws.com"),
		SourceArn: aws.String("arn:aws:s3:::photos"), SourceAccount: aws.String(testAccountID)})
	if err != nil {
		t.Fatal(err)
	}
	s3Statement := `{"Sid":"s3","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"` + arn +
		`","Condition":{"StringEquals":{"AWS:SourceAccount":"` + testAccountID + `"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::photos"}}}`
	if got := aws.ToString(out.Statement); got != s3Statement {
		t.Errorf("AddPermission Statement:\n got %s\nwant %s", got, s3Statement)
	}
	if _, err := add(&lambda.AddPermissionInput{StatementId: aws.String("account"), Principal: aws.String(testAccountID)}); err != nil {
		t.Fatal(err)
	}
	pol, err := c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("perm")})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Version":"2012-10-17","Id":"default","Statement":[` + s3Statement +
		`,{"Sid":"account","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccountID + `:root"},"Action":"lambda:InvokeFunction","Resource":"` + arn + `"}]}`
	if got := aws.ToString(pol.Policy); got != want {
		t.Errorf("GetPolicy Policy:\n got %s\nwant %s", got, want)
	}
	if aws.ToString(pol.RevisionId) == "" {
		t.Error("GetPolicy has no RevisionId")
	}

	// Refusals, with AWS's codes and messages.
	_, err = add(&lambda.AddPermissionInput{StatementId: aws.String("s3"), Principal: aws.String("s3.amazonaws.com")})
	requireAPIError(t, err, "ResourceConflictException", http.StatusConflict,
		"The statement id (s3) provided already exists. Please provide a new statement id, or remove the existing statement.")
	_, err = add(&lambda.AddPermissionInput{StatementId: aws.String("example.com"), Principal: aws.String("s3.amazonaws.com")})
	requireAPIError(t, err, "ValidationException", http.StatusBadRequest, "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)")
	_, err = add(&lambda.AddPermissionInput{StatementId: aws.String("bad"), Principal: aws.String("invalid.nonaws.com")})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "The provided principal was invalid.")
	_, err = add(&lambda.AddPermissionInput{StatementId: aws.String("latest"), Principal: aws.String("s3.amazonaws.com"), Qualifier: aws.String("$LATEST")})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "We currently do not support adding policies for $LATEST.")
	_, err = add(&lambda.AddPermissionInput{FunctionName: aws.String("missing"), StatementId: aws.String("x"), Principal: aws.String("s3.amazonaws.com")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound, "Function not found: "+functionARN("missing"))
	_, err = add(&lambda.AddPermissionInput{FunctionName: aws.String("perm:nope"), StatementId: aws.String("x"), Principal: aws.String("s3.amazonaws.com")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound, "Cannot find alias arn: "+arn+":nope")
	_, err = add(&lambda.AddPermissionInput{StatementId: aws.String("x"), Principal: aws.String("s3.amazonaws.com"), Qualifier: aws.String("42")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound, "Function not found: "+arn+":42")
	_, err = add(&lambda.AddPermissionInput{StatementId: aws.String("rev"), Principal: aws.String("sns.amazonaws.com"), RevisionId: aws.String("stale")})
	requireAPIError(t, err, "PreconditionFailedException", http.StatusPreconditionFailed)
	_, err = c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("perm"), Qualifier: aws.String("77")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound, "The resource you requested does not exist.")

	// The RevisionId GetPolicy gave guards the next change.
	if _, err := add(&lambda.AddPermissionInput{StatementId: aws.String("rev"), Principal: aws.String("sns.amazonaws.com"), RevisionId: pol.RevisionId}); err != nil {
		t.Fatalf("AddPermission with the current RevisionId: %v", err)
	}
	_, err = c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("perm"), StatementId: aws.String("rev"), RevisionId: pol.RevisionId})
	requireAPIError(t, err, "PreconditionFailedException", http.StatusPreconditionFailed)

	// Versions and aliases have policies of their own.
	ts.publishMarked(t, "perm", "")
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("perm"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("perm"), Qualifier: aws.String("1")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	alias, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("perm"), Name: aws.String("live")})
	if err != nil {
		t.Fatal(err)
	}
	// A policy's first statement is guarded by the alias's RevisionId.
	if _, err := add(&lambda.AddPermissionInput{FunctionName: aws.String("perm:live"), StatementId: aws.String("s3"), Principal: aws.String("s3.amazonaws.com"),
		RevisionId: alias.RevisionId}); err != nil {
		t.Fatal(err)
	}
	pol, err = c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("perm"), Qualifier: aws.String("live")})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct{ Sid, Resource string }
	}
	if err := json.Unmarshal([]byte(aws.ToString(pol.Policy)), &doc); err != nil || len(doc.Statement) != 1 || doc.Statement[0].Resource != arn+":live" {
		t.Errorf("the alias's policy: %s (%v)", aws.ToString(pol.Policy), err)
	}

	// RemovePermission.
	_, err = c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("perm"), StatementId: aws.String("non-existent")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound, "Statement non-existent is not found in resource policy.")
	_, err = c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("missing"), StatementId: aws.String("s3")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound, "No policy found for: "+functionARN("missing"))
	for _, sid := range []string{"s3", "account", "rev"} {
		if _, err := c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("perm"), StatementId: aws.String(sid)}); err != nil {
			t.Fatalf("RemovePermission %s: %v", sid, err)
		}
	}
	_, err = c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("perm")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound, "The resource you requested does not exist.")
	_, err = c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("perm"), StatementId: aws.String("s3")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound, "No policy is associated with the given resource.")
	if _, err := c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("perm"), Qualifier: aws.String("live")}); err != nil {
		t.Errorf("the alias's policy went with the function's: %v", err)
	}

	// The policies go with the function: a new function of the name has none.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("perm")}); err != nil {
		t.Fatal(err)
	}
	ts.createPy(t, "perm", "echo")
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("perm"), Name: aws.String("live"), FunctionVersion: aws.String("$LATEST")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("perm"), Qualifier: aws.String("live")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
}

// TestPermissionCLI drives the same operations with the AWS CLI v2.
func TestPermissionCLI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createPy(t, "cli-perm", "echo")
	var added struct{ Statement string }
	if err := json.Unmarshal([]byte(awsCLI(t, ts, "lambda", "add-permission", "--function-name", "cli-perm", "--statement-id", "sns",
		"--action", "lambda:InvokeFunction", "--principal", "sns.amazonaws.com", "--source-arn", "arn:aws:sns:us-east-1:"+testAccountID+":orders")), &added); err != nil {
		t.Fatal(err)
	}
	statement := `{"Sid":"sns","Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"` +
		functionARN("cli-perm") + `","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:sns:us-east-1:` + testAccountID + `:orders"}}}`
	if added.Statement != statement {
		t.Errorf("aws lambda add-permission:\n got %s\nwant %s", added.Statement, statement)
	}
	var got struct{ Policy, RevisionId string }
	if err := json.Unmarshal([]byte(awsCLI(t, ts, "lambda", "get-policy", "--function-name", "cli-perm")), &got); err != nil {
		t.Fatal(err)
	}
	if want := `{"Version":"2012-10-17","Id":"default","Statement":[` + statement + `]}`; got.Policy != want || got.RevisionId == "" {
		t.Errorf("aws lambda get-policy: %+v, want Policy %s", got, want)
	}
	awsCLI(t, ts, "lambda", "remove-permission", "--function-name", "cli-perm", "--statement-id", "sns", "--revision-id", got.RevisionId)
	_, err := ts.Lambda().GetPolicy(t.Context(), &lambda.GetPolicyInput{FunctionName: aws.String("cli-perm")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
}

// TestPublicURLNeedsPermission: a function URL whose AuthType is NONE
// answers 403 until the function's policy lets anyone call it, as on AWS
// since October 2025: lambda:InvokeFunctionUrl and lambda:InvokeFunction
// through a function URL, both for principal "*".
func TestPublicURLNeedsPermission(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	ts.createPy(t, "public", "echo")
	u, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("public"), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil {
		t.Fatal(err)
	}
	target := ts.URLEndpoint() + "/" + urlID(t, aws.ToString(u.FunctionUrl)) + "/hello"
	call := func() rawResponse { t.Helper(); return urlRequest(t, "GET", target, "", nil, nil) }
	forbidden := func(when string) {
		t.Helper()
		if r := call(); r.Status != http.StatusForbidden || string(r.Body) != `{"Message":"Forbidden"}` {
			t.Errorf("%s: %d %s, want 403 {\"Message\":\"Forbidden\"}", when, r.Status, r.Body)
		}
	}
	forbidden("without permissions")
	addPerm := func(in *lambda.AddPermissionInput) {
		t.Helper()
		in.FunctionName, in.Principal = aws.String("public"), aws.String("*")
		if _, err := c.AddPermission(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	addPerm(&lambda.AddPermissionInput{StatementId: aws.String("FunctionURLAllowPublicAccess"), Action: aws.String("lambda:InvokeFunctionUrl"),
		FunctionUrlAuthType: types.FunctionUrlAuthTypeNone})
	forbidden("with lambda:InvokeFunctionUrl only")
	// A statement for the other AuthType, or one for a caller that is not
	// anyone, does not open the URL either.
	addPerm(&lambda.AddPermissionInput{StatementId: aws.String("iam-only"), Action: aws.String("lambda:InvokeFunction"), SourceAccount: aws.String(testAccountID)})
	forbidden("with lambda:InvokeFunction for calls from the account")
	addPerm(&lambda.AddPermissionInput{StatementId: aws.String("FunctionURLAllowInvokeAction"), Action: aws.String("lambda:InvokeFunction"),
		InvokedViaFunctionUrl: aws.Bool(true)})
	if r := call(); r.Status != http.StatusOK {
		t.Errorf("with both permissions: %d %s, want 200", r.Status, r.Body)
	}
	if _, err := c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("public"), StatementId: aws.String("FunctionURLAllowPublicAccess")}); err != nil {
		t.Fatal(err)
	}
	forbidden("after RemovePermission")

	// An AWS_IAM URL needs no policy for the account's own signed calls.
	ts.createPy(t, "private", "echo")
	iam := ts.createURL(t, "private", "", types.FunctionUrlAuthTypeAwsIam, nil)
	id, secret := ts.Credentials()
	if r := ts.signedURLRequest(t, "GET", ts.URLEndpoint()+"/"+urlID(t, aws.ToString(iam.FunctionUrl))+"/", "", nil, id, secret); r.Status != http.StatusOK {
		t.Errorf("AWS_IAM URL signed with the admin key: %d %s", r.Status, r.Body)
	}
}
