package frontend

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/policy"
	"github.com/lamina-project/lamina/internal/store"
)

// Resource-based function policies: AddPermission, GetPolicy,
// RemovePermission. A function, each of its versions and each of its
// aliases has a policy of its own (internal/policy renders and evaluates
// them).
//
// A policy's RevisionId is its own: AWS gives a policy the RevisionId of
// its function version or alias, and changes that one with the policy;
// Lamina leaves the function's RevisionId alone, as environments are
// reused by it, so a permission change does not restart them. Until a
// policy has a statement, its RevisionId is the version's or alias's, so a
// RevisionId read from GetFunction or GetAlias guards the first
// AddPermission as it does on AWS.

type addPermissionInput struct {
	StatementId           string
	Action                string
	Principal             string
	SourceArn             string
	SourceAccount         string
	EventSourceToken      string
	PrincipalOrgID        string
	FunctionUrlAuthType   string
	InvokedViaFunctionUrl bool
	RevisionId            string
}

// policyTarget is the function, version or alias whose policy a request
// reads or changes.
type policyTarget struct {
	ref      lamina.FunctionRef // Qualifier: a version or an alias; "" for the function
	arn      string             // the policy's Resource
	revision string             // RevisionId of the version or alias
}

// policyTarget resolves what a policy request names: the function, a
// version or an alias that exists, or AWS's error for each.
func (f *Frontend) policyTarget(ctx context.Context, ref lamina.FunctionRef) (policyTarget, error) {
	if ref.Qualifier == lamina.LatestVersion {
		ref.Qualifier = ""
	}
	t := policyTarget{ref: ref, arn: f.functionARN(ref.Name)}
	if ref.Qualifier != "" {
		t.arn += ":" + ref.Qualifier
	}
	switch {
	case ref.Qualifier == "":
		fn, err := f.store.GetFunction(ctx, ref.Name)
		if err != nil {
			return t, f.lookupError(err, ref)
		}
		t.revision = fn.Configuration.RevisionId
	case lamina.IsVersionNumber(ref.Qualifier):
		n, _ := strconv.Atoi(ref.Qualifier)
		fn, err := f.store.GetVersion(ctx, ref.Name, n)
		if err != nil {
			return t, f.lookupError(err, ref)
		}
		t.revision = fn.Configuration.RevisionId
	default:
		if _, err := f.store.GetFunction(ctx, ref.Name); err != nil {
			return t, f.lookupError(err, lamina.FunctionRef{Name: ref.Name})
		}
		a, err := f.store.GetAlias(ctx, ref.Name, ref.Qualifier)
		if errors.Is(err, store.ErrNotFound) {
			return t, lamina.ErrNotFound("Cannot find alias arn: %s", t.arn)
		}
		if err != nil {
			return t, err
		}
		t.revision = a.RevisionId
	}
	return t, nil
}

// lookupError is the answer to a failed read of what ref names.
func (f *Frontend) lookupError(err error, ref lamina.FunctionRef) error {
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	}
	return err
}

// policyRevision is the RevisionId a precondition on pol compares with.
func (t policyTarget) policyRevision(pol *lamina.FunctionPolicy) string {
	if len(pol.Statements) == 0 {
		return t.revision
	}
	return pol.RevisionId
}

func (f *Frontend) addPermission(rq *request) error {
	var in addPermissionInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	p := lamina.Permission{Sid: in.StatementId, Action: in.Action, Principal: in.Principal, SourceArn: in.SourceArn,
		SourceAccount: in.SourceAccount, EventSourceToken: in.EventSourceToken, PrincipalOrgID: in.PrincipalOrgID,
		FunctionUrlAuthType: in.FunctionUrlAuthType, InvokedViaFunctionUrl: in.InvokedViaFunctionUrl}
	if err := policy.Validate(p); err != nil {
		return err
	}
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	if ref.Qualifier == lamina.LatestVersion {
		return lamina.ErrInvalidParameter("We currently do not support adding policies for $LATEST.")
	}
	ctx := rq.r.Context()
	t, err := f.policyTarget(ctx, ref)
	if err != nil {
		return err
	}
	_, err = f.store.ChangeFunctionPolicy(ctx, ref.Name, t.ref.Qualifier, func(pol *lamina.FunctionPolicy) error {
		if in.RevisionId != "" && in.RevisionId != t.policyRevision(pol) {
			return lamina.ErrPreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest Revision Id")
		}
		if slices.ContainsFunc(pol.Statements, func(s lamina.Permission) bool { return s.Sid == p.Sid }) {
			return lamina.ErrConflict("The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", p.Sid)
		}
		statements := append(slices.Clip(pol.Statements), p)
		if size := len(policy.Document(t.arn, statements)); size > policy.MaxSize {
			return &lamina.Error{Status: http.StatusBadRequest, Code: "PolicyLengthExceededException", Type: "User",
				Message: "The final policy size (" + strconv.Itoa(size) + ") is bigger than the limit (" + strconv.Itoa(policy.MaxSize) + ")."}
		}
		pol.Statements, pol.RevisionId = statements, uuid.NewString()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
		return f.notFound(ref)
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusCreated, struct{ Statement string }{string(policy.Statement(t.arn, p))})
}

func (f *Frontend) getPolicy(rq *request) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	ctx := rq.r.Context()
	if _, err := f.store.GetFunction(ctx, ref.Name); err != nil {
		return f.lookupError(err, lamina.FunctionRef{Name: ref.Name})
	}
	t, err := f.policyTarget(ctx, ref)
	var le *lamina.Error
	if errors.As(err, &le) && le.Status == http.StatusNotFound {
		return errNoPolicy()
	}
	if err != nil {
		return err
	}
	pol, err := f.store.GetFunctionPolicy(ctx, ref.Name, t.ref.Qualifier)
	if errors.Is(err, store.ErrNotFound) || err == nil && len(pol.Statements) == 0 {
		return errNoPolicy()
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{ Policy, RevisionId string }{string(policy.Document(t.arn, pol.Statements)), pol.RevisionId})
}

// errNoPolicy answers GetPolicy for a function, version or alias that has
// no policy, or does not exist.
func errNoPolicy() error {
	return lamina.ErrNotFound("The resource you requested does not exist.")
}

func (f *Frontend) removePermission(rq *request) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	ctx := rq.r.Context()
	sid := rq.r.PathValue("sid")
	if _, err := f.store.GetFunction(ctx, ref.Name); errors.Is(err, store.ErrNotFound) {
		return lamina.ErrNotFound("No policy found for: %s", f.functionARN(ref.Name))
	} else if err != nil {
		return err
	}
	t, err := f.policyTarget(ctx, ref)
	if err != nil {
		return err
	}
	if pol, err := f.store.GetFunctionPolicy(ctx, ref.Name, t.ref.Qualifier); errors.Is(err, store.ErrNotFound) || err == nil && len(pol.Statements) == 0 {
		return lamina.ErrNotFound("No policy is associated with the given resource.")
	}
	revision := rq.r.URL.Query().Get("RevisionId")
	_, err = f.store.ChangeFunctionPolicy(ctx, ref.Name, t.ref.Qualifier, func(pol *lamina.FunctionPolicy) error {
		i := slices.IndexFunc(pol.Statements, func(s lamina.Permission) bool { return s.Sid == sid })
		if i < 0 {
			return lamina.ErrNotFound("Statement %s is not found in resource policy.", sid)
		}
		if revision != "" && revision != t.policyRevision(pol) {
			return lamina.ErrPreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
		}
		pol.Statements = slices.Delete(slices.Clone(pol.Statements), i, i+1)
		pol.RevisionId = uuid.NewString()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return lamina.ErrNotFound("No policy found for: %s", f.functionARN(ref.Name))
	}
	if err != nil {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}
