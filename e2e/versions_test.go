package e2e

// Versions and aliases (issue 6): PublishVersion and its preconditions,
// qualifiers on GetFunction/Invoke/DeleteFunction, immutability of a
// published version, aliases and their weighted routing.

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// markedPyZip is pyApp with its CODE_MARK set to "code-<mark>", so that a
// call tells which code ran.
func markedPyZip(t *testing.T, mark string) []byte {
	t.Helper()
	src := strings.Replace(pyApp, `CODE_MARK = "code-v1"`, `CODE_MARK = "code-`+mark+`"`, 1)
	if src == pyApp && mark != "v1" {
		t.Fatal("pyApp has no CODE_MARK line to replace")
	}
	return zipFiles(t, map[string]string{"app.py": src})
}

// qualifiedCode gets a function with a Qualifier and downloads the code of
// that version from Code.Location.
func (ts *testServer) qualifiedCode(t *testing.T, name, qualifier string) (*lambda.GetFunctionOutput, []byte) {
	t.Helper()
	out, err := ts.Lambda().GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String(name), Qualifier: aws.String(qualifier)})
	if err != nil {
		t.Fatalf("GetFunction %s Qualifier %s: %v", name, qualifier, err)
	}
	if out.Code == nil || out.Code.Location == nil {
		t.Fatalf("GetFunction %s:%s: no Code.Location", name, qualifier)
	}
	status, body := httpGet(t, *out.Code.Location)
	if status != http.StatusOK {
		t.Fatalf("GET Code.Location of %s:%s: status %d: %s", name, qualifier, status, body)
	}
	return out, body
}

// requireAPIErrorIn requires err to be an API error with the HTTP status
// and one of the codes.
func requireAPIErrorIn(t *testing.T, err error, status int, codes ...string) smithy.APIError {
	t.Helper()
	var apiErr smithy.APIError
	if err == nil || !errors.As(err, &apiErr) {
		t.Fatalf("got %v, want an API error %v (%d)", err, codes, status)
	}
	if !slices.Contains(codes, apiErr.ErrorCode()) {
		t.Errorf("error code %q (message %q), want one of %v", apiErr.ErrorCode(), apiErr.ErrorMessage(), codes)
	}
	if got := httpStatus(err); got != status {
		t.Errorf("HTTP status %d, want %d (%v)", got, status, err)
	}
	return apiErr
}

// payloadObject decodes a JSON object, reporting whether it is one.
func payloadObject(data []byte) (map[string]any, bool) {
	var m map[string]any
	return m, json.Unmarshal(data, &m) == nil
}

// codeMark is the "code" a pyApp echo call returned.
func codeMark(t *testing.T, r invokeResult) string {
	t.Helper()
	return str(t, r.object(t), "code")
}

func TestVersionsPublishAndQualifiers(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	const fn = "versioned"
	v1, v2, v3 := markedPyZip(t, "v1"), markedPyZip(t, "v2"), markedPyZip(t, "v3")
	ts.createFunction(t, fn, v1, func(in *lambda.CreateFunctionInput) {
		in.Handler = aws.String("app.echo")
		in.Environment = &types.Environment{Variables: map[string]string{"MARK": "env-1"}}
	})

	pub, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn), Description: aws.String("first")})
	if err != nil {
		t.Fatalf("PublishVersion: %v", err)
	}
	if aws.ToString(pub.Version) != "1" || aws.ToString(pub.FunctionArn) != functionARN(fn)+":1" {
		t.Errorf("PublishVersion: Version %q FunctionArn %q, want 1 and %s:1", aws.ToString(pub.Version), aws.ToString(pub.FunctionArn), functionARN(fn))
	}
	if aws.ToString(pub.CodeSha256) != codeSha256(v1) || aws.ToString(pub.Description) != "first" {
		t.Errorf("PublishVersion: CodeSha256 %q Description %q, want %q and first", aws.ToString(pub.CodeSha256), aws.ToString(pub.Description), codeSha256(v1))
	}
	// Publishing an unchanged $LATEST again gives the same version.
	again, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatalf("PublishVersion (unchanged): %v", err)
	}
	if aws.ToString(again.Version) != "1" {
		t.Errorf("publishing an unchanged $LATEST gave version %q, want 1 again", aws.ToString(again.Version))
	}

	// $LATEST changes, code and configuration; version 1 does not.
	upd, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn), ZipFile: v2})
	if err != nil {
		t.Fatalf("UpdateFunctionCode: %v", err)
	}
	if aws.ToString(upd.Version) != "$LATEST" {
		t.Errorf("UpdateFunctionCode without Publish answered Version %q, want $LATEST", aws.ToString(upd.Version))
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn),
		Environment: &types.Environment{Variables: map[string]string{"MARK": "env-2"}}}); err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %v", err)
	}
	for _, tc := range []struct {
		name, qualifier, code, mark, executed string
	}{
		{fn, "", "code-v2", "env-2", "$LATEST"},
		{fn, "$LATEST", "code-v2", "env-2", "$LATEST"},
		{fn, "1", "code-v1", "env-1", "1"},
		{fn + ":1", "", "code-v1", "env-1", "1"},
		{functionARN(fn) + ":1", "", "code-v1", "env-1", "1"},
	} {
		var mods []func(*lambda.InvokeInput)
		if tc.qualifier != "" {
			mods = append(mods, func(in *lambda.InvokeInput) { in.Qualifier = aws.String(tc.qualifier) })
		}
		r := ts.invokeOK(t, tc.name, `{"n":1}`, mods...)
		m := r.object(t)
		if m["code"] != tc.code || m["mark"] != tc.mark || r.ExecutedVersion != tc.executed {
			t.Errorf("Invoke %s (Qualifier %q): code %v mark %v X-Amz-Executed-Version %q, want %s %s %s",
				tc.name, tc.qualifier, m["code"], m["mark"], r.ExecutedVersion, tc.code, tc.mark, tc.executed)
		}
	}

	// Preconditions.
	_, err = c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn), CodeSha256: aws.String(codeSha256(v1))})
	requireAPIError(t, err, "PreconditionFailedException", http.StatusPreconditionFailed, "CodeSHA256")
	_, err = c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn), RevisionId: aws.String("00000000-0000-0000-0000-000000000000")})
	requireAPIError(t, err, "PreconditionFailedException", http.StatusPreconditionFailed, "Revision")
	latest, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn),
		CodeSha256: aws.String(codeSha256(v2)), RevisionId: latest.RevisionId})
	if err != nil {
		t.Fatalf("PublishVersion with the right CodeSha256 and RevisionId: %v", err)
	}
	if aws.ToString(pub2.Version) != "2" || aws.ToString(pub2.CodeSha256) != codeSha256(v2) {
		t.Errorf("second version: Version %q CodeSha256 %q", aws.ToString(pub2.Version), aws.ToString(pub2.CodeSha256))
	}

	// UpdateFunctionCode with Publish answers with the new version.
	pub3, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn), ZipFile: v3, Publish: true})
	if err != nil {
		t.Fatalf("UpdateFunctionCode Publish: %v", err)
	}
	if aws.ToString(pub3.Version) != "3" || aws.ToString(pub3.FunctionArn) != functionARN(fn)+":3" || aws.ToString(pub3.CodeSha256) != codeSha256(v3) {
		t.Errorf("UpdateFunctionCode Publish: Version %q FunctionArn %q CodeSha256 %q, want 3", aws.ToString(pub3.Version), aws.ToString(pub3.FunctionArn), aws.ToString(pub3.CodeSha256))
	}
	if r := ts.invokeOK(t, fn+":3", `{}`); codeMark(t, r) != "code-v3" || r.ExecutedVersion != "3" {
		t.Errorf("version 3 ran %q (executed %q)", codeMark(t, r), r.ExecutedVersion)
	}

	// ListVersionsByFunction: $LATEST first, then the versions in order.
	lv, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range lv.Versions {
		got = append(got, aws.ToString(v.Version)+"="+aws.ToString(v.CodeSha256))
	}
	want := []string{"$LATEST=" + codeSha256(v3), "1=" + codeSha256(v1), "2=" + codeSha256(v2), "3=" + codeSha256(v3)}
	if !slices.Equal(got, want) {
		t.Errorf("ListVersionsByFunction = %q, want %q", got, want)
	}

	// Pages of versions.
	page1, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(fn), MaxItems: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(page1.Versions) != 2 || aws.ToString(page1.NextMarker) == "" {
		t.Fatalf("ListVersionsByFunction MaxItems 2: %d versions, NextMarker %q", len(page1.Versions), aws.ToString(page1.NextMarker))
	}
	page2, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(fn), Marker: page1.NextMarker})
	if err != nil {
		t.Fatal(err)
	}
	if len(page2.Versions) != 2 || aws.ToString(page2.Versions[0].Version) != "2" || aws.ToString(page2.Versions[1].Version) != "3" || page2.NextMarker != nil {
		t.Errorf("ListVersionsByFunction second page: %s", jsonOf(t, page2))
	}

	// GetFunction with a Qualifier: that version's configuration and code.
	for q, code := range map[string][]byte{"1": v1, "2": v2, "$LATEST": v3} {
		out, data := ts.qualifiedCode(t, fn, q)
		if aws.ToString(out.Configuration.Version) != q || string(data) != string(code) {
			t.Errorf("GetFunction Qualifier %s: Version %q, code %s (want %s)", q, aws.ToString(out.Configuration.Version), codeSha256(data), codeSha256(code))
		}
		wantARN := functionARN(fn) + ":" + q
		if q == "$LATEST" {
			wantARN = functionARN(fn)
		}
		if got := aws.ToString(out.Configuration.FunctionArn); got != wantARN {
			t.Errorf("GetFunction Qualifier %s: FunctionArn %q, want %q", q, got, wantARN)
		}
	}
	// A version cannot be changed.
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn + ":1"), ZipFile: v3})
	requireAPIErrorIn(t, err, http.StatusBadRequest, "InvalidParameterValueException", "ValidationException")
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn + ":1"), Description: aws.String("x")})
	requireAPIErrorIn(t, err, http.StatusBadRequest, "InvalidParameterValueException", "ValidationException")
	if out, data := ts.qualifiedCode(t, fn, "1"); string(data) != string(v1) || aws.ToString(out.Configuration.Description) != "first" {
		t.Errorf("after refused updates, version 1 has code %s and description %q", codeSha256(data), aws.ToString(out.Configuration.Description))
	}
	if out, _ := ts.qualifiedCode(t, fn, "1"); envOf(*out.Configuration)["MARK"] != "env-1" {
		t.Errorf("version 1's environment is %v, want MARK=env-1", envOf(*out.Configuration))
	}

	// DeleteFunction with Qualifier N deletes that version only.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn), Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("DeleteFunction Qualifier 1: %v", err)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn), Qualifier: aws.String("1")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = ts.tryInvoke(t, fn+":1", `{}`)
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	if r := ts.invokeOK(t, fn, `{}`, func(in *lambda.InvokeInput) { in.Qualifier = aws.String("2") }); codeMark(t, r) != "code-v2" {
		t.Errorf("after deleting version 1, version 2 ran %q", codeMark(t, r))
	}
	if r := ts.invokeOK(t, fn, `{}`); codeMark(t, r) != "code-v3" {
		t.Errorf("after deleting version 1, $LATEST ran %q", codeMark(t, r))
	}
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn), Qualifier: aws.String("$LATEST")})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest)
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)}); err != nil {
		t.Errorf("after the refused deletion of $LATEST the function is gone: %v", err)
	}
	// Version numbers are not reused.
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn), ZipFile: v1}); err != nil {
		t.Fatal(err)
	}
	pub4, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(pub4.Version) != "4" {
		t.Errorf("the version published after deleting version 1 is %q, want 4", aws.ToString(pub4.Version))
	}
	// A change of configuration alone makes a new version too.
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn),
		Environment: &types.Environment{Variables: map[string]string{"MARK": "env-5"}}}); err != nil {
		t.Fatal(err)
	}
	pub5, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(pub5.Version) != "5" {
		t.Errorf("publishing after a configuration change gave version %q, want 5", aws.ToString(pub5.Version))
	}
	for q, mark := range map[string]string{"4": "env-2", "5": "env-5"} {
		if m := ts.invokeOK(t, fn+":"+q, `{}`).object(t); m["mark"] != mark || m["code"] != "code-v1" {
			t.Errorf("version %s: mark %v code %v, want %s and code-v1", q, m["mark"], m["code"], mark)
		}
	}

	// CreateFunction with Publish makes version 1 at once.
	created := ts.createFunction(t, "born-published", v1, func(in *lambda.CreateFunctionInput) {
		in.Handler = aws.String("app.echo")
		in.Publish = true
	})
	if aws.ToString(created.Version) != "1" || aws.ToString(created.FunctionArn) != functionARN("born-published")+":1" {
		t.Errorf("CreateFunction Publish: Version %q FunctionArn %q, want 1", aws.ToString(created.Version), aws.ToString(created.FunctionArn))
	}
	lv, err = c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("born-published")})
	if err != nil {
		t.Fatal(err)
	}
	if len(lv.Versions) != 2 || aws.ToString(lv.Versions[0].Version) != "$LATEST" || aws.ToString(lv.Versions[1].Version) != "1" {
		t.Errorf("ListVersionsByFunction after CreateFunction Publish: %s", jsonOf(t, lv.Versions))
	}
	if r := ts.invokeOK(t, "born-published:1", `{}`); r.ExecutedVersion != "1" || codeMark(t, r) != "code-v1" {
		t.Errorf("born-published:1: executed %q code %q", r.ExecutedVersion, codeMark(t, r))
	}
}

// publishMarked updates a function's code to markedPyZip(mark) and
// publishes it, returning the version.
func (ts *testServer) publishMarked(t *testing.T, fn, mark string) string {
	t.Helper()
	out, err := ts.Lambda().UpdateFunctionCode(t.Context(), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn), ZipFile: markedPyZip(t, mark), Publish: true})
	if err != nil {
		t.Fatalf("UpdateFunctionCode %s Publish: %v", fn, err)
	}
	return aws.ToString(out.Version)
}

func TestAliases(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	const fn = "aliased"
	ts.createFunction(t, fn, markedPyZip(t, "v0"), func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app.echo") })
	if v := ts.publishMarked(t, fn, "v1"); v != "1" {
		t.Fatalf("first version %q", v)
	}
	if v := ts.publishMarked(t, fn, "v2"); v != "2" {
		t.Fatalf("second version %q", v)
	}
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn), ZipFile: markedPyZip(t, "latest")}); err != nil {
		t.Fatal(err)
	}

	created, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"),
		FunctionVersion: aws.String("1"), Description: aws.String("production")})
	if err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	if aws.ToString(created.AliasArn) != functionARN(fn)+":live" || aws.ToString(created.FunctionVersion) != "1" ||
		aws.ToString(created.Name) != "live" || aws.ToString(created.Description) != "production" || aws.ToString(created.RevisionId) == "" {
		t.Errorf("CreateAlias answered %s", jsonOf(t, created))
	}
	got, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(fn), Name: aws.String("live")})
	if err != nil {
		t.Fatalf("GetAlias: %v", err)
	}
	if aws.ToString(got.AliasArn) != aws.ToString(created.AliasArn) || aws.ToString(got.FunctionVersion) != "1" || aws.ToString(got.RevisionId) != aws.ToString(created.RevisionId) {
		t.Errorf("GetAlias = %s, want what CreateAlias answered", jsonOf(t, got))
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("2")})
	requireAPIError(t, err, "ResourceConflictException", http.StatusConflict, "Alias already exists")

	// Invoking the alias runs its version, by Qualifier and by qualified name.
	if r := ts.invokeOK(t, fn, `{}`, func(in *lambda.InvokeInput) { in.Qualifier = aws.String("live") }); codeMark(t, r) != "code-v1" || r.ExecutedVersion != "1" {
		t.Errorf("alias live (version 1) ran %q, executed %q", codeMark(t, r), r.ExecutedVersion)
	}
	if r := ts.invokeOK(t, functionARN(fn)+":live", `{}`); codeMark(t, r) != "code-v1" || r.ExecutedVersion != "1" {
		t.Errorf("alias live by ARN ran %q, executed %q", codeMark(t, r), r.ExecutedVersion)
	}
	// RevisionId precondition of UpdateAlias.
	_, err = c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"),
		FunctionVersion: aws.String("2"), RevisionId: aws.String("00000000-0000-0000-0000-000000000000")})
	requireAPIError(t, err, "PreconditionFailedException", http.StatusPreconditionFailed)
	upd, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"),
		FunctionVersion: aws.String("2"), RevisionId: got.RevisionId})
	if err != nil {
		t.Fatalf("UpdateAlias: %v", err)
	}
	if aws.ToString(upd.FunctionVersion) != "2" || aws.ToString(upd.RevisionId) == aws.ToString(got.RevisionId) || aws.ToString(upd.Description) != "production" {
		t.Errorf("UpdateAlias answered %s", jsonOf(t, upd))
	}
	_, err = c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("7")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	if r := ts.invokeOK(t, fn+":live", `{}`); codeMark(t, r) != "code-v2" || r.ExecutedVersion != "2" {
		t.Errorf("alias live (now version 2) ran %q, executed %q", codeMark(t, r), r.ExecutedVersion)
	}
	// GetFunction with an alias describes the alias's version.
	if out, data := ts.qualifiedCode(t, fn, "live"); aws.ToString(out.Configuration.Version) != "2" || string(data) != string(markedPyZip(t, "v2")) {
		t.Errorf("GetFunction Qualifier live: Version %q, code %s; want version 2's", aws.ToString(out.Configuration.Version), codeSha256(data))
	}
	// An alias of $LATEST follows $LATEST.
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("edge"), FunctionVersion: aws.String("$LATEST")}); err != nil {
		t.Fatalf("CreateAlias $LATEST: %v", err)
	}
	if r := ts.invokeOK(t, fn+":edge", `{}`); codeMark(t, r) != "code-latest" || r.ExecutedVersion != "$LATEST" {
		t.Errorf("alias edge ($LATEST) ran %q, executed %q", codeMark(t, r), r.ExecutedVersion)
	}

	// The context of an alias's call: the version that runs, the ARN that
	// was called.
	ts.createPy(t, "ctx-fn", "ctx", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ctx-fn"), Name: aws.String("prod"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, version, arn string }{
		{"ctx-fn:prod", "1", functionARN("ctx-fn") + ":prod"},
		{"ctx-fn:1", "1", functionARN("ctx-fn") + ":1"},
		{"ctx-fn", "$LATEST", functionARN("ctx-fn")},
	} {
		m := ts.invokeOK(t, tc.name, `{}`).object(t)
		if m["function_version"] != tc.version || m["invoked_function_arn"] != tc.arn {
			t.Errorf("%s: context function_version %v invoked_function_arn %v, want %s and %s", tc.name, m["function_version"], m["invoked_function_arn"], tc.version, tc.arn)
		}
	}

	// Validation, with AWS's messages.
	weights := func(w map[string]float64) *types.AliasRoutingConfiguration {
		return &types.AliasRoutingConfiguration{AdditionalVersionWeights: w}
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("bad"), FunctionVersion: aws.String("1"),
		RoutingConfig: weights(map[string]float64{"2": 0.1, "3": 0.1})})
	requireAPIErrorIn(t, err, http.StatusBadRequest, "InvalidParameterValueException", "ValidationException")
	if err != nil && !strings.Contains(err.Error(), "Number of items in AdditionalVersionWeights cannot be greater than 1") {
		t.Errorf("two weights: %v, want AWS's message", err)
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("bad"), FunctionVersion: aws.String("1"),
		RoutingConfig: weights(map[string]float64{"1": 0.5})})
	requireAPIErrorIn(t, err, http.StatusBadRequest, "InvalidParameterValueException", "ValidationException")
	if err != nil && !strings.Contains(err.Error(), "Invalid function version 1. Function version 1 is already included in routing configuration.") {
		t.Errorf("primary version in the weights: %v, want AWS's message", err)
	}
	for _, w := range []float64{1.5, -0.1} {
		_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("bad"), FunctionVersion: aws.String("1"),
			RoutingConfig: weights(map[string]float64{"2": w})})
		requireAPIError(t, err, "ValidationException", http.StatusBadRequest)
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("bad"), FunctionVersion: aws.String("1"),
		RoutingConfig: weights(map[string]float64{"$LATEST": 0.5})})
	requireAPIErrorIn(t, err, http.StatusBadRequest, "InvalidParameterValueException", "ValidationException")
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("bad"), FunctionVersion: aws.String("$LATEST"),
		RoutingConfig: weights(map[string]float64{"1": 0.5})})
	requireAPIErrorIn(t, err, http.StatusBadRequest, "InvalidParameterValueException", "ValidationException")
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("bad"), FunctionVersion: aws.String("9")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("123"), FunctionVersion: aws.String("1")})
	requireAPIError(t, err, "ValidationException", http.StatusBadRequest)
	if _, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(fn), Name: aws.String("bad")}); err == nil {
		t.Errorf("an alias refused by validation exists")
	}

	// Weighted routing: 30% to version 2 over 1,000 calls.
	const calls, weight = 1000, 0.3
	canary, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("canary"), FunctionVersion: aws.String("1"),
		RoutingConfig: weights(map[string]float64{"2": weight})})
	if err != nil {
		t.Fatalf("CreateAlias with weights: %v", err)
	}
	if w := canary.RoutingConfig; w == nil || w.AdditionalVersionWeights["2"] != weight {
		t.Errorf("CreateAlias canary RoutingConfig = %s", jsonOf(t, canary.RoutingConfig))
	}
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failures []string
	const workers = 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < calls; i += workers {
				r, err := ts.tryInvoke(t, fn+":canary", `{}`)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case r.FunctionError != "":
					failures = append(failures, string(r.Payload))
				default:
					// The executed version is the code that ran.
					var code string
					if m, ok := payloadObject(r.Payload); ok {
						code, _ = m["code"].(string)
					}
					counts[r.ExecutedVersion+"/"+code]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d calls of the weighted alias failed, e.g. %s", len(failures), calls, failures[0])
	}
	if n := counts["1/code-v1"] + counts["2/code-v2"]; n != calls {
		t.Fatalf("weighted alias: executed version / code that ran = %v; want only 1/code-v1 and 2/code-v2", counts)
	}
	// The count of version 2 is binomial(1000, 0.3): mean 300, standard
	// deviation 14.5. Five standard deviations make a false failure a
	// one-in-three-million event.
	mean, sd := calls*weight, math.Sqrt(calls*weight*(1-weight))
	if n := float64(counts["2/code-v2"]); math.Abs(n-mean) > 5*sd {
		t.Errorf("with weight %.1f, version 2 ran %v of %d calls; want %.0f ± %.0f", weight, n, calls, mean, 5*sd)
	} else {
		t.Logf("weight %.1f: version 2 ran %v of %d calls (expected %.0f ± %.0f)", weight, n, calls, mean, 5*sd)
	}

	// ListAliases, all and by version.
	la, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range la.Aliases {
		names = append(names, aws.ToString(a.Name))
	}
	if !slices.Equal(names, []string{"canary", "edge", "live"}) {
		t.Errorf("ListAliases = %q, want canary, edge, live", names)
	}
	la, err = c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String(fn), FunctionVersion: aws.String("2")})
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, a := range la.Aliases {
		names = append(names, aws.ToString(a.Name))
	}
	if !slices.Equal(names, []string{"canary", "live"}) {
		t.Errorf("ListAliases FunctionVersion 2 = %q, want canary (weighted) and live", names)
	}

	// A version an alias uses cannot be deleted: neither the primary nor the
	// weighted one.
	for _, v := range []string{"1", "2"} {
		_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn), Qualifier: aws.String(v)})
		requireAPIError(t, err, "ResourceConflictException", http.StatusConflict)
	}
	// Removing the weights; then deleting the alias frees version 1.
	if _, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(fn), Name: aws.String("canary"),
		RoutingConfig: &types.AliasRoutingConfiguration{}}); err != nil {
		t.Fatalf("UpdateAlias removing the weights: %v", err)
	}
	a, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(fn), Name: aws.String("canary")})
	if err != nil {
		t.Fatal(err)
	}
	if a.RoutingConfig != nil && len(a.RoutingConfig.AdditionalVersionWeights) > 0 {
		t.Errorf("after removing the weights, GetAlias RoutingConfig = %s", jsonOf(t, a.RoutingConfig))
	}
	for range 20 {
		if r := ts.invokeOK(t, fn+":canary", `{}`); r.ExecutedVersion != "1" {
			t.Fatalf("canary without weights executed version %q", r.ExecutedVersion)
		}
	}
	if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String(fn), Name: aws.String("canary")}); err != nil {
		t.Fatalf("DeleteAlias: %v", err)
	}
	_, err = c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(fn), Name: aws.String("canary")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = ts.tryInvoke(t, fn+":canary", `{}`)
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String(fn), Name: aws.String("canary")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn), Qualifier: aws.String("1")}); err != nil {
		t.Errorf("deleting version 1 once no alias uses it: %v", err)
	}
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn), Qualifier: aws.String("2")})
	requireAPIError(t, err, "ResourceConflictException", http.StatusConflict)
	if err != nil && !strings.Contains(err.Error(), "live") {
		t.Errorf("the conflict does not name the alias live: %v", err)
	}
}
