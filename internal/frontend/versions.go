package frontend

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// Versions: PublishVersion, ListVersionsByFunction, and deleting a version
// through DeleteFunction with a Qualifier.

type publishVersionInput struct {
	CodeSha256  string
	Description *string
	RevisionId  string
}

func (f *Frontend) publishVersion(rq *request) error {
	var in publishVersionInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Description != nil && len(*in.Description) > lamina.MaxDescription {
		var v lamina.Violations
		v.Add(*in.Description, "description", "Member must have length less than or equal to 256")
		return v.Err()
	}
	ref, err := f.parseRef(rq.r.PathValue("name"))
	if err != nil {
		return err
	}
	description := ""
	if in.Description != nil {
		description = *in.Description
	}
	version, err := f.publish(rq.r.Context(), ref.Name, in.CodeSha256, in.RevisionId, description)
	if err != nil {
		return err
	}
	return rq.json(http.StatusCreated, &version.Configuration)
}

// publish makes a version of the function's $LATEST, checking the optional
// CodeSha256 and RevisionId preconditions. Like Lambda, it publishes
// nothing new when $LATEST has not changed since the last version, and
// returns that version instead.
func (f *Frontend) publish(ctx context.Context, name, codeSha256, revisionID, description string) (*lamina.Function, error) {
	version, err := f.store.PublishVersion(ctx, name, func(latest *lamina.Function, next int) (int, error) {
		c := &latest.Configuration
		if codeSha256 != "" && codeSha256 != c.CodeSha256 {
			return 0, lamina.ErrPreconditionFailed("CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again with the CodeSHA256 in $LATEST.", codeSha256, c.CodeSha256)
		}
		if err := checkRevision(c, revisionID); err != nil {
			return 0, err
		}
		if last := latest.LastVersion; last > 0 {
			if prev, err := f.store.GetVersion(ctx, name, last); err == nil && sameVersion(prev, latest) {
				return last, nil
			}
		}
		if description != "" {
			c.Description = description
		}
		c.Version = strconv.Itoa(next)
		c.FunctionArn = f.functionARN(name) + ":" + c.Version
		touch(c)
		return 0, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, f.notFound(lamina.FunctionRef{Name: name})
	}
	if err == nil {
		f.log.Info("function version published", "function", name, "version", version.Configuration.Version)
	}
	return version, err
}

// sameVersion reports whether a version has the code and configuration of
// $LATEST (the fields that differ between any version and $LATEST aside).
func sameVersion(version, latest *lamina.Function) bool {
	a, b := version.Configuration, latest.Configuration
	for _, c := range []*lamina.FunctionConfiguration{&a, &b} {
		c.Version, c.FunctionArn, c.RevisionId, c.LastModified, c.Description = "", "", "", "", ""
	}
	return version.CodeDigest == latest.CodeDigest && jsonString(a) == jsonString(b)
}

func (f *Frontend) listVersionsByFunction(rq *request) error {
	ref, err := f.parseRef(rq.r.PathValue("name"))
	if err != nil {
		return err
	}
	ctx := rq.r.Context()
	latest, err := f.getFunctionVersion(ctx, lamina.FunctionRef{Name: ref.Name})
	if err != nil {
		return err
	}
	all := []*lamina.FunctionConfiguration{&latest.Configuration}
	for _, v := range f.store.ListVersions(ctx, ref.Name) {
		all = append(all, &v.Configuration)
	}
	items, next, err := page(rq, all)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct {
		Versions   []*lamina.FunctionConfiguration
		NextMarker string `json:",omitempty"`
	}{items, next})
}

// deleteVersion serves DeleteFunction with a version Qualifier.
func (f *Frontend) deleteVersion(rq *request, ref lamina.FunctionRef) error {
	n, err := strconv.Atoi(ref.Qualifier)
	if err != nil {
		return f.notFound(ref)
	}
	err = f.store.DeleteVersion(rq.r.Context(), ref.Name, n)
	var referenced *store.ReferencedError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return f.notFound(ref)
	case errors.As(err, &referenced):
		return lamina.ErrConflict("Unable to delete version because the following aliases reference it: [%s]", strings.Join(referenced.Aliases, ", "))
	case err != nil:
		return err
	}
	f.log.Info("function version deleted", "function", ref.Name, "version", n)
	return rq.noContent(http.StatusNoContent)
}
