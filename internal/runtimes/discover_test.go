//go:build linux

package runtimes

// Tests of interpreter discovery over a fake directory tree: the
// interpreters are copies of a small Go program (testdata/fakeinterp) that
// reports the version written next to it.

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/sandbox"
)

var (
	fakeOnce sync.Once
	fakeDir  string            // where they are built; removed by TestMain
	fakeBins map[string]string // by GOARCH
	fakeErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{fakeDir, compiledDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// fakeInterpreter returns the fake interpreter built for goarch.
func fakeInterpreter(t *testing.T, goarch string) string {
	t.Helper()
	fakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lamina-fakeinterp-")
		if err != nil {
			fakeErr = err
			return
		}
		fakeDir = dir
		fakeBins = map[string]string{}
		for _, arch := range []string{"amd64", "arm64"} {
			bin := filepath.Join(dir, arch)
			cmd := exec.Command("go", "build", "-o", bin, "./testdata/fakeinterp")
			cmd.Env = append(os.Environ(), "GOARCH="+arch, "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fakeErr = err
				t.Logf("%s", out)
				return
			}
			fakeBins[arch] = bin
		}
	})
	if fakeErr != nil {
		t.Fatalf("building the fake interpreter: %v", fakeErr)
	}
	return fakeBins[goarch]
}

// tree builds fake installations under a new directory.
type tree struct {
	t    *testing.T
	root string
}

// newTree makes a tree under /var/tmp: sandboxes show their own /tmp, so an
// installation under the host's /tmp (where t.TempDir is) could not be shown
// in them, and discovery would refuse it.
func newTree(t *testing.T) *tree {
	t.Helper()
	root, err := os.MkdirTemp("/var/tmp", "lamina-discovery-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	return &tree{t: t, root: root}
}

func (tr *tree) path(rel string) string { return filepath.Join(tr.root, rel) }

// interp installs a fake x86_64 interpreter at rel that reports version
// (nothing: it fails).
func (tr *tree) interp(rel, version string) string { return tr.interpFor(rel, version, "amd64") }

func (tr *tree) interpFor(rel, version, goarch string) string {
	tr.t.Helper()
	path := tr.path(rel)
	data, err := os.ReadFile(fakeInterpreter(tr.t, goarch))
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.write(rel, string(data), 0o755)
	if version != "" {
		tr.write(rel+".version", version+"\n", 0o644)
	}
	return path
}

func (tr *tree) write(rel, content string, mode os.FileMode) {
	tr.t.Helper()
	path := tr.path(rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) ran(rel string) bool {
	_, err := os.Stat(tr.path(rel) + ".ran")
	return err == nil
}

// places looks in the tree's pyenv, nvm and n version directories and its
// usr/local/bin and usr/bin, with binfmt_misc at binfmt.
func (tr *tree) places() places {
	return places{
		prefixDirs: []prefixDir{
			{tr.path("runtimes"), sourceDir},
			{tr.path("pyenv/versions"), sourceDiscovered},
			{tr.path("nvm/versions/node"), sourceDiscovered},
			{tr.path("n/versions/node"), sourceDiscovered},
		},
		binDirs:   []string{tr.path("pyenv/shims"), tr.path("usr/local/bin"), tr.path("usr/bin")},
		binfmtDir: tr.path("binfmt_misc"),
		hostArch:  ArchX86,
	}
}

// standardTree is a host with pyenv, nvm, n and system interpreters, and
// things discovery must not use.
func standardTree(t *testing.T) *tree {
	tr := newTree(t)
	tr.interp("pyenv/versions/3.12.1/bin/python3.12", "Python 3.12.1")
	tr.interp("pyenv/versions/3.12.4/bin/python3.12", "Python 3.12.4")
	tr.interp("pyenv/versions/3.13.0rc1/bin/python3.13", "Python 3.13.0rc1")
	tr.interp("pyenv/versions/3.13.0/bin/python3.13", "Python 3.13.0")
	tr.interp("pyenv/versions/2.7.18/bin/python2.7", "Python 2.7.18")
	tr.interp("pyenv/versions/pypy3.10/bin/python3.10", "Python 3.10.12 (af44d0b8172f, Jun 15 2023, 17:05:34)\n[PyPy 7.3.12 with GCC 10.2.1]")
	tr.interp("pyenv/versions/3.9.0/bin/python3.9", "") // broken: fails when run
	// pyenv's shims are scripts that re-exec the real interpreter.
	tr.write("pyenv/shims/python3.11", "#!/usr/bin/env bash\nset -e\nexec \"/root/.pyenv/libexec/pyenv\" exec \"$program\" \"$@\"\n", 0o755)
	tr.write("pyenv/shims/node", "#!/bin/sh\nexec node \"$@\"\n", 0o755)
	tr.interp("usr/bin/python3.11", "Python 3.11.2")
	// A link to it is the same interpreter.
	if err := os.MkdirAll(tr.path("usr/local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../bin/python3.11", tr.path("usr/local/bin/python3.11")); err != nil {
		t.Fatal(err)
	}
	tr.interp("usr/bin/node", "v20.11.1")
	tr.interp("nvm/versions/node/v22.1.0/bin/node", "v22.1.0")
	tr.interp("nvm/versions/node/v16.20.2/bin/node", "v16.20.2")
	tr.interp("n/versions/node/18.20.0/bin/node", "v18.20.0")
	// An aarch64 build, which this x86_64 node cannot run.
	tr.interpFor("runtimes/arm/bin/python3.11", "Python 3.11.9", "arm64")
	// One that other users could replace.
	tr.interp("runtimes/shared/bin/python3.9", "Python 3.9.18")
	if err := os.Chmod(tr.path("runtimes/shared"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(tr.path("binfmt_misc"), 0o755); err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestDiscovery(t *testing.T) {
	tr := standardTree(t)
	d, err := discover(tr.places(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ path, version, dir string }{
		"python3.11": {"usr/bin/python3.11", "3.11.2", "usr"},
		"python3.12": {"pyenv/versions/3.12.4/bin/python3.12", "3.12.4", "pyenv/versions/3.12.4"},
		"python3.13": {"pyenv/versions/3.13.0/bin/python3.13", "3.13.0", "pyenv/versions/3.13.0"},
		"nodejs18.x": {"n/versions/node/18.20.0/bin/node", "18.20.0", "n/versions/node/18.20.0"},
		"nodejs20.x": {"usr/bin/node", "20.11.1", "usr"},
		"nodejs22.x": {"nvm/versions/node/v22.1.0/bin/node", "22.1.0", "nvm/versions/node/v22.1.0"},
	}
	for _, id := range lamina.SupportedRuntimes() {
		got := d.chosen[key{id, ArchX86}]
		w, ok := want[id]
		switch {
		case !ok && got != nil:
			t.Errorf("%s: chose %+v, want none", id, got)
		case ok && got == nil:
			t.Errorf("%s: chose none, want %s", id, w.path)
		case ok && (got.Path != tr.path(w.path) || got.Version != w.version || !slices.Equal(got.Dirs, []string{tr.path(w.dir)}) || got.Source != sourceDiscovered):
			t.Errorf("%s: chose %+v, want %s %s showing %s", id, got, w.path, w.version, w.dir)
		}
	}
	if len(d.chosen) != len(want) {
		t.Errorf("chose %d interpreters, want %d", len(d.chosen), len(want))
	}
	if !slices.Equal(d.archs, []string{ArchX86}) || !strings.Contains(d.archNotes[ArchARM], "binfmt_misc") {
		t.Errorf("architectures %v, notes %v", d.archs, d.archNotes)
	}

	wantSkipped := map[string]string{
		"pyenv/shims/python3.11":                 "not an ELF executable",
		"pyenv/shims/node":                       "not an ELF executable",
		"usr/bin/python3.11":                     "same file as " + tr.path("usr/local/bin/python3.11"),
		"pyenv/versions/pypy3.10/bin/python3.10": "not the version of CPython 3 or Node.js",
		"pyenv/versions/3.9.0/bin/python3.9":     "exit status 1",
		"runtimes/arm/bin/python3.11":            "built for arm64, which this node cannot run",
		"runtimes/shared/bin/python3.9":          "runtimes/shared is writable by other users",
	}
	for _, s := range d.skipped {
		rel, _ := filepath.Rel(tr.root, s.path)
		if w, ok := wantSkipped[rel]; !ok || !strings.Contains(s.reason, w) {
			t.Errorf("skipped %s: %s; want %q", rel, s.reason, w)
		}
		delete(wantSkipped, rel)
	}
	for rel := range wantSkipped {
		t.Errorf("%s was not skipped", rel)
	}
	// Versions Lamina has no runtime for are not run at all, nor are
	// files discovery refuses before running them.
	for _, rel := range []string{"nvm/versions/node/v16.20.2/bin/node", "pyenv/versions/2.7.18/bin/python2.7",
		"runtimes/shared/bin/python3.9", "runtimes/arm/bin/python3.11"} {
		if tr.ran(rel) {
			t.Errorf("%s was run", rel)
		}
	}
	if !tr.ran("pyenv/versions/3.12.1/bin/python3.12") {
		t.Error("pyenv's 3.12.1 was not run")
	}
	if d.probed != 10 {
		t.Errorf("%d interpreters run, want 10", d.probed)
	}
}

func TestDiscoveryExplicitInterpreters(t *testing.T) {
	tr := standardTree(t)
	// An explicit interpreter wins over a newer one, and may be anywhere
	// the operator trusts.
	d, err := discover(tr.places(), []assignment{
		{"python3.12", tr.path("pyenv/versions/3.12.1/bin/python3.12")},
		{"python3.9", tr.path("runtimes/shared/bin/python3.9")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.chosen[key{"python3.12", ArchX86}]; got == nil || got.Version != "3.12.1" || got.Source != sourceFlag {
		t.Errorf("python3.12: %+v", got)
	}
	if got := d.chosen[key{"python3.9", ArchX86}]; got == nil || got.Version != "3.9.18" || got.Source != sourceFlag {
		t.Errorf("python3.9: %+v", got)
	}

	for _, tc := range []struct {
		explicit []assignment
		err      string
	}{
		{[]assignment{{"python3.12", tr.path("pyenv/versions/3.13.0/bin/python3.13")}}, "it is version 3.13.0, which runs python3.13"},
		{[]assignment{{"python3.11", tr.path("pyenv/shims/python3.11")}}, "not an ELF executable (a shim or wrapper script?)"},
		{[]assignment{{"python3.11", tr.path("missing/python3.11")}}, "no such file"},
		{[]assignment{{"python3.11", tr.path("runtimes/arm/bin/python3.11")}}, "built for arm64, which this node cannot run"},
		{[]assignment{{"nodejs20.x", tr.path("usr/bin/node")}, {"nodejs20.x", tr.path("usr/bin/node")}}, "given twice"},
	} {
		_, err := discover(tr.places(), tc.explicit)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: error %v, want %q", tc.explicit, err, tc.err)
		}
	}
}

func TestParseAssignments(t *testing.T) {
	maps, err := parseAssignments("--runtime-map", []string{"python3.13=python3.12", "nodejs22.x=nodejs20.x", "nodejs18.x=nodejs20.x"}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []assignment{{"python3.13", "python3.12"}, {"nodejs22.x", "nodejs20.x"}, {"nodejs18.x", "nodejs20.x"}}
	if !slices.Equal(maps, want) {
		t.Errorf("maps = %v, want %v", maps, want)
	}
	for _, tc := range []struct {
		values []string
		err    string
	}{
		{[]string{"python3.13"}, "want RUNTIME=RUNTIME"},
		{[]string{"python3.13="}, "want RUNTIME=RUNTIME"},
		{[]string{"=python3.12"}, "want RUNTIME=RUNTIME"},
		{[]string{"python3.14=python3.12"}, "python3.14 is not a Python or Node.js runtime of Lamina"},
		{[]string{"provided.al2=provided.al2023"}, "provided.al2 is not a Python or Node.js runtime"},
		{[]string{"python3.13=nodejs20.x"}, "nodejs20.x is not a python runtime"},
		{[]string{"python3.13=python4"}, "python4 is not a python runtime"},
		{[]string{"python3.12=python3.12"}, "cannot be mapped to itself"},
		{[]string{"python3.13=python3.12", "python3.13=python3.11"}, "python3.13 is mapped twice"},
		{[]string{"python3.13=python3.12", "python3.12=python3.11"}, "python3.12 is mapped itself"},
	} {
		_, err := parseAssignments("--runtime-map", tc.values, true)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("--runtime-map %v: error %v, want %q", tc.values, err, tc.err)
		}
	}
	if _, err := parseAssignments("--interpreter", []string{"python3.12=bin/python3.12"}, false); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative --interpreter path: error %v", err)
	}
	if _, err := parseAssignments("--interpreter", []string{"python3.12=/opt/py/bin/python3.12"}, false); err != nil {
		t.Errorf("--interpreter: %v", err)
	}
}

func TestSetChecksAndMaps(t *testing.T) {
	tr := standardTree(t)
	if _, err := newSet(tr.path("installed"), tr.places(), Options{Map: []string{"python3.10=python3.9"}}); err == nil ||
		!strings.Contains(err.Error(), "this node has no interpreter for python3.9") {
		t.Errorf("map to a runtime without interpreter: %v", err)
	}
	s, err := newSet(tr.path("installed"), tr.places(), Options{Map: []string{"python3.10=python3.12"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		runtime, arch, err string
	}{
		{"python3.12", ArchX86, ""},
		{"python3.10", ArchX86, ""}, // mapped
		{"provided.al2023", ArchX86, ""},
		{"python3.9", ArchX86, "The runtime parameter of python3.9 is not available on this Lamina node for x86_64: it has no Python 3.9 interpreter. " +
			"Runtimes it runs for x86_64: nodejs18.x, nodejs20.x, nodejs22.x, provided, provided.al2, provided.al2023, python3.10, python3.11, python3.12, python3.13."},
		{"provided.al2023", ArchARM, "This Lamina node cannot run arm64 functions: binfmt_misc is not mounted"},
		{"python3.12", ArchARM, "cannot run arm64 functions"},
	} {
		err := s.Check(tc.runtime, tc.arch)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Check(%s, %s) = %v, want %q", tc.runtime, tc.arch, err, tc.err)
		}
	}
	if s.Runs("python3.10") != "python3.12" || s.Runs("python3.12") != "python3.12" {
		t.Errorf("Runs: python3.10 → %s, python3.12 → %s", s.Runs("python3.10"), s.Runs("python3.12"))
	}

	fn := &lamina.Function{Configuration: lamina.FunctionConfiguration{Runtime: "python3.10", MemorySize: 128}}
	paths := sandbox.Paths{TaskRoot: "/var/task", RuntimeDir: "/var/runtime", Opt: "/opt", Tmp: "/tmp"}
	l, err := s.Launch(fn, paths, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Argv[0] != tr.path("pyenv/versions/3.12.4/bin/python3.12") || !slices.Contains(l.Env, "AWS_EXECUTION_ENV=AWS_Lambda_python3.10") {
		t.Errorf("launch of a mapped runtime: %+v", l)
	}
	if got := s.ReadOnlyDirs(fn); !slices.Equal(got, []string{tr.path("pyenv/versions/3.12.4")}) {
		t.Errorf("ReadOnlyDirs = %v", got)
	}
	fn.Configuration.Runtime = "python3.9"
	if _, err := s.Launch(fn, paths, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "no Python 3.9 interpreter") {
		t.Errorf("launch without interpreter: %v", err)
	}
	fn.Configuration.Runtime, fn.Configuration.Architectures = "provided.al2023", []string{ArchARM}
	if _, err := s.Launch(fn, paths, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "cannot run arm64 functions") {
		t.Errorf("launch of arm64: %v", err)
	}

	d := s.Describe()
	var rows []string
	for _, r := range d.Runtimes {
		rows = append(rows, r.Runtime+" "+r.Architecture+" "+r.MappedTo+" "+r.Version+" "+r.Unavailable)
	}
	wantRows := []string{
		"nodejs18.x x86_64  18.20.0 ", "nodejs20.x x86_64  20.11.1 ", "nodejs22.x x86_64  22.1.0 ",
		"provided x86_64   ", "provided.al2 x86_64   ", "provided.al2023 x86_64   ",
		"python3.9    no Python 3.9 interpreter", "python3.10 x86_64 python3.12 3.12.4 ", "python3.11 x86_64  3.11.2 ",
		"python3.12 x86_64  3.12.4 ", "python3.13 x86_64  3.13.0 ",
	}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("Describe:\n%q\nwant\n%q", rows, wantRows)
	}
}

// Handlers as binfmt_misc shows them (qemu-user-static's for aarch64).
const (
	qemuAarch64Magic = "magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
	qemuRiscvMagic   = "magic 7f454c460201010000000000000000000200f300\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
)

func TestBinfmtArchitectures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries map[string]string // file name → contents; nil: no directory entries
		err     string            // "" when arm64 runs
	}{
		{"not mounted", nil, "binfmt_misc is not mounted"},
		{"F flag", map[string]string{"qemu-aarch64": "enabled\ninterpreter /opt/qemu/qemu-aarch64-static\nflags: OCF\noffset 0\n" + qemuAarch64Magic}, ""},
		{"visible interpreter", map[string]string{"qemu-aarch64": "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: \noffset 0\n" + qemuAarch64Magic}, ""},
		{"hidden interpreter", map[string]string{"qemu-aarch64": "enabled\ninterpreter /opt/qemu/qemu-aarch64\nflags: OC\noffset 0\n" + qemuAarch64Magic}, "lacks the F flag"},
		{"disabled", map[string]string{"qemu-aarch64": "disabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\noffset 0\n" + qemuAarch64Magic}, "qemu-aarch64 is disabled"},
		{"other architecture", map[string]string{"qemu-riscv64": "enabled\ninterpreter /usr/bin/qemu-riscv64-static\nflags: F\noffset 0\n" + qemuRiscvMagic,
			"python3.11": "enabled\ninterpreter /usr/bin/python3.11\nflags: \noffset 0\nmagic a70d0d0a\n"}, "no binfmt_misc handler (qemu-user) is registered for arm64"},
	} {
		dir := t.TempDir()
		for name, content := range tc.entries {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if tc.entries != nil {
			os.WriteFile(filepath.Join(dir, "register"), nil, 0o200)
			os.WriteFile(filepath.Join(dir, "status"), []byte("enabled\n"), 0o644)
		}
		archs, notes := runnableArchs(dir, ArchX86)
		if tc.err == "" {
			if !slices.Equal(archs, []string{ArchX86, ArchARM}) {
				t.Errorf("%s: architectures %v (%v), want x86_64 and arm64", tc.name, archs, notes)
			}
			continue
		}
		if !slices.Equal(archs, []string{ArchX86}) || !strings.Contains(notes[ArchARM], tc.err) {
			t.Errorf("%s: architectures %v, note %q; want x86_64 only, %q", tc.name, archs, notes[ArchARM], tc.err)
		}
	}
}

// TestDiscoveryRunsForeignArchitectureOnlyWithBinfmt: with a handler for
// aarch64 registered, discovery runs an aarch64 interpreter to learn its
// version, and keeps it only if it really runs.
func TestDiscoveryRunsForeignArchitectureOnlyWithBinfmt(t *testing.T) {
	tr := newTree(t)
	tr.interpFor("runtimes/arm/bin/python3.12", "Python 3.12.7", "arm64")
	tr.write("binfmt_misc/qemu-aarch64", "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\noffset 0\n"+qemuAarch64Magic, 0o644)
	d, err := discover(tr.places(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.archs, []string{ArchX86, ArchARM}) {
		t.Fatalf("architectures %v", d.archs)
	}
	got := d.chosen[key{"python3.12", ArchARM}]
	if emulated(ArchARM) {
		if got == nil || got.Version != "3.12.7" {
			t.Errorf("with qemu registered on this host, the arm64 interpreter: %+v (skipped %v)", got, d.skipped)
		}
		return
	}
	t.Logf("this host cannot run aarch64 executables (no qemu-aarch64 in its binfmt_misc): the interpreter must be skipped")
	if got != nil || len(d.skipped) != 1 || !strings.Contains(d.skipped[0].reason, "exec format error") {
		t.Errorf("chose %+v, skipped %v; want it skipped for exec format error", got, d.skipped)
	}
}

// emulated reports whether this host really runs executables of arch through
// binfmt_misc.
func emulated(arch string) bool {
	archs, _ := runnableArchs("/proc/sys/fs/binfmt_misc", hostArch())
	return slices.Contains(archs, arch)
}

func TestCompareVersions(t *testing.T) {
	ordered := []string{"3.12.0a7", "3.12.0rc1", "3.12.0", "3.12.1", "3.12.10", "3.13.0"}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := compareVersions(ordered[i], ordered[j]); got != want {
				t.Errorf("compareVersions(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestUntrusted(t *testing.T) {
	dir := t.TempDir() // under /tmp: world-writable but sticky
	file := filepath.Join(dir, "python3.12")
	if err := os.WriteFile(file, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if reason := untrusted(file); reason != "" {
		t.Errorf("a file of ours in a directory of ours: %s", reason)
	}
	if err := os.Chmod(file, 0o775); err != nil {
		t.Fatal(err)
	}
	if reason := untrusted(file); !strings.Contains(reason, "writable by other users") {
		t.Errorf("a group-writable file: %q", reason)
	}
	if os.Geteuid() == 0 {
		if err := os.Chmod(file, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		if reason := untrusted(file); !strings.Contains(reason, "belongs to uid 12345") {
			t.Errorf("a directory of another user: %q", reason)
		}
	}
}
