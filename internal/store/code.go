package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// CodeSweepGrace is how long an archive nothing references is kept before
// SweepCode deletes it.
const CodeSweepGrace = time.Hour

// PutCode stores a code archive under its digest (lowercase hex SHA-256 of
// data). Archives are content-addressed: storing the same bytes twice keeps
// one copy. An existing copy older than half of CodeSweepGrace is written
// again, so that a sweep running while the caller saves the record that will
// reference it cannot delete it.
func (s *Store) PutCode(ctx context.Context, digest string, data []byte) error {
	info, err := s.code.GetInfo(ctx, digest)
	switch {
	case err == nil && time.Since(info.ModTime) < CodeSweepGrace/2:
		return nil
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("store: code %s: %w", digest, err)
	}
	_, err = s.code.Put(ctx, jetstream.ObjectMeta{Name: digest}, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("store: put code %s: %w", digest, err)
	}
	return nil
}

// OpenCode returns a reader of the archive stored under digest and its size,
// or ErrNotFound. The caller closes the reader.
func (s *Store) OpenCode(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	obj, err := s.code.Get(ctx, digest)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: get code %s: %w", digest, err)
	}
	info, err := obj.Info()
	if err != nil {
		obj.Close()
		return nil, 0, fmt.Errorf("store: get code %s: %w", digest, err)
	}
	return obj, int64(info.Size), nil
}

// ReadCode returns the whole archive stored under digest, or ErrNotFound.
func (s *Store) ReadCode(ctx context.Context, digest string) ([]byte, error) {
	r, size, err := s.OpenCode(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("store: read code %s: %w", digest, err)
	}
	return data, nil
}

// CodeDigests returns the digest of every stored archive.
func (s *Store) CodeDigests(ctx context.Context) ([]string, error) {
	infos, err := s.code.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: list code: %w", err)
	}
	digests := make([]string, len(infos))
	for i, info := range infos {
		digests[i] = info.Name
	}
	return digests, nil
}

// SweepCode deletes every archive that nothing references (no function, no
// version, no layer version that is not deleted) and that was stored more
// than CodeSweepGrace ago, so an archive being stored for a function that is
// being created right now is never swept. It returns how many it deleted.
func (s *Store) SweepCode(ctx context.Context) (int, error) {
	referenced := map[string]bool{}
	for _, f := range append(s.functions.list(""), s.versions.list("")...) {
		referenced[f.CodeDigest] = true
		for _, l := range f.Layers {
			referenced[l.Digest] = true
		}
	}
	for _, lv := range s.allLayerVersions() {
		if !lv.Deleted {
			referenced[lv.CodeDigest] = true
		}
	}
	infos, err := s.code.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: list code: %w", err)
	}
	deleted := 0
	for _, info := range infos {
		if referenced[info.Name] || time.Since(info.ModTime) < CodeSweepGrace {
			continue
		}
		if err := s.code.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return deleted, fmt.Errorf("store: delete code %s: %w", info.Name, err)
		}
		deleted++
	}
	return deleted, nil
}
