package sandbox

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// systemDirs are the host's program and library directories that every
// namespace sandbox shows read-only at their own path (those that exist;
// /bin, /lib… are symlinks into /usr on merged-/usr systems).
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}

// sandboxDirs are where a namespace sandbox shows things of its own: the
// function's code, runtime and layers, scratch space, its own /etc, /proc
// and /dev. A host directory under one of them cannot be shown at its own
// path.
var sandboxDirs = []string{"/var/task", "/var/runtime", "/opt", "/tmp", "/etc", "/proc", "/dev"}

// HostDirVisibility says how a namespace sandbox can show the host directory
// dir (absolute, without symlinks) at its own path: visible is true when
// every sandbox shows it already (it is under /usr, /lib…); otherwise an
// error says why it cannot be one of Spec.ReadOnlyDirs. A nil error with
// visible false means it can.
func HostDirVisibility(dir string) (visible bool, err error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return false, fmt.Errorf("%s is not an absolute, clean path", dir)
	}
	if dir == "/" {
		return false, fmt.Errorf("the host's whole root cannot be shown to functions")
	}
	for _, sys := range systemDirs {
		if within(dir, sys) {
			return true, nil
		}
	}
	for _, own := range sandboxDirs {
		if within(dir, own) || within(own, dir) {
			return false, fmt.Errorf("%s overlaps %s, where the sandbox shows its own files", dir, own)
		}
	}
	return false, nil
}

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// readOnlyDirsPlan returns the setup operations that show each of dirs
// read-only at its own path, creating the directories above it in the
// sandbox's root first. A directory under another one of dirs is shown by
// that one.
func readOnlyDirsPlan(dirs []string) []string {
	var plan []string
	made := map[string]bool{}
	var bound []string
	for _, dir := range slices.Sorted(slices.Values(dirs)) {
		if slices.ContainsFunc(bound, func(b string) bool { return within(dir, b) }) {
			continue
		}
		bound = append(bound, dir)
		var parents []string
		for p := filepath.Dir(dir); p != "/" && !made[p]; p = filepath.Dir(p) {
			parents = append(parents, p)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			plan = append(plan, "mkdir", parents[i], "0755")
			made[parents[i]] = true
		}
		plan = append(plan, "mkdir", dir, "0755", "bind", dir, dir, "ro,nosuid,nodev")
		made[dir] = true
	}
	return plan
}
