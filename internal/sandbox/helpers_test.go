package sandbox

import (
	"bufio"
	"io"
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
