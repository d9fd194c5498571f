package policy

import (
	"regexp"
	"unicode/utf8"

	"github.com/lamina-project/lamina"
)

// Patterns of AddPermission's parameters, from AWS's model (matched whole).
var (
	statementIDRE      = regexp.MustCompile(`^[a-zA-Z0-9-_]+$`)
	actionRE           = regexp.MustCompile(`^(lambda:[*]|lambda:[a-zA-Z]+|[*])$`)
	principalRE        = regexp.MustCompile(`^[^\s]+$`)
	sourceArnRE        = regexp.MustCompile(`^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)$`)
	eventSourceTokenRE = regexp.MustCompile(`^[a-zA-Z0-9._\-]+$`)
	principalOrgIDRE   = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	// Principals Lambda takes: an IAM or STS ARN, or a service principal
	// (Alexa's end in amazon.com).
	iamARNRE           = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:(iam|sts)::\d{12}:.+$`)
	servicePrincipalRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*\.(amazonaws\.com|amazon\.com)$`)
)

// Validate checks a statement as AddPermission does: the form of every
// parameter (400 ValidationException, all violations at once), then what
// Lambda refuses of a well-formed one (400 InvalidParameterValueException):
// a principal that is no account, IAM ARN or service, and conditions on
// function URLs given for an action they do not apply to.
func Validate(p lamina.Permission) error {
	var v lamina.Violations
	switch {
	case p.Sid == "":
		v.AddMissing("statementId")
	case utf8.RuneCountInString(p.Sid) > 100:
		v.Add(p.Sid, "statementId", "Member must have length less than or equal to 100")
	case !statementIDRE.MatchString(p.Sid):
		v.Add(p.Sid, "statementId", "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)")
	}
	switch {
	case p.Action == "":
		v.AddMissing("action")
	case !actionRE.MatchString(p.Action):
		v.Add(p.Action, "action", "Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])")
	}
	switch {
	case p.Principal == "":
		v.AddMissing("principal")
	case !principalRE.MatchString(p.Principal):
		v.Add(p.Principal, "principal", `Member must satisfy regular expression pattern: [^\s]+`)
	}
	if p.SourceArn != "" && !sourceArnRE.MatchString(p.SourceArn) {
		v.Add(p.SourceArn, "sourceArn", `Member must satisfy regular expression pattern: arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)`)
	}
	if p.SourceAccount != "" && !accountIDRE.MatchString(p.SourceAccount) {
		v.Add(p.SourceAccount, "sourceAccount", `Member must satisfy regular expression pattern: \d{12}`)
	}
	switch {
	case p.EventSourceToken == "":
	case len(p.EventSourceToken) > 256:
		v.Add(p.EventSourceToken, "eventSourceToken", "Member must have length less than or equal to 256")
	case !eventSourceTokenRE.MatchString(p.EventSourceToken):
		v.Add(p.EventSourceToken, "eventSourceToken", `Member must satisfy regular expression pattern: [a-zA-Z0-9._\-]+`)
	}
	if p.PrincipalOrgID != "" && !principalOrgIDRE.MatchString(p.PrincipalOrgID) {
		v.Add(p.PrincipalOrgID, "principalOrgID", "Member must satisfy regular expression pattern: o-[a-z0-9]{10,32}")
	}
	if t := p.FunctionUrlAuthType; t != "" && t != "NONE" && t != "AWS_IAM" {
		v.Add(t, "functionUrlAuthType", "Member must satisfy enum value set: [NONE, AWS_IAM]")
	}
	if err := v.Err(); err != nil {
		return err
	}
	switch {
	case !validPrincipal(p.Principal):
		return lamina.ErrInvalidParameter("The provided principal was invalid. Please check the principal and try again.")
	case p.FunctionUrlAuthType != "" && p.Action != ActionInvokeFunctionURL:
		return lamina.ErrInvalidParameter("FunctionUrlAuthType is only supported for lambda:InvokeFunctionUrl action")
	case p.InvokedViaFunctionUrl && p.Action != ActionInvokeFunction:
		return lamina.ErrInvalidParameter("InvokedViaFunctionUrl is only supported for lambda:InvokeFunction action")
	}
	return nil
}

// validPrincipal reports whether Lambda takes principal: everyone, an
// account, an IAM or STS ARN, or a service.
func validPrincipal(principal string) bool {
	return principal == "*" || accountIDRE.MatchString(principal) || iamARNRE.MatchString(principal) ||
		servicePrincipalRE.MatchString(principal)
}
