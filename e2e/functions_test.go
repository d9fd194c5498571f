package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// functionARN is the unqualified ARN of a function on a test server.
func functionARN(name string) string {
	return "arn:aws:lambda:" + testRegion + ":" + testAccountID + ":function:" + name
}

// asConfig converts any output that is a function configuration under
// another name (CreateFunctionOutput, UpdateFunctionCodeOutput, …) to a
// types.FunctionConfiguration, the way the CLI does.
func asConfig(t *testing.T, v any) types.FunctionConfiguration {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var c types.FunctionConfiguration
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// jsonOf renders v as JSON for comparisons and messages.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

var lastModifiedRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$`)

// checkCommonConfig checks the fields every $LATEST configuration of a
// function called name with code zip must have.
func checkCommonConfig(t *testing.T, where string, c types.FunctionConfiguration, name string, code []byte) {
	t.Helper()
	if got := aws.ToString(c.FunctionName); got != name {
		t.Errorf("%s: FunctionName = %q, want %q", where, got, name)
	}
	if got := aws.ToString(c.FunctionArn); got != functionARN(name) {
		t.Errorf("%s: FunctionArn = %q, want %q", where, got, functionARN(name))
	}
	if got := aws.ToString(c.CodeSha256); got != codeSha256(code) {
		t.Errorf("%s: CodeSha256 = %q, want %q", where, got, codeSha256(code))
	}
	if c.CodeSize != int64(len(code)) {
		t.Errorf("%s: CodeSize = %d, want %d", where, c.CodeSize, len(code))
	}
	lm := aws.ToString(c.LastModified)
	if !lastModifiedRE.MatchString(lm) {
		t.Errorf("%s: LastModified = %q, want the form 2006-01-02T15:04:05.000+0000", where, lm)
	} else if _, err := time.Parse("2006-01-02T15:04:05.000-0700", lm); err != nil {
		t.Errorf("%s: LastModified %q: %v", where, lm, err)
	}
	if aws.ToString(c.RevisionId) == "" {
		t.Errorf("%s: RevisionId is empty", where)
	}
	if got := aws.ToString(c.Version); got != "$LATEST" {
		t.Errorf("%s: Version = %q, want $LATEST", where, got)
	}
	if c.State != types.StateActive {
		t.Errorf("%s: State = %q, want Active", where, c.State)
	}
	if c.LastUpdateStatus != types.LastUpdateStatusSuccessful {
		t.Errorf("%s: LastUpdateStatus = %q, want Successful", where, c.LastUpdateStatus)
	}
	if c.PackageType != types.PackageTypeZip {
		t.Errorf("%s: PackageType = %q, want Zip", where, c.PackageType)
	}
}

func layerARNs(c types.FunctionConfiguration) []string {
	var arns []string
	for _, l := range c.Layers {
		arns = append(arns, aws.ToString(l.Arn))
	}
	return arns
}

func envOf(c types.FunctionConfiguration) map[string]string {
	if c.Environment == nil {
		return nil
	}
	return c.Environment.Variables
}

func TestCreateFunctionRoundTrip(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()

	code := helloZip(t, "full")
	layers := []string{ts.publishLayer(t, "deps"), ts.publishLayer(t, "shared-utils")}
	env := map[string]string{"GREETING": "hello world", "LEVEL": "3", "EMPTY": ""}
	tags := map[string]string{"team": "e2e", "cost-center": "42"}
	created := ts.createFunction(t, "full", code, func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeNodejs20x
		in.Handler = aws.String("src/index.handler")
		in.MemorySize = aws.Int32(512)
		in.Timeout = aws.Int32(30)
		in.Environment = &types.Environment{Variables: env}
		in.Description = aws.String("an end-to-end test function")
		in.Architectures = []types.Architecture{types.ArchitectureX8664} // arm64: see TestRuntimesOfTheMachine
		in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(1024)}
		in.Layers = layers
		in.Tags = tags
	})
	cfg := asConfig(t, created)
	checkCommonConfig(t, "CreateFunction", cfg, "full", code)
	checkFull := func(where string, c types.FunctionConfiguration) {
		t.Helper()
		if c.Runtime != types.RuntimeNodejs20x {
			t.Errorf("%s: Runtime = %q", where, c.Runtime)
		}
		if got := aws.ToString(c.Handler); got != "src/index.handler" {
			t.Errorf("%s: Handler = %q", where, got)
		}
		if got := aws.ToString(c.Role); got != testRole {
			t.Errorf("%s: Role = %q", where, got)
		}
		if got := aws.ToInt32(c.MemorySize); got != 512 {
			t.Errorf("%s: MemorySize = %d", where, got)
		}
		if got := aws.ToInt32(c.Timeout); got != 30 {
			t.Errorf("%s: Timeout = %d", where, got)
		}
		if got := envOf(c); !maps.Equal(got, env) {
			t.Errorf("%s: Environment = %v, want %v", where, got, env)
		}
		if got := aws.ToString(c.Description); got != "an end-to-end test function" {
			t.Errorf("%s: Description = %q", where, got)
		}
		if !slices.Equal(c.Architectures, []types.Architecture{types.ArchitectureX8664}) {
			t.Errorf("%s: Architectures = %v", where, c.Architectures)
		}
		if c.EphemeralStorage == nil || aws.ToInt32(c.EphemeralStorage.Size) != 1024 {
			t.Errorf("%s: EphemeralStorage = %+v", where, c.EphemeralStorage)
		}
		if got := layerARNs(c); !slices.Equal(got, layers) {
			t.Errorf("%s: Layers = %v, want %v", where, got, layers)
		}
	}
	checkFull("CreateFunction", cfg)

	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("full")})
	if err != nil {
		t.Fatal(err)
	}
	checkCommonConfig(t, "GetFunction", *got.Configuration, "full", code)
	checkFull("GetFunction", *got.Configuration)
	if a, b := jsonOf(t, got.Configuration), jsonOf(t, cfg); a != b {
		t.Errorf("GetFunction.Configuration differs from CreateFunction's output:\n get:    %s\n create: %s", a, b)
	}
	if !maps.Equal(got.Tags, tags) {
		t.Errorf("GetFunction.Tags = %v, want %v", got.Tags, tags)
	}
	if got.Code == nil || !strings.HasPrefix(aws.ToString(got.Code.Location), ts.Endpoint()+"/") {
		t.Fatalf("Code = %+v, want a Location on %s", got.Code, ts.Endpoint())
	}

	conf, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("full")})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := jsonOf(t, asConfig(t, conf)), jsonOf(t, cfg); a != b {
		t.Errorf("GetFunctionConfiguration differs from CreateFunction's output:\n conf:   %s\n create: %s", a, b)
	}

	t.Run("CodeLocation", func(t *testing.T) {
		location := aws.ToString(got.Code.Location)
		resp, err := http.Get(location) // no AWS credentials: the URL itself is the authorization
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET Code.Location: %d", resp.StatusCode)
		}
		if body := ts.downloadCode(t, "full"); string(body) != string(code) {
			t.Errorf("downloaded code (%d bytes, sha %s) differs from the uploaded zip (%d bytes, sha %s)",
				len(body), codeSha256(body), len(code), codeSha256(code))
		}

		u, err := url.Parse(location)
		if err != nil {
			t.Fatal(err)
		}
		tamper := func(change func(u *url.URL)) string {
			v := *u
			change(&v)
			return v.String()
		}
		for name, bad := range map[string]string{
			"signature altered": tamper(func(u *url.URL) {
				q := u.Query()
				sig := q.Get("Signature")
				if sig == "" {
					t.Fatalf("Code.Location %s has no Signature parameter", location)
				}
				flip := "0"
				if strings.HasSuffix(sig, "0") {
					flip = "1"
				}
				q.Set("Signature", sig[:len(sig)-1]+flip)
				u.RawQuery = q.Encode()
			}),
			"signature removed": tamper(func(u *url.URL) {
				q := u.Query()
				q.Del("Signature")
				u.RawQuery = q.Encode()
			}),
			"expiry extended": tamper(func(u *url.URL) {
				q := u.Query()
				q.Set("Expires", q.Get("Expires")+"0")
				u.RawQuery = q.Encode()
			}),
			"other archive": tamper(func(u *url.URL) {
				u.Path = u.Path[:strings.LastIndex(u.Path, "/")+1] + codeDigest([]byte("something else"))
			}),
		} {
			if status, body := httpGet(t, bad); status != http.StatusForbidden {
				t.Errorf("%s: GET %s = %d %s, want 403", name, bad, status, body)
			}
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		minimal := helloZip(t, "minimal")
		out := ts.createFunction(t, "minimal", minimal)
		d := asConfig(t, out)
		checkCommonConfig(t, "CreateFunction(minimal)", d, "minimal", minimal)
		if aws.ToInt32(d.MemorySize) != 128 || aws.ToInt32(d.Timeout) != 3 {
			t.Errorf("MemorySize, Timeout = %d, %d; want the defaults 128, 3", aws.ToInt32(d.MemorySize), aws.ToInt32(d.Timeout))
		}
		if !slices.Equal(d.Architectures, []types.Architecture{types.ArchitectureX8664}) {
			t.Errorf("Architectures = %v, want [x86_64]", d.Architectures)
		}
		if d.EphemeralStorage == nil || aws.ToInt32(d.EphemeralStorage.Size) != 512 {
			t.Errorf("EphemeralStorage = %+v, want 512", d.EphemeralStorage)
		}
		if len(envOf(d)) != 0 || len(d.Layers) != 0 {
			t.Errorf("Environment = %v, Layers = %v; want none", d.Environment, d.Layers)
		}
		if d.Runtime != types.RuntimePython312 || aws.ToString(d.Handler) != "app.handler" {
			t.Errorf("Runtime, Handler = %q, %q", d.Runtime, aws.ToString(d.Handler))
		}
		g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("minimal")})
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Tags) != 0 {
			t.Errorf("Tags = %v, want none", g.Tags)
		}
	})
}

func TestFunctionAddressing(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	ts.createFunction(t, "addr", helloZip(t, "addr"))

	refs := []string{
		"addr",
		"000000000000:function:addr",
		functionARN("addr"),
		"addr:$LATEST",
		"000000000000:function:addr:$LATEST",
		functionARN("addr") + ":$LATEST",
	}
	for _, ref := range refs {
		g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(ref)})
		if err != nil {
			t.Errorf("GetFunction(%q): %v", ref, err)
		} else if got := aws.ToString(g.Configuration.FunctionName); got != "addr" {
			t.Errorf("GetFunction(%q).FunctionName = %q", ref, got)
		}
		gc, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(ref)})
		if err != nil {
			t.Errorf("GetFunctionConfiguration(%q): %v", ref, err)
		} else if got := aws.ToString(gc.FunctionArn); got != functionARN("addr") {
			t.Errorf("GetFunctionConfiguration(%q).FunctionArn = %q", ref, got)
		}
		if !strings.HasSuffix(ref, ":$LATEST") {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(ref), Qualifier: aws.String("$LATEST")})
			if err != nil {
				t.Errorf("GetFunction(%q, Qualifier $LATEST): %v", ref, err)
			}
		} else {
			// The same qualifier twice agrees.
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(ref), Qualifier: aws.String("$LATEST")})
			if err != nil {
				t.Errorf("GetFunction(%q, Qualifier $LATEST): %v", ref, err)
			}
		}
	}

	// Updates and tags by ARN.
	for i, ref := range refs[:3] {
		desc := "updated via " + ref
		out, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(ref), Description: aws.String(desc),
		})
		if err != nil {
			t.Errorf("UpdateFunctionConfiguration(%q): %v", ref, err)
			continue
		}
		if aws.ToString(out.Description) != desc || aws.ToString(out.FunctionName) != "addr" {
			t.Errorf("UpdateFunctionConfiguration(%q) = %q, %q", ref, aws.ToString(out.FunctionName), aws.ToString(out.Description))
		}
		newCode := helloZip(t, "addr-"+string(rune('a'+i)))
		uc, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(ref), ZipFile: newCode})
		if err != nil {
			t.Errorf("UpdateFunctionCode(%q): %v", ref, err)
		} else if aws.ToString(uc.CodeSha256) != codeSha256(newCode) {
			t.Errorf("UpdateFunctionCode(%q).CodeSha256 = %q", ref, aws.ToString(uc.CodeSha256))
		}
	}

	t.Run("QualifierMismatch", func(t *testing.T) {
		for _, tc := range []struct{ name, qualifier string }{
			{functionARN("addr") + ":$LATEST", "prod"},
			{"addr:$LATEST", "1"},
			{"addr:prod", "$LATEST"},
		} {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(tc.name), Qualifier: aws.String(tc.qualifier)})
			var ipv *types.InvalidParameterValueException
			if !errors.As(err, &ipv) {
				t.Errorf("GetFunction(%q, Qualifier %q): got %v, want InvalidParameterValueException", tc.name, tc.qualifier, err)
				continue
			}
			requireAPIError(t, err, "InvalidParameterValueException", 400,
				"The derived qualifier from the function name does not match the specified qualifier.")
		}
	})

	t.Run("UnknownQualifier", func(t *testing.T) {
		_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("addr"), Qualifier: aws.String("prod")})
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Fatalf("got %v, want ResourceNotFoundException", err)
		}
		requireAPIError(t, err, "ResourceNotFoundException", 404, "Function not found: "+functionARN("addr")+":prod")
	})

	t.Run("DeleteByARN", func(t *testing.T) {
		for _, ref := range []string{"000000000000:function:del-partial", functionARN("del-full")} {
			name := ref[strings.LastIndex(ref, ":")+1:]
			ts.createFunction(t, name, helloZip(t, name))
			if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(ref)}); err != nil {
				t.Fatalf("DeleteFunction(%q): %v", ref, err)
			}
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
			var rnf *types.ResourceNotFoundException
			if !errors.As(err, &rnf) {
				t.Errorf("after DeleteFunction(%q): GetFunction = %v, want ResourceNotFoundException", ref, err)
			}
		}
	})

	t.Run("CreateByARN", func(t *testing.T) {
		code := helloZip(t, "by-arn")
		out := ts.createFunction(t, functionARN("created-by-arn"), code)
		checkCommonConfig(t, "CreateFunction(full ARN)", asConfig(t, out), "created-by-arn", code)
		out = ts.createFunction(t, "000000000000:function:created-by-partial", code)
		checkCommonConfig(t, "CreateFunction(partial ARN)", asConfig(t, out), "created-by-partial", code)
	})
}

func TestListFunctionsPaging(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()

	empty, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Functions) != 0 || empty.NextMarker != nil {
		t.Fatalf("empty server: ListFunctions = %d functions, NextMarker %v", len(empty.Functions), empty.NextMarker)
	}

	names := []string{"golf", "alpha", "echo", "Bravo", "charlie-2", "delta_1", "foxtrot"}
	for _, n := range names {
		ts.createFunction(t, n, helloZip(t, n))
	}
	want := slices.Sorted(slices.Values(names))

	// By hand, with Marker and MaxItems.
	var seen []string
	var sizes []int
	var marker *string
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("paging does not end")
		}
		out, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{MaxItems: aws.Int32(3), Marker: marker})
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		sizes = append(sizes, len(out.Functions))
		for _, f := range out.Functions {
			seen = append(seen, aws.ToString(f.FunctionName))
			if f.State != types.StateActive || aws.ToString(f.CodeSha256) == "" || aws.ToString(f.Version) != "$LATEST" {
				t.Errorf("listed %s: State %q, CodeSha256 %q, Version %q", aws.ToString(f.FunctionName), f.State, aws.ToString(f.CodeSha256), aws.ToString(f.Version))
			}
		}
		if out.NextMarker == nil {
			break
		}
		if aws.ToString(out.NextMarker) == "" {
			t.Fatalf("page %d: empty NextMarker", page)
		}
		marker = out.NextMarker
	}
	if !slices.Equal(sizes, []int{3, 3, 1}) {
		t.Errorf("page sizes = %v, want [3 3 1]", sizes)
	}
	if got := slices.Sorted(slices.Values(seen)); !slices.Equal(got, want) {
		t.Errorf("listed %v, want each of %v once", seen, want)
	}

	// With the SDK's paginator.
	pages := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{}, func(o *lambda.ListFunctionsPaginatorOptions) { o.Limit = 3 })
	seen, sizes = nil, nil
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(out.Functions))
		for _, f := range out.Functions {
			seen = append(seen, aws.ToString(f.FunctionName))
		}
	}
	if !slices.Equal(sizes, []int{3, 3, 1}) {
		t.Errorf("paginator page sizes = %v, want [3 3 1]", sizes)
	}
	if got := slices.Sorted(slices.Values(seen)); !slices.Equal(got, want) {
		t.Errorf("paginator listed %v, want each of %v once", seen, want)
	}

	// Everything in one page.
	for _, maxItems := range []*int32{nil, aws.Int32(7), aws.Int32(50), aws.Int32(1000)} {
		out, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{MaxItems: maxItems})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Functions) != 7 || out.NextMarker != nil {
			t.Errorf("MaxItems %v: %d functions, NextMarker %v; want 7 and none", aws.ToInt32(maxItems), len(out.Functions), out.NextMarker)
		}
	}

	// A function deleted between pages neither breaks paging nor hides the
	// others.
	first, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{MaxItems: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	firstNames := map[string]bool{}
	for _, f := range first.Functions {
		firstNames[aws.ToString(f.FunctionName)] = true
	}
	var victim string
	for _, n := range want {
		if !firstNames[n] {
			victim = n
			break
		}
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(victim)}); err != nil {
		t.Fatal(err)
	}
	rest := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{Marker: first.NextMarker})
	seen = slices.Collect(maps.Keys(firstNames))
	for rest.HasMorePages() {
		out, err := rest.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range out.Functions {
			seen = append(seen, aws.ToString(f.FunctionName))
		}
	}
	wantAfter := slices.DeleteFunc(slices.Clone(want), func(n string) bool { return n == victim })
	if got := slices.Sorted(slices.Values(seen)); !slices.Equal(got, wantAfter) {
		t.Errorf("after deleting %s between pages: listed %v, want %v", victim, got, wantAfter)
	}
}

func TestUpdateFunctionCode(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()

	v1, v2 := helloZip(t, "v1"), helloZip(t, "v2")
	created := asConfig(t, ts.createFunction(t, "code", v1, func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"KEEP": "me"}}
		in.MemorySize = aws.Int32(256)
	}))
	get := func() (types.FunctionConfiguration, []byte) {
		t.Helper()
		g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("code")})
		if err != nil {
			t.Fatal(err)
		}
		return *g.Configuration, ts.downloadCode(t, "code")
	}

	t.Run("DryRun", func(t *testing.T) {
		out, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("code"), ZipFile: v2, DryRun: true})
		if err != nil {
			t.Fatalf("DryRun: %v", err)
		}
		if aws.ToString(out.FunctionName) != "code" {
			t.Errorf("DryRun output FunctionName = %q", aws.ToString(out.FunctionName))
		}
		cfg, body := get()
		if a, b := jsonOf(t, cfg), jsonOf(t, created); a != b {
			t.Errorf("DryRun changed the function:\n now:    %s\n before: %s", a, b)
		}
		if string(body) != string(v1) {
			t.Error("DryRun changed the code")
		}
	})

	t.Run("RevisionPrecondition", func(t *testing.T) {
		beforeCfg, beforeBody := get()
		_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
			FunctionName: aws.String("code"), ZipFile: v2, RevisionId: aws.String("00000000-0000-0000-0000-000000000000"),
		})
		var pf *types.PreconditionFailedException
		if !errors.As(err, &pf) {
			t.Fatalf("stale RevisionId: got %v, want PreconditionFailedException", err)
		}
		requireAPIError(t, err, "PreconditionFailedException", 412)
		cfg, body := get()
		if jsonOf(t, cfg) != jsonOf(t, beforeCfg) || !bytes.Equal(body, beforeBody) {
			t.Error("a refused update changed the function")
		}
	})

	out, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String("code"), ZipFile: v2, RevisionId: created.RevisionId,
	})
	if err != nil {
		t.Fatalf("UpdateFunctionCode: %v", err)
	}
	updated := asConfig(t, out)
	checkCommonConfig(t, "UpdateFunctionCode", updated, "code", v2)
	if aws.ToString(updated.RevisionId) == aws.ToString(created.RevisionId) {
		t.Error("RevisionId did not change")
	}
	if aws.ToString(updated.LastModified) < aws.ToString(created.LastModified) {
		t.Errorf("LastModified went back: %s -> %s", aws.ToString(created.LastModified), aws.ToString(updated.LastModified))
	}
	if !maps.Equal(envOf(updated), map[string]string{"KEEP": "me"}) || aws.ToInt32(updated.MemorySize) != 256 ||
		aws.ToString(updated.Handler) != "app.handler" || updated.Runtime != types.RuntimePython312 {
		t.Errorf("UpdateFunctionCode changed the configuration: %s", jsonOf(t, updated))
	}
	cfg, body := get()
	if a, b := jsonOf(t, cfg), jsonOf(t, updated); a != b {
		t.Errorf("GetFunction after update:\n %s\nwant\n %s", a, b)
	}
	if string(body) != string(v2) {
		t.Error("Code.Location does not serve the new code")
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("code")}, time.Minute); err != nil {
		t.Errorf("FunctionUpdatedV2 waiter: %v", err)
	}

	// Back to the first archive, which the store still holds.
	out, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("code"), ZipFile: v1})
	if err != nil {
		t.Fatal(err)
	}
	checkCommonConfig(t, "UpdateFunctionCode(v1 again)", asConfig(t, out), "code", v1)
	if aws.ToString(out.RevisionId) == aws.ToString(updated.RevisionId) {
		t.Error("RevisionId did not change")
	}
	if _, body := get(); string(body) != string(v1) {
		t.Error("Code.Location does not serve v1 again")
	}

	// Architectures come with the code (changing to one the node cannot
	// run is refused: see TestRuntimesOfTheMachine).
	out, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String("code"), ZipFile: v2, Architectures: []types.Architecture{types.ArchitectureX8664},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Architectures, []types.Architecture{types.ArchitectureX8664}) {
		t.Errorf("Architectures = %v, want [x86_64]", out.Architectures)
	}
}

func TestUpdateFunctionConfiguration(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()

	code := helloZip(t, "conf")
	layer := ts.publishLayer(t, "deps")
	created := asConfig(t, ts.createFunction(t, "conf", code, func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"AA": "1", "BB": "2"}}
		in.Layers = []string{layer}
		in.MemorySize = aws.Int32(256)
		in.Description = aws.String("before")
		in.Tags = map[string]string{"keep": "tag"}
	}))
	getConf := func() types.FunctionConfiguration {
		t.Helper()
		g, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("conf")})
		if err != nil {
			t.Fatal(err)
		}
		return asConfig(t, g)
	}

	out, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName:     aws.String("conf"),
		MemorySize:       aws.Int32(1024),
		Timeout:          aws.Int32(60),
		Description:      aws.String("after"),
		Handler:          aws.String("app.other"),
		Runtime:          types.RuntimePython313,
		Environment:      &types.Environment{Variables: map[string]string{"CC": "3"}},
		EphemeralStorage: &types.EphemeralStorage{Size: aws.Int32(2048)},
		Role:             aws.String("arn:aws:iam::000000000000:role/other"),
		RevisionId:       created.RevisionId,
	})
	if err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %v", err)
	}
	u := asConfig(t, out)
	checkCommonConfig(t, "UpdateFunctionConfiguration", u, "conf", code)
	if aws.ToString(u.RevisionId) == aws.ToString(created.RevisionId) {
		t.Error("RevisionId did not change")
	}
	if aws.ToInt32(u.MemorySize) != 1024 || aws.ToInt32(u.Timeout) != 60 || aws.ToString(u.Description) != "after" ||
		aws.ToString(u.Handler) != "app.other" || u.Runtime != types.RuntimePython313 ||
		aws.ToInt32(u.EphemeralStorage.Size) != 2048 || aws.ToString(u.Role) != "arn:aws:iam::000000000000:role/other" {
		t.Errorf("updated configuration: %s", jsonOf(t, u))
	}
	if !maps.Equal(envOf(u), map[string]string{"CC": "3"}) {
		t.Errorf("Environment = %v, want it replaced by {CC: 3}", envOf(u))
	}
	if !slices.Equal(layerARNs(u), []string{layer}) || !slices.Equal(u.Architectures, created.Architectures) {
		t.Errorf("fields not in the request changed: Layers %v, Architectures %v", layerARNs(u), u.Architectures)
	}
	if a, b := jsonOf(t, getConf()), jsonOf(t, u); a != b {
		t.Errorf("GetFunctionConfiguration after update:\n %s\nwant\n %s", a, b)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("conf")}, time.Minute); err != nil {
		t.Errorf("FunctionUpdatedV2 waiter: %v", err)
	}

	// Only what is given changes.
	out, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("conf"), Description: aws.String("only this"),
	})
	if err != nil {
		t.Fatal(err)
	}
	only := asConfig(t, out)
	if aws.ToString(only.Description) != "only this" || aws.ToInt32(only.MemorySize) != 1024 || !maps.Equal(envOf(only), map[string]string{"CC": "3"}) {
		t.Errorf("a Description-only update changed more: %s", jsonOf(t, only))
	}

	t.Run("ClearEnvironmentAndLayers", func(t *testing.T) {
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("conf"),
			Environment:  &types.Environment{Variables: map[string]string{}},
			Layers:       []string{},
		})
		if err != nil {
			t.Fatal(err)
		}
		cleared := getConf()
		if len(envOf(cleared)) != 0 {
			t.Errorf("Environment = %v after clearing it", envOf(cleared))
		}
		if len(cleared.Layers) != 0 {
			t.Errorf("Layers = %v after clearing them", layerARNs(cleared))
		}
		// Set again, then clear with an Environment that has no Variables.
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("conf"), Environment: &types.Environment{Variables: map[string]string{"DD": "4"}},
		}); err != nil {
			t.Fatal(err)
		}
		if got := envOf(getConf()); !maps.Equal(got, map[string]string{"DD": "4"}) {
			t.Errorf("Environment = %v, want {DD: 4}", got)
		}
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("conf"), Environment: &types.Environment{},
		}); err != nil {
			t.Fatal(err)
		}
		if got := envOf(getConf()); len(got) != 0 {
			t.Errorf("Environment = %v after clearing it with an empty Environment", got)
		}
	})

	t.Run("RevisionPrecondition", func(t *testing.T) {
		before := getConf()
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("conf"), MemorySize: aws.Int32(2048), RevisionId: created.RevisionId, // stale
		})
		var pf *types.PreconditionFailedException
		if !errors.As(err, &pf) {
			t.Fatalf("stale RevisionId: got %v, want *types.PreconditionFailedException", err)
		}
		requireAPIError(t, err, "PreconditionFailedException", 412, "Revision Id")
		if a, b := jsonOf(t, getConf()), jsonOf(t, before); a != b {
			t.Errorf("a refused update changed the function:\n %s\nwas\n %s", a, b)
		}
		out, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("conf"), MemorySize: aws.Int32(2048), RevisionId: before.RevisionId,
		})
		if err != nil {
			t.Fatalf("current RevisionId: %v", err)
		}
		if aws.ToInt32(out.MemorySize) != 2048 {
			t.Errorf("MemorySize = %d", aws.ToInt32(out.MemorySize))
		}
	})

	t.Run("InvalidLeavesUnchanged", func(t *testing.T) {
		before := getConf()
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("conf"), MemorySize: aws.Int32(64), Description: aws.String("must not stick"),
		})
		requireAPIError(t, err, "ValidationException", 400,
			"1 validation error detected: Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128")
		_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("conf"), Runtime: types.Runtime("java8"), Description: aws.String("must not stick"),
		})
		var ipv *types.InvalidParameterValueException
		if !errors.As(err, &ipv) {
			t.Errorf("Runtime java8: got %v, want InvalidParameterValueException", err)
		}
		if a, b := jsonOf(t, getConf()), jsonOf(t, before); a != b {
			t.Errorf("a refused update changed the function:\n %s\nwas\n %s", a, b)
		}
	})

	tags, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(functionARN("conf"))})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(tags.Tags, map[string]string{"keep": "tag"}) {
		t.Errorf("tags after configuration updates = %v", tags.Tags)
	}
}

func TestDeleteFunction(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	ts.createFunction(t, "doomed", helloZip(t, "doomed"))
	ts.createFunction(t, "survivor", helloZip(t, "survivor"))

	_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("doomed"), Qualifier: aws.String("$LATEST")})
	requireAPIError(t, err, "InvalidParameterValueException", 400, "$LATEST version cannot be deleted without deleting the function.")

	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("doomed")}); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	for what, call := range map[string]func() error{
		"GetFunction": func() error {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("doomed")})
			return err
		},
		"DeleteFunction again": func() error {
			_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("doomed")})
			return err
		},
		"ListTags": func() error {
			_, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(functionARN("doomed"))})
			return err
		},
	} {
		err := call()
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Errorf("%s after delete: got %v, want ResourceNotFoundException", what, err)
		}
	}
	list, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Functions) != 1 || aws.ToString(list.Functions[0].FunctionName) != "survivor" {
		t.Errorf("ListFunctions after delete = %s", jsonOf(t, list.Functions))
	}

	// The name is free again, and the new function is new.
	again := helloZip(t, "doomed again")
	out := ts.createFunction(t, "doomed", again)
	checkCommonConfig(t, "CreateFunction after delete", asConfig(t, out), "doomed", again)
	g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("doomed")})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Tags) != 0 {
		t.Errorf("recreated function inherited tags %v", g.Tags)
	}
}

func TestAccountSettings(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()

	usage := func() (int64, int64) {
		t.Helper()
		out, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
		if err != nil {
			t.Fatal(err)
		}
		return out.AccountUsage.FunctionCount, out.AccountUsage.TotalCodeSize
	}

	out, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	l := out.AccountLimit
	if l == nil || l.CodeSizeZipped != 52428800 || l.CodeSizeUnzipped != 262144000 || l.ConcurrentExecutions != 1000 ||
		aws.ToInt32(l.UnreservedConcurrentExecutions) != 1000 || l.TotalCodeSize != 80530636800 {
		t.Errorf("AccountLimit = %s", jsonOf(t, l))
	}
	if n, size := usage(); n != 0 || size != 0 {
		t.Errorf("empty server: FunctionCount %d, TotalCodeSize %d", n, size)
	}

	a, b, a2 := helloZip(t, "a"), zipFiles(t, map[string]string{"x.py": strings.Repeat("b", 1000), "y.py": "y"}), helloZip(t, "a, second version, longer")
	ts.createFunction(t, "a", a)
	ts.createFunction(t, "b", b)
	if n, size := usage(); n != 2 || size != int64(len(a)+len(b)) {
		t.Errorf("two functions: FunctionCount %d, TotalCodeSize %d; want 2, %d", n, size, len(a)+len(b))
	}
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("a"), ZipFile: a2}); err != nil {
		t.Fatal(err)
	}
	if n, size := usage(); n != 2 || size != int64(len(a2)+len(b)) {
		t.Errorf("after update: FunctionCount %d, TotalCodeSize %d; want 2, %d", n, size, len(a2)+len(b))
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("b")}); err != nil {
		t.Fatal(err)
	}
	if n, size := usage(); n != 1 || size != int64(len(a2)) {
		t.Errorf("after delete: FunctionCount %d, TotalCodeSize %d; want 1, %d", n, size, len(a2))
	}
}

func TestTags(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	arn := functionARN("tagged")
	ts.createFunction(t, "tagged", helloZip(t, "tagged"), func(in *lambda.CreateFunctionInput) {
		in.Tags = map[string]string{"a": "1"}
	})
	listTags := func() map[string]string {
		t.Helper()
		out, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Tags
	}
	if got := listTags(); !maps.Equal(got, map[string]string{"a": "1"}) {
		t.Errorf("ListTags = %v", got)
	}
	if _, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: map[string]string{"a": "10", "b": "2", "c d": "e f"}}); err != nil {
		t.Fatal(err)
	}
	if got := listTags(); !maps.Equal(got, map[string]string{"a": "10", "b": "2", "c d": "e f"}) {
		t.Errorf("after TagResource: %v", got)
	}
	if _, err := c.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(arn), TagKeys: []string{"a", "c d", "never-set"}}); err != nil {
		t.Fatal(err)
	}
	if got := listTags(); !maps.Equal(got, map[string]string{"b": "2"}) {
		t.Errorf("after UntagResource: %v", got)
	}
	g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("tagged")})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(g.Tags, map[string]string{"b": "2"}) {
		t.Errorf("GetFunction.Tags = %v", g.Tags)
	}

	// Tags survive code and configuration updates.
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("tagged"), ZipFile: helloZip(t, "v2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("tagged"), Timeout: aws.Int32(9)}); err != nil {
		t.Fatal(err)
	}
	if got := listTags(); !maps.Equal(got, map[string]string{"b": "2"}) {
		t.Errorf("after updates: %v", got)
	}

	if _, err := c.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(arn), TagKeys: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	if got := listTags(); len(got) != 0 {
		t.Errorf("after removing every tag: %v", got)
	}

	_, err = c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: map[string]string{"aws:reserved": "x"}})
	var ipv *types.InvalidParameterValueException
	if !errors.As(err, &ipv) {
		t.Errorf("tag key aws:reserved: got %v, want InvalidParameterValueException", err)
	}
	for what, call := range map[string]func() error{
		"ListTags": func() error {
			_, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(functionARN("missing"))})
			return err
		},
		"TagResource": func() error {
			_, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(functionARN("missing")), Tags: map[string]string{"x": "y"}})
			return err
		},
		"UntagResource": func() error {
			_, err := c.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(functionARN("missing")), TagKeys: []string{"x"}})
			return err
		},
	} {
		err := call()
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Errorf("%s on a missing function: got %v, want ResourceNotFoundException", what, err)
		}
	}
	_, err = c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String("tagged")})
	if err == nil || httpStatus(err) != 400 {
		t.Errorf("ListTags with a bare name as resource: got %v, want a 400 error", err)
	}
}

func TestWaiters(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	ts.createFunction(t, "waited", helloZip(t, "waited"))
	get := &lambda.GetFunctionInput{FunctionName: aws.String("waited")}
	getConf := &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("waited")}

	if err := lambda.NewFunctionExistsWaiter(c).Wait(ctx, get, time.Minute); err != nil {
		t.Errorf("FunctionExists: %v", err)
	}
	if err := lambda.NewFunctionActiveV2Waiter(c).Wait(ctx, get, time.Minute); err != nil {
		t.Errorf("FunctionActiveV2: %v", err)
	}
	if err := lambda.NewFunctionActiveWaiter(c).Wait(ctx, getConf, time.Minute); err != nil {
		t.Errorf("FunctionActive: %v", err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("waited"), MemorySize: aws.Int32(333)}); err != nil {
		t.Fatal(err)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(c).Wait(ctx, get, time.Minute); err != nil {
		t.Errorf("FunctionUpdatedV2: %v", err)
	}
	if err := lambda.NewFunctionUpdatedWaiter(c).Wait(ctx, getConf, time.Minute); err != nil {
		t.Errorf("FunctionUpdated: %v", err)
	}
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("waited"), ZipFile: helloZip(t, "w2")}); err != nil {
		t.Fatal(err)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(c).Wait(ctx, get, time.Minute); err != nil {
		t.Errorf("FunctionUpdatedV2 after a code update: %v", err)
	}
}

// TestConcurrentWrites: writes racing on one function are atomic: one
// create wins, one update per RevisionId wins, no tag is lost, and the code a
// configuration names is the code that downloads.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	const n = 8

	race := func(call func(i int) error) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = call(i) })
		}
		wg.Wait()
		return errs
	}
	count := func(errs []error, target func(error) bool) (ok, matched int) {
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case target(err):
				matched++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		return ok, matched
	}

	codes := make([][]byte, n)
	for i := range codes {
		codes[i] = helloZip(t, fmt.Sprintf("racer %d", i))
	}
	errs := race(func(i int) error {
		_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String("raced"), Runtime: types.RuntimePython312, Handler: aws.String("app.handler"),
			Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: codes[i]}, Description: aws.String(fmt.Sprint(i)),
		})
		return err
	})
	ok, conflicts := count(errs, func(err error) bool { var e *types.ResourceConflictException; return errors.As(err, &e) })
	if ok != 1 || conflicts != n-1 {
		t.Fatalf("%d concurrent creates of one name: %d succeeded, %d conflicts; want 1 and %d", n, ok, conflicts, n-1)
	}
	g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("raced")})
	if err != nil {
		t.Fatal(err)
	}
	winner := 0
	fmt.Sscan(aws.ToString(g.Configuration.Description), &winner)
	if errs[winner] != nil || aws.ToString(g.Configuration.CodeSha256) != codeSha256(codes[winner]) {
		t.Errorf("the stored function (description %q) is not the one whose create succeeded", aws.ToString(g.Configuration.Description))
	}
	if got := ts.downloadCode(t, "raced"); !bytes.Equal(got, codes[winner]) {
		t.Error("the stored code is not the winner's")
	}

	rev := g.Configuration.RevisionId
	errs = race(func(i int) error {
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("raced"), Description: aws.String(fmt.Sprintf("update %d", i)), RevisionId: rev,
		})
		return err
	})
	ok, failed := count(errs, func(err error) bool { var e *types.PreconditionFailedException; return errors.As(err, &e) })
	if ok != 1 || failed != n-1 {
		t.Errorf("%d concurrent updates with one RevisionId: %d succeeded, %d precondition failures; want 1 and %d", n, ok, failed, n-1)
	}

	errs = race(func(i int) error {
		_, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(functionARN("raced")), Tags: map[string]string{fmt.Sprintf("k%d", i): "v"}})
		return err
	})
	count(errs, func(error) bool { return false })
	tags, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(functionARN("raced"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != n {
		t.Errorf("after %d concurrent TagResource calls: tags %v, want %d", n, tags.Tags, n)
	}

	errs = race(func(i int) error {
		_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("raced"), ZipFile: codes[i]})
		return err
	})
	count(errs, func(error) bool { return false })
	g, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("raced")})
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.downloadCode(t, "raced"); codeSha256(got) != aws.ToString(g.Configuration.CodeSha256) || int64(len(got)) != g.Configuration.CodeSize {
		t.Errorf("after concurrent code updates, CodeSha256 %s / CodeSize %d do not describe the code that downloads (%s, %d)",
			aws.ToString(g.Configuration.CodeSha256), g.Configuration.CodeSize, codeSha256(got), len(got))
	}
}

// TestLimitsAccepted: the bounds of every range are accepted.
func TestLimitsAccepted(t *testing.T) {
	t.Parallel()
	// Every runtime identifier is accepted: those this machine has no
	// interpreter for are mapped to one it has.
	ts := startServer(t, withArgs(mapMissingRuntimes(t)...))
	var fiveLayers []string
	for i := range 5 {
		fiveLayers = append(fiveLayers, ts.publishLayer(t, fmt.Sprintf("l%d", i)))
	}
	for i, tc := range []struct{ memory, timeout, storage int32 }{
		{128, 1, 512},
		{10240, 900, 10240},
	} {
		name := fmt.Sprintf("bounds-%d", i)
		out := asConfig(t, ts.createFunction(t, name, helloZip(t, name), func(in *lambda.CreateFunctionInput) {
			in.MemorySize = aws.Int32(tc.memory)
			in.Timeout = aws.Int32(tc.timeout)
			in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(tc.storage)}
			in.Description = aws.String(strings.Repeat("d", 256))
			in.Layers = fiveLayers
		}))
		if aws.ToInt32(out.MemorySize) != tc.memory || aws.ToInt32(out.Timeout) != tc.timeout ||
			aws.ToInt32(out.EphemeralStorage.Size) != tc.storage || len(out.Layers) != 5 {
			t.Errorf("%s: %s", name, jsonOf(t, out))
		}
	}
	for _, runtime := range []types.Runtime{"python3.9", "python3.10", "python3.11", "python3.12", "python3.13",
		"nodejs18.x", "nodejs20.x", "nodejs22.x", "provided", "provided.al2", "provided.al2023"} {
		name := "rt-" + strings.ReplaceAll(string(runtime), ".", "-")
		out := ts.createFunction(t, name, helloZip(t, name), func(in *lambda.CreateFunctionInput) {
			in.Runtime = runtime
			if strings.HasPrefix(string(runtime), "provided") {
				in.Handler = aws.String("bootstrap")
			}
		})
		if out.Runtime != runtime {
			t.Errorf("%s: Runtime %q", name, out.Runtime)
		}
	}
}
