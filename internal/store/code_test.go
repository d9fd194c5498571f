package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// putConcurrently has n callers put archives at once, the archive of
// caller i being archive(i), and returns each one's error.
func putConcurrently(st *Store, n int, archive func(i int) (digest string, data []byte)) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			digest, data := archive(i)
			errs[i] = st.PutCode(context.Background(), digest, data)
		})
	}
	wg.Wait()
	return errs
}

// storedChunkSets counts the archives whose chunks the code stream holds,
// described or not.
func storedChunkSets(t *testing.T, st *Store) int {
	t.Helper()
	stream, err := st.codeStream(t.Context())
	must(t, err)
	si, err := stream.Info(t.Context(), jetstream.WithSubjectFilter(codeChunkSubject(">")))
	must(t, err)
	return len(si.State.Subjects)
}

// Twenty uploads of one 8 MB archive at once (twenty CreateFunction calls
// with the same zip) all succeed, and the archive is stored once.
func TestConcurrentPutsOfOneArchiveStoreItOnce(t *testing.T) {
	st := openTestStore(t, Options{})
	data := random(8 << 20)
	errs := putConcurrently(st, 20, func(int) (string, []byte) { return "same", data })
	for i, err := range errs {
		if err != nil {
			t.Errorf("put %d: %v", i, err)
		}
	}
	got, err := st.ReadCode(t.Context(), "same")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the archive: %d bytes, %v", len(got), err)
	}
	if n := storedChunkSets(t, st); n != 1 {
		t.Errorf("the code stream holds the chunks of %d archives, want 1", n)
	}
}

// Twenty uploads of different 8 MB archives at once all succeed: the puts
// in flight together stay within what JetStream takes in at once.
func TestConcurrentPutsOfManyArchivesSucceed(t *testing.T) {
	st := openTestStore(t, Options{})
	data := random(8 << 20)
	archive := func(i int) (string, []byte) {
		// Each its own bytes, made as it is put.
		d := bytes.Clone(data)
		copy(d, fmt.Sprintf("%08d", i))
		return fmt.Sprintf("archive-%d", i), d
	}
	errs := putConcurrently(st, 20, archive)
	for i, err := range errs {
		if err != nil {
			t.Errorf("put %d: %v", i, err)
		}
	}
	if n := storedChunkSets(t, st); n != 20 {
		t.Errorf("the code stream holds the chunks of %d archives, want 20", n)
	}
}

// When a put fails, no concurrent caller of the same archive is told it
// succeeded, and nothing readable is left.
func TestFailedPutOfOneArchiveIsNoOnesSuccess(t *testing.T) {
	st := openTestStore(t, Options{CodeMaxBytes: 1 << 20})
	data := random(2 << 20)
	errs := putConcurrently(st, 8, func(int) (string, []byte) { return "too-big", data })
	for i, err := range errs {
		if !errors.Is(err, ErrCodeStorageExceeded) {
			t.Errorf("put %d of an archive over the limit: %v, want ErrCodeStorageExceeded", i, err)
		}
	}
	if _, _, err := st.OpenCode(t.Context(), "too-big"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the failed archive: %v, want ErrNotFound", err)
	}
}

// A put waits for the put of the same archive before it, and for room in
// CodePutBudget. A caller that gives up meanwhile gets its context's error
// and leaves nothing stored; the others go on once it is their turn.
func TestPutCodeWaitsItsTurn(t *testing.T) {
	st := openTestStore(t, Options{})
	data := random(1 << 20)
	// put starts a put of data once waiting says it waits, and returns
	// what it returned.
	put := func(ctx context.Context, waiting func() bool) <-chan error {
		done := make(chan error, 1)
		go func() { done <- st.PutCode(ctx, "waits", data) }()
		for !waiting() {
			select {
			case err := <-done:
				t.Fatalf("PutCode returned %v without waiting its turn", err)
			case <-time.After(time.Millisecond):
			}
		}
		return done
	}
	stored := func() bool {
		_, _, err := st.OpenCode(t.Context(), "waits")
		return err == nil
	}

	// Another put of the archive under way (the test holds its lock).
	unlock, err := st.codePuts.lock(t.Context(), "waits")
	must(t, err)
	behind := func() bool {
		st.codePuts.mu.Lock()
		defer st.codePuts.mu.Unlock()
		return st.codePuts.locks["waits"].users == 2
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := put(ctx, behind)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || stored() {
		t.Errorf("a put that gave up behind another: %v, stored %v; want context.Canceled, nothing stored", err, stored())
	}
	done = put(t.Context(), behind)
	unlock()
	if err := <-done; err != nil || !stored() {
		t.Errorf("a put behind another, once that one ended: %v, stored %v", err, stored())
	}
	must(t, st.code.Delete(t.Context(), "waits"))

	// The budget spent, but for a byte: a waiting put makes TryAcquire of
	// that byte fail (waiters are served first).
	must(t, st.codePutBudget.Acquire(t.Context(), CodePutBudget-1))
	overBudget := func() bool {
		if st.codePutBudget.TryAcquire(1) {
			st.codePutBudget.Release(1)
			return false
		}
		return true
	}
	ctx, cancel = context.WithCancel(t.Context())
	done = put(ctx, overBudget)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || stored() {
		t.Errorf("a put that gave up waiting for the budget: %v, stored %v; want context.Canceled, nothing stored", err, stored())
	}
	done = put(t.Context(), overBudget)
	st.codePutBudget.Release(CodePutBudget - 1)
	if err := <-done; err != nil || !stored() {
		t.Errorf("a put that waited for the budget, once there was room: %v, stored %v", err, stored())
	}
	if len(st.codePuts.locks) != 0 {
		t.Errorf("%d archives' locks kept after every put ended", len(st.codePuts.locks))
	}
}
