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
// call: the hook every part that invokes functions on a service's behalf
// calls before it invokes (S3 notifications, SNS subscriptions, EventBridge
// rules), and the function URL listener for public URLs.
type Checker struct {
	Store Store
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
