// Package runtimes holds Lamina's managed runtimes, written here: a Python
// runtime (python3.9–python3.13) and a Node.js runtime (nodejs18.x–22.x),
// each a Runtime API client with the handler loading, context object, error
// reporting and logging of AWS's own runtimes. They are embedded in the
// binary, installed once per node under the cache directory and shown to
// functions at /var/runtime. The `provided` runtimes run the function's own
// bootstrap instead.
package runtimes

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/sandbox"
)

//go:embed python/*.py nodejs/*.mjs
var files embed.FS

// Set is the installed runtime files and the host interpreters they run on.
type Set struct {
	root    string            // directory holding python/ and nodejs/
	pythons map[string]string // runtime identifier → interpreter
	node    string            // node interpreter, empty if none
}

// Install writes the embedded runtime files under cacheDir (once per content
// version: an existing copy is reused) and finds the host's interpreters.
func Install(cacheDir string) (*Set, error) {
	sum := sha256.New()
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(path)
		sum.Write([]byte(path))
		sum.Write(data)
		return err
	})
	if err != nil {
		return nil, err
	}
	root := filepath.Join(cacheDir, "runtimes", hex.EncodeToString(sum.Sum(nil))[:16])
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		if err := writeTree(root); err != nil {
			return nil, fmt.Errorf("install runtimes: %w", err)
		}
	}
	s := &Set{root: root, pythons: map[string]string{}, node: findInterpreter("node")}
	for _, id := range lamina.SupportedRuntimes() {
		if fam, _ := lamina.RuntimeFamily(id); fam == lamina.FamilyPython {
			if py := findInterpreter(id); py != "" {
				s.pythons[id] = py
			} else if py := findInterpreter("python3"); py != "" {
				s.pythons[id] = py
			}
		}
	}
	return s, nil
}

// writeTree copies the embedded files into root, atomically: a partly
// written tree is never seen under root's name.
func writeTree(root string) error {
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(root), ".runtimes-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	err = fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == "." {
			return err
		}
		dst := filepath.Join(tmp, path)
		if d.IsDir() {
			return os.Mkdir(dst, 0o755)
		}
		data, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, root); err != nil {
		if _, statErr := os.Stat(root); statErr == nil {
			return nil // another installer got there first
		}
		return err
	}
	return nil
}

// interpreterDirs are where real interpreters live. PATH is not searched: it
// may hold slow shims (pyenv) that re-exec the real interpreter.
var interpreterDirs = []string{"/usr/bin", "/usr/local/bin"}

// findInterpreter returns the real path of an interpreter named name in the
// system directories, or "".
func findInterpreter(name string) string {
	for _, dir := range interpreterDirs {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			continue
		}
		if real, err := filepath.EvalSymlinks(path); err == nil {
			return real
		}
		return path
	}
	return ""
}

// Interpreters describes which host interpreter runs each managed runtime,
// e.g. "python3.12" → "/usr/bin/python3.11", for the startup log.
func (s *Set) Interpreters() map[string]string {
	m := make(map[string]string, len(s.pythons)+3)
	for id, py := range s.pythons {
		m[id] = py
	}
	for _, id := range lamina.SupportedRuntimes() {
		if fam, _ := lamina.RuntimeFamily(id); fam == lamina.FamilyNode && s.node != "" {
			m[id] = s.node
		}
	}
	return m
}

// Dir returns the host directory of a family's runtime files, or "" for the
// provided family, which has none.
func (s *Set) Dir(family string) string {
	switch family {
	case lamina.FamilyPython, lamina.FamilyNode:
		return filepath.Join(s.root, family)
	}
	return ""
}

// Launch is how to start a function's runtime.
type Launch struct {
	Argv []string // Argv[0] as the sandbox shows it
	Env  []string // variables specific to the runtime
}

// Launch returns the command and runtime-specific variables that start fn's
// runtime in a sandbox showing paths. hostTaskDir and hostLayerDirs are where
// the code and layers are on the host, to find a provided runtime's
// bootstrap. A missing interpreter or bootstrap is a *lamina.Error of type
// Runtime.InvalidEntrypoint.
func (s *Set) Launch(fn *lamina.Function, paths sandbox.Paths, hostTaskDir string, hostLayerDirs []string) (Launch, error) {
	runtime := fn.Configuration.Runtime
	switch fn.Family() {
	case lamina.FamilyPython:
		py := s.pythons[runtime]
		if py == "" {
			return Launch{}, invalidEntrypoint("no Python interpreter found for %s", runtime)
		}
		return Launch{
			Argv: []string{py, "-s", paths.RuntimeDir + "/bootstrap.py"},
			Env:  []string{"AWS_EXECUTION_ENV=AWS_Lambda_" + runtime},
		}, nil
	case lamina.FamilyNode:
		if s.node == "" {
			return Launch{}, invalidEntrypoint("no Node.js interpreter found for %s", runtime)
		}
		major := strings.TrimSuffix(strings.TrimPrefix(runtime, "nodejs"), ".x")
		// The heap limit leaves a tenth of the function's memory to the rest of
		// the process, so that Node reports running out of heap itself rather
		// than being killed by the memory limit.
		heapMB := fn.Configuration.MemorySize * 9 / 10
		return Launch{
			Argv: []string{s.node, "--expose-gc", "--max-old-space-size=" + strconv.Itoa(heapMB), paths.RuntimeDir + "/index.mjs"},
			Env: []string{
				"AWS_EXECUTION_ENV=AWS_Lambda_" + runtime,
				"NODE_PATH=" + strings.Join([]string{
					paths.Opt + "/nodejs/node" + major + "/node_modules",
					paths.Opt + "/nodejs/node_modules",
					paths.RuntimeDir + "/node_modules",
				}, ":"),
			},
		}, nil
	case lamina.FamilyProvided:
		if isExecutable(filepath.Join(hostTaskDir, "bootstrap")) {
			return Launch{Argv: []string{paths.TaskRoot + "/bootstrap"}}, nil
		}
		for i := len(hostLayerDirs) - 1; i >= 0; i-- {
			if isExecutable(filepath.Join(hostLayerDirs[i], "bootstrap")) {
				return Launch{Argv: []string{paths.Opt + "/bootstrap"}}, nil
			}
		}
		return Launch{}, invalidEntrypoint("Couldn't find valid bootstrap(s): [%s/bootstrap %s/bootstrap]", paths.TaskRoot, paths.Opt)
	}
	return Launch{}, invalidEntrypoint("unsupported runtime %q", runtime)
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0
}

func invalidEntrypoint(format string, args ...any) error {
	return &EntrypointError{Message: fmt.Sprintf(format, args...)}
}

// EntrypointError says that a function's runtime cannot be started (no
// interpreter, no bootstrap); the caller reports it as
// Runtime.InvalidEntrypoint.
type EntrypointError struct{ Message string }

func (e *EntrypointError) Error() string { return e.Message }
