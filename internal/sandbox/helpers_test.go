package sandbox

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// lineCounter counts the lines a sandbox's runtime writes.
type lineCounter struct {
	mu    sync.Mutex
	lines map[string]int
}

func (c *lineCounter) read(r io.Reader) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		c.mu.Lock()
		c.lines[s.Text()]++
		c.mu.Unlock()
	}
}

func (c *lineCounter) count(line string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines[line]
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
	}
}

// waitStill waits until c's counts of lines stop changing (for 100 ms), and
// returns them.
func waitStill(t *testing.T, c *lineCounter, lines ...string) []int {
	t.Helper()
	var last []int
	waitFor(t, "the output stops", func() bool {
		now := make([]int, len(lines))
		for i, l := range lines {
			now[i] = c.count(l)
		}
		still := last != nil && slices.Equal(now, last)
		last = now
		time.Sleep(100 * time.Millisecond)
		return still
	})
	return last
}

// taskDir returns a new task directory holding file name with content.
func taskDir(t testing.TB, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// create creates a sandbox of p for spec; it is destroyed when the test
// ends.
func create(t testing.TB, p Provider, spec Spec) Sandbox {
	t.Helper()
	sb, err := p.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Destroy() })
	return sb
}

// startPiped starts proc in sb with its output on a pipe, and returns the
// pipe's reading end, closed when the test ends.
func startPiped(t testing.TB, sb Sandbox, proc Process) *os.File {
	t.Helper()
	r, err := startWithPipe(sb, proc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// startWithPipe starts proc in sb with its output on a pipe, and returns
// the pipe's reading end, which the caller closes.
func startWithPipe(sb Sandbox, proc Process) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	proc.Output = w
	err = sb.Start(proc)
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// runToExit starts proc in sb and returns its output once it has exited.
func runToExit(t testing.TB, sb Sandbox, proc Process) string {
	t.Helper()
	out, _ := io.ReadAll(startPiped(t, sb, proc))
	select {
	case <-sb.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the runtime did not exit")
	}
	return string(out)
}

// startTicking starts proc in sb, a runtime that prints "runtime" and has a
// child that prints "child", and counts their lines once both print.
func startTicking(t *testing.T, sb Sandbox, proc Process) *lineCounter {
	t.Helper()
	c := &lineCounter{lines: map[string]int{}}
	go c.read(startPiped(t, sb, proc))
	waitFor(t, "the runtime and its child print", func() bool { return c.count("runtime") > 0 && c.count("child") > 0 })
	return c
}

// runTrue creates a sandbox of p for spec, runs /bin/true in it and waits
// for its end: a cold start. The caller destroys the sandbox.
func runTrue(tb testing.TB, p Provider, spec Spec) Sandbox {
	tb.Helper()
	sb, err := p.Create(context.Background(), spec)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := startWithPipe(sb, Process{Argv: []string{"/bin/true"}, Dir: "/"})
	if err != nil {
		sb.Destroy()
		tb.Fatal(err)
	}
	out.Close()
	<-sb.Exited()
	return sb
}

// settle waits until p's pool of prepared sandboxes is full, so that what
// the provider holds stays put.
func settle(t testing.TB, p *NamespaceProvider) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(p.prepared.ready) < cap(p.prepared.ready); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s, %d of %d sandboxes are prepared", len(p.prepared.ready), cap(p.prepared.ready))
		}
	}
}
