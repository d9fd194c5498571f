// Package s3 is Lamina's S3-compatible object storage: buckets, objects
// (streamed, never held whole in memory), multipart uploads, listings and
// bucket notifications that invoke functions asynchronously, served on the
// API listener in S3's REST-XML protocol to unmodified clients (the AWS
// CLI, boto3, aws-sdk-go-v2, the JavaScript SDK v3).
//
// Everything lives in the store, so a cluster replicates it: buckets,
// object records and multipart uploads in key-value buckets (store.Table),
// object bodies in a JetStream stream of 1 MiB chunks, one subject per
// chunk (blobs.go). An object record names the blobs that hold its body and
// carries the notifications its change still owes (notify.go), written in
// the same compare-and-set as the change itself, so that no notification
// of a stored change is lost when the server dies.
package s3

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lamina-project/lamina/internal/async"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/store"
	"golang.org/x/sync/semaphore"
)

// Table names; part of the on-disk format.
const (
	bucketsTable = "lamina_s3_buckets"
	objectsTable = "lamina_s3_objects"
	uploadsTable = "lamina_s3_uploads"
	partsTable   = "lamina_s3_parts"
)

// Bounds of S3 itself, which Lamina keeps.
const (
	// MaxPutSize bounds the body of one PutObject or UploadPart.
	MaxPutSize = 5 << 30
	// MaxParts bounds the parts of a multipart upload.
	MaxParts = 10000
	// MinPartSize is the least size of a part other than the last.
	MinPartSize = 5 << 20
	// maxKeys is the most keys a listing returns at once.
	maxKeys = 1000
	// maxKeyLength bounds an object key, in bytes.
	maxKeyLength = 1024
	// maxXMLBody bounds the XML documents requests carry (a
	// CompleteMultipartUpload of 10,000 parts, DeleteObjects of 1,000
	// keys).
	maxXMLBody = 2 << 20
	// maxMetadata bounds the user metadata of an object (x-amz-meta-*), as
	// S3 does.
	maxMetadata = 2 << 10
)

// DefaultMaxStreams bounds the request bodies and responses streamed at
// once by default; each holds one chunk (1 MiB) in memory.
const DefaultMaxStreams = 64

// Functions is what the service needs to know about functions to send
// them notifications.
type Functions interface {
	// Exists reports whether the function (and qualifier, when not empty)
	// exists; an error that wraps store.ErrNotFound when it does not.
	Exists(ctx context.Context, function, qualifier string) error
}

// Config is what the service needs.
type Config struct {
	Region    string
	AccountID string
	Store     *store.Store
	// Submit queues an asynchronous invocation durably (the async
	// dispatcher's Submit).
	Submit func(ctx context.Context, ev *async.Event) error
	// Functions checks notification destinations.
	Functions Functions
	// MayInvoke, when set, decides whether S3 (principal
	// s3.amazonaws.com) may invoke a function for a bucket: the function's
	// resource policy. Nil allows every function of the account.
	MayInvoke func(ctx context.Context, functionARN, sourceARN, sourceAccount string) error
	// Admit, when set, decides whether a notification whose change was made
	// with trace header trace may invoke function, or continues a recursive
	// loop past its limit (recursion.Guard); it returns the invocation's
	// trace header.
	Admit func(ctx context.Context, function, trace, source string) (string, bool)
	// MaxBytes bounds the object bodies stored (the data stream); zero
	// means no bound of its own.
	MaxBytes int64
	// MaxStreams bounds the bodies streamed at once; zero means
	// DefaultMaxStreams.
	MaxStreams int
	Logger     *slog.Logger
}

// Service is the S3 service of one node.
type Service struct {
	cfg     Config
	log     *slog.Logger
	health  *store.Health
	buckets *store.Table[bucketRecord]
	objects *store.Table[objectRecord]
	uploads *store.Table[uploadRecord]
	parts   *store.Table[partRecord]
	blobs   *blobStore
	streams *semaphore.Weighted // bodies streamed at once
	api     *awsproto.Service
	opTable map[string]*awsproto.Operation

	delivering sync.Map // object keys whose notifications are being delivered here
}

// Open opens (creating them if needed) the service's tables and data
// stream.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("part", "s3"), health: cfg.Store.Health(),
		streams: semaphore.NewWeighted(int64(cfg.MaxStreams))}
	var err error
	if s.buckets, err = store.OpenTable[bucketRecord](ctx, cfg.Store, bucketsTable, "bucket"); err != nil {
		return nil, err
	}
	if s.objects, err = store.OpenTable[objectRecord](ctx, cfg.Store, objectsTable, "object"); err != nil {
		return nil, err
	}
	if s.uploads, err = store.OpenTable[uploadRecord](ctx, cfg.Store, uploadsTable, "multipart upload"); err != nil {
		return nil, err
	}
	if s.parts, err = store.OpenTable[partRecord](ctx, cfg.Store, partsTable, "part"); err != nil {
		return nil, err
	}
	if s.blobs, err = openBlobs(ctx, cfg.Store, cfg.MaxBytes); err != nil {
		return nil, err
	}
	s.opTable = s.operations()
	s.api = &awsproto.Service{SigningName: "s3", Route: s.route, REST: awsproto.RESTXML, MapError: mapError}
	return s, nil
}

// API is the service as the API listener's dispatcher serves it.
func (s *Service) API() *awsproto.Service { return s.api }

// Run delivers the notifications that changes stored earlier still owe
// (those of a node that died, those whose delivery failed), now and then
// until ctx ends, and sweeps the bodies no object holds any more.
func (s *Service) Run(ctx context.Context) {
	redeliver := time.NewTicker(redeliverInterval)
	defer redeliver.Stop()
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	s.redeliver(ctx, 0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-redeliver.C:
			s.redeliver(ctx, redeliverAfter)
		case <-sweep.C:
			if n, err := s.sweepBlobs(ctx); err != nil {
				s.log.Warn("sweeping object bodies failed", "err", err)
			} else if n > 0 {
				s.log.Info("object bodies no object holds deleted", "count", n)
			}
		}
	}
}

// Intervals of the background work.
const (
	redeliverInterval = 5 * time.Second
	// redeliverAfter is how old a change's owed notification must be
	// before another pass than the one right after the change delivers it.
	redeliverAfter = 10 * time.Second
	sweepInterval  = 10 * time.Minute
	// sweepGrace is how old an unreferenced body must be before a sweep
	// deletes it: uploads being written are younger.
	sweepGrace = time.Hour
)

// ReadObject returns the whole body of an object, of at most limit bytes.
// Missing buckets and keys are *awsproto.Error NoSuchBucket, NoSuchKey; a
// larger object EntityTooLarge.
func (s *Service) ReadObject(ctx context.Context, bucket, key string, limit int64) ([]byte, error) {
	if _, err := s.bucket(bucket); err != nil {
		return nil, err
	}
	obj, err := s.object(bucket, key)
	if err != nil {
		return nil, err
	}
	if obj.Size > limit {
		return nil, errEntityTooLarge()
	}
	var buf strings.Builder
	buf.Grow(int(obj.Size))
	if err := s.blobs.copyTo(ctx, &buf, obj.Blobs, 0, obj.Size); err != nil {
		return nil, err
	}
	return []byte(buf.String()), nil
}

// requestContext is what an operation handler gets.
type call struct {
	*awsproto.Call
	w      http.ResponseWriter
	bucket string
	key    string
}
