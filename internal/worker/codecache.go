package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/codezip"
	"github.com/lamina-project/lamina/internal/store"
)

// codeCache unpacks code archives once per node into CacheDir/code/<digest>,
// shared read-only by every environment that runs that code. An archive is
// unpacked whole or not at all: a partly unpacked tree (the disk filled, the
// node crashed) is never seen under its final name and is removed, so the
// next cold start unpacks again once there is space.
type codeCache struct {
	root  string
	store Store

	mu       sync.Mutex
	inflight map[string]*unpacking
}

// unpacking is an archive being unpacked; waiters block on done.
type unpacking struct {
	done chan struct{}
	err  error
}

func newCodeCache(cacheDir string, st Store) *codeCache {
	root := filepath.Join(cacheDir, "code")
	// Trees a crashed node was unpacking.
	partial, _ := filepath.Glob(filepath.Join(root, unpackPattern))
	for _, dir := range partial {
		os.RemoveAll(dir)
	}
	return &codeCache{root: root, store: st, inflight: map[string]*unpacking{}}
}

// unpackPattern names the temporary directories archives are unpacked in.
const unpackPattern = ".unpack-*"

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
// place, so a partly unpacked tree is never seen under its final name. A
// full disk is reported as storage full (*store.UnavailableError).
func (c *codeCache) unpack(ctx context.Context, digest, final string) error {
	data, err := c.store.ReadCode(ctx, digest)
	if err != nil {
		return fmt.Errorf("code %s: %w", digest, err)
	}
	if err := os.MkdirAll(c.root, 0o755); err != nil {
		return diskError(err)
	}
	tmp, err := os.MkdirTemp(c.root, unpackPattern)
	if err != nil {
		return diskError(err)
	}
	if err := codezip.Extract(data, tmp, lamina.MaxUnzippedCodeSize); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("code %s: %w", digest, diskError(err))
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
		return diskError(err)
	}
	return nil
}

// diskError reports a full disk as storage full; other errors unchanged.
func diskError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &store.UnavailableError{Full: true, Err: err}
	}
	return err
}
