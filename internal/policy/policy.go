// Package policy is Lambda's resource-based function policies: the
// statements AddPermission adds (lamina.Permission), rendered as the IAM
// policy JSON GetPolicy shows, checked as AddPermission checks them, and
// evaluated for the calls that need one: services invoking a function
// (S3 notifications, SNS subscriptions, EventBridge rules), which ask
// Checker.MayInvoke before each invocation, and public function URLs.
//
// The rendering is AWS's, down to the order of keys (recorded from AWS by
// LocalStack's snapshot tests):
//
//	{"Version":"2012-10-17","Id":"default","Statement":[{"Sid":"s3","Effect":"Allow",
//	 "Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction",
//	 "Resource":"arn:aws:lambda:us-east-1:123456789012:function:thumb",
//	 "Condition":{"StringEquals":{"AWS:SourceAccount":"123456789012"},
//	  "ArnLike":{"AWS:SourceArn":"arn:aws:s3:::photos"}}}]}
package policy

import (
	"bytes"
	"encoding/json"
	"regexp"

	"github.com/lamina-project/lamina"
)

// Actions the platform asks policies about.
const (
	ActionInvokeFunction    = "lambda:InvokeFunction"
	ActionInvokeFunctionURL = "lambda:InvokeFunctionUrl"
)

// MaxSize is the largest policy document AWS keeps, in bytes of its JSON.
const MaxSize = 20480

// Condition keys, as the policy JSON spells them.
const (
	keySourceArn             = "AWS:SourceArn"
	keySourceAccount         = "AWS:SourceAccount"
	keyPrincipalOrgID        = "aws:PrincipalOrgID"
	keyFunctionURLAuthType   = "lambda:FunctionUrlAuthType"
	keyEventSourceToken      = "lambda:EventSourceToken"
	keyInvokedViaFunctionURL = "lambda:InvokedViaFunctionUrl"
)

var accountIDRE = regexp.MustCompile(`^\d{12}$`)

// Document returns the policy JSON of statements, which belong to the
// function, version or alias whose ARN is resource.
func Document(resource string, statements []lamina.Permission) []byte {
	list := make([]json.Marshaler, len(statements))
	for i, p := range statements {
		list[i] = statement(resource, p)
	}
	return marshal(object{{"Version", "2012-10-17"}, {"Id", "default"}, {"Statement", list}})
}

// Statement returns the JSON of one statement of the policy of resource, as
// AddPermission answers it.
func Statement(resource string, p lamina.Permission) []byte {
	return marshal(statement(resource, p))
}

func statement(resource string, p lamina.Permission) object {
	s := object{{"Sid", p.Sid}, {"Effect", "Allow"}, {"Principal", PrincipalJSON(p.Principal)},
		{"Action", p.Action}, {"Resource", resource}}
	if c := conditions(p); len(c) > 0 {
		s = append(s, field{"Condition", c})
	}
	return s
}

// conditions renders the conditions of p: StringEquals, then ArnLike,
// then Bool, each only when it has a key.
func conditions(p lamina.Permission) object {
	var equals object
	for _, kv := range []field{
		{keySourceAccount, p.SourceAccount},
		{keyFunctionURLAuthType, p.FunctionUrlAuthType},
		{keyPrincipalOrgID, p.PrincipalOrgID},
		{keyEventSourceToken, p.EventSourceToken},
	} {
		if kv.value != "" {
			equals = append(equals, kv)
		}
	}
	var c object
	if len(equals) > 0 {
		c = append(c, field{"StringEquals", equals})
	}
	if p.SourceArn != "" {
		c = append(c, field{"ArnLike", object{{keySourceArn, p.SourceArn}}})
	}
	if p.InvokedViaFunctionUrl {
		c = append(c, field{"Bool", object{{keyInvokedViaFunctionURL, "true"}}})
	}
	return c
}

// PrincipalJSON renders a principal as policies show it: "*" as is, an
// account ID as its root user's ARN and an IAM ARN under "AWS", anything
// else (a service principal such as "s3.amazonaws.com") under "Service".
func PrincipalJSON(principal string) any {
	switch {
	case principal == "*":
		return "*"
	case accountIDRE.MatchString(principal):
		return map[string]string{"AWS": "arn:aws:iam::" + principal + ":root"}
	case isARN(principal):
		return map[string]string{"AWS": principal}
	}
	return map[string]string{"Service": principal}
}

func isARN(s string) bool { return len(s) > 4 && s[:4] == "arn:" }

// marshal returns the JSON of v without escaping <, > and &, as AWS
// writes policies. v holds only strings, maps of strings, objects and
// slices of them, which always encode.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// field is one member of an object.
type field struct {
	key   string
	value any
}

// object is a JSON object whose members keep their order.
type object []field

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(marshal(f.key))
		b.WriteByte(':')
		b.Write(marshal(f.value))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
