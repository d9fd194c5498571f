package policy

import (
	"context"
	"errors"
	"testing"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

const fnARN = "arn:aws:lambda:us-east-1:111111111111:function:fn"

// The statements AWS renders, as LocalStack's snapshot tests recorded them
// from AWS (tests/aws/services/lambda_/test_lambda_api.snapshot.json,
// TestLambdaPermissions), with the same inputs.
func TestStatementsRenderAsAWSDoes(t *testing.T) {
	for _, c := range []struct {
		name string
		p    lamina.Permission
		want string
	}{
		{"service with source ARN", lamina.Permission{Sid: "s3", Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceArn: "arn:aws:s3:::test-bucket"},
			`{"Sid":"s3","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"` + fnARN + `","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::test-bucket"}}}`},
		{"service without conditions", lamina.Permission{Sid: "logs", Action: ActionInvokeFunction, Principal: "logs.amazonaws.com"},
			`{"Sid":"logs","Effect":"Allow","Principal":{"Service":"logs.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"` + fnARN + `"}`},
		{"wildcard with source account", lamina.Permission{Sid: "wilcard", Action: ActionInvokeFunction, Principal: "*", SourceAccount: "111111111111"},
			`{"Sid":"wilcard","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"` + fnARN + `","Condition":{"StringEquals":{"AWS:SourceAccount":"111111111111"}}}`},
		{"account", lamina.Permission{Sid: "account-id", Action: ActionInvokeFunction, Principal: "111111111111"},
			`{"Sid":"account-id","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"lambda:InvokeFunction","Resource":"` + fnARN + `"}`},
		{"IAM ARN", lamina.Permission{Sid: "user-arn", Action: ActionInvokeFunction, Principal: "arn:aws:iam::111111111111:user/ann", SourceAccount: "111111111111"},
			`{"Sid":"user-arn","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:user/ann"},"Action":"lambda:InvokeFunction","Resource":"` + fnARN + `","Condition":{"StringEquals":{"AWS:SourceAccount":"111111111111"}}}`},
		{"every optional field", lamina.Permission{Sid: "urlPermission", Action: ActionInvokeFunctionURL, Principal: "*", SourceArn: "arn:aws:s3:::test-bucket",
			SourceAccount: "111111111111", PrincipalOrgID: "o-1234567890", FunctionUrlAuthType: "NONE"},
			`{"Sid":"urlPermission","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunctionUrl","Resource":"` + fnARN + `","Condition":{"StringEquals":{"AWS:SourceAccount":"111111111111","lambda:FunctionUrlAuthType":"NONE","aws:PrincipalOrgID":"o-1234567890"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::test-bucket"}}}`},
		{"Alexa skill token", lamina.Permission{Sid: "alexaSkill", Action: ActionInvokeFunction, Principal: "*", EventSourceToken: "amzn1.ask.skill.xxxxxxxxx-xxxx"},
			`{"Sid":"alexaSkill","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"` + fnARN + `","Condition":{"StringEquals":{"lambda:EventSourceToken":"amzn1.ask.skill.xxxxxxxxx-xxxx"}}}`},
		// Not in the recordings: as AWS's documentation and the public
		// policies that use the key write it.
		{"invoked via a function URL", lamina.Permission{Sid: "FunctionURLAllowInvokeAction", Action: ActionInvokeFunction, Principal: "*", InvokedViaFunctionUrl: true},
			`{"Sid":"FunctionURLAllowInvokeAction","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"` + fnARN + `","Condition":{"Bool":{"lambda:InvokedViaFunctionUrl":"true"}}}`},
	} {
		if got := string(Statement(fnARN, c.p)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func TestDocumentWrapsTheStatementsInOrder(t *testing.T) {
	got := string(Document(fnARN+":live", []lamina.Permission{
		{Sid: "b", Action: ActionInvokeFunction, Principal: "sns.amazonaws.com"},
		{Sid: "a", Action: "lambda:*", Principal: "111111111111", SourceArn: "arn:aws:sns:us-east-1:111111111111:t&u"},
	}))
	want := `{"Version":"2012-10-17","Id":"default","Statement":[` +
		`{"Sid":"b","Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"` + fnARN + `:live"},` +
		`{"Sid":"a","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"lambda:*","Resource":"` + fnARN + `:live","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:sns:us-east-1:111111111111:t&u"}}}]}`
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

// Every condition kind, and principals and actions, allow exactly what
// IAM's evaluation allows.
func TestAllows(t *testing.T) {
	s3 := serviceRequest("s3.amazonaws.com", "arn:aws:s3:::photos", "111111111111")
	url := Request{Action: ActionInvokeFunctionURL, FunctionURLAuthType: "NONE"}
	viaURL := Request{Action: ActionInvokeFunction, ViaFunctionURL: true, FunctionURLAuthType: "NONE"}
	with := func(r Request, change func(*Request)) Request { change(&r); return r }
	for _, c := range []struct {
		name string
		p    lamina.Permission
		r    Request
		want bool
	}{
		{"service, no conditions", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com"}, s3, true},
		{"another service", lamina.Permission{Action: ActionInvokeFunction, Principal: "sns.amazonaws.com"}, s3, false},
		{"service names are case-insensitive", lamina.Permission{Action: ActionInvokeFunction, Principal: "S3.amazonaws.com"}, s3, true},
		{"another action", lamina.Permission{Action: "lambda:GetFunction", Principal: "s3.amazonaws.com"}, s3, false},
		{"action names are case-insensitive", lamina.Permission{Action: "lambda:invokefunction", Principal: "s3.amazonaws.com"}, s3, true},
		{"lambda:*", lamina.Permission{Action: "lambda:*", Principal: "s3.amazonaws.com"}, s3, true},
		{"*", lamina.Permission{Action: "*", Principal: "*"}, s3, true},

		{"source ARN equal", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceArn: "arn:aws:s3:::photos"}, s3, true},
		{"source ARN of another bucket", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceArn: "arn:aws:s3:::photo"}, s3, false},
		{"source ARN with a star", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceArn: "arn:aws:s3:::ph*"}, s3, true},
		{"source ARN with a question mark", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceArn: "arn:aws:s3:::phot?s"}, s3, true},
		{"source ARN star per field", lamina.Permission{Action: ActionInvokeFunction, Principal: "events.amazonaws.com", SourceArn: "arn:aws:events:*:111111111111:rule/*"},
			serviceRequest("events.amazonaws.com", "arn:aws:events:us-east-1:111111111111:rule/tick", "111111111111"), true},
		{"source ARN star does not cross into another field", lamina.Permission{Action: ActionInvokeFunction, Principal: "events.amazonaws.com", SourceArn: "arn:aws:events:*:rule/tick"},
			serviceRequest("events.amazonaws.com", "arn:aws:events:us-east-1:111111111111:rule/tick", "111111111111"), false},
		{"source ARN absent from the call", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceArn: "arn:aws:s3:::*"}, with(s3, func(r *Request) { r.SourceArn = "" }), false},

		{"source account equal", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceAccount: "111111111111"}, s3, true},
		{"source account other", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceAccount: "222222222222"}, s3, false},
		{"source account absent from the call", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceAccount: "111111111111"}, with(s3, func(r *Request) { r.SourceAccount = "" }), false},
		{"source ARN and account both hold", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceArn: "arn:aws:s3:::photos", SourceAccount: "111111111111"}, s3, true},
		{"one of two conditions fails", lamina.Permission{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com", SourceArn: "arn:aws:s3:::photos", SourceAccount: "222222222222"}, s3, false},

		{"organization: no call has one", lamina.Permission{Action: ActionInvokeFunction, Principal: "*", PrincipalOrgID: "o-1234567890"}, s3, false},

		{"public URL", lamina.Permission{Action: ActionInvokeFunctionURL, Principal: "*", FunctionUrlAuthType: "NONE"}, url, true},
		{"public URL, no condition", lamina.Permission{Action: ActionInvokeFunctionURL, Principal: "*"}, url, true},
		{"URL auth type other", lamina.Permission{Action: ActionInvokeFunctionURL, Principal: "*", FunctionUrlAuthType: "AWS_IAM"}, url, false},
		{"URL auth type absent from the call", lamina.Permission{Action: ActionInvokeFunction, Principal: "*", FunctionUrlAuthType: "NONE"}, s3, false},
		{"anonymous needs *", lamina.Permission{Action: ActionInvokeFunctionURL, Principal: "111111111111", FunctionUrlAuthType: "NONE"}, url, false},
		{"InvokeFunctionUrl is not InvokeFunction", lamina.Permission{Action: ActionInvokeFunctionURL, Principal: "*", FunctionUrlAuthType: "NONE"}, viaURL, false},

		{"invoked via URL", lamina.Permission{Action: ActionInvokeFunction, Principal: "*", InvokedViaFunctionUrl: true}, viaURL, true},
		{"invoked via URL required, direct call", lamina.Permission{Action: ActionInvokeFunction, Principal: "*", InvokedViaFunctionUrl: true}, with(s3, func(r *Request) { r.Principal = "*" }), false},
		{"unconditioned InvokeFunction for * covers URL calls", lamina.Permission{Action: ActionInvokeFunction, Principal: "*"}, viaURL, true},

		{"event source token equal", lamina.Permission{Action: ActionInvokeFunction, Principal: "*", EventSourceToken: "tok"}, Request{Action: ActionInvokeFunction, Principal: "alexa-appkit.amazon.com", EventSourceToken: "tok"}, true},
		{"event source token other", lamina.Permission{Action: ActionInvokeFunction, Principal: "*", EventSourceToken: "tok"}, Request{Action: ActionInvokeFunction, Principal: "alexa-appkit.amazon.com", EventSourceToken: "other"}, false},
		{"event source token absent", lamina.Permission{Action: ActionInvokeFunction, Principal: "*", EventSourceToken: "tok"}, s3, false},

		{"account principal, caller of the account", lamina.Permission{Action: ActionInvokeFunction, Principal: "111111111111"}, Request{Action: ActionInvokeFunction, Principal: "111111111111"}, true},
		{"account principal, IAM user of the account", lamina.Permission{Action: ActionInvokeFunction, Principal: "arn:aws:iam::111111111111:root"}, Request{Action: ActionInvokeFunction, Principal: "arn:aws:iam::111111111111:user/ann"}, true},
		{"account principal, another account", lamina.Permission{Action: ActionInvokeFunction, Principal: "111111111111"}, Request{Action: ActionInvokeFunction, Principal: "222222222222"}, false},
		{"account principal is no service", lamina.Permission{Action: ActionInvokeFunction, Principal: "111111111111"}, s3, false},
		{"IAM ARN principal, itself", lamina.Permission{Action: ActionInvokeFunction, Principal: "arn:aws:iam::111111111111:role/r"}, Request{Action: ActionInvokeFunction, Principal: "arn:aws:iam::111111111111:role/r"}, true},
		{"IAM ARN principal, another", lamina.Permission{Action: ActionInvokeFunction, Principal: "arn:aws:iam::111111111111:role/r"}, Request{Action: ActionInvokeFunction, Principal: "arn:aws:iam::111111111111:role/s"}, false},
	} {
		if got := Allows([]lamina.Permission{c.p}, c.r); got != c.want {
			t.Errorf("%s: Allows = %v, want %v", c.name, got, c.want)
		}
	}
	if Allows(nil, s3) {
		t.Error("an empty policy allows a call")
	}
	two := []lamina.Permission{{Action: ActionInvokeFunction, Principal: "sns.amazonaws.com"}, {Action: ActionInvokeFunction, Principal: "s3.amazonaws.com"}}
	if !Allows(two, s3) {
		t.Error("the second statement of a policy is not looked at")
	}
}

func TestStringLike(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true}, {"", "a", false}, {"*", "", true}, {"*", "anything", true},
		{"a*c", "abbbc", true}, {"a*c", "abbbd", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*a*b", "xaxxb", true}, {"*a*b", "xaxxbc", false}, {"é?", "éü", true}, {"A", "a", false},
		{"**", "x", true}, {"a*b*c", "aXbYbZc", true},
	} {
		if got := StringLike(c.pattern, c.s); got != c.want {
			t.Errorf("StringLike(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := lamina.Permission{Sid: "s3", Action: ActionInvokeFunction, Principal: "s3.amazonaws.com"}
	with := func(change func(*lamina.Permission)) lamina.Permission { p := ok; change(&p); return p }
	for _, c := range []struct {
		name string
		p    lamina.Permission
		code string // "" for valid
		msg  string
	}{
		{"valid", ok, "", ""},
		{"every principal form", with(func(p *lamina.Permission) { p.Principal = "*" }), "", ""},
		{"account", with(func(p *lamina.Permission) { p.Principal = "111111111111" }), "", ""},
		{"IAM ARN", with(func(p *lamina.Permission) { p.Principal = "arn:aws:iam::111111111111:role/x" }), "", ""},
		{"Alexa", with(func(p *lamina.Permission) { p.Principal = "alexa-appkit.amazon.com" }), "", ""},
		{"URL permission", with(func(p *lamina.Permission) {
			p.Action, p.Principal, p.FunctionUrlAuthType = ActionInvokeFunctionURL, "*", "NONE"
		}), "", ""},
		{"URL invoke permission", with(func(p *lamina.Permission) { p.Principal, p.InvokedViaFunctionUrl = "*", true }), "", ""},
		{"statement ID with a dot", with(func(p *lamina.Permission) { p.Sid = "example.com" }), "ValidationException",
			"1 validation error detected: Value 'example.com' at 'statementId' failed to satisfy constraint: Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"},
		{"missing principal and action", with(func(p *lamina.Permission) { p.Principal, p.Action = "", "" }), "ValidationException", ""},
		{"action of another service", with(func(p *lamina.Permission) { p.Action = "s3:GetObject" }), "ValidationException", ""},
		{"source account of 11 digits", with(func(p *lamina.Permission) { p.SourceAccount = "11111111111" }), "ValidationException", ""},
		{"source ARN that is none", with(func(p *lamina.Permission) { p.SourceArn = "bucket" }), "ValidationException", ""},
		{"organization", with(func(p *lamina.Permission) { p.PrincipalOrgID = "org" }), "ValidationException", ""},
		{"URL auth type", with(func(p *lamina.Permission) { p.FunctionUrlAuthType = "OPEN" }), "ValidationException", ""},
		{"unknown principal", with(func(p *lamina.Permission) { p.Principal = "invalid.nonaws.com" }), "InvalidParameterValueException",
			"The provided principal was invalid. Please check the principal and try again."},
		{"URL auth type on InvokeFunction", with(func(p *lamina.Permission) { p.FunctionUrlAuthType = "NONE" }), "InvalidParameterValueException",
			"FunctionUrlAuthType is only supported for lambda:InvokeFunctionUrl action"},
		{"invoked via URL on InvokeFunctionUrl", with(func(p *lamina.Permission) { p.Action, p.InvokedViaFunctionUrl = ActionInvokeFunctionURL, true }), "InvalidParameterValueException", ""},
	} {
		err := Validate(c.p)
		var le *lamina.Error
		switch {
		case c.code == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.code == "":
		case !errors.As(err, &le) || le.Code != c.code:
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		case c.msg != "" && le.Message != c.msg:
			t.Errorf("%s: message %q, want %q", c.name, le.Message, c.msg)
		}
	}
}

// fakeStore holds policies by "function:qualifier".
type fakeStore map[string]*lamina.FunctionPolicy

func (s fakeStore) GetFunctionPolicy(_ context.Context, function, qualifier string) (*lamina.FunctionPolicy, error) {
	if p, ok := s[function+":"+qualifier]; ok {
		return p, nil
	}
	return nil, store.ErrNotFound
}

// A call to a qualifier is allowed by that qualifier's policy only.
func TestCheckerReadsTheQualifiersOwnPolicy(t *testing.T) {
	allowS3 := []lamina.Permission{{Action: ActionInvokeFunction, Principal: "s3.amazonaws.com"}}
	c := &Checker{Store: fakeStore{"fn:": {Statements: allowS3}, "fn:live": {}}}
	s3 := serviceRequest("s3.amazonaws.com", "arn:aws:s3:::b", "111111111111")
	for _, q := range []struct {
		qualifier string
		want      bool
	}{{"", true}, {"$LATEST", true}, {"live", false}, {"1", false}} {
		got, err := c.Allows(context.Background(), "fn", q.qualifier, s3)
		if err != nil || got != q.want {
			t.Errorf("Allows for %q = %v, %v; want %v", q.qualifier, got, err, q.want)
		}
	}
	if got, err := c.Allows(context.Background(), "other", "", s3); got || err != nil {
		t.Errorf("a function without a policy: %v, %v", got, err)
	}
}

// serviceRequest is the request a service makes to invoke a function for
// sourceArn, owned by account.
func serviceRequest(service, sourceArn, account string) Request {
	return Request{Action: ActionInvokeFunction, Principal: service, SourceArn: sourceArn, SourceAccount: account}
}
