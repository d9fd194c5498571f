package e2e

// Layers (issue 6): the layer API, what runtimes find in /opt, layer order,
// the limits (5 layers, 250 MB with the code), hostile layer archives and
// deleted layer versions.

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// layerARNPrefix is the ARN of a layer (without version) on a test server.
func layerARNPrefix(name string) string {
	return "arn:aws:lambda:" + testRegion + ":" + testAccountID + ":layer:" + name
}

// publishLayerZip publishes a layer version of name with content zip and
// returns the answer.
func (ts *testServer) publishLayerZip(t *testing.T, name string, content []byte, mods ...func(*lambda.PublishLayerVersionInput)) *lambda.PublishLayerVersionOutput {
	t.Helper()
	in := &lambda.PublishLayerVersionInput{LayerName: aws.String(name), Content: &types.LayerVersionContentInput{ZipFile: content}}
	for _, m := range mods {
		m(in)
	}
	out, err := ts.Lambda().PublishLayerVersion(t.Context(), in)
	if err != nil {
		t.Fatalf("PublishLayerVersion %s: %v", name, err)
	}
	return out
}

// zeroBlock is a deflated run of zeros, compressed once per test binary,
// that zerosZip stores raw in as many entries as it likes.
var zeroBlock struct {
	once       sync.Once
	size       int
	compressed []byte
	crc        uint32
}

const zeroBlockSize = 130 << 20 // 130 MiB

// zerosZip returns a zip of entries named names, each holding 130 MiB of
// zeros, deflated (about 130 KB each).
func zerosZip(t *testing.T, names ...string) []byte {
	t.Helper()
	zeroBlock.once.Do(func() {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestSpeed)
		chunk := make([]byte, 1<<20)
		crc := crc32.NewIEEE()
		for range zeroBlockSize / len(chunk) {
			_, _ = w.Write(chunk)
			_, _ = crc.Write(chunk)
		}
		_ = w.Close()
		zeroBlock.size, zeroBlock.compressed, zeroBlock.crc = zeroBlockSize, buf.Bytes(), crc.Sum32()
	})
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range names {
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: zeroBlock.crc,
			CompressedSize64: uint64(len(zeroBlock.compressed)), UncompressedSize64: uint64(zeroBlock.size)}
		hdr.SetMode(0o644)
		w, err := zw.CreateRaw(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(zeroBlock.compressed); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLayerVersionAPI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()

	zip1 := zipFiles(t, map[string]string{"python/apilayer.py": "V = 1\n"})
	zip2 := zipFiles(t, map[string]string{"python/apilayer.py": "V = 2\n"})
	p1 := ts.publishLayerZip(t, "api-layer", zip1, func(in *lambda.PublishLayerVersionInput) {
		in.Description = aws.String("first")
		in.CompatibleRuntimes = []types.Runtime{types.RuntimePython312, types.RuntimePython311}
		in.CompatibleArchitectures = []types.Architecture{types.ArchitectureX8664}
		in.LicenseInfo = aws.String("MIT")
	})
	arn1 := layerARNPrefix("api-layer") + ":1"
	if aws.ToString(p1.LayerArn) != layerARNPrefix("api-layer") || aws.ToString(p1.LayerVersionArn) != arn1 || p1.Version != 1 {
		t.Errorf("PublishLayerVersion: LayerArn %q LayerVersionArn %q Version %d", aws.ToString(p1.LayerArn), aws.ToString(p1.LayerVersionArn), p1.Version)
	}
	if p1.Content == nil || aws.ToString(p1.Content.CodeSha256) != codeSha256(zip1) || p1.Content.CodeSize != int64(len(zip1)) {
		t.Errorf("PublishLayerVersion Content = %s, want CodeSha256 %s CodeSize %d", jsonOf(t, p1.Content), codeSha256(zip1), len(zip1))
	}
	if aws.ToString(p1.Description) != "first" || aws.ToString(p1.LicenseInfo) != "MIT" || aws.ToString(p1.CreatedDate) == "" ||
		!slices.Equal(p1.CompatibleRuntimes, []types.Runtime{types.RuntimePython312, types.RuntimePython311}) ||
		!slices.Equal(p1.CompatibleArchitectures, []types.Architecture{types.ArchitectureX8664}) {
		t.Errorf("PublishLayerVersion answered %s", jsonOf(t, p1))
	}
	p2 := ts.publishLayerZip(t, "api-layer", zip2, func(in *lambda.PublishLayerVersionInput) {
		in.Description = aws.String("second")
		in.CompatibleRuntimes = []types.Runtime{types.RuntimeNodejs20x}
	})
	arn2 := layerARNPrefix("api-layer") + ":2"
	if p2.Version != 2 || aws.ToString(p2.LayerVersionArn) != arn2 {
		t.Errorf("second PublishLayerVersion: Version %d LayerVersionArn %q", p2.Version, aws.ToString(p2.LayerVersionArn))
	}
	ts.publishLayerZip(t, "other-layer", zipFiles(t, map[string]string{"python/other.py": ""}))

	// GetLayerVersion, and its Content.Location downloads the zip.
	g, err := c.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1)})
	if err != nil {
		t.Fatalf("GetLayerVersion: %v", err)
	}
	if aws.ToString(g.LayerVersionArn) != arn1 || aws.ToString(g.Description) != "first" || g.Content == nil || aws.ToString(g.Content.CodeSha256) != codeSha256(zip1) {
		t.Errorf("GetLayerVersion answered %s", jsonOf(t, g))
	}
	if g.Content == nil || aws.ToString(g.Content.Location) == "" {
		t.Fatal("GetLayerVersion has no Content.Location")
	}
	if status, body := httpGet(t, aws.ToString(g.Content.Location)); status != http.StatusOK || !bytes.Equal(body, zip1) {
		t.Errorf("GET Content.Location: status %d, %d bytes (sha %s), want the published zip (%s)", status, len(body), codeSha256(body), codeSha256(zip1))
	}
	// By layer ARN as the name, too.
	if _, err := c.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String(layerARNPrefix("api-layer")), VersionNumber: aws.Int64(2)}); err != nil {
		t.Errorf("GetLayerVersion by layer ARN: %v", err)
	}
	byArn, err := c.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(arn2)})
	if err != nil {
		t.Fatalf("GetLayerVersionByArn: %v", err)
	}
	if byArn.Version != 2 || aws.ToString(byArn.Description) != "second" || aws.ToString(byArn.Content.CodeSha256) != codeSha256(zip2) {
		t.Errorf("GetLayerVersionByArn answered %s", jsonOf(t, byArn))
	}
	_, err = c.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(99)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)

	// ListLayerVersions: newest first, filtered by runtime.
	versionsOf := func(in *lambda.ListLayerVersionsInput) []int64 {
		t.Helper()
		out, err := c.ListLayerVersions(ctx, in)
		if err != nil {
			t.Fatalf("ListLayerVersions: %v", err)
		}
		var vs []int64
		for _, v := range out.LayerVersions {
			vs = append(vs, v.Version)
		}
		return vs
	}
	if got := versionsOf(&lambda.ListLayerVersionsInput{LayerName: aws.String("api-layer")}); !slices.Equal(got, []int64{2, 1}) {
		t.Errorf("ListLayerVersions = %v, want [2 1]", got)
	}
	if got := versionsOf(&lambda.ListLayerVersionsInput{LayerName: aws.String("api-layer"), CompatibleRuntime: types.RuntimePython312}); !slices.Equal(got, []int64{1}) {
		t.Errorf("ListLayerVersions CompatibleRuntime python3.12 = %v, want [1]", got)
	}

	// ListLayers: each layer with its latest (matching) version.
	layersOf := func(in *lambda.ListLayersInput) map[string]int64 {
		t.Helper()
		out, err := c.ListLayers(ctx, in)
		if err != nil {
			t.Fatalf("ListLayers: %v", err)
		}
		m := map[string]int64{}
		for _, l := range out.Layers {
			if aws.ToString(l.LayerArn) != layerARNPrefix(aws.ToString(l.LayerName)) || l.LatestMatchingVersion == nil {
				t.Errorf("ListLayers item %s", jsonOf(t, l))
				continue
			}
			m[aws.ToString(l.LayerName)] = l.LatestMatchingVersion.Version
		}
		return m
	}
	if got := layersOf(&lambda.ListLayersInput{}); fmt.Sprint(got) != fmt.Sprint(map[string]int64{"api-layer": 2, "other-layer": 1}) {
		t.Errorf("ListLayers = %v, want api-layer 2 and other-layer 1", got)
	}
	if got := layersOf(&lambda.ListLayersInput{CompatibleRuntime: types.RuntimePython311}); fmt.Sprint(got) != fmt.Sprint(map[string]int64{"api-layer": 1}) {
		t.Errorf("ListLayers CompatibleRuntime python3.11 = %v, want api-layer 1", got)
	}
	if got := layersOf(&lambda.ListLayersInput{CompatibleArchitecture: types.ArchitectureX8664}); fmt.Sprint(got) != fmt.Sprint(map[string]int64{"api-layer": 1}) {
		t.Errorf("ListLayers CompatibleArchitecture x86_64 = %v, want api-layer 1", got)
	}

	// Layer version permissions.
	add, err := c.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1),
		StatementId: aws.String("public"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("*")})
	if err != nil {
		t.Fatalf("AddLayerVersionPermission: %v", err)
	}
	var stmt map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(add.Statement)), &stmt); err != nil || stmt["Sid"] != "public" || stmt["Resource"] != arn1 ||
		stmt["Action"] != "lambda:GetLayerVersion" || stmt["Effect"] != "Allow" || stmt["Principal"] != "*" || aws.ToString(add.RevisionId) == "" {
		t.Errorf("AddLayerVersionPermission answered Statement %s (%v) RevisionId %q", aws.ToString(add.Statement), err, aws.ToString(add.RevisionId))
	}
	// RevisionId is a query parameter of AddLayerVersionPermission (the
	// SDK sends ?RevisionId=).
	_, err = c.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1),
		StatementId: aws.String("account"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("123456789012"),
		RevisionId: aws.String("not-the-revision")})
	if err == nil {
		t.Errorf("AddLayerVersionPermission with a wrong RevisionId (sent as ?RevisionId=, as the SDK does) succeeded; want PreconditionFailedException")
		if _, err := c.RemoveLayerVersionPermission(ctx, &lambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("api-layer"),
			VersionNumber: aws.Int64(1), StatementId: aws.String("account")}); err != nil {
			t.Fatal(err)
		}
		pol, err := c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1)})
		if err != nil {
			t.Fatal(err)
		}
		add.RevisionId = pol.RevisionId
	} else {
		requireAPIError(t, err, "PreconditionFailedException", http.StatusPreconditionFailed)
	}
	add2, err := c.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1),
		StatementId: aws.String("account"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("123456789012"), RevisionId: add.RevisionId})
	if err != nil {
		t.Fatalf("AddLayerVersionPermission with the RevisionId: %v", err)
	}
	_, err = c.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1),
		StatementId: aws.String("public"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("*")})
	requireAPIError(t, err, "ResourceConflictException", http.StatusConflict)
	_, err = c.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1),
		StatementId: aws.String("bad-action"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")})
	requireAPIErrorIn(t, err, http.StatusBadRequest, "ValidationException", "InvalidParameterValueException")

	policyStatements := func() []map[string]any {
		t.Helper()
		pol, err := c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1)})
		if err != nil {
			t.Fatalf("GetLayerVersionPolicy: %v", err)
		}
		var doc struct {
			Version   string
			Statement []map[string]any
		}
		if err := json.Unmarshal([]byte(aws.ToString(pol.Policy)), &doc); err != nil || doc.Version != "2012-10-17" {
			t.Fatalf("GetLayerVersionPolicy Policy %q is not an IAM policy (%v)", aws.ToString(pol.Policy), err)
		}
		return doc.Statement
	}
	sids := func(stmts []map[string]any) []string {
		var out []string
		for _, s := range stmts {
			out = append(out, fmt.Sprint(s["Sid"]))
		}
		return out
	}
	if got := sids(policyStatements()); !slices.Equal(got, []string{"public", "account"}) {
		t.Errorf("policy statements %q, want public and account", got)
	}
	if add2.RevisionId == nil {
		t.Error("AddLayerVersionPermission has no RevisionId")
	}
	if _, err := c.RemoveLayerVersionPermission(ctx, &lambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("api-layer"),
		VersionNumber: aws.Int64(1), StatementId: aws.String("public")}); err != nil {
		t.Fatalf("RemoveLayerVersionPermission: %v", err)
	}
	if got := sids(policyStatements()); !slices.Equal(got, []string{"account"}) {
		t.Errorf("after removing public, policy statements %q, want account", got)
	}
	_, err = c.RemoveLayerVersionPermission(ctx, &lambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("api-layer"),
		VersionNumber: aws.Int64(1), StatementId: aws.String("public")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	if _, err := c.RemoveLayerVersionPermission(ctx, &lambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("api-layer"),
		VersionNumber: aws.Int64(1), StatementId: aws.String("account")}); err != nil {
		t.Fatalf("RemoveLayerVersionPermission account: %v", err)
	}
	_, err = c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)

	// DeleteLayerVersion hides the version; deleting again is no error.
	if _, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Fatalf("DeleteLayerVersion: %v", err)
	}
	_, err = c.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = c.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(arn1)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	if got := versionsOf(&lambda.ListLayerVersionsInput{LayerName: aws.String("api-layer")}); !slices.Equal(got, []int64{2}) {
		t.Errorf("ListLayerVersions after deleting version 1 = %v, want [2]", got)
	}
	if got := layersOf(&lambda.ListLayersInput{CompatibleRuntime: types.RuntimePython311}); len(got) != 0 {
		t.Errorf("ListLayers python3.11 after deleting version 1 = %v, want none", got)
	}
	if _, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("api-layer"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Errorf("deleting a deleted layer version again: %v", err)
	}
	// Version numbers are not reused.
	if p := ts.publishLayerZip(t, "api-layer", zip1); p.Version != 3 {
		t.Errorf("the version published after a deletion is %d, want 3", p.Version)
	}
}

// sitePackagesFiles puts files in every python3.X site-packages directory
// of a layer, so whichever interpreter runs python3.11 finds them.
func sitePackagesFiles(files map[string]string, rel, content string) {
	for minor := 9; minor <= 13; minor++ {
		files[fmt.Sprintf("python/lib/python3.%d/site-packages/%s", minor, rel)] = content
	}
}

func TestLayersPythonAndOrder(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	libFiles := map[string]string{"python/lib.py": "NAME = 'lib from /opt/python'\n"}
	sitePackagesFiles(libFiles, "sitepkg/__init__.py", "NAME = 'sitepkg from site-packages'\n")
	libZip := zipFiles(t, libFiles)
	lib := aws.ToString(ts.publishLayerZip(t, "pylib", libZip).LayerVersionArn)
	first := aws.ToString(ts.publishLayerZip(t, "first", zipFiles(t, map[string]string{
		"python/shared.py": "WHO = 'first'\n", "python/only_first.py": "X = 1\n", "data/which.txt": "first",
	})).LayerVersionArn)
	second := aws.ToString(ts.publishLayerZip(t, "second", zipFiles(t, map[string]string{
		"python/shared.py": "WHO = 'second'\n", "python/only_second.py": "X = 2\n", "data/which.txt": "second",
	})).LayerVersionArn)

	app := `import lib
import sitepkg
import shared
import only_first
import only_second


def handler(event, context):
    with open("/opt/data/which.txt") as f:
        which = f.read()
    return {"lib": lib.NAME, "libFile": lib.__file__, "site": sitepkg.NAME, "siteFile": sitepkg.__file__,
            "shared": shared.WHO, "which": which}
`
	create := func(name string, layers ...string) {
		ts.createFunction(t, name, zipFiles(t, map[string]string{"app.py": app}), func(in *lambda.CreateFunctionInput) {
			in.Runtime = types.RuntimePython311
			in.Layers = layers
		})
	}
	create("py-first-second", lib, first, second)
	create("py-second-first", lib, second, first)

	for _, tc := range []struct{ name, winner string }{{"py-first-second", "second"}, {"py-second-first", "first"}} {
		m := ts.invokeOK(t, tc.name, `{}`).object(t)
		if m["lib"] != "lib from /opt/python" || m["libFile"] != "/opt/python/lib.py" {
			t.Errorf("%s: lib = %v from %v, want the layer's /opt/python/lib.py", tc.name, m["lib"], m["libFile"])
		}
		if site := fmt.Sprint(m["siteFile"]); m["site"] != "sitepkg from site-packages" ||
			!strings.HasPrefix(site, "/opt/python/lib/python3.") || !strings.HasSuffix(site, "/site-packages/sitepkg/__init__.py") {
			t.Errorf("%s: sitepkg = %v from %v, want the layer's site-packages", tc.name, m["site"], m["siteFile"])
		}
		if m["shared"] != tc.winner || m["which"] != tc.winner {
			t.Errorf("%s: python/shared.py says %v and data/which.txt %v; want the later layer, %s", tc.name, m["shared"], m["which"], tc.winner)
		}
	}
	// GetFunction lists the layers in order, with their sizes.
	out, err := ts.Lambda().GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String("py-second-first")})
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for _, l := range out.Configuration.Layers {
		arns = append(arns, aws.ToString(l.Arn))
		if l.CodeSize <= 0 || (aws.ToString(l.Arn) == lib && l.CodeSize != int64(len(libZip))) {
			t.Errorf("layer %s: CodeSize %d", aws.ToString(l.Arn), l.CodeSize)
		}
	}
	if !slices.Equal(arns, []string{lib, second, first}) {
		t.Errorf("GetFunction Layers = %q, want %q", arns, []string{lib, second, first})
	}
	// Changing the order changes the winner.
	if _, err := ts.Lambda().UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("py-second-first"), Layers: []string{lib, first, second}}); err != nil {
		t.Fatalf("UpdateFunctionConfiguration Layers: %v", err)
	}
	if m := ts.invokeOK(t, "py-second-first", `{}`).object(t); m["shared"] != "second" {
		t.Errorf("after reordering the layers, shared.py says %v, want second", m["shared"])
	}
	// Without layers, the imports fail.
	if _, err := ts.Lambda().UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("py-second-first"), Layers: []string{}}); err != nil {
		t.Fatalf("UpdateFunctionConfiguration removing the layers: %v", err)
	}
	ts.invoke(t, "py-second-first", `{}`).functionError(t, "Runtime.ImportModuleError")
}

func TestLayersNodeAndBootstrap(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	// Node: require() finds /opt/nodejs/node_modules and
	// /opt/nodejs/node20/node_modules.
	nodeLayer := aws.ToString(ts.publishLayerZip(t, "node-mods", zipFiles(t, map[string]string{
		"nodejs/node_modules/greet/package.json":        `{"name":"greet","version":"1.0.0","main":"lib/greet.js"}`,
		"nodejs/node_modules/greet/lib/greet.js":        "exports.greet = (n) => 'hello ' + n + ' from a layer';\n",
		"nodejs/node20/node_modules/versioned/index.js": "module.exports = 'node20 modules';\n",
	})).LayerVersionArn)
	ts.createFunction(t, "node-layer", zipFiles(t, map[string]string{
		"index.js": `const { greet } = require('greet');
const versioned = require('versioned');
exports.handler = async (event) => ({ greeting: greet(event.name), from: require.resolve('greet'), versioned });
`,
	}), func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeNodejs20x
		in.Handler = aws.String("index.handler")
		in.Layers = []string{nodeLayer}
	})
	m := ts.invokeOK(t, "node-layer", `{"name":"lamina"}`).object(t)
	if m["greeting"] != "hello lamina from a layer" || m["from"] != "/opt/nodejs/node_modules/greet/lib/greet.js" || m["versioned"] != "node20 modules" {
		t.Errorf("node function with a layer answered %v", m)
	}
	// An ES module imports them too, as on Lambda.
	ts.createFunction(t, "node-layer-esm", zipFiles(t, map[string]string{
		"index.mjs": `import { greet } from 'greet';
import versioned from 'versioned';
export const handler = async (event) => ({ greeting: greet(event.name), versioned });
`,
	}), func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeNodejs20x
		in.Handler = aws.String("index.handler")
		in.Layers = []string{nodeLayer}
	})
	if m := ts.invokeOK(t, "node-layer-esm", `{"name":"esm"}`).object(t); m["greeting"] != "hello esm from a layer" || m["versioned"] != "node20 modules" {
		t.Errorf("an ES module with a layer answered %v", m)
	}

	// provided.al2023: the function's zip has no bootstrap; the layer's
	// /opt/bootstrap (an aws-lambda-go program) runs it.
	runtimeLayer := aws.ToString(ts.publishLayerZip(t, "go-runtime", goFunctionZip(t, ".")).LayerVersionArn)
	ts.createFunction(t, "bootstrap-from-layer", zipFiles(t, map[string]string{"README.txt": "no bootstrap in here\n"}), func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeProvidedal2023
		in.Handler = aws.String("not.used")
		in.Layers = []string{runtimeLayer}
	})
	r := ts.invokeOK(t, "bootstrap-from-layer", `{"action":"echo","message":"from a layer"}`)
	m = r.object(t)
	if m["message"] != "from a layer" || m["functionName"] != "bootstrap-from-layer" || m["handler"] != "not.used" {
		t.Errorf("the layer's bootstrap answered %v", m)
	}
	// Without the layer the same function has no entry point.
	ts.createFunction(t, "no-bootstrap", zipFiles(t, map[string]string{"README.txt": "no bootstrap in here\n"}), func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeProvidedal2023
		in.Handler = aws.String("not.used")
	})
	ts.invoke(t, "no-bootstrap", `{}`).functionError(t, "Runtime.InvalidEntrypoint")
}

func TestLayerLimits(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()

	// At most 5 layers.
	var six []string
	for i := range 6 {
		six = append(six, ts.publishLayer(t, fmt.Sprintf("many%d", i)))
	}
	_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("six-layers"), Runtime: types.RuntimePython312,
		Handler: aws.String("app.handler"), Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: helloZip(t, "six")}, Layers: six})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "5 layers")
	ts.createFunction(t, "five-layers", helloZip(t, "five"), func(in *lambda.CreateFunctionInput) { in.Layers = six[:5] })
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("five-layers"), Layers: six})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "5 layers")

	// Code plus layers over 250 MB unzipped: two layers of 130 MiB of zeros.
	big := zerosZip(t, "data/zeros.bin")
	bigA := aws.ToString(ts.publishLayerZip(t, "big-a", big).LayerVersionArn)
	bigB := aws.ToString(ts.publishLayerZip(t, "big-b", big).LayerVersionArn)
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("too-big"), Runtime: types.RuntimePython312,
		Handler: aws.String("app.handler"), Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: helloZip(t, "big")}, Layers: []string{bigA, bigB}})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "262144000")
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("too-big")}); err == nil {
		t.Error("a function refused for its size exists")
	}
	ts.createFunction(t, "one-big-layer", helloZip(t, "big"), func(in *lambda.CreateFunctionInput) { in.Layers = []string{bigA} })
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("one-big-layer"), Layers: []string{bigA, bigB}})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "262144000")
	g, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("one-big-layer")})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Layers) != 1 || aws.ToString(g.Layers[0].Arn) != bigA {
		t.Errorf("after a refused update, Layers = %s, want only big-a", jsonOf(t, g.Layers))
	}
	// One layer alone over 250 MB is refused when published.
	_, err = c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("huge"),
		Content: &types.LayerVersionContentInput{ZipFile: zerosZip(t, "a.bin", "b.bin")}})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "262144000")

	// Hostile or broken layer archives are refused before anything is
	// stored.
	for name, content := range map[string][]byte{
		"traversal": zipEntries(t, zipEntry{Name: "python/ok.py", Body: "x = 1\n"}, zipEntry{Name: "../../escape.py", Body: "x = 1\n"}),
		"absolute":  zipEntries(t, zipEntry{Name: "/etc/evil.conf", Body: "x"}),
		"symlink":   zipEntries(t, zipEntry{Name: "python/passwd", Body: "../../../../etc/passwd", Mode: fs.ModeSymlink | 0o777}),
		"garbage":   []byte("this is not a zip archive at all, just text"),
	} {
		_, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("hostile-" + name),
			Content: &types.LayerVersionContentInput{ZipFile: content}})
		requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest)
		out, lerr := c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("hostile-" + name)})
		if lerr != nil || len(out.LayerVersions) != 0 {
			t.Errorf("%s: after the refusal ListLayerVersions = %v (%v), want none", name, out, lerr)
		}
	}
}

func TestDeletedLayerVersionStaysUsable(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()

	layer := aws.ToString(ts.publishLayerZip(t, "doomed", zipFiles(t, map[string]string{"python/doomed.py": "VALUE = 'still here'\n"})).LayerVersionArn)
	app := zipFiles(t, map[string]string{"app.py": `import os
import doomed


def handler(event, context):
    return {"value": doomed.VALUE, "mark": os.environ.get("MARK", "")}
`})
	ts.createFunction(t, "user", app, func(in *lambda.CreateFunctionInput) { in.Layers = []string{layer} })
	ts.createFunction(t, "other", app)
	if m := ts.invokeOK(t, "user", `{}`).object(t); m["value"] != "still here" {
		t.Fatalf("before the deletion: %v", m)
	}

	if _, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("doomed"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Fatalf("DeleteLayerVersion: %v", err)
	}
	_, err := c.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(layer)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)

	// The function that uses it keeps it, also in a new environment after
	// a configuration change that keeps the layer list.
	if m := ts.invokeOK(t, "user", `{}`).object(t); m["value"] != "still here" {
		t.Errorf("after the deletion: %v", m)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("user"),
		Environment: &types.Environment{Variables: map[string]string{"MARK": "changed"}}, Layers: []string{layer}}); err != nil {
		t.Fatalf("UpdateFunctionConfiguration of the function that already uses the deleted layer version: %v", err)
	}
	r := ts.invokeOK(t, "user", `{}`)
	if m := r.object(t); m["value"] != "still here" || m["mark"] != "changed" || !r.cold(t) {
		t.Errorf("after a configuration change: %v (cold %v), want the layer's content in a new environment", m, r.cold(t))
	}
	g, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("user")})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Layers) != 1 || aws.ToString(g.Layers[0].Arn) != layer {
		t.Errorf("GetFunctionConfiguration Layers = %s, want the deleted layer version", jsonOf(t, g.Layers))
	}

	// Nor does new code, or a version published from it.
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("user"), ZipFile: app, Publish: true}); err != nil {
		t.Fatalf("UpdateFunctionCode Publish of the function that uses the deleted layer version: %v", err)
	}
	if m := ts.invokeOK(t, "user:1", `{}`).object(t); m["value"] != "still here" {
		t.Errorf("version 1, published after the deletion: %v", m)
	}

	// No other function can start using it.
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("newcomer"), Runtime: types.RuntimePython312,
		Handler: aws.String("app.handler"), Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: app}, Layers: []string{layer}})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, layer)
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("other"), Layers: []string{layer}})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, layer)
	if m := ts.invoke(t, "other", `{}`); m.FunctionError == "" {
		t.Errorf("the function refused the deleted layer can import it: %s", m.Payload)
	}
}
