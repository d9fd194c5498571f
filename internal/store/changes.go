package store

import (
	"strings"
	"sync"

	"github.com/lamina-project/lamina"
)

// OnFunctionChange registers f to be called whenever the record of a
// function's $LATEST or of one of its published versions is created,
// replaced or deleted, by this node or, through the store's watch, by any
// other. f gets the function's name and the version ("$LATEST" or a number)
// and reads the record itself: a call may come twice, or after a later
// change's call, so it must depend on what the store holds then, not on the
// order of calls. f runs on the goroutine that applied the change (a write
// of this node, or the watch) and must return quickly.
func (s *Store) OnFunctionChange(f func(function, version string)) {
	s.changes.mu.Lock()
	s.changes.fns = append(s.changes.fns, f)
	s.changes.mu.Unlock()
}

// subscribers are the callbacks of OnFunctionChange.
type subscribers struct {
	mu  sync.Mutex
	fns []func(function, version string)
}

func (c *subscribers) notify(function, version string) {
	c.mu.Lock()
	fns := c.fns
	c.mu.Unlock()
	for _, f := range fns {
		f(function, version)
	}
}

// notifyFunctionChanges has the function and version records report their
// changes to the subscribers. Open calls it before the watches start.
func (s *Store) notifyFunctionChanges() {
	s.functions.changed = func(name string) { s.changes.notify(name, lamina.LatestVersion) }
	s.versions.changed = func(key string) {
		// A version's key is "<function>.<n>"; function names have no dots.
		if i := strings.LastIndexByte(key, '.'); i > 0 {
			s.changes.notify(key[:i], key[i+1:])
		}
	}
}
