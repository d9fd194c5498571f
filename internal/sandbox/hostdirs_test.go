//go:build linux && cgo

package sandbox

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestHostDirVisibility(t *testing.T) {
	for _, tc := range []struct {
		dir     string
		visible bool
		err     string
	}{
		{"/usr/local/n/versions/node/22.1.0", true, ""},
		{"/usr", true, ""},
		{"/lib64/x", true, ""},
		{"/root/.pyenv/versions/3.12.1", false, ""},
		{"/srv/python", false, ""},
		{"/opt/py313", false, "overlaps /opt"},
		{"/var", false, "overlaps /var/task"},
		{"/var/task/x", false, "overlaps /var/task"},
		{"/tmp/x", false, "overlaps /tmp"},
		{"/etc/python", false, "overlaps /etc"},
		{"/", false, "whole root"},
		{"relative/dir", false, "not an absolute"},
		{"/srv/../opt", false, "not an absolute, clean"},
		{"/usrlocal", false, ""},
	} {
		visible, err := HostDirVisibility(tc.dir)
		if visible != tc.visible || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("HostDirVisibility(%s) = %v, %v; want %v, error with %q", tc.dir, visible, err, tc.visible, tc.err)
		}
	}
}

func TestReadOnlyDirsPlan(t *testing.T) {
	got := readOnlyDirsPlan([]string{"/root/.pyenv/versions/3.13.0", "/srv/a/b", "/root/.pyenv/versions/3.12.1", "/srv/a"})
	want := []string{
		"mkdir", "/root", "0755", "mkdir", "/root/.pyenv", "0755", "mkdir", "/root/.pyenv/versions", "0755",
		"mkdir", "/root/.pyenv/versions/3.12.1", "0755", "bind", "/root/.pyenv/versions/3.12.1", "/root/.pyenv/versions/3.12.1", "ro,nosuid,nodev",
		"mkdir", "/root/.pyenv/versions/3.13.0", "0755", "bind", "/root/.pyenv/versions/3.13.0", "/root/.pyenv/versions/3.13.0", "ro,nosuid,nodev",
		"mkdir", "/srv", "0755", "mkdir", "/srv/a", "0755", "bind", "/srv/a", "/srv/a", "ro,nosuid,nodev",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan:\n%q\nwant\n%q", got, want)
	}
}

// TestNamespaceSandboxReadOnlyDirs runs an interpreter installed outside
// /usr (pyenv's, whose python links libpython from its own prefix) in a
// sandbox that shows its prefix read-only.
func TestNamespaceSandboxReadOnlyDirs(t *testing.T) {
	p := newProvider(t)
	prefix := "/root/.pyenv/versions/3.12.1"
	python := prefix + "/bin/python3.12"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no interpreter outside /usr to run: %v", err)
	}
	script := `import os, sys
print(sys.version.split()[0], sys.prefix)
print(sorted(os.listdir("/root")), sorted(os.listdir("/root/.pyenv/versions")))
try:
    open(sys.prefix + "/x", "w")
except OSError as e:
    print(e.errno)
`
	sb := create(t, p, Spec{ID: "rodirs-test", TaskDir: taskDir(t, "probe.py", script), MemoryMB: 128, ReadOnlyDirs: []string{prefix}})
	out := runToExit(t, sb, Process{Argv: []string{python, "-I", "/var/task/probe.py"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/var/task"})
	if err := sb.ExitError(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := "3.12.1 " + prefix + "\n['.pyenv'] ['3.12.1']\n30\n" // 30: EROFS
	if out != want {
		t.Errorf("output:\n%s\nwant\n%s", out, want)
	}
}
