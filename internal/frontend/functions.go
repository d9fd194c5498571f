package frontend

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/codezip"
	"github.com/lamina-project/lamina/internal/runtimes"
	"github.com/lamina-project/lamina/internal/store"
)

// functionCode is the Code parameter of CreateFunction and the code fields of
// UpdateFunctionCode. ZipFile arrives base64-encoded in the JSON.
type functionCode struct {
	ZipFile         []byte
	S3Bucket        string
	S3Key           string
	S3ObjectVersion string
	ImageUri        string
}

type createFunctionInput struct {
	configInput
	FunctionName  string
	Code          *functionCode
	Publish       bool
	Tags          map[string]string
	Architectures []string
	PackageType   string
	// CodeSigningConfigArn attaches a code signing config, whose policy
	// applies to this first deployment already.
	CodeSigningConfigArn string
}

type updateFunctionConfigurationInput struct {
	configInput
	RevisionId string
}

type updateFunctionCodeInput struct {
	functionCode
	Publish       bool
	DryRun        bool
	RevisionId    string
	Architectures []string
}

// getFunctionOutput is GetFunction's answer.
type getFunctionOutput struct {
	Configuration *lamina.FunctionConfiguration
	Code          codeLocation
	Tags          map[string]string `json:",omitempty"`
	Concurrency   *concurrency      `json:",omitempty"`
}

type codeLocation struct {
	RepositoryType string
	Location       string
}

type listFunctionsOutput struct {
	Functions  []*lamina.FunctionConfiguration
	NextMarker string `json:",omitempty"`
}

// archive is a validated code upload, ready to store.
type archive struct {
	data     []byte
	digest   string // hex SHA-256: the name in the code store
	sha256   string // base64 SHA-256: CodeSha256
	unzipped int64  // size once unpacked
}

// checkArchive validates uploaded code, or code named in S3 (which it
// reads): size limits, a real zip, nothing hostile in it. Nothing is
// stored by it.
func (f *Frontend) checkArchive(ctx context.Context, code functionCode) (*archive, error) {
	switch {
	case code.ImageUri != "":
		return nil, lamina.ErrInvalidParameter("Lamina runs .zip deployment packages only; container images (ImageUri) are not supported.")
	case code.S3Bucket != "" || code.S3Key != "":
		if len(code.ZipFile) > 0 {
			return nil, lamina.ErrInvalidParameter("Please do not provide other FunctionCode parameters when providing a ZipFile.")
		}
		data, err := f.codeFromS3(ctx, code)
		if err != nil {
			return nil, err
		}
		return validateArchive(data)
	case len(code.ZipFile) == 0:
		return nil, lamina.ErrInvalidParameter("Please provide a source for function code.")
	case len(code.ZipFile) > lamina.MaxZippedCodeSize:
		return nil, lamina.ErrEntityTooLarge("Zipped size must be smaller than %d bytes", lamina.MaxZippedCodeSize)
	}
	return validateArchive(code.ZipFile)
}

// codeFromS3 reads the archive S3Bucket/S3Key name from the node's S3
// service, failing as Lambda does when it cannot.
func (f *Frontend) codeFromS3(ctx context.Context, code functionCode) ([]byte, error) {
	s3Failure := func(code, message string) error {
		return lamina.ErrInvalidParameter("Error occurred while GetObject. S3 Error Code: %s. S3 Error Message: %s", code, message)
	}
	switch {
	case code.S3Bucket == "" || code.S3Key == "":
		return nil, lamina.ErrInvalidParameter("Please provide both S3Bucket and S3Key for the function code.")
	case f.objects == nil:
		return nil, lamina.ErrInvalidParameter("This node serves no S3 to read code from; upload the package as ZipFile.")
	case code.S3ObjectVersion != "" && code.S3ObjectVersion != "null":
		// Lamina keeps one version of each object, whose id is "null".
		return nil, s3Failure("NoSuchVersion", "The specified version does not exist.")
	}
	// From S3, an archive may be as large as its unzipped limit.
	data, err := f.objects.ReadObject(ctx, code.S3Bucket, code.S3Key, lamina.MaxUnzippedCodeSize)
	var ae *awsproto.Error
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return nil, s3Failure(ae.Code, ae.Message)
	case errors.As(err, &ae) && ae.Code == "EntityTooLarge":
		return nil, lamina.ErrInvalidParameter("Unzipped size must be smaller than %d bytes", lamina.MaxUnzippedCodeSize)
	case err != nil:
		return nil, err
	}
	return data, nil
}

// validateArchive checks a zip archive and describes it.
func validateArchive(data []byte) (*archive, error) {
	info, err := codezip.Validate(data, lamina.MaxUnzippedCodeSize)
	if err != nil {
		return nil, archiveError(err)
	}
	sum := sha256.Sum256(data)
	return &archive{
		data:     data,
		digest:   hex.EncodeToString(sum[:]),
		sha256:   base64.StdEncoding.EncodeToString(sum[:]),
		unzipped: info.UnzippedSize,
	}, nil
}

// archiveError turns a codezip rejection into AWS's error.
func archiveError(err error) error {
	var ze *codezip.Error
	if !errors.As(err, &ze) {
		return err
	}
	switch ze.Kind {
	case codezip.TooLarge:
		return lamina.ErrInvalidParameter("Unzipped size must be smaller than %d bytes", lamina.MaxUnzippedCodeSize)
	case codezip.UnsafePath:
		return lamina.ErrInvalidParameter("Could not unzip uploaded file: %s. Please check your file, then try to upload again.", ze.Detail)
	default:
		return lamina.ErrInvalidParameter("Could not unzip uploaded file. Please check your file, then try to upload again.")
	}
}

func (f *Frontend) createFunction(rq *request) error {
	var in createFunctionInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	var v lamina.Violations
	if in.FunctionName == "" {
		v.AddMissing("functionName")
	}
	if in.Role == nil {
		v.AddMissing("role")
	}
	if in.Code == nil {
		v.AddMissing("code")
	}
	if err := v.Err(); err != nil {
		return err
	}
	ref, err := f.parseRef(in.FunctionName)
	if err != nil {
		return err
	}
	if ref.Qualifier != "" {
		return lamina.ErrInvalidParameter("Unqualified function name expected; got %s", in.FunctionName)
	}
	if err := f.validateConfig(&in.configInput); err != nil {
		return err
	}
	if in.PackageType != "" && in.PackageType != "Zip" {
		return lamina.ErrInvalidParameter("Lamina runs .zip deployment packages only; PackageType %s is not supported.", in.PackageType)
	}
	if in.Runtime == nil || in.Handler == nil {
		return lamina.ErrInvalidParameter("Runtime and Handler are mandatory parameters for functions created with deployment packages.")
	}
	if in.Architectures == nil {
		in.Architectures = []string{"x86_64"}
	}
	if err := validateArchitectures(in.Architectures); err != nil {
		return err
	}
	if err := f.checkRunnable(*in.Runtime, in.Architectures[0]); err != nil {
		return err
	}
	if err := validateTags(in.Tags); err != nil {
		return err
	}
	if err := f.checkSigning(rq.r.Context(), in.CodeSigningConfigArn, ref.Name); err != nil {
		return err
	}
	code, err := f.checkArchive(rq.r.Context(), *in.Code)
	if err != nil {
		return err
	}

	ctx := rq.r.Context()
	if _, err := f.store.GetFunction(ctx, ref.Name); err == nil {
		return f.functionExists(ref.Name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	cfg := lamina.FunctionConfiguration{
		FunctionName:     ref.Name,
		FunctionArn:      f.functionARN(ref.Name),
		Timeout:          lamina.DefaultTimeout,
		MemorySize:       lamina.DefaultMemorySize,
		Version:          lamina.LatestVersion,
		TracingConfig:    &lamina.TracingConfig{Mode: "PassThrough"},
		State:            "Active",
		LastUpdateStatus: "Successful",
		PackageType:      "Zip",
		Architectures:    in.Architectures,
		EphemeralStorage: &lamina.EphemeralStorage{Size: lamina.DefaultEphemeralStorage},
		SnapStart:        &lamina.SnapStart{ApplyOn: "None", OptimizationStatus: "Off"},
	}
	if err := in.apply(&cfg); err != nil {
		return err
	}
	touch(&cfg)
	fn := &lamina.Function{Configuration: cfg, Tags: in.Tags, CodeSigningConfigArn: in.CodeSigningConfigArn}
	setCode(fn, code)
	if err := f.resolveLayers(ctx, fn, nil); err != nil {
		return err
	}

	if err := f.store.PutCode(ctx, code.digest, code.data); err != nil {
		return err
	}
	if err := f.store.CreateFunction(ctx, fn); errors.Is(err, store.ErrExists) {
		return f.functionExists(ref.Name)
	} else if err != nil {
		return err
	}
	f.log.Info("function created", "function", ref.Name, "runtime", cfg.Runtime, "code_size", cfg.CodeSize)
	if in.Publish {
		version, err := f.publish(ctx, ref.Name, "", "", "")
		if err != nil {
			return err
		}
		return rq.json(http.StatusCreated, &version.Configuration)
	}
	return rq.json(http.StatusCreated, &fn.Configuration)
}

func (f *Frontend) functionExists(name string) error {
	return lamina.ErrConflict("Function already exist: %s", name)
}

// setCode records a new archive in a function record.
func setCode(fn *lamina.Function, code *archive) {
	fn.CodeDigest = code.digest
	fn.CodeUnzippedSize = code.unzipped
	fn.Configuration.CodeSha256 = code.sha256
	fn.Configuration.CodeSize = int64(len(code.data))
}

// touch marks a configuration as changed now: a new RevisionId and
// LastModified.
func touch(c *lamina.FunctionConfiguration) {
	c.RevisionId = uuid.NewString()
	c.LastModified = lamina.FormatLastModified(time.Now())
}

// lookup returns the function a request's {name} names, checking the
// qualifier against what exists.
func (f *Frontend) lookup(rq *request) (*lamina.Function, error) {
	ref, err := f.requestRef(rq)
	if err != nil {
		return nil, err
	}
	return f.getFunctionVersion(rq.r.Context(), ref)
}

// requestRef parses the function named by a request's path and its
// ?Qualifier, which must agree with a qualifier in the name.
func (f *Frontend) requestRef(rq *request) (lamina.FunctionRef, error) {
	ref, err := f.parseRef(rq.r.PathValue("name"))
	if err != nil {
		return ref, err
	}
	if q := rq.r.URL.Query().Get("Qualifier"); q != "" {
		if !lamina.ValidQualifier(q) {
			var v lamina.Violations
			v.Add(q, "qualifier", "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)")
			return ref, v.Err()
		}
		if ref.Qualifier != "" && ref.Qualifier != q {
			return ref, lamina.ErrInvalidParameter("The derived qualifier from the function name does not match the specified qualifier.")
		}
		ref.Qualifier = q
	}
	return ref, nil
}

// parseRef parses a FunctionName parameter and checks that an ARN in it
// points at this deployment's region and account.
func (f *Frontend) parseRef(s string) (lamina.FunctionRef, error) {
	ref, err := lamina.ParseFunctionRef(s)
	if err != nil {
		return ref, err
	}
	if (ref.Region != "" && ref.Region != f.cfg.Region) || (ref.AccountID != "" && ref.AccountID != f.cfg.AccountID) {
		return ref, lamina.ErrNotFound("Function not found: %s", s)
	}
	return ref, nil
}

// getFunctionVersion loads the function version ref names.
func (f *Frontend) getFunctionVersion(ctx context.Context, ref lamina.FunctionRef) (*lamina.Function, error) {
	fn, err := f.store.ResolveFunction(ctx, ref.Name, ref.Qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return nil, f.notFound(ref)
	}
	return fn, err
}

// notFound is AWS's error for a function (version) that does not exist.
func (f *Frontend) notFound(ref lamina.FunctionRef) error {
	arn := f.functionARN(ref.Name)
	if ref.Qualifier != "" {
		arn += ":" + ref.Qualifier
	}
	return lamina.ErrNotFound("Function not found: %s", arn)
}

func (f *Frontend) functionARN(name string) string {
	return lamina.FunctionARN(f.cfg.Region, f.cfg.AccountID, name)
}

func (f *Frontend) getFunction(rq *request) error {
	fn, err := f.lookup(rq)
	if err != nil {
		return err
	}
	out := getFunctionOutput{
		Configuration: &fn.Configuration,
		Code:          codeLocation{RepositoryType: "S3", Location: f.codeURL(rq.r, fn.CodeDigest)},
	}
	if latest, err := f.store.GetFunction(rq.r.Context(), fn.Configuration.FunctionName); err == nil {
		out.Tags = latest.Tags
		if latest.ReservedConcurrency != nil {
			out.Concurrency = &concurrency{ReservedConcurrentExecutions: latest.ReservedConcurrency}
		}
	}
	return rq.json(http.StatusOK, out)
}

func (f *Frontend) getFunctionConfiguration(rq *request) error {
	fn, err := f.lookup(rq)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, &fn.Configuration)
}

func (f *Frontend) listFunctions(rq *request) error {
	q := rq.r.URL.Query()
	maxItems := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			var v lamina.Violations
			v.Add(s, "maxItems", "Member must have value between 1 and 10000")
			return v.Err()
		}
		maxItems = min(n, 50)
	}
	allVersions := false
	switch v := q.Get("FunctionVersion"); v {
	case "":
	case "ALL":
		allVersions = true
	default:
		var violations lamina.Violations
		violations.Add(v, "functionVersion", "Member must satisfy enum value set: [ALL]")
		return violations.Err()
	}
	start := ""
	if marker := q.Get("Marker"); marker != "" {
		name, err := base64.RawURLEncoding.DecodeString(marker)
		if err != nil || !lamina.ValidFunctionName(string(name)) {
			return lamina.ErrInvalidParameter("Invalid marker: %s", marker)
		}
		start = string(name)
	}
	fns, err := f.store.ListFunctions(rq.r.Context())
	if err != nil {
		return err
	}
	out := listFunctionsOutput{Functions: []*lamina.FunctionConfiguration{}}
	for _, fn := range fns {
		if fn.Configuration.FunctionName < start {
			continue
		}
		if len(out.Functions) == maxItems {
			out.NextMarker = base64.RawURLEncoding.EncodeToString([]byte(fn.Configuration.FunctionName))
			break
		}
		out.Functions = append(out.Functions, &fn.Configuration)
		if allVersions {
			// With FunctionVersion=ALL each function's published versions
			// follow its $LATEST (a page may run past MaxItems by them).
			for _, v := range f.store.ListVersions(rq.r.Context(), fn.Configuration.FunctionName) {
				out.Functions = append(out.Functions, &v.Configuration)
			}
		}
	}
	return rq.json(http.StatusOK, out)
}

func (f *Frontend) deleteFunction(rq *request) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	switch {
	case ref.Qualifier == "":
	case ref.Qualifier == lamina.LatestVersion:
		return lamina.ErrInvalidParameter("$LATEST version cannot be deleted without deleting the function.")
	case lamina.IsVersionNumber(ref.Qualifier):
		return f.deleteVersion(rq, ref)
	default:
		return lamina.ErrInvalidParameter("Deletion of aliases is not supported with DeleteFunction; use DeleteAlias.")
	}
	if _, err := f.store.DeleteFunction(rq.r.Context(), ref.Name); errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	} else if err != nil {
		return err
	}
	f.log.Info("function deleted", "function", ref.Name)
	return rq.noContent(http.StatusNoContent)
}

// checkRevision enforces an optional RevisionId precondition on a function.
func checkRevision(c *lamina.FunctionConfiguration, revisionID string) error {
	return matchRevision(revisionID, c.RevisionId)
}

// matchRevision enforces an optional RevisionId precondition: given, it
// must be current.
func matchRevision(given, current string) error {
	if given != "" && given != current {
		return lamina.ErrPreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
	}
	return nil
}

// updateLatest applies change to the $LATEST version the request names, under
// the store's optimistic concurrency, and answers with the new configuration
// (or, with publish, with the version published from it).
func (f *Frontend) updateLatest(rq *request, publish bool, change func(*lamina.Function) error) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	if ref.Qualifier != "" && ref.Qualifier != lamina.LatestVersion {
		return lamina.ErrInvalidParameter("Only $LATEST can be updated; got qualifier %s", ref.Qualifier)
	}
	fn, err := f.store.UpdateFunction(rq.r.Context(), ref.Name, change)
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	}
	if err != nil {
		return err
	}
	if publish {
		if fn, err = f.publish(rq.r.Context(), ref.Name, "", "", ""); err != nil {
			return err
		}
	}
	return rq.json(http.StatusOK, &fn.Configuration)
}

func (f *Frontend) updateFunctionConfiguration(rq *request) error {
	var in updateFunctionConfigurationInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := f.validateConfig(&in.configInput); err != nil {
		return err
	}
	ctx := rq.r.Context()
	return f.updateLatest(rq, false, func(fn *lamina.Function) error {
		if err := checkRevision(&fn.Configuration, in.RevisionId); err != nil {
			return err
		}
		previous := fn.Layers
		if err := in.apply(&fn.Configuration); err != nil {
			return err
		}
		if in.Runtime != nil {
			if err := f.checkRunnable(*in.Runtime, runtimes.Architecture(fn)); err != nil {
				return err
			}
		}
		if err := f.resolveLayers(ctx, fn, previous); err != nil {
			return err
		}
		touch(&fn.Configuration)
		return nil
	})
}

func (f *Frontend) updateFunctionCode(rq *request) error {
	var in updateFunctionCodeInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Architectures != nil {
		if err := validateArchitectures(in.Architectures); err != nil {
			return err
		}
	}
	code, err := f.checkArchive(rq.r.Context(), in.functionCode)
	if err != nil {
		return err
	}
	// Refuse before storing anything: the function must exist and the
	// precondition hold (updateLatest checks them again, atomically).
	fn, err := f.lookup(rq)
	if err != nil {
		return err
	}
	if err := checkRevision(&fn.Configuration, in.RevisionId); err != nil {
		return err
	}
	if err := f.checkSigning(rq.r.Context(), fn.CodeSigningConfigArn, fn.Configuration.FunctionName); err != nil {
		return err
	}
	if in.Architectures != nil {
		if err := f.checkRunnable(fn.Configuration.Runtime, in.Architectures[0]); err != nil {
			return err
		}
	}
	if fn.UnzippedSize()-fn.CodeUnzippedSize+code.unzipped > lamina.MaxUnzippedCodeSize {
		return errTooLargeWithLayers(fn.UnzippedSize() - fn.CodeUnzippedSize + code.unzipped)
	}
	if in.DryRun {
		preview := *fn // a copy: fn is shared and must not change
		setCode(&preview, code)
		return rq.json(http.StatusOK, &preview.Configuration)
	}
	if err := f.store.PutCode(rq.r.Context(), code.digest, code.data); err != nil {
		return err
	}
	return f.updateLatest(rq, in.Publish, func(fn *lamina.Function) error {
		if err := checkRevision(&fn.Configuration, in.RevisionId); err != nil {
			return err
		}
		if in.Architectures != nil {
			if err := f.checkRunnable(fn.Configuration.Runtime, in.Architectures[0]); err != nil {
				return err
			}
			fn.Configuration.Architectures = in.Architectures
		}
		setCode(fn, code)
		touch(&fn.Configuration)
		return nil
	})
}
