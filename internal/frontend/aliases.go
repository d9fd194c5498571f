package frontend

import (
	"context"
	"errors"
	"net/http"
	"regexp"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// Aliases: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases.

var functionVersionRE = regexp.MustCompile(`^(\$LATEST|[0-9]+)$`)

type aliasInput struct {
	Name            string
	FunctionVersion *string
	Description     *string
	RoutingConfig   *lamina.AliasRoutingConfiguration
	RevisionId      string
}

// aliasFunction returns the function of an alias request, which must be
// unqualified.
func (f *Frontend) aliasFunction(rq *request) (string, error) {
	ref, err := f.parseRef(rq.r.PathValue("name"))
	if err != nil {
		return "", err
	}
	if _, err := f.getFunctionVersion(rq.r.Context(), lamina.FunctionRef{Name: ref.Name}); err != nil {
		return "", err
	}
	return ref.Name, nil
}

func (f *Frontend) aliasARN(function, alias string) string {
	return f.functionARN(function) + ":" + alias
}

func (f *Frontend) aliasNotFound(function, alias string) error {
	return lamina.ErrNotFound("Alias not found: %s", f.aliasARN(function, alias))
}

// validateAliasName checks an alias name as AWS's model does.
func validateAliasName(name string) error {
	if lamina.ValidAliasName(name) {
		return nil
	}
	var v lamina.Violations
	v.Add(name, "name", "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)")
	return v.Err()
}

// checkAlias validates an alias's versions and routing: each version must
// exist, and the routing names at most one other published version with a
// weight in [0, 1].
func (f *Frontend) checkAlias(ctx context.Context, function string, a *lamina.AliasConfiguration) error {
	var v lamina.Violations
	if !functionVersionRE.MatchString(a.FunctionVersion) {
		v.Add(a.FunctionVersion, "functionVersion", "Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)")
	}
	if len(a.Description) > lamina.MaxDescription {
		v.Add(a.Description, "description", "Member must have length less than or equal to 256")
	}
	for version, weight := range a.RoutingConfig.Weights() {
		if weight < 0 || weight > 1 {
			v.Add(weight, "routingConfig.additionalVersionWeights", "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]")
		}
		if !functionVersionRE.MatchString(version) {
			v.Add(version, "routingConfig.additionalVersionWeights", "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]+]")
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	weights := a.RoutingConfig.Weights()
	if len(weights) > 1 {
		return lamina.ErrInvalidParameter("Number of items in AdditionalVersionWeights cannot be greater than 1")
	}
	versions := []string{a.FunctionVersion}
	for version := range weights {
		if version == a.FunctionVersion {
			return lamina.ErrInvalidParameter("Invalid function version %s. Function version %s is already included in routing configuration.", version, version)
		}
		if version == lamina.LatestVersion || a.FunctionVersion == lamina.LatestVersion {
			return lamina.ErrInvalidParameter("$LATEST is not supported for an alias pointing to more than 1 version")
		}
		versions = append(versions, version)
	}
	for _, version := range versions {
		if _, err := f.getFunctionVersion(ctx, lamina.FunctionRef{Name: function, Qualifier: version}); err != nil {
			return err
		}
	}
	return nil
}

func (f *Frontend) createAlias(rq *request) error {
	function, err := f.aliasFunction(rq)
	if err != nil {
		return err
	}
	var in aliasInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.FunctionVersion == nil {
		var v lamina.Violations
		v.AddMissing("functionVersion")
		return v.Err()
	}
	if err := validateAliasName(in.Name); err != nil {
		return err
	}
	a := &lamina.AliasConfiguration{
		AliasArn:        f.aliasARN(function, in.Name),
		Name:            in.Name,
		FunctionVersion: *in.FunctionVersion,
		RoutingConfig:   in.RoutingConfig,
		RevisionId:      uuid.NewString(),
	}
	if in.Description != nil {
		a.Description = *in.Description
	}
	ctx := rq.r.Context()
	if err := f.checkAlias(ctx, function, a); err != nil {
		return err
	}
	if err := f.store.CreateAlias(ctx, function, a); errors.Is(err, store.ErrExists) {
		return lamina.ErrConflict("Alias already exists: %s", a.AliasArn)
	} else if err != nil {
		return err
	}
	return rq.json(http.StatusCreated, a)
}

// alias returns the alias a request's path names.
func (f *Frontend) alias(rq *request) (string, *lamina.AliasConfiguration, error) {
	function, err := f.aliasFunction(rq)
	if err != nil {
		return "", nil, err
	}
	name := rq.r.PathValue("alias")
	a, err := f.store.GetAlias(rq.r.Context(), function, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, f.aliasNotFound(function, name)
	}
	return function, a, err
}

func (f *Frontend) getAlias(rq *request) error {
	_, a, err := f.alias(rq)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, a)
}

func (f *Frontend) updateAlias(rq *request) error {
	function, err := f.aliasFunction(rq)
	if err != nil {
		return err
	}
	var in aliasInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	name := rq.r.PathValue("alias")
	ctx := rq.r.Context()
	a, err := f.store.UpdateAlias(ctx, function, name, func(a *lamina.AliasConfiguration) error {
		if err := matchRevision(in.RevisionId, a.RevisionId); err != nil {
			return err
		}
		if in.FunctionVersion != nil {
			a.FunctionVersion = *in.FunctionVersion
		}
		if in.Description != nil {
			a.Description = *in.Description
		}
		if in.RoutingConfig != nil {
			a.RoutingConfig = in.RoutingConfig
			if len(a.RoutingConfig.AdditionalVersionWeights) == 0 {
				a.RoutingConfig = nil
			}
		}
		if err := f.checkAlias(ctx, function, a); err != nil {
			return err
		}
		a.RevisionId = uuid.NewString()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.aliasNotFound(function, name)
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, a)
}

func (f *Frontend) deleteAlias(rq *request) error {
	function, err := f.aliasFunction(rq)
	if err != nil {
		return err
	}
	name := rq.r.PathValue("alias")
	if err := f.store.DeleteAlias(rq.r.Context(), function, name); errors.Is(err, store.ErrNotFound) {
		return f.aliasNotFound(function, name)
	} else if err != nil {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}

func (f *Frontend) listAliases(rq *request) error {
	function, err := f.aliasFunction(rq)
	if err != nil {
		return err
	}
	version := rq.r.URL.Query().Get("FunctionVersion")
	aliases := []*lamina.AliasConfiguration{}
	for _, a := range f.store.ListAliases(rq.r.Context(), function) {
		if _, extra := a.RoutingConfig.Weights()[version]; version == "" || a.FunctionVersion == version || extra {
			aliases = append(aliases, a)
		}
	}
	items, next, err := page(rq, aliases)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct {
		Aliases    []*lamina.AliasConfiguration
		NextMarker string `json:",omitempty"`
	}{items, next})
}
