package e2e

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// TestSTS: GetCallerIdentity names the account and the admin user;
// AssumeRole gives temporary credentials that answer to the role's
// session and reach the admin's operations (S3 here); a role of another
// account is refused.
func TestSTS(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := t.Context()
	id, secret := ts.Credentials()
	c := sts.New(sts.Options{Region: testRegion, BaseEndpoint: aws.String(ts.Endpoint()), Credentials: staticCredentials(id, secret)})

	me, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(me.Account) != "000000000000" || aws.ToString(me.Arn) != "arn:aws:iam::000000000000:user/lamina-admin" {
		t.Fatalf("GetCallerIdentity: %+v, %v", me, err)
	}
	role := "arn:aws:iam::000000000000:role/cdk-hnb659fds-deploy-role-000000000000-us-east-1"
	assumed, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("aws-cdk-e2e"),
		DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	cr := assumed.Credentials
	if !strings.HasPrefix(aws.ToString(cr.AccessKeyId), "ASIA") || aws.ToString(cr.SessionToken) == "" ||
		aws.ToString(assumed.AssumedRoleUser.Arn) != "arn:aws:sts::000000000000:assumed-role/cdk-hnb659fds-deploy-role-000000000000-us-east-1/aws-cdk-e2e" {
		t.Fatalf("AssumeRole: %+v %+v", cr, assumed.AssumedRoleUser)
	}
	session := credentials.NewStaticCredentialsProvider(aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken))
	as := sts.New(sts.Options{Region: testRegion, BaseEndpoint: aws.String(ts.Endpoint()), Credentials: session})
	if me, err := as.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil || aws.ToString(me.Arn) != aws.ToString(assumed.AssumedRoleUser.Arn) {
		t.Errorf("GetCallerIdentity with the role's session: %+v, %v", me, err)
	}
	objects := ts.s3Client(t, false, func(o *s3.Options) { o.Credentials = session })
	if _, err := objects.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("assets")}); err != nil {
		t.Errorf("CreateBucket with the role's session: %v", err)
	}
	if _, err := objects.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("assets"), Key: aws.String("a.zip"), Body: strings.NewReader("zip")}); err != nil {
		t.Errorf("PutObject with the role's session: %v", err)
	}

	_, err = c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111111111111:role/r"), RoleSessionName: aws.String("session")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Errorf("AssumeRole of another account's role: %v", err)
	}
	_, err = c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("session"), DurationSeconds: aws.Int32(60)})
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationError" {
		t.Errorf("AssumeRole for a minute: %v", err)
	}
}

// TestSSMParameters: String parameters are put, read, overwritten only
// when asked, read ten at a time and deleted, with Parameter Store's
// errors.
func TestSSMParameters(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := t.Context()
	id, secret := ts.Credentials()
	c := ssm.New(ssm.Options{Region: testRegion, BaseEndpoint: aws.String(ts.Endpoint()), Credentials: staticCredentials(id, secret)})
	code := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return ""
	}

	name := "/cdk-bootstrap/hnb659fds/version"
	put, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("30"), Type: ssmtypes.ParameterTypeString})
	if err != nil || put.Version != 1 {
		t.Fatalf("PutParameter: %+v, %v", put, err)
	}
	_, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("31"), Type: ssmtypes.ParameterTypeString})
	if code(err) != "ParameterAlreadyExists" {
		t.Errorf("PutParameter over one without Overwrite: %v", err)
	}
	if put, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("31"), Overwrite: aws.Bool(true)}); err != nil || put.Version != 2 {
		t.Errorf("PutParameter with Overwrite: %+v, %v", put, err)
	}
	got, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil || aws.ToString(got.Parameter.Value) != "31" || got.Parameter.Version != 2 || got.Parameter.Type != ssmtypes.ParameterTypeString ||
		aws.ToString(got.Parameter.ARN) != "arn:aws:ssm:us-east-1:000000000000:parameter/cdk-bootstrap/hnb659fds/version" || got.Parameter.LastModifiedDate == nil {
		t.Errorf("GetParameter: %+v, %v", got.Parameter, err)
	}
	if _, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name + ":1")}); code(err) != "ParameterVersionNotFound" {
		t.Errorf("GetParameter of a version Lamina did not keep: %v", err)
	}
	many, err := c.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{name, "/missing"}})
	if err != nil || len(many.Parameters) != 1 || len(many.InvalidParameters) != 1 || many.InvalidParameters[0] != "/missing" {
		t.Errorf("GetParameters: %+v, %v", many, err)
	}
	for _, bad := range []*ssm.PutParameterInput{
		{Name: aws.String("/s"), Value: aws.String("v"), Type: ssmtypes.ParameterTypeSecureString},
		{Name: aws.String("a/b"), Value: aws.String("v"), Type: ssmtypes.ParameterTypeString},
		{Name: aws.String("/big"), Value: aws.String(strings.Repeat("x", 4097)), Type: ssmtypes.ParameterTypeString},
	} {
		if _, err := c.PutParameter(ctx, bad); code(err) != "ValidationException" {
			t.Errorf("PutParameter %s: %v, want ValidationException", aws.ToString(bad.Name), err)
		}
	}
	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)}); code(err) != "ParameterNotFound" {
		t.Errorf("GetParameter of a deleted parameter: %v", err)
	}
	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); code(err) != "ParameterNotFound" {
		t.Errorf("DeleteParameter of a deleted parameter: %v", err)
	}
}
