package policy

import (
	"strings"

	"github.com/lamina-project/lamina"
)

// Request is a call that a function's resource-based policy may allow: who
// asks (Principal) to do what (Action), with the condition keys AWS gives
// such a call. Keys left empty are absent from the call, and a statement
// that tests an absent key does not apply to it.
type Request struct {
	Action string // ActionInvokeFunction or ActionInvokeFunctionURL
	// Principal is who asks: a service principal ("s3.amazonaws.com"), an
	// account ID, an IAM ARN, or "" for an anonymous caller (a request to
	// a function URL whose AuthType is NONE).
	Principal string
	// SourceArn and SourceAccount are the resource on whose behalf a
	// service calls, and the account that owns it (aws:SourceArn,
	// aws:SourceAccount).
	SourceArn, SourceAccount string
	// FunctionURLAuthType is the AuthType of the function URL the call came
	// through (lambda:FunctionUrlAuthType, for lambda:InvokeFunctionUrl).
	FunctionURLAuthType string
	// ViaFunctionURL says the call came through a function URL
	// (lambda:InvokedViaFunctionUrl, for lambda:InvokeFunction).
	ViaFunctionURL bool
	// EventSourceToken is the token an Alexa skill presents.
	EventSourceToken string
}

// Allows reports whether one of statements allows r. Function policies
// hold only Allow statements, so one that matches is enough.
func Allows(statements []lamina.Permission, r Request) bool {
	for i := range statements {
		if matches(&statements[i], r) {
			return true
		}
	}
	return false
}

// matches reports whether statement p applies to r: its action, its
// principal and every one of its conditions.
func matches(p *lamina.Permission, r Request) bool {
	return actionMatches(p.Action, r.Action) &&
		principalMatches(p.Principal, r.Principal) &&
		(p.SourceArn == "" || (r.SourceArn != "" && ArnLike(p.SourceArn, r.SourceArn))) &&
		(p.SourceAccount == "" || p.SourceAccount == r.SourceAccount) &&
		// Lamina has no organizations: no call carries aws:PrincipalOrgID.
		p.PrincipalOrgID == "" &&
		(p.FunctionUrlAuthType == "" || p.FunctionUrlAuthType == r.FunctionURLAuthType) &&
		(p.EventSourceToken == "" || p.EventSourceToken == r.EventSourceToken) &&
		(!p.InvokedViaFunctionUrl || r.ViaFunctionURL)
}

// actionMatches compares a statement's action with a call's as IAM does:
// names are case-insensitive, "*" is every action and "lambda:*" every
// action of Lambda.
func actionMatches(pattern, action string) bool {
	return pattern == "*" || strings.EqualFold(pattern, "lambda:*") && hasPrefixFold(action, "lambda:") ||
		strings.EqualFold(pattern, action)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// principalMatches reports whether a statement's principal names the
// caller: "*" names everyone, anonymous callers included; an account ID
// (or its root ARN) names callers of that account; a service principal or
// another ARN names exactly itself.
func principalMatches(pattern, principal string) bool {
	switch {
	case pattern == "*":
		return true
	case principal == "":
		return false
	case accountIDRE.MatchString(pattern) || isRootARN(pattern):
		account := strings.TrimSuffix(strings.TrimPrefix(pattern, "arn:aws:iam::"), ":root")
		return principal == account || isARN(principal) && arnAccount(principal) == account
	}
	return strings.EqualFold(pattern, principal)
}

func isRootARN(s string) bool {
	return strings.HasPrefix(s, "arn:aws:iam::") && strings.HasSuffix(s, ":root")
}

// arnAccount returns the account field of an ARN.
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// ArnLike reports whether arn matches pattern as IAM's ArnLike condition
// operator does: both have six colon-separated fields (the last, the
// resource, may hold more colons), and each field of arn must match the
// same field of pattern, where * matches any run of characters and ? any
// one character.
func ArnLike(pattern, arn string) bool {
	p := strings.SplitN(pattern, ":", 6)
	a := strings.SplitN(arn, ":", 6)
	if len(p) != 6 || len(a) != 6 {
		return false
	}
	for i := range p {
		if !StringLike(p[i], a[i]) {
			return false
		}
	}
	return true
}

// StringLike reports whether s matches pattern, where * matches any run of
// characters (the empty one included) and ? any one character, as IAM's
// StringLike condition operator does; the match is case-sensitive.
func StringLike(patternText, text string) bool {
	pattern, s := []rune(patternText), []rune(text)
	// Greedy matching with backtracking to the last star: linear in
	// practice, at worst len(pattern)×len(s).
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]):
			pi++
			si++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}
