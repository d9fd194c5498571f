package runtimes

import (
	"bytes"
	"cmp"
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/sandbox"
)

// Interpreter is a host interpreter that runs a managed runtime.
type Interpreter struct {
	Runtime string // the identifier it runs, e.g. "python3.12"
	Arch    string // "x86_64" or "arm64", from its ELF header
	Path    string // its real path; sandboxes show it at the same path
	Version string // as it reports it, e.g. "3.12.1"
	// Dirs are host directories that sandboxes show read-only for it: its
	// installation prefix, when that is outside /usr.
	Dirs   []string
	Source string // how it was found: discovered, --interpreter, --runtimes-dir
}

// Sources of interpreters.
const (
	sourceDiscovered = "discovered"
	sourceFlag       = "--interpreter"
	sourceDir        = "--runtimes-dir"
)

// Architectures as Lambda names them.
const (
	ArchX86 = "x86_64"
	ArchARM = "arm64"
)

// elfArch maps the ELF machines of Lambda's architectures to their names.
var elfArch = map[elf.Machine]string{elf.EM_X86_64: ArchX86, elf.EM_AARCH64: ArchARM}

// places are where discovery looks for interpreters, in order of preference
// between equal versions.
type places struct {
	// prefixDirs hold one installation prefix per subdirectory, with the
	// interpreter at <prefix>/bin/python3.X or <prefix>/bin/node (pyenv's,
	// nvm's and n's version directories, --runtimes-dir).
	prefixDirs []prefixDir
	// binDirs hold interpreters directly (/usr/local/bin, /usr/bin).
	binDirs []string
	// binfmtDir is where binfmt_misc lists its handlers.
	binfmtDir string
	// hostArch is the architecture the node's CPU runs natively.
	hostArch string
}

// prefixDir is a directory of installation prefixes and where it comes from.
type prefixDir struct {
	path   string
	source string
}

// defaultPlaces are the usual places of interpreters on this host, after the
// operator's runtime directories: pyenv's versions (under $PYENV_ROOT or
// ~/.pyenv), nvm's (under $NVM_DIR or ~/.nvm), n's (under $N_PREFIX or
// /usr/local), /usr/local/bin and /usr/bin. "~" is both $HOME and the home
// directory of the user the server runs as, which differ under sudo
// without -H; other users' homes are never searched.
func defaultPlaces(runtimesDirs []string, hostArch string) places {
	p := places{binDirs: []string{"/usr/local/bin", "/usr/bin"}, binfmtDir: "/proc/sys/fs/binfmt_misc", hostArch: hostArch}
	for _, dir := range runtimesDirs {
		p.prefixDirs = append(p.prefixDirs, prefixDir{dir, sourceDir})
	}
	var homes []string
	if h := os.Getenv("HOME"); h != "" {
		homes = append(homes, h)
	}
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		homes = append(homes, u.HomeDir)
	}
	var dirs []string
	add := func(envVar, below string, underHome ...string) {
		if v := os.Getenv(envVar); v != "" {
			dirs = append(dirs, filepath.Join(v, below))
		}
		for _, h := range homes {
			for _, sub := range underHome {
				dirs = append(dirs, filepath.Join(h, sub, below))
			}
		}
	}
	add("PYENV_ROOT", "versions", ".pyenv")
	add("NVM_DIR", "versions/node", ".nvm")
	add("N_PREFIX", "n/versions/node")
	dirs = append(dirs, "/usr/local/n/versions/node")
	for _, d := range dirs {
		if !slices.ContainsFunc(p.prefixDirs, func(x prefixDir) bool { return x.path == d }) {
			p.prefixDirs = append(p.prefixDirs, prefixDir{d, sourceDiscovered})
		}
	}
	return p
}

// candidate is a file that may be an interpreter.
type candidate struct {
	path   string
	source string
}

// supportedVersions lists the Python minors and Node majors of the managed
// runtimes, e.g. "3.12" and "20".
func supportedVersions() (pythonMinors, nodeMajors []string) {
	for _, id := range lamina.SupportedRuntimes() {
		if v, ok := strings.CutPrefix(id, "python"); ok {
			pythonMinors = append(pythonMinors, v)
		} else if v, ok := strings.CutPrefix(id, "nodejs"); ok {
			nodeMajors = append(nodeMajors, strings.TrimSuffix(v, ".x"))
		}
	}
	return pythonMinors, nodeMajors
}

// versionDirRE matches the names of version directories (pyenv's "3.12.1",
// nvm's "v20.11.0", n's "22.1.0") to skip Node versions Lamina has no
// runtime for without running them.
var versionDirRE = regexp.MustCompile(`^v?(\d+)\.\d+`)

// candidates lists the files in p that may be interpreters of a managed
// runtime: python3.X for the supported minors, node and nodejs.
func (p places) candidates() []candidate {
	minors, majors := supportedVersions()
	var pythonNames []string
	for _, m := range minors {
		pythonNames = append(pythonNames, "python"+m)
	}
	var out []candidate
	addIfFile := func(path, source string) {
		if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() {
			out = append(out, candidate{path, source})
		}
	}
	for _, pd := range p.prefixDirs {
		entries, err := os.ReadDir(pd.path)
		if err != nil {
			continue
		}
		for _, e := range entries {
			bin := filepath.Join(pd.path, e.Name(), "bin")
			for _, name := range pythonNames {
				addIfFile(filepath.Join(bin, name), pd.source)
			}
			if m := versionDirRE.FindStringSubmatch(e.Name()); m == nil || slices.Contains(majors, m[1]) {
				addIfFile(filepath.Join(bin, "node"), pd.source)
			}
		}
	}
	binNames := append(slices.Clip(pythonNames), "node", "nodejs")
	for _, dir := range p.binDirs {
		for _, name := range binNames {
			addIfFile(filepath.Join(dir, name), sourceDiscovered)
		}
	}
	return out
}

// skipped is a candidate discovery did not use, and why.
type skipped struct {
	path, reason string
}

// discovery is the outcome of looking for interpreters.
type discovery struct {
	archs     []string             // architectures the node runs, its own first
	archNotes map[string]string    // why another architecture cannot run
	chosen    map[key]*Interpreter // the interpreter of each runtime and architecture
	skipped   []skipped            // candidates not used
	probed    int                  // interpreters run to learn their version
	took      time.Duration        // time spent
}

// key names a runtime on an architecture.
type key struct{ runtime, arch string }

// discover finds the interpreters of p and of the operator's --interpreter
// settings (runtime identifier → path), runs each once to learn its version,
// and keeps the newest of each runtime and architecture. An explicit
// setting always wins; one that is unusable is an error.
func discover(p places, explicit []assignment) (*discovery, error) {
	started := time.Now()
	d := &discovery{chosen: map[key]*Interpreter{}}
	isExplicit := map[key]bool{}
	d.archs, d.archNotes = runnableArchs(p.binfmtDir, p.hostArch)

	type result struct {
		interp *Interpreter
		reason string
	}
	cands := p.candidates()
	for _, a := range explicit {
		cands = append(cands, candidate{a.value, sourceFlag})
	}
	results := make([]result, len(cands))
	seen := map[string]int{} // real path → index of the first candidate
	sem := make(chan struct{}, probeConcurrency)
	var wg sync.WaitGroup
	for i, c := range cands {
		real, err := filepath.EvalSymlinks(c.path)
		if err != nil {
			results[i].reason = err.Error()
			continue
		}
		if first, ok := seen[real]; ok && c.source != sourceFlag {
			results[i].reason = "same file as " + cands[first].path
			continue
		}
		seen[real] = i
		interp, reason := d.inspect(real, c.source)
		if interp == nil {
			results[i].reason = reason
			continue
		}
		d.probed++
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := probe(interp); err != nil {
				results[i].reason = err.Error()
				return
			}
			results[i].interp = interp
		}()
	}
	wg.Wait()

	explicitAt := len(cands) - len(explicit)
	for i, r := range results {
		if i >= explicitAt {
			a := explicit[i-explicitAt]
			if r.interp == nil {
				return nil, fmt.Errorf("--interpreter %s=%s: %s", a.name, a.value, r.reason)
			}
			if r.interp.Runtime != a.name {
				return nil, fmt.Errorf("--interpreter %s=%s: it is version %s, which runs %s", a.name, a.value, r.interp.Version, r.interp.Runtime)
			}
			k := key{r.interp.Runtime, r.interp.Arch}
			if isExplicit[k] {
				return nil, fmt.Errorf("--interpreter %s given twice for %s", a.name, r.interp.Arch)
			}
			isExplicit[k] = true
			d.chosen[k] = r.interp
			continue
		}
		if r.interp == nil {
			d.skipped = append(d.skipped, skipped{cands[i].path, r.reason})
			continue
		}
		k := key{r.interp.Runtime, r.interp.Arch}
		if cur := d.chosen[k]; cur == nil || compareVersions(r.interp.Version, cur.Version) > 0 {
			d.chosen[k] = r.interp
		}
	}
	d.took = time.Since(started)
	return d, nil
}

// probeConcurrency bounds the interpreters run at once at start.
const probeConcurrency = 4

// probeTimeout bounds how long one interpreter may take to tell its version.
const probeTimeout = 10 * time.Second

// inspect checks a candidate without running it: an ELF executable (pyenv's
// and rbenv's shims and other wrappers are scripts that re-exec the real
// interpreter) for an architecture the node runs, that the sandbox user can
// run, owned by root or the server's user and not replaceable by anyone
// else (it runs unsandboxed at start), installed where sandboxes can show
// it. It returns the interpreter without Runtime and Version, or why not.
func (d *discovery) inspect(path, source string) (*Interpreter, string) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err.Error()
	}
	if !info.Mode().IsRegular() || info.Mode()&0o001 == 0 {
		return nil, "not a file others may execute (the sandbox runs functions as an unprivileged user)"
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil, "not an ELF executable (a shim or wrapper script?)"
	}
	machine, class := f.Machine, f.Class
	f.Close()
	arch, ok := elfArch[machine]
	if !ok || class != elf.ELFCLASS64 {
		return nil, fmt.Sprintf("built for %s, not for a Lambda architecture", machine)
	}
	if !slices.Contains(d.archs, arch) {
		return nil, fmt.Sprintf("built for %s, which this node cannot run: %s", arch, d.archNotes[arch])
	}
	if source != sourceFlag {
		if reason := untrusted(path); reason != "" {
			return nil, reason
		}
	}
	interp := &Interpreter{Arch: arch, Path: path, Source: source}
	prefix := filepath.Dir(path)
	if filepath.Base(prefix) == "bin" {
		prefix = filepath.Dir(prefix)
	}
	visible, err := sandbox.HostDirVisibility(prefix)
	if err != nil {
		return nil, "its installation cannot be shown in sandboxes: " + err.Error()
	}
	if !visible {
		interp.Dirs = []string{prefix}
	}
	return interp, ""
}

// untrusted says why the server should not run the file at path at start,
// or "": the file and every directory above it must belong to root or the
// server's user and be writable by no one else (a world-writable directory
// is fine when sticky, like /tmp: others cannot replace what is in it).
func untrusted(path string) string {
	euid := uint32(os.Geteuid())
	for p := path; ; p = filepath.Dir(p) {
		info, err := os.Lstat(p)
		if err != nil {
			return err.Error()
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return "cannot tell the owner of " + p
		}
		if st.Uid != 0 && st.Uid != euid {
			return fmt.Sprintf("%s belongs to uid %d, neither root nor the server's user", p, st.Uid)
		}
		if info.Mode().Perm()&0o022 != 0 && !(info.IsDir() && info.Mode()&fs.ModeSticky != 0) {
			return p + " is writable by other users"
		}
		if p == "/" {
			return ""
		}
	}
}

// Version lines of the interpreters' --version.
var (
	pythonVersionRE = regexp.MustCompile(`^Python (3\.\d+)\.(\d+\S*)`)
	nodeVersionRE   = regexp.MustCompile(`^v(\d+)\.(\d+\.\d+\S*)`)
)

// probe runs an interpreter once with --version and sets its Version and
// Runtime from the answer.
func probe(interp *Interpreter) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, interp.Path, "--version")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	out := &cappedBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s --version: %w", interp.Path, err)
	}
	text := out.String()
	var runtime string
	if m := pythonVersionRE.FindStringSubmatch(text); m != nil && !strings.Contains(text, "PyPy") {
		runtime, interp.Version = "python"+m[1], m[1]+"."+m[2]
	} else if m := nodeVersionRE.FindStringSubmatch(text); m != nil {
		runtime, interp.Version = "nodejs"+m[1]+".x", m[1]+"."+m[2]
	} else {
		return fmt.Errorf("%s --version said %q, not the version of CPython 3 or Node.js", interp.Path, firstLine(text))
	}
	if _, ok := lamina.RuntimeFamily(runtime); !ok {
		return fmt.Errorf("version %s has no runtime in Lamina", interp.Version)
	}
	interp.Runtime = runtime
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// cappedBuffer keeps the first max bytes written to it and discards the rest.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// versionRE splits a version such as "3.13.0rc1" into numbers and a suffix.
var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(.*)$`)

// compareVersions orders versions such as "3.12.1" and "3.13.0rc1": by
// number, then a release before any suffixed build of the same number
// (pre-releases, "+" development builds), suffixes alphabetically.
func compareVersions(a, b string) int {
	ma, mb := versionRE.FindStringSubmatch(a), versionRE.FindStringSubmatch(b)
	if ma == nil || mb == nil {
		return strings.Compare(a, b)
	}
	for i := 1; i <= 3; i++ {
		x, _ := strconv.Atoi(ma[i])
		y, _ := strconv.Atoi(mb[i])
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	switch {
	case ma[4] == mb[4]:
		return 0
	case ma[4] == "":
		return 1
	case mb[4] == "":
		return -1
	}
	return strings.Compare(ma[4], mb[4])
}

// runnableArchs returns the architectures the node runs, its own first, and
// why it cannot run the others: another architecture needs a binfmt_misc
// handler (qemu-user) for its ELF executables that works inside sandboxes.
func runnableArchs(binfmtDir, hostArch string) ([]string, map[string]string) {
	archs := []string{hostArch}
	notes := map[string]string{}
	for _, arch := range []string{ArchX86, ArchARM} {
		if arch == hostArch {
			continue
		}
		if err := binfmtHandler(binfmtDir, arch); err != nil {
			notes[arch] = err.Error()
		} else {
			archs = append(archs, arch)
		}
	}
	return archs, notes
}

// binfmtHandler checks that binfmt_misc (listed in dir) has an enabled
// handler for ELF executables of arch that sandboxes can use: one with the F
// flag (the kernel opened its interpreter when it was registered, so it
// works in any mount namespace), or whose interpreter is under a directory
// every sandbox shows (/usr…).
func binfmtHandler(dir, arch string) error {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return fmt.Errorf("binfmt_misc is not mounted at %s, so no emulator (qemu-user) is registered for %s", dir, arch)
	}
	var found []string
	for _, e := range entries {
		if e.Name() == "register" || e.Name() == "status" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		h := parseBinfmt(string(data))
		if !h.matchesELF(arch) {
			continue
		}
		switch visible, _ := sandbox.HostDirVisibility(filepath.Dir(h.interpreter)); {
		case !h.enabled:
			found = append(found, e.Name()+" is disabled")
		case !strings.Contains(h.flags, "F") && !visible:
			found = append(found, fmt.Sprintf("%s lacks the F flag and its interpreter %s is not visible in sandboxes", e.Name(), h.interpreter))
		default:
			return nil
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("the binfmt_misc handler for %s cannot be used: %s", arch, strings.Join(found, "; "))
	}
	return fmt.Errorf("no binfmt_misc handler (qemu-user) is registered for %s executables", arch)
}

// binfmtEntry is one binfmt_misc handler as /proc/sys/fs/binfmt_misc/NAME
// shows it.
type binfmtEntry struct {
	enabled     bool
	interpreter string
	flags       string
	offset      int
	magic, mask []byte
}

func parseBinfmt(text string) binfmtEntry {
	var h binfmtEntry
	for _, line := range strings.Split(text, "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "enabled":
			h.enabled = true
		case "interpreter":
			h.interpreter = v
		case "flags:":
			h.flags = v
		case "offset":
			h.offset, _ = strconv.Atoi(v)
		case "magic":
			h.magic = decodeHex(v)
		case "mask":
			h.mask = decodeHex(v)
		}
	}
	return h
}

func decodeHex(s string) []byte {
	b := make([]byte, 0, len(s)/2)
	for i := 0; i+1 < len(s); i += 2 {
		n, err := strconv.ParseUint(s[i:i+2], 16, 8)
		if err != nil {
			return nil
		}
		b = append(b, byte(n))
	}
	return b
}

// matchesELF reports whether the handler takes both static (ET_EXEC) and
// position-independent (ET_DYN) 64-bit little-endian ELF executables of
// arch.
func (h binfmtEntry) matchesELF(arch string) bool {
	var machine elf.Machine
	for m, a := range elfArch {
		if a == arch {
			machine = m
		}
	}
	if len(h.magic) == 0 {
		return false
	}
	for _, typ := range []elf.Type{elf.ET_EXEC, elf.ET_DYN} {
		header := []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), 0,
			0, 0, 0, 0, 0, 0, 0, 0, byte(typ), byte(typ >> 8), byte(machine), byte(machine >> 8)}
		if h.offset < 0 || h.offset+len(h.magic) > len(header) {
			return false
		}
		for i, m := range h.magic {
			mask := byte(0xff)
			if i < len(h.mask) {
				mask = h.mask[i]
			}
			if header[h.offset+i]&mask != m&mask {
				return false
			}
		}
	}
	return true
}
