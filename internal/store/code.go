package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// CodeSweepGrace is how long an archive nothing references is kept before
// SweepCode deletes it.
const CodeSweepGrace = time.Hour

// CodePutBudget bounds the bytes of archives being written to the code store
// at once; an archive larger than the whole budget is written alone. The
// object store publishes an archive's chunks without waiting for each, and
// JetStream drops what arrives beyond 128 MiB queued for one stream, so that
// uploads at once must stay below that.
const CodePutBudget = 64 << 20

// PutCode stores a code archive under its digest (lowercase hex SHA-256 of
// data). Archives are content-addressed: storing the same bytes twice keeps
// one copy. An existing copy older than half of CodeSweepGrace has its
// time renewed, so that a sweep running while the caller saves the record
// that will reference it cannot delete it.
//
// An archive is stored whole or not at all: a put that failed half-way is
// removed (or, if storage fails before it can be, found incomplete and
// replaced by the next put). When the code store is at its size limit it
// returns ErrCodeStorageExceeded.
//
// Puts of one archive run one after the other, each with its caller's
// context: the first stores it, and those that waited find it stored. A put
// that fails fails only its own caller; the next one tries again. Puts of
// different archives share CodePutBudget.
func (s *Store) PutCode(ctx context.Context, digest string, data []byte) error {
	if err := s.health.Err(); err != nil {
		return err
	}
	unlock, err := s.codePuts.lock(ctx, digest)
	if err != nil {
		return err
	}
	defer unlock()
	info, err := s.code.GetInfo(ctx, digest)
	switch {
	case err == nil:
		complete, err := s.codeComplete(ctx, info)
		if err != nil {
			return err
		}
		if complete {
			if time.Since(info.ModTime) < CodeSweepGrace/2 {
				return nil
			}
			if err := s.code.UpdateMeta(ctx, digest, info.ObjectMeta); err != nil {
				return s.codeError(ctx, err, "store: renew code %s", digest)
			}
			return nil
		}
		if err := s.code.Delete(ctx, digest); err != nil {
			return s.codeError(ctx, err, "store: delete incomplete code %s", digest)
		}
	case !errors.Is(err, jetstream.ErrObjectNotFound):
		return s.codeError(ctx, err, "store: code %s", digest)
	}
	weight := min(int64(len(data)), CodePutBudget)
	if err := s.codePutBudget.Acquire(ctx, weight); err != nil {
		return err
	}
	info, err = s.code.Put(ctx, jetstream.ObjectMeta{Name: digest}, bytes.NewReader(data))
	s.codePutBudget.Release(weight)
	if err == nil {
		var complete bool
		if complete, err = s.codeComplete(ctx, info); err == nil && !complete {
			err = fmt.Errorf("%w: stored incomplete", ErrCodeStorageExceeded)
		}
	}
	if err != nil {
		// The description may have been stored without all of the chunks (a
		// stream at its size limit refuses a chunk but takes the smaller
		// description after it): never leave it to be read.
		_ = s.code.Delete(context.WithoutCancel(ctx), digest)
		return s.codeError(ctx, err, "store: put code %s", digest)
	}
	return nil
}

// codeComplete reports whether every chunk of the archive info describes
// is stored.
func (s *Store) codeComplete(ctx context.Context, info *jetstream.ObjectInfo) (bool, error) {
	subject := codeChunkSubject(info.NUID)
	stream, err := s.codeStream(ctx)
	if err != nil {
		return false, err
	}
	si, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return false, s.codeError(ctx, err, "store: code %s", info.Name)
	}
	return si.State.Subjects[subject] == uint64(info.Chunks), nil
}

// codeStream returns the stream behind the code store.
func (s *Store) codeStream(ctx context.Context) (jetstream.Stream, error) {
	stream, err := s.js.Stream(ctx, "OBJ_"+codeBucket)
	if err != nil {
		return nil, s.codeError(ctx, err, "store: code stream")
	}
	return stream, nil
}

// codeChunkSubject is the subject of the chunks of an archive stored under
// nuid: the object store's layout.
func codeChunkSubject(nuid string) string { return "$O." + codeBucket + ".C." + nuid }

// codeError gives an error of the code store its context: a store at its
// size limit becomes ErrCodeStorageExceeded, storage failures
// *UnavailableError.
func (s *Store) codeError(ctx context.Context, err error, format string, args ...any) error {
	if IsStreamFull(err) {
		err = fmt.Errorf("%w: %w", ErrCodeStorageExceeded, err)
	}
	return wrapErr(s.health, ctx, err, format, args...)
}

// OpenCode returns a reader of the archive stored under digest and its size,
// or ErrNotFound. The caller closes the reader.
func (s *Store) OpenCode(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	obj, err := s.code.Get(ctx, digest)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, s.codeError(ctx, err, "store: get code %s", digest)
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
	for _, f := range append(s.functions.list("", nil), s.versions.list("", nil)...) {
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
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, s.codeError(ctx, err, "store: list code")
	}
	deleted := 0
	for _, info := range infos {
		if referenced[info.Name] || time.Since(info.ModTime) < CodeSweepGrace {
			continue
		}
		if err := s.code.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return deleted, s.codeError(ctx, err, "store: delete code %s", info.Name)
		}
		deleted++
	}
	n, err := s.sweepChunks(ctx, infos)
	return deleted + n, err
}

// sweepChunks deletes the chunks that no archive description names and
// that were stored more than CodeSweepGrace ago: what puts that failed
// half-way left when storage failed before they could delete them. It
// returns how many archives' chunks it deleted.
func (s *Store) sweepChunks(ctx context.Context, infos []*jetstream.ObjectInfo) (int, error) {
	named := map[string]bool{}
	for _, info := range infos {
		named[codeChunkSubject(info.NUID)] = true
	}
	stream, err := s.codeStream(ctx)
	if err != nil {
		return 0, err
	}
	si, err := stream.Info(ctx, jetstream.WithSubjectFilter(codeChunkSubject(">")))
	if err != nil {
		return 0, s.codeError(ctx, err, "store: list code chunks")
	}
	deleted := 0
	for subject := range si.State.Subjects {
		if named[subject] {
			continue
		}
		last, err := stream.GetLastMsgForSubject(ctx, subject)
		if err != nil || time.Since(last.Time) < CodeSweepGrace {
			continue // deleted meanwhile, or a put still running
		}
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			return deleted, s.codeError(ctx, err, "store: delete code chunks %s", subject)
		}
		deleted++
	}
	return deleted, nil
}

// keyedLocks are mutexes by key, each waited for until a context ends.
type keyedLocks struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	held  chan struct{} // holds a value while locked
	users int           // holders and waiters: the lock is forgotten at 0
}

// lock locks key, or returns ctx's error if it ends first. The caller calls
// unlock once done.
func (k *keyedLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{held: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	select {
	case l.held <- struct{}{}:
		return func() {
			<-l.held
			k.leave(key, l)
		}, nil
	case <-ctx.Done():
		k.leave(key, l)
		return nil, ctx.Err()
	}
}

func (k *keyedLocks) leave(key string, l *keyedLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.users--; l.users == 0 {
		delete(k.locks, key)
	}
}
