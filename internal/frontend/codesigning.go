package frontend

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// Code signing configs are stored, attached to functions and returned as
// Lambda does. Lamina has no AWS Signer to verify signed packages against,
// so no code it receives is verified: with UntrustedArtifactOnDeployment
// Enforce a function's code deployments are refused
// (CodeVerificationFailedException, saying so); with Warn (the default)
// they are accepted and the missing verification is logged.

// codeSigningBucket is the table of code signing configs; part of the
// on-disk format.
const codeSigningBucket = "lamina_code_signing_configs"

// maxCodeSigningConfigs bounds the code signing configs of a deployment.
const maxCodeSigningConfigs = 1000

// CodeSigningRecord is a stored code signing config.
type CodeSigningRecord struct {
	Config lamina.CodeSigningConfig
	Tags   map[string]string `json:",omitempty"`
}

// CodeSigningConfigs is the table of code signing configs.
type CodeSigningConfigs = store.Table[CodeSigningRecord]

// OpenCodeSigningConfigs opens the table of code signing configs in st.
func OpenCodeSigningConfigs(ctx context.Context, st *store.Store) (*CodeSigningConfigs, error) {
	return store.OpenTable[CodeSigningRecord](ctx, st, codeSigningBucket, "code signing config")
}

var (
	signingProfileRE = regexp.MustCompile(`^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)$`)
	cscIDRE          = regexp.MustCompile(`^csc-[a-zA-Z0-9-_\.]{17}$`)
)

type codeSigningInput struct {
	Description         *string
	AllowedPublishers   *lamina.AllowedPublishers
	CodeSigningPolicies *lamina.CodeSigningPolicies
	Tags                map[string]string
}

// validate checks the fields given.
func (in *codeSigningInput) validate() error {
	var v lamina.Violations
	if in.Description != nil && len(*in.Description) > 256 {
		v.Add(*in.Description, "description", "Member must have length less than or equal to 256")
	}
	if p := in.AllowedPublishers; p != nil {
		if n := len(p.SigningProfileVersionArns); n < 1 || n > 20 {
			v.Add(n, "allowedPublishers.signingProfileVersionArns", "Member must have length between 1 and 20")
		}
		for i, arn := range p.SigningProfileVersionArns {
			if !signingProfileRE.MatchString(arn) {
				v.Add(arn, fmt.Sprintf("allowedPublishers.signingProfileVersionArns.%d.member", i+1), "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{2}(-gov)?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)")
			}
		}
	}
	if p := in.CodeSigningPolicies; p != nil && p.UntrustedArtifactOnDeployment != "" &&
		p.UntrustedArtifactOnDeployment != lamina.CodeSigningWarn && p.UntrustedArtifactOnDeployment != lamina.CodeSigningEnforce {
		v.Add(p.UntrustedArtifactOnDeployment, "codeSigningPolicies.untrustedArtifactOnDeployment", "Member must satisfy enum value set: [Warn, Enforce]")
	}
	if err := v.Err(); err != nil {
		return err
	}
	return validateTags(in.Tags)
}

// apply writes the given fields into c.
func (in *codeSigningInput) apply(c *lamina.CodeSigningConfig) {
	if in.Description != nil {
		c.Description = *in.Description
	}
	if in.AllowedPublishers != nil {
		c.AllowedPublishers = *in.AllowedPublishers
	}
	if in.CodeSigningPolicies != nil && in.CodeSigningPolicies.UntrustedArtifactOnDeployment != "" {
		c.CodeSigningPolicies = *in.CodeSigningPolicies
	}
	c.LastModified = time.Now().UTC().Format("2006-01-02T15:04:05.000-0700")
}

type codeSigningOutput struct {
	CodeSigningConfig *lamina.CodeSigningConfig
}

func (f *Frontend) createCodeSigningConfig(rq *request) error {
	var in codeSigningInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.AllowedPublishers == nil {
		var v lamina.Violations
		v.AddMissing("allowedPublishers")
		return v.Err()
	}
	if err := in.validate(); err != nil {
		return err
	}
	if f.codeSigning == nil {
		return lamina.ErrService("This node keeps no code signing configs.")
	}
	if len(f.codeSigning.Keys("")) >= maxCodeSigningConfigs {
		return lamina.ErrInvalidParameter("Too many code signing configs: at most %d.", maxCodeSigningConfigs)
	}
	id := "csc-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:17]
	rec := &CodeSigningRecord{Config: lamina.CodeSigningConfig{CodeSigningConfigId: id,
		CodeSigningConfigArn: "arn:aws:lambda:" + f.cfg.Region + ":" + f.cfg.AccountID + ":code-signing-config:" + id,
		CodeSigningPolicies:  lamina.CodeSigningPolicies{UntrustedArtifactOnDeployment: lamina.CodeSigningWarn}}, Tags: in.Tags}
	in.apply(&rec.Config)
	if err := f.codeSigning.Create(rq.r.Context(), id, rec); err != nil {
		return err
	}
	return rq.json(http.StatusCreated, codeSigningOutput{&rec.Config})
}

// codeSigningID returns the ID a code signing config ARN names, checking
// that it is this deployment's.
func (f *Frontend) codeSigningID(arn string) (string, error) {
	prefix := "arn:aws:lambda:" + f.cfg.Region + ":" + f.cfg.AccountID + ":code-signing-config:"
	id, ok := strings.CutPrefix(arn, prefix)
	if !ok || !cscIDRE.MatchString(id) {
		if strings.Contains(arn, ":code-signing-config:csc-") {
			return "", lamina.ErrNotFound("The code signing configuration cannot be found. Check that the provided configuration is not deleted: %s.", arn)
		}
		var v lamina.Violations
		v.Add(arn, "codeSigningConfigArn", "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:code-signing-config:csc-[a-z0-9]{17}")
		return "", v.Err()
	}
	return id, nil
}

// codeSigningConfig returns the stored config an ARN names.
func (f *Frontend) codeSigningConfig(ctx context.Context, arn string) (*CodeSigningRecord, error) {
	if f.codeSigning == nil {
		return nil, lamina.ErrService("This node keeps no code signing configs.")
	}
	id, err := f.codeSigningID(arn)
	if err != nil {
		return nil, err
	}
	rec, err := f.codeSigning.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, lamina.ErrNotFound("The code signing configuration cannot be found. Check that the provided configuration is not deleted: %s.", arn)
	}
	return rec, err
}

func (f *Frontend) getCodeSigningConfig(rq *request) error {
	rec, err := f.codeSigningConfig(rq.r.Context(), rq.r.PathValue("arn"))
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, codeSigningOutput{&rec.Config})
}

func (f *Frontend) updateCodeSigningConfig(rq *request) error {
	var in codeSigningInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	arn := rq.r.PathValue("arn")
	if _, err := f.codeSigningConfig(rq.r.Context(), arn); err != nil {
		return err
	}
	id, _ := f.codeSigningID(arn)
	rec, err := f.codeSigning.Update(rq.r.Context(), id, func(rec *CodeSigningRecord) error {
		in.apply(&rec.Config)
		return nil
	})
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, codeSigningOutput{&rec.Config})
}

func (f *Frontend) deleteCodeSigningConfig(rq *request) error {
	arn := rq.r.PathValue("arn")
	if _, err := f.codeSigningConfig(rq.r.Context(), arn); err != nil {
		return err
	}
	users, err := f.functionsSignedWith(rq.r.Context(), arn)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return lamina.ErrConflict("The code signing configuration cannot be deleted because it is used by %d functions, e.g. %s.", len(users), users[0])
	}
	id, _ := f.codeSigningID(arn)
	if _, err := f.codeSigning.Remove(rq.r.Context(), id, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}

// functionsSignedWith returns the ARNs of the functions a code signing
// config is attached to.
func (f *Frontend) functionsSignedWith(ctx context.Context, arn string) ([]string, error) {
	fns, err := f.store.ListFunctions(ctx)
	if err != nil {
		return nil, err
	}
	var arns []string
	for _, fn := range fns {
		if fn.CodeSigningConfigArn == arn {
			arns = append(arns, fn.Configuration.FunctionArn)
		}
	}
	return arns, nil
}

// listPage returns the items of a list from the marker (an index) on, at
// most MaxItems (1–10,000, 50 by default), and the next marker.
func listPage[T any](rq *request, items []T) ([]T, string, error) {
	q := rq.r.URL.Query()
	start, limit := 0, 50
	if m := q.Get("Marker"); m != "" {
		raw, err := base64.RawURLEncoding.DecodeString(m)
		if _, scanErr := fmt.Sscan(string(raw), &start); err != nil || scanErr != nil || start < 0 {
			return nil, "", lamina.ErrInvalidParameter("Invalid marker: %s", m)
		}
	}
	if s := q.Get("MaxItems"); s != "" {
		if _, err := fmt.Sscan(s, &limit); err != nil || limit < 1 || limit > 10000 {
			var v lamina.Violations
			v.Add(s, "maxItems", "Member must have value between 1 and 10000")
			return nil, "", v.Err()
		}
	}
	if start > len(items) {
		start = len(items)
	}
	end := min(start+limit, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprint(end)))
	}
	return items[start:end], next, nil
}

func (f *Frontend) listCodeSigningConfigs(rq *request) error {
	var configs []*lamina.CodeSigningConfig
	if f.codeSigning == nil {
		return lamina.ErrService("This node keeps no code signing configs.")
	}
	for _, rec := range f.codeSigning.List("", nil) {
		configs = append(configs, &rec.Config)
	}
	page, next, err := listPage(rq, configs)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct {
		CodeSigningConfigs []*lamina.CodeSigningConfig
		NextMarker         string `json:",omitempty"`
	}{append([]*lamina.CodeSigningConfig{}, page...), next})
}

func (f *Frontend) listFunctionsByCodeSigningConfig(rq *request) error {
	arn := rq.r.PathValue("arn")
	if _, err := f.codeSigningConfig(rq.r.Context(), arn); err != nil {
		return err
	}
	arns, err := f.functionsSignedWith(rq.r.Context(), arn)
	if err != nil {
		return err
	}
	page, next, err := listPage(rq, arns)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct {
		FunctionArns []string
		NextMarker   string `json:",omitempty"`
	}{append([]string{}, page...), next})
}

type functionCodeSigningOutput struct {
	CodeSigningConfigArn string
	FunctionName         string
}

func (f *Frontend) putFunctionCodeSigningConfig(rq *request) error {
	var in struct{ CodeSigningConfigArn string }
	if err := rq.decode(&in); err != nil {
		return err
	}
	if _, err := f.codeSigningConfig(rq.r.Context(), in.CodeSigningConfigArn); err != nil {
		return err
	}
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	if ref.Qualifier != "" {
		return lamina.ErrInvalidParameter("A code signing config is attached to a function, not to a version or alias; got qualifier %s", ref.Qualifier)
	}
	fn, err := f.store.UpdateFunction(rq.r.Context(), ref.Name, func(fn *lamina.Function) error {
		fn.CodeSigningConfigArn = in.CodeSigningConfigArn
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	} else if err != nil {
		return err
	}
	return rq.json(http.StatusOK, functionCodeSigningOutput{fn.CodeSigningConfigArn, fn.Configuration.FunctionName})
}

func (f *Frontend) getFunctionCodeSigningConfig(rq *request) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	fn, err := f.store.GetFunction(rq.r.Context(), ref.Name)
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	} else if err != nil {
		return err
	}
	return rq.json(http.StatusOK, functionCodeSigningOutput{fn.CodeSigningConfigArn, fn.Configuration.FunctionName})
}

func (f *Frontend) deleteFunctionCodeSigningConfig(rq *request) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	_, err = f.store.UpdateFunction(rq.r.Context(), ref.Name, func(fn *lamina.Function) error {
		fn.CodeSigningConfigArn = ""
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	} else if err != nil {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}

// checkSigning applies the code signing config arn ("" for none) to a
// deployment of code to function: Enforce refuses it, as Lamina cannot
// verify signatures; Warn logs that it was not verified.
func (f *Frontend) checkSigning(ctx context.Context, arn, function string) error {
	if arn == "" {
		return nil
	}
	rec, err := f.codeSigningConfig(ctx, arn)
	if err != nil {
		return err
	}
	if rec.Config.CodeSigningPolicies.UntrustedArtifactOnDeployment == lamina.CodeSigningEnforce {
		return &lamina.Error{Status: http.StatusBadRequest, Code: "CodeVerificationFailedException", Type: "User",
			Message: fmt.Sprintf("Lamina cannot verify code signatures (it has no AWS Signer), and code signing config %s enforces verification: the deployment of %s is refused. Set its UntrustedArtifactOnDeployment to Warn to deploy unverified code.", arn, function)}
	}
	f.log.Warn("code deployed without signature verification (code signing policy Warn)", "function", function, "code_signing_config", arn)
	return nil
}
