package lamina

import (
	"fmt"
	"regexp"
	"strings"
)

// LatestVersion is the version name of a function's unpublished, mutable
// configuration and code.
const LatestVersion = "$LATEST"

// FunctionNamePattern is the pattern AWS's model gives for the FunctionName
// parameter: a name, a partial ARN or a full ARN, optionally qualified.
const FunctionNamePattern = `(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`

var (
	functionRefRE  = regexp.MustCompile(`^` + FunctionNamePattern + `$`)
	functionNameRE = regexp.MustCompile(`^[a-zA-Z0-9-_]{1,64}$`)
	qualifierRE    = regexp.MustCompile(`^[a-zA-Z0-9$_-]{1,128}$`)
)

// FunctionRef is a function as a request names it: by name, partial ARN or
// full ARN, with an optional qualifier (a version or an alias).
type FunctionRef struct {
	Name      string
	Qualifier string // empty when the reference carries none
	Region    string // empty unless the reference is a full ARN
	AccountID string // empty unless given
}

// ParseFunctionRef parses the FunctionName parameter of the Lambda API:
// "name", "name:qualifier", "123456789012:function:name[:q]" or
// "arn:aws:lambda:region:123456789012:function:name[:q]". It returns a 400
// ValidationException for anything else, with AWS's message.
func ParseFunctionRef(s string) (FunctionRef, error) {
	var v Violations
	if len(s) > 140 {
		v.Add(s, "functionName", "Member must have length less than or equal to 140")
	}
	m := functionRefRE.FindStringSubmatch(s)
	if m == nil {
		v.Add(s, "functionName", "Member must satisfy regular expression pattern: "+FunctionNamePattern)
	}
	if err := v.Err(); err != nil {
		return FunctionRef{}, err
	}
	ref := FunctionRef{
		Region:    strings.TrimSuffix(m[3], ":"),
		AccountID: strings.TrimSuffix(m[5], ":"),
		Name:      m[7],
		Qualifier: m[9],
	}
	if len(ref.Name) > 64 {
		v.Add(s, "functionName", "Member must have length less than or equal to 64")
		return FunctionRef{}, v.Err()
	}
	return ref, nil
}

// ValidFunctionName reports whether name is a plain function name
// ([a-zA-Z0-9-_]{1,64}).
func ValidFunctionName(name string) bool { return functionNameRE.MatchString(name) }

// ValidQualifier reports whether q is a well-formed version or alias name.
func ValidQualifier(q string) bool { return qualifierRE.MatchString(q) }

// FunctionARN returns the unqualified ARN of a function.
func FunctionARN(region, accountID, name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, accountID, name)
}

// ParseFunctionARN extracts the function name from a full function ARN such as
// the resource of the tagging API. It reports false for any other string.
func ParseFunctionARN(arn string) (region, accountID, name, qualifier string, ok bool) {
	parts := strings.Split(arn, ":")
	if len(parts) < 7 || len(parts) > 8 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") ||
		parts[2] != "lambda" || parts[5] != "function" || !ValidFunctionName(parts[6]) {
		return "", "", "", "", false
	}
	if len(parts) == 8 {
		qualifier = parts[7]
	}
	return parts[3], parts[4], parts[6], qualifier, true
}
