package runtimes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// The Python runtime runs from bytecode compiled ahead of time.
//
// Python compiles the script named on its command line at every start (only
// imported modules are cached), and compiling bootstrap.py was most of what
// the runtime added to the interpreter's own start: in a sandbox of the
// 2-core benchmark machine, 6 ms with Debian's Python 3.11 and 8.6 ms with
// pyenv's 3.12 (built without PGO), against 11–13 ms for the interpreter to
// start. So each interpreter compiles it once, into the runtime's directory,
// and later environments run that .pyc (Python runs a .pyc named on its
// command line as it runs a script). AWS's runtime, too, ships its modules
// compiled. The bytecode records the name the sandbox shows bootstrap.py at,
// so that frames (and the runtime, which leaves its own out of stack traces)
// see the same file name either way, and tracebacks find its source.
//
// Compiling takes 20–30 ms of an interpreter's time, so it is done on the
// first launch with each interpreter, in the background: that launch, and
// any before the bytecode is ready, run bootstrap.py itself. The runtime
// directory is named by its content, so the bytecode stays valid for as long
// as the directory exists, across restarts.

// compileTimeout bounds compiling the runtime with one interpreter.
const compileTimeout = 30 * time.Second

// compileScript compiles sys.argv[1] into sys.argv[2], naming the source
// sys.argv[3] in the bytecode. py_compile writes the file atomically.
const compileScript = `import sys, py_compile
py_compile.compile(sys.argv[1], cfile=sys.argv[2], dfile=sys.argv[3], doraise=True)`

// bytecodeCache holds the Python runtime's bytecode, by interpreter and by
// where sandboxes show the runtime's directory.
type bytecodeCache struct {
	dir string // the Python runtime's directory, which holds bootstrap.py
	log *slog.Logger

	mu      sync.Mutex
	entries map[bytecodeKey]*bytecode
}

type bytecodeKey struct {
	interp string // the interpreter's path
	shown  string // the runtime directory as sandboxes show it
}

// bytecode is one compiled bootstrap.py: ready once its file is complete.
type bytecode struct {
	name  string // the file's name in the runtime's directory
	ready chan struct{}
	ok    bool // set before ready is closed: the file exists
}

func newBytecodeCache(dir string, log *slog.Logger) *bytecodeCache {
	if log == nil {
		log = slog.Default()
	}
	return &bytecodeCache{dir: dir, log: log, entries: map[bytecodeKey]*bytecode{}}
}

// file returns the name, in the runtime's directory, of bootstrap.py
// compiled by interp for sandboxes that show that directory at shown; ""
// while it is not ready (the first call starts compiling it) or if it
// cannot be compiled.
func (c *bytecodeCache) file(interp *Interpreter, shown string) string {
	b := c.entry(interp, shown)
	select {
	case <-b.ready:
		if b.ok {
			return b.name
		}
	default:
	}
	return ""
}

// entry returns the bytecode of interp for shown, starting its compilation
// unless its file exists already.
func (c *bytecodeCache) entry(interp *Interpreter, shown string) *bytecode {
	key := bytecodeKey{interp.Path, shown}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.entries[key]; b != nil {
		return b
	}
	sum := sha256.Sum256([]byte(interp.Path + "\x00" + interp.Version + "\x00" + shown))
	b := &bytecode{name: "bootstrap." + hex.EncodeToString(sum[:8]) + ".pyc", ready: make(chan struct{})}
	c.entries[key] = b
	if _, err := os.Stat(filepath.Join(c.dir, b.name)); err == nil {
		b.ok = true
		close(b.ready)
		return b
	}
	go func() {
		defer close(b.ready)
		started := time.Now()
		dst := filepath.Join(c.dir, b.name)
		err := compileBootstrap(interp.Path, filepath.Join(c.dir, "bootstrap.py"), dst, filepath.Join(shown, "bootstrap.py"))
		if err == nil {
			_, err = os.Stat(dst) // an interpreter that ignored -c
		}
		if err != nil {
			c.log.Warn("the Python runtime runs from source: compiling it failed", "interpreter", interp.Path, "err", err)
			return
		}
		b.ok = true
		c.log.Debug("Python runtime compiled", "interpreter", interp.Path, "file", b.name, "took", time.Since(started).Round(time.Millisecond))
	}()
	return b
}

// compileBootstrap compiles the Python file src with the interpreter python
// into dst, recording its name as shownAs. The interpreter runs isolated
// (-I: no environment variables, no user site) and without site (-S), so
// that nothing but the standard library runs unsandboxed.
func compileBootstrap(python, src, dst, shownAs string) error {
	ctx, cancel := context.WithTimeout(context.Background(), compileTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-I", "-S", "-c", compileScript, src, dst, shownAs)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	out := &cappedBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", python, err, out.String())
	}
	return nil
}
