//go:build linux && cgo

package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// prestartProbe is a runtime started ahead: it records what it sees before
// its assignment, takes it as Lamina's runtimes do, and prints both.
const prestartProbe = `
import json, os
r = {"env_before": sorted(os.environ)}
fd = int(os.environ["_LAMINA_ASSIGNMENT_FD"])
data = b""
while True:
    chunk = os.read(fd, 65536)
    if not chunk:
        break
    data += chunk
a = json.loads(data)
os.environ.clear()
for v in a["env"]:
    k, _, val = v.partition("=")
    os.environ[k] = val
os.chdir(a["cwd"])
st = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
r["ids"] = [os.getuid(), os.geteuid(), os.getgid()]
r["caps"] = sorted(set(st[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")))
r["nnp"] = st["NoNewPrivs"].strip()
r["seccomp"] = st["Seccomp"].strip()
r["cwd"] = os.getcwd()
r["task"] = sorted(os.listdir("."))
r["env"] = sorted(os.environ)
r["secret"] = os.environ.get("SECRET")
try:
    open("/x", "w")
    r["/x"] = "written"
except OSError as e:
    r["/x"] = e.errno
open("/tmp/x", "w").write("ok")
r["tmp"] = open("/tmp/x").read()
print(json.dumps(r))
`

// TestNamespaceSandboxPrestart: a runtime started ahead gets none of its
// function's environment until Start hands it over (its code may show
// before: the runtime may still be starting when its sandbox is taken), and
// then runs exactly as a fresh start would: same identity, no capabilities, no_new_privs, seccomp, read-only
// root, the function's code, environment and working directory.
func TestNamespaceSandboxPrestart(t *testing.T) {
	p := newProvider(t)
	runtimeDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(runtimeDir, "probe.py"), []byte(prestartProbe), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := Spec{ID: "prestart", TaskDir: taskDir(t, "handler.py", "x = 1\n"), RuntimeDir: runtimeDir, MemoryMB: 128,
		Prestart: &Prestart{Argv: []string{"/usr/bin/python3.11", "-S", "/var/runtime/probe.py"}, Env: []string{"LANG=C.UTF-8"}}}

	// The first Create of a runtime starts its pool and starts the runtime
	// afresh.
	first := create(t, p, spec)
	if out := first.(Prestarted).PrestartedOutput(); out != nil {
		t.Fatal("the first sandbox of a runtime was started ahead; its pool cannot be ready yet")
	}
	var sb Sandbox
	waitFor(t, "a sandbox with the runtime started ahead", func() bool {
		s, err := p.Create(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if s.(Prestarted).PrestartedOutput() != nil {
			sb = s
			return true
		}
		s.Destroy()
		time.Sleep(50 * time.Millisecond)
		return false
	})
	t.Cleanup(func() { sb.Destroy() })
	out := sb.(Prestarted).PrestartedOutput()
	defer out.Close()
	env := []string{"SECRET=s3cret", "LANG=C.UTF-8"}
	if err := sb.Start(Process{Argv: spec.Prestart.Argv, Env: env, Dir: "/var/task"}); err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(out)
	select {
	case <-sb.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the runtime did not exit")
	}
	if err := sb.ExitError(); err != nil {
		t.Fatalf("runtime: %v\n%s", err, data)
	}
	var r map[string]any
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	check := func(key string, want any) {
		t.Helper()
		if got, _ := json.Marshal(r[key]); string(got) != mustJSON(want) {
			t.Errorf("%s = %s, want %s", key, got, mustJSON(want))
		}
	}
	check("ids", []int{993, 993, 990})
	check("caps", []string{"0000000000000000"})
	check("nnp", "1")
	check("seccomp", "2")
	check("cwd", "/var/task")
	check("task", []string{"handler.py"})
	check("env", []string{"LANG", "SECRET"})
	check("secret", "s3cret")
	check("/x", 30) // EROFS
	check("tmp", "ok")
	if before := r["env_before"].([]any); slices.ContainsFunc(before, func(v any) bool { return strings.Contains(v.(string), "SECRET") }) {
		t.Errorf("the runtime saw the function's environment before its assignment: %v", before)
	}

	// A Start with another command than the one started ahead fails.
	other, err := p.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Destroy()
	if o := other.(Prestarted).PrestartedOutput(); o != nil {
		defer o.Close()
		if err := other.Start(Process{Argv: []string{"/bin/true"}, Dir: "/"}); err == nil {
			t.Error("Start ran another command in a sandbox with a runtime started ahead")
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
