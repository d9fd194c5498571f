package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// writeTree writes files (path → content) under dir with the given modes
// (0644 when absent).
func writeTree(t *testing.T, dir string, files map[string]string, modes map[string]fs.FileMode) {
	t.Helper()
	for name, body := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := modes[name]
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(path, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // umask
			t.Fatal(err)
		}
	}
}

// requireOK fails the test when a CLI command did not succeed.
func requireOK(t *testing.T, what, stdout, stderr string, code int) {
	t.Helper()
	if code != 0 {
		t.Fatalf("%s: exit code %d\nstdout:\n%s\nstderr:\n%s", what, code, stdout, stderr)
	}
}

// requireCLIError checks a failed CLI command: non-zero exit, one line on
// stderr containing each of want.
func requireCLIError(t *testing.T, what, stdout, stderr string, code int, want ...string) {
	t.Helper()
	if code == 0 {
		t.Errorf("%s: exit code 0, want a failure\nstdout:\n%s", what, stdout)
	}
	if l := lines(stderr); len(l) != 1 {
		t.Errorf("%s: stderr has %d lines, want one:\n%s", what, len(l), stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr %q does not contain %q", what, stderr, w)
		}
	}
}

func TestCLIEndToEnd(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := t.Context()
	c := ts.Lambda()

	// create from a directory, zipped on the fly.
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"app.py":          "def handler(event, context):\n    return 'hi'\n",
		"lib/helper.py":   "X = 1\n",
		"bin/run.sh":      "#!/bin/sh\necho run\n",
		"data/config.txt": "k=v\n",
	}, map[string]fs.FileMode{"bin/run.sh": 0o755})
	if err := os.Symlink("lib/helper.py", filepath.Join(src, "helper-link.py")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := ts.Run("create", "from-dir", "--runtime", "python3.12", "--handler", "app.handler", "--code", src,
		"--memory", "256", "--timeout", "7", "--env", "GREETING=hi there", "--description", "made by the CLI")
	requireOK(t, "lamina create --code DIR", stdout, stderr, code)
	if !strings.Contains(stdout, "from-dir") || !strings.Contains(stdout, functionARN("from-dir")) {
		t.Errorf("lamina create output does not show the function:\n%s", stdout)
	}
	g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("from-dir")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := g.Configuration
	if cfg.Runtime != "python3.12" || aws.ToString(cfg.Handler) != "app.handler" || aws.ToInt32(cfg.MemorySize) != 256 ||
		aws.ToInt32(cfg.Timeout) != 7 || aws.ToString(cfg.Description) != "made by the CLI" ||
		cfg.Environment == nil || cfg.Environment.Variables["GREETING"] != "hi there" {
		t.Errorf("created configuration: %s", jsonOf(t, cfg))
	}
	zipped := ts.downloadCode(t, "from-dir")
	entries := readZip(t, zipped)
	for name, want := range map[string]string{
		"app.py": "def handler(event, context):\n    return 'hi'\n", "lib/helper.py": "X = 1\n",
		"bin/run.sh": "#!/bin/sh\necho run\n", "data/config.txt": "k=v\n",
	} {
		e, ok := entries[name]
		if !ok {
			t.Errorf("the zip lacks %s (has %v)", name, zipNames(entries))
			continue
		}
		if e.Body != want {
			t.Errorf("%s = %q, want %q", name, e.Body, want)
		}
	}
	if e := entries["bin/run.sh"]; e.Mode.Perm()&0o111 == 0 {
		t.Errorf("bin/run.sh lost its exec bit in the zip: mode %v", e.Mode)
	}
	if e := entries["app.py"]; e.Mode.Perm()&0o111 != 0 || e.Mode.Perm()&0o444 == 0 {
		t.Errorf("app.py has mode %v in the zip, want readable, not executable", e.Mode)
	}
	if e, ok := entries["helper-link.py"]; !ok || e.Mode&fs.ModeSymlink == 0 || e.Body != "lib/helper.py" {
		t.Errorf("helper-link.py in the zip: %+v, want a symlink to lib/helper.py", e)
	}
	for name := range entries {
		if strings.HasPrefix(name, "/") || strings.Contains(name, src) || strings.HasPrefix(name, "..") {
			t.Errorf("zip entry %q is not relative to the code directory", name)
		}
	}

	// create from a .zip: stored byte for byte.
	zipPath := filepath.Join(t.TempDir(), "fn.zip")
	zipData := zipFiles(t, map[string]string{"index.mjs": "export const handler = async () => 'ok';\n"})
	if err := os.WriteFile(zipPath, zipData, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = ts.Run("create", "from-zip", "--runtime", "nodejs20.x", "--handler", "index.handler", "--code", zipPath)
	requireOK(t, "lamina create --code x.zip", stdout, stderr, code)
	if !strings.Contains(stdout, codeSha256(zipData)) {
		t.Errorf("lamina create output does not show CodeSha256 %s:\n%s", codeSha256(zipData), stdout)
	}
	if got := ts.downloadCode(t, "from-zip"); string(got) != string(zipData) {
		t.Error("the .zip was not stored as given")
	}

	// list, as a table and as JSON.
	stdout, stderr, code = ts.Run("list")
	requireOK(t, "lamina list", stdout, stderr, code)
	table := lines(stdout)
	if len(table) != 3 || !strings.Contains(table[0], "NAME") {
		t.Errorf("lamina list: want a header and two rows:\n%s", stdout)
	}
	for _, name := range []string{"from-dir", "from-zip"} {
		if !strings.Contains(stdout, name) {
			t.Errorf("lamina list does not show %s:\n%s", name, stdout)
		}
	}
	stdout, stderr, code = ts.Run("list", "--output", "json")
	requireOK(t, "lamina list --output json", stdout, stderr, code)
	var listed []map[string]any
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil {
		t.Fatalf("lamina list --output json is not a JSON array: %v\n%s", err, stdout)
	}
	names := map[string]map[string]any{}
	for _, f := range listed {
		name, _ := f["FunctionName"].(string)
		names[name] = f
	}
	if len(listed) != 2 || names["from-dir"] == nil || names["from-zip"] == nil {
		t.Errorf("lamina list --output json = %s", stdout)
	} else if names["from-zip"]["CodeSha256"] != codeSha256(zipData) || names["from-zip"]["Runtime"] != "nodejs20.x" {
		t.Errorf("lamina list --output json, from-zip = %v", names["from-zip"])
	}

	// get, human and JSON; the Code URL downloads the zip.
	stdout, stderr, code = ts.Run("get", "from-zip")
	requireOK(t, "lamina get", stdout, stderr, code)
	if !strings.Contains(stdout, functionARN("from-zip")) || !strings.Contains(stdout, "nodejs20.x") {
		t.Errorf("lamina get output:\n%s", stdout)
	}
	var codeURL string
	for _, l := range lines(stdout) {
		if i := strings.Index(l, ts.Endpoint()+"/"); i >= 0 {
			codeURL = strings.TrimSpace(l[i:])
		}
	}
	if codeURL == "" {
		t.Errorf("lamina get shows no code URL on %s:\n%s", ts.Endpoint(), stdout)
	} else if status, body := httpGet(t, codeURL); status != 200 || string(body) != string(zipData) {
		t.Errorf("GET %s: %d, %d bytes", codeURL, status, len(body))
	}
	stdout, stderr, code = ts.Run("get", "from-zip", "--output", "json")
	requireOK(t, "lamina get --output json", stdout, stderr, code)
	var got struct {
		Configuration map[string]any
		Code          map[string]any
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("lamina get --output json: %v\n%s", err, stdout)
	}
	if got.Configuration["FunctionName"] != "from-zip" || got.Configuration["State"] != "Active" || got.Code["Location"] == nil {
		t.Errorf("lamina get --output json = %s", stdout)
	}

	// update-code from a directory.
	src2 := t.TempDir()
	writeTree(t, src2, map[string]string{"app.py": "def handler(event, context):\n    return 'v2'\n"}, nil)
	before := aws.ToString(cfg.CodeSha256)
	stdout, stderr, code = ts.Run("update-code", "from-dir", "--code", src2)
	requireOK(t, "lamina update-code", stdout, stderr, code)
	g, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("from-dir")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(g.Configuration.CodeSha256) == before {
		t.Error("lamina update-code did not change CodeSha256")
	}
	if e := readZip(t, ts.downloadCode(t, "from-dir")); len(e) != 1 || e["app.py"].Body != "def handler(event, context):\n    return 'v2'\n" {
		t.Errorf("code after update-code: %v", zipNames(e))
	}
	if !strings.Contains(stdout, aws.ToString(g.Configuration.CodeSha256)) {
		t.Errorf("lamina update-code output does not show the new CodeSha256:\n%s", stdout)
	}

	// delete.
	stdout, stderr, code = ts.Run("delete", "from-dir")
	requireOK(t, "lamina delete", stdout, stderr, code)
	if !strings.Contains(stdout, "from-dir") {
		t.Errorf("lamina delete output: %q", stdout)
	}
	stdout, stderr, code = ts.Run("list", "--output", "json")
	requireOK(t, "lamina list", stdout, stderr, code)
	if strings.Contains(stdout, `"from-dir"`) {
		t.Errorf("from-dir still listed after delete:\n%s", stdout)
	}
}

func zipNames(m map[string]zipContent) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	return names
}

func TestCLIErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createFunction(t, "exists", helloZip(t, "exists"))
	src := t.TempDir()
	writeTree(t, src, map[string]string{"app.py": "x = 1\n"}, nil)

	stdout, stderr, code := ts.Run("get", "missing")
	requireCLIError(t, "lamina get missing", stdout, stderr, code, "ResourceNotFoundException")
	stdout, stderr, code = ts.Run("delete", "missing")
	requireCLIError(t, "lamina delete missing", stdout, stderr, code, "ResourceNotFoundException")
	stdout, stderr, code = ts.Run("update-code", "missing", "--code", src)
	requireCLIError(t, "lamina update-code missing", stdout, stderr, code, "ResourceNotFoundException")
	stdout, stderr, code = ts.Run("create", "exists", "--runtime", "python3.12", "--handler", "app.handler", "--code", src)
	requireCLIError(t, "lamina create (duplicate)", stdout, stderr, code, "ResourceConflictException")
	stdout, stderr, code = ts.Run("create", "newfn", "--runtime", "java8", "--handler", "app.handler", "--code", src)
	requireCLIError(t, "lamina create --runtime java8", stdout, stderr, code, "InvalidParameterValueException")
	stdout, stderr, code = ts.Run("create", "newfn", "--runtime", "python3.12", "--handler", "app.handler", "--code", src, "--memory", "64")
	requireCLIError(t, "lamina create --memory 64", stdout, stderr, code, "ValidationException")
	stdout, stderr, code = ts.Run("create", "newfn", "--runtime", "python3.12", "--handler", "app.handler", "--code", filepath.Join(src, "nope"))
	requireCLIError(t, "lamina create --code (missing path)", stdout, stderr, code, "nope")
	notZip := filepath.Join(t.TempDir(), "not.zip")
	if err := os.WriteFile(notZip, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = ts.Run("create", "newfn", "--runtime", "python3.12", "--handler", "app.handler", "--code", notZip)
	requireCLIError(t, "lamina create --code not.zip", stdout, stderr, code, "InvalidParameterValueException")
	stdout, stderr, code = ts.Run("list", "--output", "yaml")
	requireCLIError(t, "lamina list --output yaml", stdout, stderr, code, "--output")

	// Nothing was created by the failures.
	stdout, stderr, code = ts.Run("list", "--output", "json")
	requireOK(t, "lamina list", stdout, stderr, code)
	if strings.Contains(stdout, "newfn") {
		t.Errorf("a failed create left a function:\n%s", stdout)
	}

	// A server that is not there.
	stdout, stderr, code = ts.RunEnv([]string{"LAMINA_ENDPOINT=http://127.0.0.1:1"}, "list")
	requireCLIError(t, "lamina list (no server)", stdout, stderr, code, "nothing answers at 127.0.0.1:1", "lamina server")
}

// TestCLICredentials: by default the CLI uses the credentials in the data
// directory; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY win when set; --data and
// --endpoint choose another directory and server.
func TestCLICredentials(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withoutAdminEnv()) // a generated pair, known only to the data directory
	ts.createFunction(t, "fn", helloZip(t, "fn"))
	id, secret := ts.Credentials()
	noHome := []string{"HOME=" + t.TempDir()} // no ~/.lamina there

	// Default: $HOME/.lamina is the server's data directory.
	stdout, stderr, code := ts.Run("get", "fn")
	requireOK(t, "lamina get (credentials from ~/.lamina)", stdout, stderr, code)

	// --data names the data directory.
	stdout, stderr, code = ts.RunEnv(noHome, "get", "fn", "--data", ts.DataDir())
	requireOK(t, "lamina get --data DIR", stdout, stderr, code)

	// Nothing to authenticate with.
	stdout, stderr, code = ts.RunEnv(noHome, "get", "fn")
	requireCLIError(t, "lamina get (no credentials)", stdout, stderr, code, "AWS_ACCESS_KEY_ID")

	// The standard AWS variables.
	stdout, stderr, code = ts.RunEnv(append(noHome, "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret), "get", "fn")
	requireOK(t, "lamina get (AWS_* credentials)", stdout, stderr, code)
	// …win over the data directory.
	stdout, stderr, code = ts.RunEnv([]string{"AWS_ACCESS_KEY_ID=LKIAWRONGWRONGWRONG0", "AWS_SECRET_ACCESS_KEY=wrong"}, "get", "fn")
	requireCLIError(t, "lamina get (wrong AWS_* credentials)", stdout, stderr, code, "UnrecognizedClientException")
	stdout, stderr, code = ts.RunEnv([]string{"AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=wrong"}, "get", "fn")
	requireCLIError(t, "lamina get (wrong AWS_SECRET_ACCESS_KEY)", stdout, stderr, code, "InvalidSignatureException")

	// --endpoint wins over LAMINA_ENDPOINT.
	stdout, stderr, code = ts.RunEnv([]string{"LAMINA_ENDPOINT=http://127.0.0.1:1"}, "get", "fn", "--endpoint", ts.Endpoint())
	requireOK(t, "lamina get --endpoint", stdout, stderr, code)
}
