package e2e

// Exact runtimes: python3.X runs Python 3.X and nodejsNN.x Node NN, on the
// machine's real interpreters; a runtime or architecture the node cannot
// run is refused at create and update; an operator's --runtime-map and
// --interpreter, and `lamina runtimes`.
//
// Tests that need an interpreter skip, saying so, only when this machine
// has none: machineInterpreter looks for it on its own, without asking the
// server, so that a server that fails to find one fails the test.

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/runtimes"
)

// machineInterpreter returns a real interpreter of a managed runtime on this
// machine, or "": python3.X or node in /usr/bin and /usr/local/bin, pyenv's
// and nvm's versions under $HOME and /root, n's under /usr/local.
func machineInterpreter(t *testing.T, runtime string) string {
	t.Helper()
	homes := []string{"/root"}
	if h := os.Getenv("HOME"); h != "" && h != "/root" {
		homes = append(homes, h)
	}
	if minor, ok := strings.CutPrefix(runtime, "python3."); ok {
		name := "python3." + minor
		patterns := []string{"/usr/bin/" + name, "/usr/local/bin/" + name}
		for _, h := range homes {
			patterns = append(patterns, filepath.Join(h, ".pyenv/versions/3."+minor+".*/bin", name))
		}
		return firstWithVersion(patterns, "Python 3."+minor+".")
	}
	major := strings.TrimSuffix(strings.TrimPrefix(runtime, "nodejs"), ".x")
	patterns := []string{"/usr/bin/node", "/usr/local/bin/node", "/usr/local/n/versions/node/" + major + ".*/bin/node"}
	for _, h := range homes {
		patterns = append(patterns, filepath.Join(h, ".nvm/versions/node/v"+major+".*/bin/node"))
	}
	return firstWithVersion(patterns, "v"+major+".")
}

// firstWithVersion returns the first file matching one of patterns whose
// --version output starts with prefix.
func firstWithVersion(patterns []string, prefix string) string {
	for _, p := range patterns {
		matches, _ := filepath.Glob(p)
		for _, m := range matches {
			out, err := exec.Command(m, "--version").Output()
			if err == nil && strings.HasPrefix(string(out), prefix) {
				return m
			}
		}
	}
	return ""
}

// requireInterpreter skips the test when this machine has no interpreter of
// runtime.
func requireInterpreter(t *testing.T, runtime string) {
	t.Helper()
	if machineInterpreter(t, runtime) == "" {
		t.Skipf("this machine has no interpreter of %s (none in /usr/bin, /usr/local/bin, pyenv's, nvm's or n's versions)", runtime)
	}
}

// mapMissingRuntimes returns --runtime-map arguments that map each managed
// runtime this machine has no interpreter for to one of its family that it
// has.
func mapMissingRuntimes(t *testing.T) []string {
	t.Helper()
	var args []string
	var missing []string
	has := map[string]string{} // family → a runtime the machine has
	for _, id := range lamina.SupportedRuntimes() {
		fam, _ := lamina.RuntimeFamily(id)
		switch {
		case fam == lamina.FamilyProvided:
		case machineInterpreter(t, id) != "":
			has[fam] = id
		default:
			missing = append(missing, id)
		}
	}
	for _, id := range missing {
		fam, _ := lamina.RuntimeFamily(id)
		if has[fam] == "" {
			t.Fatalf("this machine has no interpreter of any %s runtime", fam)
		}
		args = append(args, "--runtime-map", id+"="+has[fam])
	}
	return args
}

// describeRuntimes asks the server what it runs (GET /_lamina/runtimes).
func (ts *testServer) describeRuntimes(t *testing.T) runtimes.Description {
	t.Helper()
	r := ts.do(t, http.MethodGet, "/_lamina/runtimes", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /_lamina/runtimes: %d %s", r.Status, r.Body)
	}
	var d runtimes.Description
	if err := json.Unmarshal(r.Body, &d); err != nil {
		t.Fatalf("GET /_lamina/runtimes: %v: %s", err, r.Body)
	}
	return d
}

// versionZip is a Python function that reports the interpreter it runs on.
func versionZip(t *testing.T) []byte {
	return zipFiles(t, map[string]string{"app.py": "import sys\n\ndef handler(event, context):\n" +
		"    return {'version': sys.version.split()[0], 'executable': sys.executable}\n"})
}

// withRuntime sets a function's runtime.
func withRuntime(runtime string) func(*lambda.CreateFunctionInput) {
	return func(in *lambda.CreateFunctionInput) { in.Runtime = types.Runtime(runtime) }
}

// requireInitStart requires the log's INIT_START to name runtimeVersion,
// e.g. "python:3.12.lamina1".
func requireInitStart(t *testing.T, r invokeResult, runtimeVersion string) {
	t.Helper()
	if !strings.Contains(r.Log, "INIT_START Runtime Version: "+runtimeVersion+"\t") {
		t.Errorf("INIT_START does not name %s:\n%s", runtimeVersion, r.Log)
	}
}

// TestExactPythonRuntimes: each python3.X function runs on Python 3.X.
func TestExactPythonRuntimes(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	code := versionZip(t)
	for _, minor := range []string{"9", "10", "11", "12", "13"} {
		runtime := "python3." + minor
		t.Run(runtime, func(t *testing.T) {
			t.Parallel()
			requireInterpreter(t, runtime)
			name := "version-3-" + minor
			ts.createFunction(t, name, code, withRuntime(runtime))
			r := ts.invokeOK(t, name, "{}")
			m := r.object(t)
			if v := str(t, m, "version"); !strings.HasPrefix(v, "3."+minor+".") {
				t.Errorf("%s runs Python %s (%s)", runtime, v, str(t, m, "executable"))
			}
			requireInitStart(t, r, "python:3."+minor+".lamina1")
		})
	}
}

// Functions that only the newest Python versions compile.
const (
	// PEP 695 (Python 3.12): the type statement and generic functions.
	pep695App = `import sys

type Pair[T] = tuple[T, T]


def first[T](xs: list[T]) -> T:
    return xs[0]


def handler(event, context):
    return {"version": sys.version.split()[0], "value": first([7, 8]), "alias": Pair.__name__}
`
	// PEP 696 (Python 3.13): defaults of type parameters.
	pep696App = `import sys


class Box[T = int]:
    def __init__(self, value: T):
        self.value = value


def handler(event, context):
    return {"version": sys.version.split()[0], "default": Box.__type_params__[0].__default__.__name__}
`
)

// TestPythonVersionSyntax: a function in Python 3.12-only syntax runs on
// python3.12 and fails to compile on python3.11; one in 3.13-only syntax
// runs on python3.13 and fails on python3.12.
func TestPythonVersionSyntax(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for _, tc := range []struct {
		name, app, runsOn, failsOn, key, want string
	}{
		{"pep695", pep695App, "python3.12", "python3.11", "alias", "Pair"},
		{"pep696", pep696App, "python3.13", "python3.12", "default", "int"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireInterpreter(t, tc.runsOn)
			requireInterpreter(t, tc.failsOn)
			code := zipFiles(t, map[string]string{"app.py": tc.app})
			ts.createFunction(t, tc.name+"-ok", code, withRuntime(tc.runsOn))
			m := ts.invokeOK(t, tc.name+"-ok", "{}").object(t)
			if !strings.HasPrefix(str(t, m, "version"), strings.TrimPrefix(tc.runsOn, "python")+".") || str(t, m, tc.key) != tc.want {
				t.Errorf("%s on %s: %v", tc.name, tc.runsOn, m)
			}
			ts.createFunction(t, tc.name+"-old", code, withRuntime(tc.failsOn))
			r := ts.invoke(t, tc.name+"-old", "{}")
			e := r.functionError(t, "Runtime.UserCodeSyntaxError")
			if msg, _ := e["errorMessage"].(string); !strings.Contains(msg, "invalid syntax") {
				t.Errorf("%s on %s: errorMessage %q", tc.name, tc.failsOn, msg)
			}
		})
	}
}

// TestRuntimesOfTheMachine: the server runs exactly the runtimes this
// machine has interpreters for, and refuses the others, and architectures
// it cannot run, at create and update with InvalidParameterValueException
// naming what it runs.
func TestRuntimesOfTheMachine(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	d := ts.describeRuntimes(t)

	var available, unavailable []string
	for _, r := range d.Runtimes {
		if r.Unavailable != "" {
			unavailable = append(unavailable, r.Runtime)
		} else if r.Architecture == "x86_64" {
			available = append(available, r.Runtime)
		}
	}
	for _, id := range lamina.SupportedRuntimes() {
		if fam, _ := lamina.RuntimeFamily(id); fam == lamina.FamilyProvided {
			continue
		}
		has := machineInterpreter(t, id) != ""
		if has != slices.Contains(available, id) {
			t.Errorf("%s: this machine has an interpreter: %v; the server runs it: %v (%+v)", id, has, !has, d.Runtimes)
		}
	}

	ts.createFunction(t, "py", versionZip(t))
	if len(unavailable) == 0 {
		t.Log("this machine has an interpreter of every runtime: no refusal of a runtime to test")
	} else {
		missing := unavailable[0]
		_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String("missing"), Runtime: types.Runtime(missing), Handler: aws.String("index.handler"),
			Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: versionZip(t)},
		})
		wantInMessage := append([]string{"The runtime parameter of " + missing + " is not available on this Lamina node for x86_64"}, available...)
		requireAPIError(t, err, "InvalidParameterValueException", 400, wantInMessage...)
		_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("py"), Runtime: types.Runtime(missing)})
		requireAPIError(t, err, "InvalidParameterValueException", 400, wantInMessage...)
		if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("missing")}); err == nil {
			t.Error("the refused function exists")
		}
	}
	got, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("py")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Runtime != types.RuntimePython312 {
		t.Errorf("after the refused update, Runtime = %s", got.Runtime)
	}

	// arm64 runs only under a binfmt_misc emulator of aarch64; managed
	// runtimes need an aarch64 interpreter besides.
	_, binfmtErr := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64")
	if slices.Contains(d.Architectures, "arm64") {
		t.Logf("this machine runs arm64 executables (%s)", "/proc/sys/fs/binfmt_misc/qemu-aarch64")
		ts.createFunction(t, "arm", zipFiles(t, map[string]string{"bootstrap": "#!/bin/sh\n"}), func(in *lambda.CreateFunctionInput) {
			in.Runtime, in.Handler, in.Architectures = types.RuntimeProvidedal2023, aws.String("bootstrap"), []types.Architecture{types.ArchitectureArm64}
		})
		return
	}
	if binfmtErr == nil {
		t.Logf("qemu-aarch64 is registered but unusable in sandboxes: %s", d.UnavailableArchitectures["arm64"])
	}
	for _, runtime := range []types.Runtime{types.RuntimeProvidedal2023, types.RuntimePython312} {
		_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String("arm"), Runtime: runtime, Handler: aws.String("app.handler"),
			Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: versionZip(t)},
			Architectures: []types.Architecture{types.ArchitectureArm64},
		})
		requireAPIError(t, err, "InvalidParameterValueException", 400, "This Lamina node cannot run arm64 functions", "It runs x86_64.")
	}
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String("py"), ZipFile: versionZip(t), Architectures: []types.Architecture{types.ArchitectureArm64},
	})
	requireAPIError(t, err, "InvalidParameterValueException", 400, "This Lamina node cannot run arm64 functions")
	got, err = c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("py")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Architectures, []types.Architecture{types.ArchitectureX8664}) {
		t.Errorf("after the refused update, Architectures = %v", got.Architectures)
	}
}

// nodeVersionApp reports the Node.js version it runs on.
var nodeVersionApp = map[string]string{"index.mjs": "export const handler = async () => ({ version: process.version });\n"}

// TestRuntimeMapAndInterpreterFlags: --runtime-map runs a runtime on
// another's interpreter and INIT_START says which; --interpreter picks the
// interpreter of a runtime; `lamina runtimes` shows both; without the map,
// a function of a runtime the machine lacks fails at invoke.
func TestRuntimeMapAndInterpreterFlags(t *testing.T) {
	t.Parallel()
	requireInterpreter(t, "python3.12")
	requireInterpreter(t, "nodejs20.x")
	system, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil {
		t.Skipf("no /usr/bin/python3 to name with --interpreter: %v", err)
	}
	systemRuntime := filepath.Base(system) // e.g. python3.11
	out, err := exec.Command(system, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	systemVersion := strings.TrimSpace(strings.TrimPrefix(string(out), "Python "))
	ts := startServer(t, withArgs("--runtime-map", "python3.13=python3.12", "--runtime-map", "nodejs22.x=nodejs20.x",
		"--interpreter", systemRuntime+"="+system))

	ts.createFunction(t, "mapped-py", versionZip(t), withRuntime("python3.13"))
	r := ts.invokeOK(t, "mapped-py", "{}")
	requireInitStart(t, r, "python:3.12.lamina1")
	if v := str(t, r.object(t), "version"); !strings.HasPrefix(v, "3.12.") {
		t.Errorf("python3.13 mapped to python3.12 runs Python %s", v)
	}
	// What runs is really 3.12: 3.13's syntax does not compile.
	ts.createFunction(t, "mapped-pep696", zipFiles(t, map[string]string{"app.py": pep696App}), withRuntime("python3.13"))
	ts.invoke(t, "mapped-pep696", "{}").functionError(t, "Runtime.UserCodeSyntaxError")

	ts.createFunction(t, "mapped-node", zipFiles(t, nodeVersionApp), func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler = types.RuntimeNodejs22x, aws.String("index.handler")
	})
	r = ts.invokeOK(t, "mapped-node", "{}")
	requireInitStart(t, r, "nodejs:20.lamina1")
	if v := str(t, r.object(t), "version"); !strings.HasPrefix(v, "v20.") {
		t.Errorf("nodejs22.x mapped to nodejs20.x runs Node %s", v)
	}

	ts.createFunction(t, "chosen", versionZip(t), withRuntime(systemRuntime))
	m := ts.invokeOK(t, "chosen", "{}").object(t)
	if str(t, m, "version") != systemVersion || str(t, m, "executable") != system {
		t.Errorf("--interpreter %s=%s: the function runs %v", systemRuntime, system, m)
	}

	stdout, stderr, code := ts.Run("runtimes")
	if code != 0 {
		t.Fatalf("lamina runtimes: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		`(?m)^python3\.13\s+x86_64\s+python3\.12 \(--runtime-map\)\s+3\.12\.\d+\s+/\S+/python3\.12 \(discovered\)$`,
		`(?m)^nodejs22\.x\s+x86_64\s+nodejs20\.x \(--runtime-map\)\s+20\.\d+\.\d+\s+/\S+ \(discovered\)$`,
		`(?m)^` + regexp.QuoteMeta(systemRuntime) + `\s+x86_64\s+` + regexp.QuoteMeta(systemRuntime) + `\s+` + regexp.QuoteMeta(systemVersion) + `\s+` + regexp.QuoteMeta(system) + ` \(--interpreter\)$`,
		`(?m)^provided\.al2023\s+x86_64\s+the function's bootstrap`,
		`(?m)^Architectures: x86_64`,
	} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("lamina runtimes does not match %s:\n%s", want, stdout)
		}
	}
	stdout, stderr, code = ts.Run("runtimes", "--output", "json")
	var d runtimes.Description
	if code != 0 || json.Unmarshal([]byte(stdout), &d) != nil {
		t.Fatalf("lamina runtimes --output json: exit %d\n%s%s", code, stdout, stderr)
	}
	if i := slices.IndexFunc(d.Runtimes, func(r runtimes.RuntimeDescription) bool { return r.Runtime == "python3.13" }); i < 0 || d.Runtimes[i].MappedTo != "python3.12" {
		t.Errorf("lamina runtimes --output json: %+v", d.Runtimes)
	}

	// Without the map, a function of a runtime the machine lacks is
	// refused at create and fails at invoke.
	if machineInterpreter(t, "nodejs22.x") != "" {
		t.Log("this machine has Node.js 22: no function left without its runtime to test")
		return
	}
	ts.Reconfigure()
	ts.Restart()
	r = ts.invoke(t, "mapped-node", "{}")
	if e := r.functionError(t, "Runtime.InvalidEntrypoint"); !strings.Contains(e["errorMessage"].(string), "no Node.js 22 interpreter") {
		t.Errorf("errorMessage %q", e["errorMessage"])
	}
	_, err = ts.Lambda().CreateFunction(t.Context(), &lambda.CreateFunctionInput{
		FunctionName: aws.String("node22"), Runtime: types.RuntimeNodejs22x, Handler: aws.String("index.handler"),
		Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: zipFiles(t, nodeVersionApp)},
	})
	requireAPIError(t, err, "InvalidParameterValueException", 400, "The runtime parameter of nodejs22.x is not available", "it has no Node.js 22 interpreter")
}

// TestRuntimeFlagsRefused: the server refuses to start on runtime flags it
// cannot honour, saying why.
func TestRuntimeFlagsRefused(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	shim := filepath.Join(t.TempDir(), "python3.12")
	if err := os.WriteFile(shim, []byte("#!/bin/sh\nexec python3 \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--runtime-map", "python3.13=nodejs20.x"}, "--runtime-map python3.13=nodejs20.x: nodejs20.x is not a python runtime"},
		{[]string{"--runtime-map", "python3.13"}, "want RUNTIME=RUNTIME"},
		{[]string{"--runtime-map", "python3.13=python3.12", "--runtime-map", "python3.12=python3.11"}, "python3.12 is mapped itself"},
		{[]string{"--interpreter", "python3.12=" + shim}, "not an ELF executable (a shim or wrapper script?)"},
		{[]string{"--interpreter", "python3.12=python3"}, "the path must be absolute"},
	} {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		msg := serverFailure(t, defaultServerEnv(), append([]string{"--listen", addr, "--data", dataDir}, tc.args...)...)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%v: error %q, want %q", tc.args, msg, tc.want)
		}
	}
}
