package runtimes

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/sandbox"
)

// The AWS SDK the managed runtimes offer functions, as Lambda's Python
// runtimes offer boto3 and its Node.js runtimes the AWS SDK for
// JavaScript v3 without the function bundling them. A node takes them from
// a directory the operator gives per family (--sdk), which functions see
// read-only at its own path:
//
//   - python: a directory of packages, as `pip install --target DIR boto3`
//     makes it; without one, the interpreter's own site-packages, which
//     hold boto3 when the operator installed it there (pyenv's 3.11.7 on
//     the reference machine);
//   - nodejs: a directory whose node_modules holds @aws-sdk/*, as
//     `npm install --prefix DIR @aws-sdk/client-s3 …` makes it; without
//     one, functions bundle their own.
//
// As on Lambda, the SDK comes after the function's own code and its
// layers: Python finds it after /var/task and /opt/python (and before the
// interpreter's site-packages), Node.js at the end of NODE_PATH, so a
// function that bundles its own version runs with that one.

// sdkPathVar tells the Python runtime (bootstrap.py) where the SDK is.
const sdkPathVar = "_LAMINA_SDK_PATH"

// sdkProbe is a file each family's SDK directory must have.
var sdkProbe = map[string]string{
	lamina.FamilyPython: "boto3/__init__.py",
	lamina.FamilyNode:   "node_modules/@aws-sdk",
}

// parseSDKs checks the --sdk values, "FAMILY=DIR": a family of managed
// runtimes at most once, and a directory that holds its SDK and that
// sandboxes can show. It returns the directories by family, without
// symlinks.
func parseSDKs(values []string) (map[string]string, error) {
	sdks := map[string]string{}
	for _, v := range values {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("--sdk %q: want FAMILY=DIR", v)
		}
		a := assignment{name, value}
		probe, ok := sdkProbe[a.name]
		switch {
		case !ok:
			return nil, fmt.Errorf("--sdk %s=%s: the family must be %s or %s", a.name, a.value, lamina.FamilyPython, lamina.FamilyNode)
		case sdks[a.name] != "":
			return nil, fmt.Errorf("--sdk: %s is given twice", a.name)
		case !filepath.IsAbs(a.value):
			return nil, fmt.Errorf("--sdk %s=%s: the path must be absolute", a.name, a.value)
		}
		dir, err := filepath.EvalSymlinks(a.value)
		if err != nil {
			return nil, fmt.Errorf("--sdk %s=%s: %w", a.name, a.value, err)
		}
		if _, err := os.Stat(filepath.Join(dir, probe)); err != nil {
			return nil, fmt.Errorf("--sdk %s=%s: the directory has no %s", a.name, a.value, probe)
		}
		if _, err := sandbox.HostDirVisibility(dir); err != nil {
			return nil, fmt.Errorf("--sdk %s=%s: functions cannot be shown it: %w", a.name, a.value, err)
		}
		sdks[a.name] = dir
	}
	return sdks, nil
}

// sdkEnv returns the variables that tell a Python runtime where its SDK
// directory is.
func (s *Set) sdkEnv(family string) []string {
	if dir := s.sdks[family]; dir != "" {
		return []string{sdkPathVar + "=" + dir}
	}
	return nil
}

// sdkNodePath returns the NODE_PATH entries of the Node.js SDK.
func (s *Set) sdkNodePath() []string {
	if dir := s.sdks[lamina.FamilyNode]; dir != "" {
		return []string{filepath.Join(dir, "node_modules")}
	}
	return nil
}

// logSDKs says where functions of each family find the AWS SDK.
func (s *Set) logSDKs(log *slog.Logger) {
	python, node := "the interpreter's own site-packages, if it has boto3", "none: functions bundle their own"
	if dir := s.sdks[lamina.FamilyPython]; dir != "" {
		python = dir
	}
	if dir := s.sdks[lamina.FamilyNode]; dir != "" {
		node = filepath.Join(dir, "node_modules")
	}
	log.Info("AWS SDK offered to functions", "python", python, "nodejs", node)
}
