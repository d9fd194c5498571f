package policy

import (
	"context"
	"errors"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// Store is where a Checker reads policies (*store.Store).
type Store interface {
	// GetFunctionPolicy returns the policy of a function qualifier, or an
	// error wrapping store.ErrNotFound when it has none.
	GetFunctionPolicy(ctx context.Context, function, qualifier string) (*lamina.FunctionPolicy, error)
}

// Checker answers whether a function's resource-based policy allows a
// call. Every part of Lamina that invokes functions on a service's behalf
// asks it before it invokes (MayInvoke): EventBridge rules (the
// scheduler), S3 bucket notifications, SNS subscriptions; the function URL
// listener asks it for public URLs (Allows). A Checker is safe for
// concurrent use; it reads the store's in-memory copy of policies, so a
// question costs no round trip.
type Checker struct {
	Store Store
	// Region and AccountID are the deployment's: MayInvoke answers false
	// for a function ARN of another region or account. Empty ones are not
	// compared.
	Region, AccountID string
}

// Service principals of the services that invoke functions on behalf of
// their resources, as AddPermission's Principal names them.
const (
	PrincipalS3     = "s3.amazonaws.com"
	PrincipalSNS    = "sns.amazonaws.com"
	PrincipalEvents = "events.amazonaws.com"
)

// ServiceInvocation is an invocation a service makes on behalf of one of
// its resources: S3 for a bucket's notification, SNS for a topic's
// subscription, EventBridge for a rule's target.
type ServiceInvocation struct {
	// Service is the service principal: PrincipalS3, PrincipalSNS or
	// PrincipalEvents.
	Service string
	// Function is the function as the service's configuration names it
	// (a notification's LambdaFunctionArn, a subscription's Endpoint, a
	// target's Arn): a function ARN, unqualified or qualified with a
	// version or an alias; a name or partial ARN is taken too.
	Function string
	// SourceArn is the resource's ARN (aws:SourceArn): the bucket's
	// ("arn:aws:s3:::photos"), the topic's
	// ("arn:aws:sns:us-east-1:000000000000:orders") or the rule's.
	SourceArn string
	// SourceAccount is the account that owns the resource
	// (aws:SourceAccount): the deployment's --account-id.
	SourceAccount string
}

// MayInvoke is the hook of the services that invoke functions: it reports
// whether the resource-based policy of inv.Function lets inv.Service
// invoke it for inv.SourceArn and inv.SourceAccount, as `aws lambda
// add-permission --principal s3.amazonaws.com --source-arn
// arn:aws:s3:::photos --source-account 000000000000` allows. It is the
// policy of the qualifier inv.Function names that decides (an alias's or
// version's own, the function's when unqualified or $LATEST), as on AWS.
//
// A function that does not exist has no policy: false, nil. A malformed
// inv.Function is an error (a ValidationException). Where AWS checks:
// EventBridge and SNS at each delivery (PutTargets and Subscribe do not
// check); S3 when a notification configuration is put (it refuses one
// whose function it may not invoke: InvalidArgument, "Unable to validate
// the following destination configurations") and at each delivery. A
// delivery that is not allowed invokes nothing; the service logs it.
func (c *Checker) MayInvoke(ctx context.Context, inv ServiceInvocation) (bool, error) {
	ref, err := lamina.ParseFunctionRef(inv.Function)
	if err != nil {
		return false, err
	}
	if ref.Region != "" && c.Region != "" && ref.Region != c.Region ||
		ref.AccountID != "" && c.AccountID != "" && ref.AccountID != c.AccountID {
		return false, nil
	}
	return c.Allows(ctx, ref.Name, ref.Qualifier, Request{Action: ActionInvokeFunction, Principal: inv.Service,
		SourceArn: inv.SourceArn, SourceAccount: inv.SourceAccount})
}

// Allows reports whether the policy of function's qualifier allows r. The
// policy is the qualifier's own, as on AWS: a call to an alias or a
// version is allowed by that alias's or version's policy, not by the
// function's; "" and "$LATEST" name the function's. A qualifier without a
// policy allows nothing.
func (c *Checker) Allows(ctx context.Context, function, qualifier string, r Request) (bool, error) {
	if qualifier == lamina.LatestVersion {
		qualifier = ""
	}
	p, err := c.Store.GetFunctionPolicy(ctx, function, qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return Allows(p.Statements, r), nil
}
