//go:build linux

package runtimes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBytecodeCache checks that the first request for an interpreter's
// bytecode starts compiling it and gets none, that later ones get the
// compiled file once it is there, that a new cache (a restarted server)
// uses the file at once, and that an interpreter that cannot compile leaves
// the runtime on its source.
func TestBytecodeCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.ReadFile(pythonBootstrap(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bootstrap.py"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	interp := &Interpreter{Path: pythonInterpreter(t), Version: "3.x"}
	c := newBytecodeCache(dir, nil)
	if name := c.file(interp, "/var/runtime"); name != "" {
		t.Fatalf("the first request got %q before anything was compiled", name)
	}
	var name string
	for deadline := time.Now().Add(compileTimeout); name == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the bytecode never became ready")
		}
		name = c.file(interp, "/var/runtime")
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	// The bytecode names its source as the sandbox shows it.
	if !strings.Contains(string(data), "/var/runtime/bootstrap.py") {
		t.Errorf("%s does not name /var/runtime/bootstrap.py", name)
	}
	if other := c.file(interp, "/srv/runtime"); other == name {
		t.Errorf("the bytecode for another runtime directory is the same file %s", name)
	}

	if again := newBytecodeCache(dir, nil).file(interp, "/var/runtime"); again != name {
		t.Errorf("a new cache got %q, want the existing %s at once", again, name)
	}

	broken := &Interpreter{Path: "/bin/false", Version: "3.x"}
	b := c.entry(broken, "/var/runtime")
	<-b.ready
	if name := c.file(broken, "/var/runtime"); name != "" {
		t.Errorf("an interpreter that cannot compile gave %q", name)
	}
}
