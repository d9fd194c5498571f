package frontend

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/policy"
	"github.com/lamina-project/lamina/internal/store"
)

// Layers: PublishLayerVersion and friends (2018-10-31 routes), and the
// resolution of a function's layer ARNs to their content.

var layerNameRE = regexp.MustCompile(`^(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:)?([a-zA-Z0-9-_]+)$`)

// layerName reads the {layer} of a path: a name or a layer ARN of this
// deployment.
func (f *Frontend) layerName(rq *request) (string, error) {
	raw := rq.r.PathValue("layer")
	m := layerNameRE.FindStringSubmatch(raw)
	if m == nil || len(raw) > 140 {
		var v lamina.Violations
		v.Add(raw, "layerName", "Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+")
		return "", v.Err()
	}
	if m[1] != "" && !strings.HasPrefix(raw, lamina.LayerARN(f.cfg.Region, f.cfg.AccountID, "")) {
		return "", lamina.ErrNotFound("Layer not found: %s", raw)
	}
	return m[2], nil
}

// layerVersionNumber reads the {version} of a path.
func layerVersionNumber(rq *request) (int, error) {
	raw := rq.r.PathValue("version")
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		var v lamina.Violations
		v.Add(raw, "versionNumber", "Member must have value greater than or equal to 1")
		return 0, v.Err()
	}
	return n, nil
}

// parseLayerVersionARN splits "arn:aws:lambda:region:acct:layer:name:n".
func (f *Frontend) parseLayerVersionARN(arn string) (string, int, bool) {
	prefix := lamina.LayerARN(f.cfg.Region, f.cfg.AccountID, "")
	rest, ok := strings.CutPrefix(arn, prefix)
	if !ok {
		return "", 0, false
	}
	name, num, ok := strings.Cut(rest, ":")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 1 {
		return "", 0, false
	}
	return name, n, true
}

// errTooLargeWithLayers is AWS's error for code and layers over 250 MB.
func errTooLargeWithLayers(size int64) error {
	return lamina.ErrInvalidParameter("Function code combined with layers exceeds the maximum allowed size of %d bytes. The actual size is %d bytes.",
		lamina.MaxUnzippedCodeSize, size)
}

// resolveLayers fills fn.Layers with the content of the layer versions in
// fn.Configuration.Layers, in order. A layer the function already used
// (previous) keeps its content even if the layer version was deleted since,
// as on Lambda; a new one must exist. Code plus layers must fit in 250 MB.
func (f *Frontend) resolveLayers(ctx context.Context, fn *lamina.Function, previous []lamina.LayerContent) error {
	refs := fn.Configuration.Layers
	contents := make([]lamina.LayerContent, 0, len(refs))
	for i, ref := range refs {
		if j := slices.IndexFunc(previous, func(c lamina.LayerContent) bool { return c.Arn == ref.Arn }); j >= 0 {
			contents = append(contents, previous[j])
			if lv, err := f.lookupLayerVersion(ctx, ref.Arn); err == nil {
				refs[i].CodeSize = lv.CodeSize
			}
			continue
		}
		lv, err := f.lookupLayerVersion(ctx, ref.Arn)
		if err != nil || lv.Deleted {
			return lamina.ErrInvalidParameter("Layer version %s does not exist.", ref.Arn)
		}
		refs[i].CodeSize = lv.CodeSize
		contents = append(contents, lamina.LayerContent{Arn: ref.Arn, Digest: lv.CodeDigest, UnzippedSize: lv.UnzippedSize})
	}
	fn.Layers = contents
	if size := fn.UnzippedSize(); size > lamina.MaxUnzippedCodeSize {
		return errTooLargeWithLayers(size)
	}
	return nil
}

// lookupLayerVersion returns the layer version an ARN names.
func (f *Frontend) lookupLayerVersion(ctx context.Context, arn string) (*lamina.LayerVersion, error) {
	name, n, ok := f.parseLayerVersionARN(arn)
	if !ok {
		return nil, store.ErrNotFound
	}
	return f.store.GetLayerVersion(ctx, name, n)
}

type publishLayerVersionInput struct {
	Description             string
	Content                 *functionCode
	CompatibleRuntimes      []string
	LicenseInfo             string
	CompatibleArchitectures []string
}

type layerVersionContent struct {
	Location   string
	CodeSha256 string
	CodeSize   int64
}

// layerVersionOutput is PublishLayerVersion's and GetLayerVersion's answer.
type layerVersionOutput struct {
	Content                 layerVersionContent
	LayerArn                string
	LayerVersionArn         string
	Description             string
	CreatedDate             string
	Version                 int
	CompatibleRuntimes      []string `json:",omitempty"`
	LicenseInfo             string   `json:",omitempty"`
	CompatibleArchitectures []string `json:",omitempty"`
}

// layerVersionsListItem is one entry of ListLayerVersions and ListLayers.
type layerVersionsListItem struct {
	LayerVersionArn         string
	Version                 int
	Description             string
	CreatedDate             string
	CompatibleRuntimes      []string `json:",omitempty"`
	LicenseInfo             string   `json:",omitempty"`
	CompatibleArchitectures []string `json:",omitempty"`
}

func (f *Frontend) layerVersionARN(lv *lamina.LayerVersion) string {
	return lamina.LayerARN(f.cfg.Region, f.cfg.AccountID, lv.LayerName) + ":" + strconv.Itoa(lv.Version)
}

func (f *Frontend) layerVersionOutput(r *http.Request, lv *lamina.LayerVersion) layerVersionOutput {
	return layerVersionOutput{
		Content:                 layerVersionContent{Location: f.codeURL(r, lv.CodeDigest), CodeSha256: lv.CodeSha256, CodeSize: lv.CodeSize},
		LayerArn:                lamina.LayerARN(f.cfg.Region, f.cfg.AccountID, lv.LayerName),
		LayerVersionArn:         f.layerVersionARN(lv),
		Description:             lv.Description,
		CreatedDate:             lv.CreatedDate,
		Version:                 lv.Version,
		CompatibleRuntimes:      lv.CompatibleRuntimes,
		LicenseInfo:             lv.LicenseInfo,
		CompatibleArchitectures: lv.CompatibleArchitectures,
	}
}

func (f *Frontend) layerListItem(lv *lamina.LayerVersion) layerVersionsListItem {
	return layerVersionsListItem{
		LayerVersionArn: f.layerVersionARN(lv), Version: lv.Version, Description: lv.Description,
		CreatedDate: lv.CreatedDate, CompatibleRuntimes: lv.CompatibleRuntimes, LicenseInfo: lv.LicenseInfo,
		CompatibleArchitectures: lv.CompatibleArchitectures,
	}
}

func (f *Frontend) publishLayerVersion(rq *request) error {
	name, err := f.layerName(rq)
	if err != nil {
		return err
	}
	var in publishLayerVersionInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	var v lamina.Violations
	if in.Content == nil {
		v.AddMissing("content")
	}
	if len(in.CompatibleRuntimes) > 15 {
		v.Add(len(in.CompatibleRuntimes), "compatibleRuntimes", "Member must have length less than or equal to 15")
	}
	if len(in.CompatibleArchitectures) > 2 {
		v.Add(len(in.CompatibleArchitectures), "compatibleArchitectures", "Member must have length less than or equal to 2")
	}
	if len(in.Description) > lamina.MaxDescription {
		v.Add(in.Description, "description", "Member must have length less than or equal to 256")
	}
	if len(in.LicenseInfo) > 512 {
		v.Add(in.LicenseInfo, "licenseInfo", "Member must have length less than or equal to 512")
	}
	if err := v.Err(); err != nil {
		return err
	}
	for _, rt := range in.CompatibleRuntimes {
		if _, ok := lamina.RuntimeFamily(rt); !ok {
			return lamina.ErrInvalidParameter("Value %s at 'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value set: [%s]",
				rt, strings.Join(lamina.SupportedRuntimes(), ", "))
		}
	}
	for _, arch := range in.CompatibleArchitectures {
		if err := validateArchitectures([]string{arch}); err != nil {
			return err
		}
	}
	code, err := f.checkArchive(rq.r.Context(), *in.Content)
	if err != nil {
		return err
	}
	ctx := rq.r.Context()
	if err := f.store.PutCode(ctx, code.digest, code.data); err != nil {
		return err
	}
	lv := &lamina.LayerVersion{
		LayerName: name, Description: in.Description, LicenseInfo: in.LicenseInfo,
		CompatibleRuntimes: in.CompatibleRuntimes, CompatibleArchitectures: in.CompatibleArchitectures,
		CreatedDate: lamina.FormatLastModified(time.Now()),
		CodeDigest:  code.digest, CodeSha256: code.sha256, CodeSize: int64(len(code.data)), UnzippedSize: code.unzipped,
	}
	if _, err := f.store.PublishLayerVersion(ctx, lv); err != nil {
		return err
	}
	f.log.Info("layer version published", "layer", name, "version", lv.Version, "code_size", lv.CodeSize)
	return rq.json(http.StatusCreated, f.layerVersionOutput(rq.r, lv))
}

// layerVersion returns the layer version a request's path names, hiding
// deleted ones.
func (f *Frontend) layerVersion(rq *request) (*lamina.LayerVersion, error) {
	name, err := f.layerName(rq)
	if err != nil {
		return nil, err
	}
	n, err := layerVersionNumber(rq)
	if err != nil {
		return nil, err
	}
	return f.existingLayerVersion(rq.r.Context(), name, n)
}

func (f *Frontend) existingLayerVersion(ctx context.Context, name string, n int) (*lamina.LayerVersion, error) {
	lv, err := f.store.GetLayerVersion(ctx, name, n)
	if errors.Is(err, store.ErrNotFound) || (err == nil && lv.Deleted) {
		return nil, lamina.ErrNotFound("The resource you requested does not exist.")
	}
	return lv, err
}

func (f *Frontend) getLayerVersion(rq *request) error {
	lv, err := f.layerVersion(rq)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, f.layerVersionOutput(rq.r, lv))
}

func (f *Frontend) deleteLayerVersion(rq *request) error {
	name, err := f.layerName(rq)
	if err != nil {
		return err
	}
	n, err := layerVersionNumber(rq)
	if err != nil {
		return err
	}
	// Deleting is idempotent, as on AWS; functions using it keep it.
	_, err = f.store.UpdateLayerVersion(rq.r.Context(), name, n, func(lv *lamina.LayerVersion) error {
		lv.Deleted = true
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}

// layerFilter holds ListLayers' and ListLayerVersions' filters.
type layerFilter struct {
	runtime, arch string
}

func (lf layerFilter) matches(lv *lamina.LayerVersion) bool {
	return (lf.runtime == "" || slices.Contains(lv.CompatibleRuntimes, lf.runtime)) &&
		(lf.arch == "" || slices.Contains(lv.CompatibleArchitectures, lf.arch))
}

func filterOf(rq *request) layerFilter {
	q := rq.r.URL.Query()
	return layerFilter{runtime: q.Get("CompatibleRuntime"), arch: q.Get("CompatibleArchitecture")}
}

// page returns items[start:] cut to maxItems, and the marker of the rest.
func page[T any](rq *request, items []T) ([]T, string, error) {
	q := rq.r.URL.Query()
	start := 0
	if m := q.Get("Marker"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || n > len(items) {
			return nil, "", lamina.ErrInvalidParameter("Invalid marker: %s", m)
		}
		start = n
	}
	maxItems := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 50 {
			var v lamina.Violations
			v.Add(s, "maxItems", "Member must have value between 1 and 50")
			return nil, "", v.Err()
		}
		maxItems = n
	}
	items = items[start:]
	if len(items) > maxItems {
		return items[:maxItems], strconv.Itoa(start + maxItems), nil
	}
	return items, "", nil
}

func (f *Frontend) listLayerVersions(rq *request) error {
	name, err := f.layerName(rq)
	if err != nil {
		return err
	}
	filter := filterOf(rq)
	items := []layerVersionsListItem{}
	for _, lv := range f.store.ListLayerVersions(rq.r.Context(), name) {
		if filter.matches(lv) {
			items = append(items, f.layerListItem(lv))
		}
	}
	items, next, err := page(rq, items)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct {
		LayerVersions []layerVersionsListItem
		NextMarker    string `json:",omitempty"`
	}{items, next})
}

// listLayers serves ListLayers, and GetLayerVersionByArn, which shares its
// path (?find=LayerVersion&Arn=...).
func (f *Frontend) listLayers(rq *request) error {
	q := rq.r.URL.Query()
	if q.Get("find") == "LayerVersion" {
		name, n, ok := f.parseLayerVersionARN(q.Get("Arn"))
		if !ok {
			var v lamina.Violations
			v.Add(q.Get("Arn"), "arn", "Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+")
			return v.Err()
		}
		lv, err := f.existingLayerVersion(rq.r.Context(), name, n)
		if err != nil {
			return err
		}
		return rq.json(http.StatusOK, f.layerVersionOutput(rq.r, lv))
	}
	filter := filterOf(rq)
	type layersListItem struct {
		LayerName             string
		LayerArn              string
		LatestMatchingVersion layerVersionsListItem
	}
	items := []layersListItem{}
	for _, name := range f.store.ListLayers(rq.r.Context()) {
		for _, lv := range f.store.ListLayerVersions(rq.r.Context(), name) {
			if filter.matches(lv) {
				items = append(items, layersListItem{LayerName: name, LayerArn: lamina.LayerARN(f.cfg.Region, f.cfg.AccountID, name),
					LatestMatchingVersion: f.layerListItem(lv)})
				break
			}
		}
	}
	items, next, err := page(rq, items)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct {
		Layers     []layersListItem
		NextMarker string `json:",omitempty"`
	}{items, next})
}

type addLayerVersionPermissionInput struct {
	StatementId    string
	Action         string
	Principal      string
	OrganizationId string
}

var statementIDRE = regexp.MustCompile(`^([a-zA-Z0-9-_]+)$`)

func (f *Frontend) addLayerVersionPermission(rq *request) error {
	var in addLayerVersionPermissionInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	var v lamina.Violations
	if !statementIDRE.MatchString(in.StatementId) || len(in.StatementId) > 100 {
		v.Add(in.StatementId, "statementId", "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)")
	}
	if in.Action != "lambda:GetLayerVersion" {
		v.Add(in.Action, "action", "Member must satisfy regular expression pattern: lambda:GetLayerVersion")
	}
	if in.Principal == "" {
		v.AddMissing("principal")
	}
	if err := v.Err(); err != nil {
		return err
	}
	lv, err := f.layerVersion(rq)
	if err != nil {
		return err
	}
	stmt := lamina.LayerStatement{Sid: in.StatementId, Effect: "Allow", Principal: in.Principal, Action: in.Action, OrganizationId: in.OrganizationId}
	revision := rq.r.URL.Query().Get("RevisionId") // a query parameter in AWS's model
	lv, err = f.store.UpdateLayerVersion(rq.r.Context(), lv.LayerName, lv.Version, func(lv *lamina.LayerVersion) error {
		if err := matchRevision(revision, lv.PolicyRevision); err != nil {
			return err
		}
		if slices.ContainsFunc(lv.Policy, func(s lamina.LayerStatement) bool { return s.Sid == in.StatementId }) {
			return lamina.ErrConflict("The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", in.StatementId)
		}
		lv.Policy = append(lv.Policy, stmt)
		lv.PolicyRevision = uuid.NewString()
		return nil
	})
	if err != nil {
		return err
	}
	return rq.json(http.StatusCreated, struct{ Statement, RevisionId string }{jsonString(f.policyStatement(lv, stmt)), lv.PolicyRevision})
}

// policyStatement renders a statement as IAM policy JSON.
func (f *Frontend) policyStatement(lv *lamina.LayerVersion, s lamina.LayerStatement) map[string]any {
	stmt := map[string]any{"Sid": s.Sid, "Effect": s.Effect, "Principal": policy.PrincipalJSON(s.Principal),
		"Action": s.Action, "Resource": f.layerVersionARN(lv)}
	if s.OrganizationId != "" {
		stmt["Condition"] = map[string]any{"StringEquals": map[string]string{"aws:PrincipalOrgID": s.OrganizationId}}
	}
	return stmt
}

func (f *Frontend) getLayerVersionPolicy(rq *request) error {
	lv, err := f.layerVersion(rq)
	if err != nil {
		return err
	}
	if len(lv.Policy) == 0 {
		return lamina.ErrNotFound("No policy is associated with the given resource.")
	}
	statements := make([]any, len(lv.Policy))
	for i, s := range lv.Policy {
		statements[i] = f.policyStatement(lv, s)
	}
	policy := map[string]any{"Version": "2012-10-17", "Id": "default", "Statement": statements}
	return rq.json(http.StatusOK, struct{ Policy, RevisionId string }{jsonString(policy), lv.PolicyRevision})
}

func (f *Frontend) removeLayerVersionPermission(rq *request) error {
	lv, err := f.layerVersion(rq)
	if err != nil {
		return err
	}
	sid := rq.r.PathValue("sid")
	revision := rq.r.URL.Query().Get("RevisionId")
	_, err = f.store.UpdateLayerVersion(rq.r.Context(), lv.LayerName, lv.Version, func(lv *lamina.LayerVersion) error {
		if err := matchRevision(revision, lv.PolicyRevision); err != nil {
			return err
		}
		i := slices.IndexFunc(lv.Policy, func(s lamina.LayerStatement) bool { return s.Sid == sid })
		if i < 0 {
			return lamina.ErrNotFound("Statement %s is not found in resource policy.", sid)
		}
		lv.Policy = slices.Delete(lv.Policy, i, i+1)
		lv.PolicyRevision = uuid.NewString()
		return nil
	})
	if err != nil {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}
