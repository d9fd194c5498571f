package lamina

// Permission is one statement of a function's resource-based policy, as
// AddPermission gave it: who (Principal) may do what (Action) to the
// function, version or alias the policy belongs to, under which conditions.
// internal/policy renders it as AWS's policy JSON and evaluates it.
type Permission struct {
	Sid       string
	Action    string // "lambda:InvokeFunction", "lambda:*", "*"…
	Principal string // "*", an account ID, an IAM ARN or a service principal
	// Conditions; empty ones do not apply.
	SourceArn             string `json:",omitempty"`
	SourceAccount         string `json:",omitempty"`
	EventSourceToken      string `json:",omitempty"`
	PrincipalOrgID        string `json:",omitempty"`
	FunctionUrlAuthType   string `json:",omitempty"`
	InvokedViaFunctionUrl bool   `json:",omitempty"`
}

// FunctionPolicy is the resource-based policy of a function (unqualified:
// $LATEST), one of its published versions or one of its aliases.
type FunctionPolicy struct {
	Function   string
	Qualifier  string // a version number or an alias; empty for the function itself
	Statements []Permission
	// RevisionId changes with every change of the policy.
	RevisionId string
}
