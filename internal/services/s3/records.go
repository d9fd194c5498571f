package s3

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/store"
)

// bucketRecord is a bucket.
type bucketRecord struct {
	Name    string
	Created time.Time
	// Notifications are its notification configuration's Lambda
	// destinations.
	Notifications []notificationConfig `json:",omitempty"`
}

// objectRecord is an object as its table holds it, under objectKey.
type objectRecord struct {
	Bucket   string
	Key      string
	Size     int64
	ETag     string // quoted, as S3 shows it
	Modified time.Time
	// Blobs hold the body, in order: one for a PutObject or a copy, one
	// per part for a completed multipart upload.
	Blobs    []blobRef
	Headers  map[string]string `json:",omitempty"` // Content-Type and the other stored headers, canonical names
	Metadata map[string]string `json:",omitempty"` // x-amz-meta-*, names lowercased without the prefix
	Checksum checksum          `json:",omitempty"`
	Parts    int               `json:",omitempty"` // of a multipart upload
	// Sequencer orders the changes of one key, as S3's event records do.
	Sequencer string
	// Deleted marks a deleted object whose record is kept until the
	// notifications its deletion owes are delivered.
	Deleted bool `json:",omitempty"`
	// Owed are notifications of changes of the object not yet handed to
	// the async queue; they are written with the change itself.
	Owed []owedNotification `json:",omitempty"`
}

// live reports whether the record is an object (not a deletion's
// tombstone).
func (o *objectRecord) live() bool { return o != nil && !o.Deleted }

// uploadRecord is a multipart upload in progress.
type uploadRecord struct {
	ID        string
	Bucket    string
	Key       string
	Initiated time.Time
	Headers   map[string]string `json:",omitempty"`
	Metadata  map[string]string `json:",omitempty"`
	// ChecksumAlgorithm is the algorithm the parts carry (lowercase), if
	// the upload declared one.
	ChecksumAlgorithm string `json:",omitempty"`
}

// partRecord is an uploaded part, under partKey.
type partRecord struct {
	Upload   string
	Number   int
	Blob     blobRef
	ETag     string // quoted hex MD5
	Modified time.Time
	Checksum checksum `json:",omitempty"`
}

// objectKey is the table key of an object: the bucket, and the key in
// hex, which keeps S3's order (UTF-8 bytes) and holds only characters a
// key-value key may.
func objectKey(bucket, key string) string { return bucket + "/" + hex.EncodeToString([]byte(key)) }

// partKey is the table key of a part.
func partKey(upload string, number int) string { return fmt.Sprintf("%s.%05d", upload, number) }

// bucket returns a bucket, or NoSuchBucket.
func (s *Service) bucket(name string) (*bucketRecord, error) {
	b, err := s.buckets.Get(context.Background(), name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && name == "") {
		return nil, errNoSuchBucket()
	}
	if err != nil {
		return nil, storeFailure(err)
	}
	return b, nil
}

// object returns a live object, or NoSuchKey.
func (s *Service) object(bucket, key string) (*objectRecord, error) {
	o, err := s.objects.Get(context.Background(), objectKey(bucket, key))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !o.live()) {
		return nil, errNoSuchKey()
	}
	if err != nil {
		return nil, storeFailure(err)
	}
	return o, nil
}

// commit stores a change of the object under key atomically with the
// notifications it owes. change gets the current record (nil when there is
// none; it may be a tombstone) and returns the new one — Deleted to delete
// the object — or nil to change nothing. Owed notifications of earlier
// changes are carried over; a deletion that owes nothing removes the
// record. It returns the record that was replaced (nil if none) and the
// one stored (nil when nothing is).
func (s *Service) commit(ctx context.Context, key string, change func(old *objectRecord) (*objectRecord, error)) (old, stored *objectRecord, err error) {
	for {
		old = nil
		var next *objectRecord
		_, err = s.objects.Update(ctx, key, func(cur *objectRecord) error {
			prev := *cur
			old = &prev
			n, err := change(old)
			if err != nil {
				return err
			}
			if n == nil {
				return errUnchanged
			}
			n.Owed = append(append([]owedNotification(nil), cur.Owed...), n.Owed...)
			if n.Deleted && len(n.Owed) == 0 {
				return errRemove
			}
			next = n
			*cur = *n
			return nil
		})
		switch {
		case err == nil:
			return old, next, nil
		case errors.Is(err, errUnchanged):
			return old, nil, nil
		case errors.Is(err, errRemove):
			seq := old.Sequencer
			_, err = s.objects.Remove(ctx, key, func(cur *objectRecord) bool { return cur.Sequencer == seq && len(cur.Owed) == 0 })
			if errors.Is(err, store.ErrNotFound) {
				continue // changed meanwhile: decide again
			}
			if err != nil {
				return nil, nil, storeFailure(err)
			}
			return old, nil, nil
		case errors.Is(err, store.ErrNotFound):
			n, err := change(nil)
			if err != nil {
				return nil, nil, err
			}
			if n == nil || (n.Deleted && len(n.Owed) == 0) {
				return nil, nil, nil
			}
			err = s.objects.Create(ctx, key, n)
			if errors.Is(err, store.ErrExists) {
				continue
			}
			if err != nil {
				return nil, nil, storeFailure(err)
			}
			return nil, n, nil
		default:
			var ae *awsproto.Error
			if errors.As(err, &ae) {
				return nil, nil, ae
			}
			return nil, nil, storeFailure(err)
		}
	}
}

// Signals of a change to commit.
var (
	errRemove    = errors.New("s3: remove record")
	errUnchanged = errors.New("s3: nothing to change")
)

// sequencer returns a new sequencer: the time in hex nanoseconds,
// upper-case as S3's.
func sequencer() string { return fmt.Sprintf("%018X", time.Now().UnixNano()) }

// marshal encodes v; it never fails for the records here.
func marshal(v any) json.RawMessage {
	data, _ := json.Marshal(v)
	return data
}
