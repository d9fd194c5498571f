package policy

import (
	"context"
	"fmt"
	"testing"

	"github.com/lamina-project/lamina"
)

// The hook of S3 and SNS: a service may invoke the function (or the alias
// or version) its configuration names when that qualifier's policy allows
// its principal for the source, and only then.
func TestMayInvoke(t *testing.T) {
	const account = "111111111111"
	bucket, topic := "arn:aws:s3:::photos", "arn:aws:sns:us-east-1:"+account+":orders"
	c := &Checker{Region: "us-east-1", AccountID: account, Store: fakeStore{
		"thumb:": {Statements: []lamina.Permission{{Sid: "s3", Action: ActionInvokeFunction, Principal: PrincipalS3,
			SourceArn: bucket, SourceAccount: account}}},
		"thumb:live": {Statements: []lamina.Permission{{Sid: "sns", Action: "lambda:*", Principal: PrincipalSNS,
			SourceArn: "arn:aws:sns:us-east-1:" + account + ":*"}}},
	}}
	s3 := func(function, source, owner string) ServiceInvocation {
		return ServiceInvocation{Service: PrincipalS3, Function: function, SourceArn: source, SourceAccount: owner}
	}
	sns := func(function string) ServiceInvocation {
		return ServiceInvocation{Service: PrincipalSNS, Function: function, SourceArn: topic, SourceAccount: account}
	}
	arn := "arn:aws:lambda:us-east-1:" + account + ":function:thumb"
	for _, tc := range []struct {
		name string
		inv  ServiceInvocation
		want bool
	}{
		{"S3 for its bucket", s3(arn, bucket, account), true},
		{"S3 by name", s3("thumb", bucket, account), true},
		{"S3 through $LATEST", s3(arn+":$LATEST", bucket, account), true},
		{"S3 for another bucket", s3(arn, "arn:aws:s3:::other", account), false},
		{"S3 for a bucket of another account", s3(arn, bucket, "222222222222"), false},
		{"S3 to the alias, whose policy lets SNS only", s3(arn+":live", bucket, account), false},
		{"SNS to the function, whose policy lets S3 only", sns(arn), false},
		{"SNS to the alias", sns(arn + ":live"), true},
		{"SNS to a version without a policy", sns(arn + ":1"), false},
		{"a function of another account", s3("arn:aws:lambda:us-east-1:222222222222:function:thumb", bucket, account), false},
		{"a function of another region", s3("arn:aws:lambda:eu-west-1:"+account+":function:thumb", bucket, account), false},
		{"a function that does not exist", s3("arn:aws:lambda:us-east-1:"+account+":function:gone", bucket, account), false},
	} {
		got, err := c.MayInvoke(context.Background(), tc.inv)
		if err != nil || got != tc.want {
			t.Errorf("%s: MayInvoke = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := c.MayInvoke(context.Background(), s3("arn:aws:s3:::not-a-function", bucket, account)); err == nil {
		t.Error("MayInvoke took an ARN that names no function")
	}
}

// S3, before it delivers a notification of bucket photos to function
// thumb, asks thumb's policy.
func ExampleChecker_MayInvoke() {
	policies := &Checker{Region: "us-east-1", AccountID: "000000000000", Store: fakeStore{
		// aws lambda add-permission --function-name thumb --statement-id s3 --action lambda:InvokeFunction \
		//   --principal s3.amazonaws.com --source-arn arn:aws:s3:::photos --source-account 000000000000
		"thumb:": {Statements: []lamina.Permission{{Sid: "s3", Action: ActionInvokeFunction, Principal: PrincipalS3,
			SourceArn: "arn:aws:s3:::photos", SourceAccount: "000000000000"}}},
	}}
	for _, bucket := range []string{"photos", "backups"} {
		ok, err := policies.MayInvoke(context.Background(), ServiceInvocation{
			Service:       PrincipalS3,
			Function:      "arn:aws:lambda:us-east-1:000000000000:function:thumb",
			SourceArn:     "arn:aws:s3:::" + bucket,
			SourceAccount: "000000000000",
		})
		fmt.Println(bucket, ok, err)
	}
	// Output:
	// photos true <nil>
	// backups false <nil>
}
