package worker

import (
	"sync"

	"github.com/lamina-project/lamina"
)

// streamGuard passes a streamed response on to an invocation's
// lamina.ResponseStream while the invocation lasts: once it has ended (the
// runtime answered, timed out or crashed) nothing more reaches the caller,
// even from a Runtime API handler still reading the runtime's response.
// After the caller's stream failed (the caller left) the rest is dropped.
type streamGuard struct {
	mu      sync.Mutex
	to      lamina.ResponseStream
	started bool
	failed  bool
	ended   bool
}

func (g *streamGuard) start(contentType string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.ended && !g.started {
		g.started = true
		g.to.Start(contentType)
	}
}

func (g *streamGuard) write(chunk []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended || g.failed || !g.started || len(chunk) == 0 {
		return
	}
	if _, err := g.to.Write(chunk); err != nil {
		g.failed = true
	}
}

// end closes the guard and reports whether anything was streamed.
func (g *streamGuard) end() (started bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ended = true
	return g.started
}
