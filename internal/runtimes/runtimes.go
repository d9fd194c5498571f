// Package runtimes holds Lamina's managed runtimes, written here: a Python
// runtime (python3.9–python3.13) and a Node.js runtime (nodejs18.x–22.x),
// each a Runtime API client with the handler loading, context object, error
// reporting and logging of AWS's own runtimes. They are embedded in the
// binary, installed once per node under the cache directory and shown to
// functions at /var/runtime. The `provided` runtimes run the function's own
// bootstrap instead.
package runtimes

import (
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/sandbox"
)

//go:embed python/*.py nodejs/*.mjs
var files embed.FS

// Set is the installed runtime files and the host interpreters they run on.
type Set struct {
	root      string               // directory holding python/ and nodejs/
	archs     []string             // architectures the node runs, its own first
	archNotes map[string]string    // why it cannot run another architecture
	interps   map[key]*Interpreter // the interpreter of each runtime and architecture
	mapped    map[string]string    // --runtime-map: runtime → the runtime that runs it
	sdks      map[string]string    // --sdk: family → directory
	discovery *discovery
	bytecode  *bytecodeCache // the Python runtime compiled by each interpreter
}

// Options say where a node finds interpreters beyond the usual places and
// which runtimes it substitutes. Each is the values of a server flag.
type Options struct {
	// Interpreters are --interpreter values, "python3.13=/opt/python/bin/python3.13":
	// the interpreter of a runtime, whatever discovery finds.
	Interpreters []string
	// Dirs are --runtimes-dir values: directories holding one installation
	// per subdirectory, with the interpreter at bin/python3.X or bin/node.
	Dirs []string
	// Map are --runtime-map values, "python3.13=python3.12": run functions of
	// the first runtime on the second's interpreter.
	Map []string
	// SDKs are --sdk values, "python=/srv/sdk/python": the AWS SDK the
	// runtimes of a family offer functions (sdk.go).
	SDKs []string
	// Logger receives what goes wrong later, such as an interpreter that
	// cannot compile the Python runtime; nil means slog.Default().
	Logger *slog.Logger
}

// Install writes the embedded runtime files under cacheDir (once per content
// version: an existing copy is reused) and finds the host's interpreters.
func Install(cacheDir string, opts Options) (*Set, error) {
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
	return newSet(root, defaultPlaces(opts.Dirs, hostArch()), opts)
}

// hostArch is the architecture of this machine, as Lambda names it.
func hostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return ArchX86
	case "arm64":
		return ArchARM
	}
	return runtime.GOARCH
}

// newSet discovers the interpreters of p and applies the operator's options.
func newSet(root string, p places, opts Options) (*Set, error) {
	explicit, err := parseAssignments("--interpreter", opts.Interpreters, false)
	if err != nil {
		return nil, err
	}
	maps, err := parseAssignments("--runtime-map", opts.Map, true)
	if err != nil {
		return nil, err
	}
	d, err := discover(p, explicit)
	if err != nil {
		return nil, err
	}
	sdks, err := parseSDKs(opts.SDKs)
	if err != nil {
		return nil, err
	}
	s := &Set{root: root, archs: d.archs, archNotes: d.archNotes, interps: d.chosen, mapped: map[string]string{}, sdks: sdks, discovery: d,
		bytecode: newBytecodeCache(filepath.Join(root, lamina.FamilyPython), opts.Logger)}
	for _, m := range maps {
		if !slices.ContainsFunc(s.archs, func(arch string) bool { return s.interps[key{m.value, arch}] != nil }) {
			return nil, fmt.Errorf("--runtime-map %s=%s: this node has no interpreter for %s", m.name, m.value, m.value)
		}
		s.mapped[m.name] = m.value
	}
	return s, nil
}

// assignment is one NAME=VALUE of a repeatable flag.
type assignment struct{ name, value string }

// parseAssignments parses the values of --interpreter (runtime=path) or, with
// mapping, --runtime-map (runtime=runtime). Every name is a Python or
// Node.js runtime identifier; a map's value is another of the same family
// that is not mapped itself, and a runtime is mapped at most once.
func parseAssignments(flag string, values []string, mapping bool) ([]assignment, error) {
	syntax := "RUNTIME=PATH"
	if mapping {
		syntax = "RUNTIME=RUNTIME"
	}
	var out []assignment
	for _, v := range values {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("%s %q: want %s", flag, v, syntax)
		}
		family, ok := lamina.RuntimeFamily(name)
		if !ok || family == lamina.FamilyProvided {
			return nil, fmt.Errorf("%s %s: %s is not a Python or Node.js runtime of Lamina (%s)", flag, v, name, strings.Join(managedRuntimes(), ", "))
		}
		if mapping {
			switch to, _ := lamina.RuntimeFamily(value); {
			case to != family:
				return nil, fmt.Errorf("%s %s: %s is not a %s runtime of Lamina", flag, v, value, family)
			case value == name:
				return nil, fmt.Errorf("%s %s: a runtime cannot be mapped to itself", flag, v)
			case slices.ContainsFunc(out, func(a assignment) bool { return a.name == name }):
				return nil, fmt.Errorf("%s: %s is mapped twice", flag, name)
			}
		} else if !filepath.IsAbs(value) {
			return nil, fmt.Errorf("%s %s: the path must be absolute", flag, v)
		}
		out = append(out, assignment{name, value})
	}
	if mapping {
		for _, a := range out {
			if slices.ContainsFunc(out, func(b assignment) bool { return b.name == a.value }) {
				return nil, fmt.Errorf("%s %s=%s: %s is mapped itself; map to a runtime that runs on its own", flag, a.name, a.value, a.value)
			}
		}
	}
	return out, nil
}

// managedRuntimes lists the Python and Node.js runtime identifiers, in
// version order.
func managedRuntimes() []string {
	var ids []string
	for _, id := range sortedRuntimes() {
		if fam, _ := lamina.RuntimeFamily(id); fam != lamina.FamilyProvided {
			ids = append(ids, id)
		}
	}
	return ids
}

// sortedRuntimes lists every runtime identifier by family, then version
// (python3.9 before python3.10).
func sortedRuntimes() []string {
	ids := lamina.SupportedRuntimes()
	number := func(id string) int {
		digits := strings.TrimLeftFunc(id, func(r rune) bool { return r < '0' || r > '9' })
		if _, minor, ok := strings.Cut(digits, "."); ok && strings.HasPrefix(id, "python") {
			digits = minor
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(digits, ".x"))
		return n
	}
	slices.SortFunc(ids, func(a, b string) int {
		fa, _ := lamina.RuntimeFamily(a)
		fb, _ := lamina.RuntimeFamily(b)
		return cmp.Or(strings.Compare(fa, fb), cmp.Compare(number(a), number(b)), strings.Compare(a, b))
	})
	return ids
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

// Architecture returns the architecture of fn: x86_64 unless it says
// otherwise.
func Architecture(fn *lamina.Function) string {
	if a := fn.Configuration.Architectures; len(a) > 0 {
		return a[0]
	}
	return ArchX86
}

// Runs returns the runtime identifier that really runs functions of
// runtime: the one an operator mapped it to, or itself.
func (s *Set) Runs(runtime string) string {
	if to, ok := s.mapped[runtime]; ok {
		return to
	}
	return runtime
}

// interpreter returns the interpreter that runs runtime on arch, or nil.
func (s *Set) interpreter(runtime, arch string) *Interpreter {
	return s.interps[key{s.Runs(runtime), arch}]
}

// runsArch reports whether the node runs executables of arch.
func (s *Set) runsArch(arch string) bool { return slices.Contains(s.archs, arch) }

// UnavailableError says that the node cannot run a runtime or an
// architecture, naming what it has.
type UnavailableError struct{ Message string }

func (e *UnavailableError) Error() string { return e.Message }

// Check returns nil when the node runs functions of runtime (a supported
// identifier) on arch, else an *UnavailableError that names what it runs.
func (s *Set) Check(runtime, arch string) error {
	if !s.runsArch(arch) {
		return &UnavailableError{Message: fmt.Sprintf("This Lamina node cannot run %s functions: %s. It runs %s.",
			arch, s.archNotes[arch], strings.Join(s.archs, ", "))}
	}
	if s.runs(runtime, arch) {
		return nil
	}
	why := "it has no " + interpreterName(runtime) + " interpreter"
	if to, ok := s.mapped[runtime]; ok {
		why = fmt.Sprintf("it maps %s to %s, which has no interpreter for %s", runtime, to, arch)
	}
	return &UnavailableError{Message: fmt.Sprintf("The runtime parameter of %s is not available on this Lamina node for %s: %s. Runtimes it runs for %s: %s. "+
		"An operator can add an interpreter (--interpreter, --runtimes-dir) or map the runtime to one the node has (--runtime-map).",
		runtime, arch, why, arch, strings.Join(s.runnable(arch), ", "))}
}

// runs reports whether the node runs functions of runtime on arch, an
// architecture it runs.
func (s *Set) runs(runtime, arch string) bool {
	fam, _ := lamina.RuntimeFamily(runtime)
	return fam == lamina.FamilyProvided || s.interpreter(runtime, arch) != nil
}

// interpreterName names the interpreter of a managed runtime, e.g.
// "Python 3.12", "Node.js 22".
func interpreterName(runtime string) string {
	if v, ok := strings.CutPrefix(runtime, "python"); ok {
		return "Python " + v
	}
	return "Node.js " + strings.TrimSuffix(strings.TrimPrefix(runtime, "nodejs"), ".x")
}

// runnable lists the runtimes the node runs on arch, in version order.
func (s *Set) runnable(arch string) []string {
	var ids []string
	for _, id := range sortedRuntimes() {
		if s.runs(id, arch) {
			ids = append(ids, id)
		}
	}
	return ids
}

// ReadOnlyDirs returns the host directories that a sandbox shows read-only
// for fn's interpreter (see sandbox.Spec).
func (s *Set) ReadOnlyDirs(fn *lamina.Function) []string {
	var dirs []string
	if interp := s.interpreter(fn.Configuration.Runtime, Architecture(fn)); interp != nil {
		dirs = interp.Dirs
	}
	if sdk := s.sdks[fn.Family()]; sdk != "" {
		dirs = append(slices.Clip(dirs), sdk)
	}
	return dirs
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
// bootstrap. A missing interpreter or bootstrap, or an architecture the node
// cannot run, is an *EntrypointError.
func (s *Set) Launch(fn *lamina.Function, paths sandbox.Paths, hostTaskDir string, hostLayerDirs []string) (Launch, error) {
	runtime, arch := fn.Configuration.Runtime, Architecture(fn)
	if !s.runsArch(arch) {
		return Launch{}, invalidEntrypoint("this node cannot run %s functions: %s", arch, s.archNotes[arch])
	}
	family := fn.Family()
	var interp *Interpreter
	if family == lamina.FamilyPython || family == lamina.FamilyNode {
		if interp = s.interpreter(runtime, arch); interp == nil {
			return Launch{}, invalidEntrypoint("this node has no %s interpreter for %s (%s)", interpreterName(s.Runs(runtime)), runtime, arch)
		}
	}
	switch family {
	case lamina.FamilyPython:
		script := paths.RuntimeDir + "/bootstrap.py"
		if name := s.bytecode.file(interp, paths.RuntimeDir); name != "" {
			script = paths.RuntimeDir + "/" + name
		}
		return Launch{
			Argv: []string{interp.Path, "-s", script},
			Env:  append([]string{"AWS_EXECUTION_ENV=AWS_Lambda_" + runtime}, s.sdkEnv(family)...),
		}, nil
	case lamina.FamilyNode:
		major := strings.TrimSuffix(strings.TrimPrefix(runtime, "nodejs"), ".x")
		// The heap limit leaves a tenth of the function's memory to the rest of
		// the process, so that Node reports running out of heap itself rather
		// than being killed by the memory limit.
		heapMB := fn.Configuration.MemorySize * 9 / 10
		return Launch{
			Argv: []string{interp.Path, "--expose-gc", "--max-old-space-size=" + strconv.Itoa(heapMB), paths.RuntimeDir + "/index.mjs"},
			Env: []string{
				"AWS_EXECUTION_ENV=AWS_Lambda_" + runtime,
				"NODE_PATH=" + strings.Join(append([]string{
					paths.Opt + "/nodejs/node" + major + "/node_modules",
					paths.Opt + "/nodejs/node_modules",
					paths.RuntimeDir + "/node_modules",
				}, s.sdkNodePath()...), ":"),
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

// ReadAtStart reports whether the interpreter of family reads the variable
// name when it starts (the dynamic loader, the C library, the interpreter
// itself), so that a runtime started ahead of its function
// (sandbox.Prestart) would not honour the function's own value.
func ReadAtStart(family, name string) bool {
	prefixes := []string{"LD_", "LC_", "LANG", "GLIBC_", "MALLOC_", "TZ"}
	switch family {
	case lamina.FamilyPython:
		prefixes = append(prefixes, "PYTHON")
	case lamina.FamilyNode:
		prefixes = append(prefixes, "NODE_", "UV_", "OPENSSL_", "SSL_CERT_")
	}
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
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

// Description is what a node runs, as GET /_lamina/runtimes answers and
// `lamina runtimes` shows.
type Description struct {
	// Architectures are those the node runs, its own first.
	Architectures []string
	// Unavailable says why the node cannot run other architectures.
	UnavailableArchitectures map[string]string `json:",omitempty"`
	// Runtimes has one entry per runtime and architecture the node runs,
	// and one without Architecture for each runtime it cannot run at all.
	Runtimes []RuntimeDescription
}

// RuntimeDescription is one runtime on one architecture.
type RuntimeDescription struct {
	Runtime      string
	Architecture string `json:",omitempty"`
	// MappedTo is the runtime that really runs it (--runtime-map).
	MappedTo    string `json:",omitempty"`
	Interpreter string `json:",omitempty"` // host path
	Version     string `json:",omitempty"` // the interpreter's
	Source      string `json:",omitempty"` // discovered, --interpreter, --runtimes-dir
	// Unavailable says why the node cannot run it, on no architecture.
	Unavailable string `json:",omitempty"`
}

// Describe returns what the node runs.
func (s *Set) Describe() Description {
	d := Description{Architectures: s.archs, Runtimes: []RuntimeDescription{}}
	if len(s.archNotes) > 0 {
		d.UnavailableArchitectures = s.archNotes
	}
	for _, id := range sortedRuntimes() {
		n := len(d.Runtimes)
		for _, arch := range s.archs {
			if !s.runs(id, arch) {
				continue
			}
			rd := RuntimeDescription{Runtime: id, Architecture: arch}
			if to, ok := s.mapped[id]; ok {
				rd.MappedTo = to
			}
			if interp := s.interpreter(id, arch); interp != nil {
				rd.Interpreter, rd.Version, rd.Source = interp.Path, interp.Version, interp.Source
			}
			d.Runtimes = append(d.Runtimes, rd)
		}
		if len(d.Runtimes) == n {
			why := "no " + interpreterName(id) + " interpreter"
			if to, ok := s.mapped[id]; ok {
				why = fmt.Sprintf("mapped to %s, which has no interpreter", to)
			}
			d.Runtimes = append(d.Runtimes, RuntimeDescription{Runtime: id, Unavailable: why})
		}
	}
	return d
}

// Log writes what discovery found to log: a summary line, one line per
// runtime at debug level and the candidates it skipped, with the reason.
func (s *Set) Log(log *slog.Logger) {
	d := s.discovery
	for _, sk := range d.skipped {
		log.Debug("interpreter skipped", "path", sk.path, "reason", sk.reason)
	}
	var runs, unavailable []string
	for _, rd := range s.Describe().Runtimes {
		switch {
		case rd.Unavailable != "":
			unavailable = append(unavailable, rd.Runtime)
		case rd.Interpreter != "":
			log.Debug("managed runtime", "runtime", rd.Runtime, "arch", rd.Architecture, "interpreter", rd.Interpreter,
				"version", rd.Version, "source", rd.Source, "mapped_to", rd.MappedTo)
			fallthrough
		default:
			runs = append(runs, rd.Runtime+"/"+rd.Architecture)
		}
	}
	for from, to := range s.mapped {
		log.Info("runtime mapped", "runtime", from, "runs_on", to)
	}
	log.Info("runtimes", "runs", strings.Join(runs, " "), "unavailable", strings.Join(unavailable, " "),
		"architectures", strings.Join(s.archs, " "), "interpreters_probed", d.probed, "discovery", d.took.Round(time.Microsecond))
	s.logSDKs(log)
}
