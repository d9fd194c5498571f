package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lamina-project/lamina/internal/store"
	"github.com/nats-io/nats.go/jetstream"
)

// Object bodies ("blobs") live in one JetStream stream, in chunks of
// chunkSize bytes (the last may be shorter), chunk n of blob id on subject
// lamina.s3.data.<id>.<n>: a chunk is read by its subject, so a ranged read
// starts at its chunk without reading those before, and a blob is deleted
// by purging its subjects. The stream, its subjects and chunkSize are part
// of the on-disk format.
const (
	dataStream        = "lamina_s3_data"
	dataSubjectPrefix = "lamina.s3.data."
	chunkSize         = 1 << 20
)

// errStorageFull says the data stream is at its size limit.
var errStorageFull = errors.New("s3: object storage is full")

// blobRef names a blob and gives its size.
type blobRef struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
}

// blobStore reads and writes blobs.
type blobStore struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	health  *store.Health
	buffers sync.Pool // of *[]byte, chunkSize each
}

// openBlobs creates (or updates) the data stream.
func openBlobs(ctx context.Context, st *store.Store, maxBytes int64) (*blobStore, error) {
	if maxBytes <= 0 {
		maxBytes = -1
	}
	js := st.JetStream()
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        dataStream,
		Description: "S3 object bodies, in chunks: lamina.s3.data.<blob>.<chunk>",
		Subjects:    []string{dataSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    st.Replicas(),
		MaxBytes:    maxBytes,
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  chunkSize + 1024,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: data stream: %w", st.Health().Check(ctx, err))
	}
	b := &blobStore{js: js, stream: stream, health: st.Health()}
	b.buffers.New = func() any { buf := make([]byte, chunkSize); return &buf }
	return b, nil
}

// newBlobID returns a new blob's id: the time it was made (hex
// nanoseconds, which a sweep reads its age from) and a random part.
func newBlobID() string {
	return fmt.Sprintf("%016x%08x", time.Now().UnixNano(), rand.Uint32())
}

// blobAge returns how long ago the blob id was made.
func blobAge(id string) time.Duration {
	if len(id) < 16 {
		return 0
	}
	ns, err := strconv.ParseInt(id[:16], 16, 64)
	if err != nil {
		return 0
	}
	return time.Since(time.Unix(0, ns))
}

func chunkSubject(id string, n int64) string {
	return dataSubjectPrefix + id + "." + strconv.FormatInt(n, 10)
}

// write stores what r holds, up to its end, as a new blob of at most limit
// bytes (errEntityTooLarge beyond). A blob that could not be written whole
// is deleted.
func (b *blobStore) write(ctx context.Context, r io.Reader, limit int64) (blobRef, error) {
	if err := b.health.Err(); err != nil {
		return blobRef{}, err
	}
	ref := blobRef{ID: newBlobID()}
	bufp := b.buffers.Get().(*[]byte)
	defer b.buffers.Put(bufp)
	buf := *bufp
	for n := int64(0); ; n++ {
		size, err := io.ReadFull(r, buf)
		if size > 0 {
			if ref.Size += int64(size); ref.Size > limit {
				b.remove(ref.ID)
				return blobRef{}, errEntityTooLarge()
			}
			if _, perr := b.js.Publish(ctx, chunkSubject(ref.ID, n), buf[:size]); perr != nil {
				b.remove(ref.ID)
				if store.IsStreamFull(perr) {
					return blobRef{}, errStorageFull
				}
				return blobRef{}, fmt.Errorf("s3: write body: %w", b.health.Check(ctx, perr))
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return ref, nil
		}
		if err != nil {
			b.remove(ref.ID)
			return blobRef{}, err
		}
	}
}

// remove deletes a blob; what fails is left to the sweep.
func (b *blobStore) remove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = b.stream.Purge(ctx, jetstream.WithPurgeSubject(dataSubjectPrefix+id+".>"))
}

// removeAll deletes blobs.
func (b *blobStore) removeAll(refs []blobRef) {
	for _, ref := range refs {
		b.remove(ref.ID)
	}
}

// readAhead is how many chunks a read fetches ahead of what it writes:
// a read holds up to readAhead+1 chunks in memory.
const readAhead = 2

// copyTo writes n bytes from offset off of the concatenation of the blobs
// refs to w, fetching up to readAhead chunks ahead of the one it writes.
func (b *blobStore) copyTo(ctx context.Context, w io.Writer, refs []blobRef, off, n int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		data []byte
		err  error
	}
	chunks := make(chan fetched, readAhead)
	go func() {
		defer close(chunks)
		for _, ref := range refs {
			if n <= 0 {
				return
			}
			if off >= ref.Size {
				off -= ref.Size
				continue
			}
			for chunk := off / chunkSize; n > 0 && chunk*chunkSize < ref.Size; chunk++ {
				msg, err := b.stream.GetLastMsgForSubject(ctx, chunkSubject(ref.ID, chunk))
				if err != nil {
					chunks <- fetched{err: fmt.Errorf("s3: read body %s chunk %d: %w", ref.ID, chunk, b.health.Check(ctx, err))}
					return
				}
				data := msg.Data
				if start := off - chunk*chunkSize; start > 0 {
					data = data[start:]
					off -= start
				}
				if int64(len(data)) > n {
					data = data[:n]
				}
				n -= int64(len(data))
				select {
				case chunks <- fetched{data: data}:
				case <-ctx.Done():
					return
				}
			}
			off = 0
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return c.err
		}
		if _, err := w.Write(c.data); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// reader returns a reader of n bytes from offset off of the blobs refs,
// which a goroutine fills until the reader is closed.
func (b *blobStore) reader(ctx context.Context, refs []blobRef, off, n int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(b.copyTo(ctx, pw, refs, off, n))
	}()
	return pr
}

// ids returns the ids of the blobs the data stream holds.
func (b *blobStore) ids(ctx context.Context) (map[string]bool, error) {
	info, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(dataSubjectPrefix+">"))
	if err != nil {
		return nil, fmt.Errorf("s3: list bodies: %w", b.health.Check(ctx, err))
	}
	ids := map[string]bool{}
	for subject := range info.State.Subjects {
		rest := strings.TrimPrefix(subject, dataSubjectPrefix)
		if id, _, ok := strings.Cut(rest, "."); ok {
			ids[id] = true
		}
	}
	return ids, nil
}
