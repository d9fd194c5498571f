package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/codezip"
	"github.com/lamina-project/lamina/internal/store"
)

// codeCache unpacks code archives once per node into CacheDir/code/<digest>,
// shared read-only by every environment that runs that code.
type codeCache struct {
	root  string
	store *store.Store

	mu       sync.Mutex
	inflight map[string]*unpacking
}

// unpacking is an archive being unpacked; waiters block on done.
type unpacking struct {
	done chan struct{}
	err  error
}

func newCodeCache(cacheDir string, st *store.Store) *codeCache {
	return &codeCache{root: filepath.Join(cacheDir, "code"), store: st, inflight: map[string]*unpacking{}}
}

// path returns the directory of the unpacked archive digest, unpacking it
// first if this node has not yet. Concurrent callers share one unpacking.
func (c *codeCache) path(ctx context.Context, digest string) (string, error) {
	final := filepath.Join(c.root, digest)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	c.mu.Lock()
	u, busy := c.inflight[digest]
	if !busy {
		u = &unpacking{done: make(chan struct{})}
		c.inflight[digest] = u
	}
	c.mu.Unlock()
	if busy {
		<-u.done
		return final, u.err
	}
	u.err = c.unpack(ctx, digest, final)
	close(u.done)
	c.mu.Lock()
	delete(c.inflight, digest)
	c.mu.Unlock()
	return final, u.err
}

// unpack extracts the archive into a temporary directory and renames it into
// place, so a partly unpacked tree is never seen under its final name.
func (c *codeCache) unpack(ctx context.Context, digest, final string) error {
	data, err := c.store.ReadCode(ctx, digest)
	if err != nil {
		return fmt.Errorf("code %s: %w", digest, err)
	}
	if err := os.MkdirAll(c.root, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(c.root, ".unpack-*")
	if err != nil {
		return err
	}
	if err := codezip.Extract(data, tmp, lamina.MaxUnzippedCodeSize); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("code %s: %w", digest, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		if _, statErr := os.Stat(final); statErr == nil {
			return nil
		}
		return err
	}
	return nil
}
