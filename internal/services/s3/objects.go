package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lamina-project/lamina/internal/awsproto"
)

// storedHeaders are the request headers an object keeps and answers with.
var storedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language",
	"Cache-Control", "Expires", "X-Amz-Website-Redirect-Location"}

// objectHeaders returns the headers and user metadata a request gives an
// object.
func objectHeaders(r *http.Request) (headers, metadata map[string]string, err error) {
	headers = map[string]string{}
	for _, name := range storedHeaders {
		v := r.Header.Get(name)
		if name == "Content-Encoding" {
			v = withoutToken(v, "aws-chunked")
		}
		if v != "" {
			headers[name] = v
		}
	}
	size := 0
	for name, values := range r.Header {
		lower := strings.ToLower(name)
		if m, ok := strings.CutPrefix(lower, "x-amz-meta-"); ok && m != "" {
			if metadata == nil {
				metadata = map[string]string{}
			}
			metadata[m] = strings.Join(values, ",")
			size += len(m) + len(metadata[m])
		}
	}
	if size > maxMetadata {
		return nil, nil, s3Error(http.StatusBadRequest, "MetadataTooLarge",
			"Your metadata headers exceed the maximum allowed metadata size")
	}
	return headers, metadata, nil
}

// withoutToken removes token from a comma-separated header value.
func withoutToken(value, token string) string {
	var kept []string
	for v := range strings.SplitSeq(value, ",") {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, token) {
			kept = append(kept, v)
		}
	}
	return strings.Join(kept, ",")
}

// readError is a failure to read a request body (rather than to store
// it).
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// readerOf marks the errors of r as readErrors.
type readerOf struct{ r io.Reader }

func (r readerOf) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// receive stores a request's body as a blob of at most limit bytes,
// streamed within the service's bound of bodies at once, and checks it
// against what the request declared. The caller owns the blob.
func (s *Service) receive(c *call, limit int64) (blobRef, *body, error) {
	if c.Request.ContentLength > limit && !hasToken(c.Request.Header.Get("Content-Encoding"), "aws-chunked") {
		return blobRef{}, nil, errEntityTooLarge()
	}
	b, err := newBody(c.Request, c.BodyReader, c.Auth)
	if err != nil {
		return blobRef{}, nil, err
	}
	if b.wantLen > limit {
		return blobRef{}, nil, errEntityTooLarge()
	}
	if err := s.streams.Acquire(c.Context(), 1); err != nil {
		return blobRef{}, nil, err
	}
	defer s.streams.Release(1)
	ref, err := s.blobs.write(c.Context(), readerOf{b}, limit)
	var re *readError
	switch {
	case errors.As(err, &re):
		return blobRef{}, nil, bodyError(re.err)
	case err != nil:
		return blobRef{}, nil, storeFailure(err)
	}
	if err := b.verify(); err != nil {
		s.blobs.remove(ref.ID)
		return blobRef{}, nil, err
	}
	return ref, b, nil
}

// put stores rec as the object it names, with the notifications of event
// it owes, and deletes the body it replaces. It returns the stored record.
func (s *Service) put(c *call, rec *objectRecord, event string) error {
	bucket, err := s.bucket(rec.Bucket)
	if err != nil {
		s.blobs.removeAll(rec.Blobs)
		return err
	}
	rec.Sequencer = sequencer()
	rec.Owed = s.notifications(c, bucket, rec, event)
	key := objectKey(rec.Bucket, rec.Key)
	old, _, err := s.commit(c.Context(), key, func(*objectRecord) (*objectRecord, error) {
		n := *rec
		return &n, nil
	})
	if err != nil {
		s.blobs.removeAll(rec.Blobs)
		return err
	}
	if old.live() {
		s.blobs.removeAll(old.Blobs)
	}
	if len(rec.Owed) > 0 {
		go s.deliver(key)
	}
	return nil
}

func (s *Service) putObject(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	if len(c.key) > maxKeyLength {
		return s3Error(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
	}
	headers, metadata, err := objectHeaders(c.Request)
	if err != nil {
		return err
	}
	ref, b, err := s.receive(c, MaxPutSize)
	if err != nil {
		return err
	}
	rec := &objectRecord{Bucket: c.bucket, Key: c.key, Size: ref.Size, ETag: b.etag(), Modified: time.Now().UTC(),
		Blobs: []blobRef{ref}, Headers: headers, Metadata: metadata, Checksum: b.checksum}
	if err := s.put(c, rec, "ObjectCreated:Put"); err != nil {
		return err
	}
	c.w.Header().Set("ETag", rec.ETag)
	setChecksumHeader(c.w.Header(), rec.Checksum)
	c.w.WriteHeader(http.StatusOK)
	return nil
}

// setChecksumHeader sets x-amz-checksum-<alg> when there is a checksum.
func setChecksumHeader(h http.Header, sum checksum) {
	if sum.Algorithm != "" && sum.Value != "" {
		h.Set("X-Amz-Checksum-"+sum.Algorithm, sum.Value)
	}
}

// byteRange is a satisfiable range of an object.
type byteRange struct{ start, length int64 }

// parseRange reads a Range header for an object of size bytes: nil for
// none (or one S3 ignores: several ranges, another unit), InvalidRange for
// one that cannot be satisfied.
func parseRange(header string, size int64) (*byteRange, error) {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if header == "" || !ok || strings.Contains(spec, ",") {
		return nil, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return nil, nil
	}
	invalid := s3Error(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil {
			return nil, nil
		}
		if n <= 0 || size == 0 {
			return nil, invalid
		}
		n = min(n, size)
		return &byteRange{start: size - n, length: n}, nil
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return nil, nil
	}
	end := size - 1
	if last != "" {
		if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
			return nil, nil
		}
		end = min(end, size-1)
	}
	if start >= size {
		return nil, invalid
	}
	return &byteRange{start: start, length: end - start + 1}, nil
}

// etagMatches reports whether an If-Match style list names etag.
func etagMatches(list, etag string) bool {
	for v := range strings.SplitSeq(list, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || strings.Trim(v, `"`) == strings.Trim(etag, `"`) {
			return true
		}
	}
	return false
}

// checkConditions applies the conditional headers of a GET or HEAD; done
// reports that the answer (304) was written.
func checkConditions(c *call, o *objectRecord) (done bool, err error) {
	h := c.Request.Header
	modified := o.Modified.Truncate(time.Second)
	if v := h.Get("If-Match"); v != "" && !etagMatches(v, o.ETag) {
		return false, errPreconditionFailed()
	}
	if v := h.Get("If-Unmodified-Since"); v != "" && h.Get("If-Match") == "" {
		if t, err := http.ParseTime(v); err == nil && modified.After(t) {
			return false, errPreconditionFailed()
		}
	}
	notModified := false
	if v := h.Get("If-None-Match"); v != "" {
		notModified = etagMatches(v, o.ETag)
	} else if v := h.Get("If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !modified.After(t) {
			notModified = true
		}
	}
	if notModified {
		c.w.Header().Set("ETag", o.ETag)
		c.w.Header().Set("Last-Modified", o.Modified.Format(http.TimeFormat))
		c.w.WriteHeader(http.StatusNotModified)
		return true, nil
	}
	return false, nil
}

// responseOverrides are the query parameters of a GET that replace the
// stored headers of its answer (presigned URLs use them).
var responseOverrides = map[string]string{
	"response-content-type": "Content-Type", "response-content-language": "Content-Language",
	"response-expires": "Expires", "response-cache-control": "Cache-Control",
	"response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
}

// getObject serves GetObject and HeadObject.
func (s *Service) getObject(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	o, err := s.object(c.bucket, c.key)
	if err != nil {
		return err
	}
	if done, err := checkConditions(c, o); done || err != nil {
		return err
	}
	rng, err := parseRange(c.Request.Header.Get("Range"), o.Size)
	if err != nil {
		c.w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", o.Size))
		return err
	}
	h := c.w.Header()
	h.Set("Content-Type", "binary/octet-stream")
	for name, v := range o.Headers {
		h.Set(name, v)
	}
	for name, v := range o.Metadata {
		h["X-Amz-Meta-"+name] = []string{v}
	}
	q := c.Request.URL.Query()
	for param, header := range responseOverrides {
		if v := q.Get(param); v != "" {
			h.Set(header, v)
		}
	}
	h.Set("ETag", o.ETag)
	h.Set("Last-Modified", o.Modified.Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	if o.Parts > 0 {
		h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(o.Parts))
	}
	start, length, status := int64(0), o.Size, http.StatusOK
	if rng != nil {
		start, length, status = rng.start, rng.length, http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, o.Size))
	} else if strings.EqualFold(c.Request.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") && o.Checksum.Value != "" {
		setChecksumHeader(h, o.Checksum)
		if o.Parts > 0 {
			h.Set("X-Amz-Checksum-Type", "COMPOSITE")
		} else {
			h.Set("X-Amz-Checksum-Type", "FULL_OBJECT")
		}
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if c.Request.Method == http.MethodHead {
		c.w.WriteHeader(status)
		return nil
	}
	if err := s.streams.Acquire(c.Context(), 1); err != nil {
		return err
	}
	defer s.streams.Release(1)
	c.w.WriteHeader(status)
	return s.blobs.copyTo(c.Context(), c.w, o.Blobs, start, length)
}

// remove deletes the object under key with the notifications the deletion
// owes; it reports whether there was one.
func (s *Service) remove(c *call, bucket *bucketRecord, key string) (bool, error) {
	tk := objectKey(bucket.Name, key)
	old, stored, err := s.commit(c.Context(), tk, func(old *objectRecord) (*objectRecord, error) {
		if !old.live() {
			return nil, nil
		}
		gone := &objectRecord{Bucket: bucket.Name, Key: key, Deleted: true, Sequencer: sequencer()}
		gone.Owed = s.notifications(c, bucket, gone, "ObjectRemoved:Delete")
		return gone, nil
	})
	if err != nil {
		return false, err
	}
	if !old.live() {
		return false, nil
	}
	s.blobs.removeAll(old.Blobs)
	if stored != nil && len(stored.Owed) > 0 {
		go s.deliver(tk)
	}
	return true, nil
}

func (s *Service) deleteObject(c *call) error {
	bucket, err := s.bucket(c.bucket)
	if err != nil {
		return err
	}
	if _, err := s.remove(c, bucket, c.key); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

type deleteRequest struct {
	Quiet   bool
	Objects []struct {
		Key       string
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName xml.Name        `xml:"DeleteResult"`
	Xmlns   string          `xml:"xmlns,attr"`
	Deleted []deletedEntry  `xml:"Deleted"`
	Errors  []deleteFailure `xml:"Error"`
}

type deletedEntry struct {
	Key string
}

type deleteFailure struct {
	Key, Code, Message string
}

// maxDeleteKeys bounds the keys of one DeleteObjects.
const maxDeleteKeys = 1000

func (s *Service) deleteObjects(c *call) error {
	bucket, err := s.bucket(c.bucket)
	if err != nil {
		return err
	}
	var in deleteRequest
	if err := s.decodeXML(c, &in); err != nil {
		return err
	}
	if len(in.Objects) == 0 || len(in.Objects) > maxDeleteKeys {
		return errMalformedXML()
	}
	out := deleteResult{Xmlns: xmlns}
	for _, o := range in.Objects {
		if _, err := s.remove(c, bucket, o.Key); err != nil {
			var ae *awsproto.Error
			if !errors.As(err, &ae) {
				return err
			}
			out.Errors = append(out.Errors, deleteFailure{Key: o.Key, Code: ae.Code, Message: ae.Message})
			continue
		}
		if !in.Quiet {
			out.Deleted = append(out.Deleted, deletedEntry{Key: o.Key})
		}
	}
	return writeXML(c.w, http.StatusOK, out)
}

// copySource reads x-amz-copy-source: [/]bucket/url-encoded-key[?versionId=…].
func copySource(c *call) (bucket, key string, err error) {
	src := c.Request.Header.Get("X-Amz-Copy-Source")
	src, _, _ = strings.Cut(src, "?")
	decoded, uerr := url.PathUnescape(strings.TrimPrefix(src, "/"))
	bucket, key, ok := strings.Cut(decoded, "/")
	if uerr != nil || !ok || bucket == "" || key == "" {
		return "", "", errInvalidArgument("Invalid copy source object key")
	}
	return bucket, key, nil
}

// source returns the object a copy reads, after its conditions.
func (s *Service) source(c *call) (*objectRecord, error) {
	bucket, key, err := copySource(c)
	if err != nil {
		return nil, err
	}
	if _, err := s.bucket(bucket); err != nil {
		return nil, err
	}
	o, err := s.object(bucket, key)
	if err != nil {
		return nil, err
	}
	h := c.Request.Header
	if v := h.Get("X-Amz-Copy-Source-If-Match"); v != "" && !etagMatches(v, o.ETag) {
		return nil, errPreconditionFailed()
	}
	if v := h.Get("X-Amz-Copy-Source-If-None-Match"); v != "" && etagMatches(v, o.ETag) {
		return nil, errPreconditionFailed()
	}
	return o, nil
}

// copyBlob writes n bytes from offset off of an object's body into a new
// blob, and returns it with their MD5.
func (s *Service) copyBlob(ctx context.Context, o *objectRecord, off, n int64) (blobRef, string, error) {
	if err := s.streams.Acquire(ctx, 1); err != nil {
		return blobRef{}, "", err
	}
	defer s.streams.Release(1)
	r := s.blobs.reader(ctx, o.Blobs, off, n)
	defer r.Close()
	sum := md5.New()
	ref, err := s.blobs.write(ctx, io.TeeReader(r, sum), MaxPutSize)
	if err != nil {
		return blobRef{}, "", storeFailure(err)
	}
	return ref, `"` + hex.EncodeToString(sum.Sum(nil)) + `"`, nil
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	LastModified string
	ETag         string
}

func (s *Service) copyObject(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	src, err := s.source(c)
	if err != nil {
		return err
	}
	if src.Size > MaxPutSize {
		return errInvalidRequest("The specified copy source is larger than the maximum allowable size for a copy source: %d", MaxPutSize)
	}
	replace := strings.EqualFold(c.Request.Header.Get("X-Amz-Metadata-Directive"), "REPLACE")
	if src.Bucket == c.bucket && src.Key == c.key && !replace {
		return errInvalidRequest("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	headers, metadata := src.Headers, src.Metadata
	if replace {
		if headers, metadata, err = objectHeaders(c.Request); err != nil {
			return err
		}
	}
	if _, err := readAll(c, 0); err != nil {
		return err
	}
	ref, etag, err := s.copyBlob(c.Context(), src, 0, src.Size)
	if err != nil {
		return err
	}
	rec := &objectRecord{Bucket: c.bucket, Key: c.key, Size: ref.Size, ETag: etag, Modified: time.Now().UTC(),
		Blobs: []blobRef{ref}, Headers: headers, Metadata: metadata}
	if src.Parts == 0 {
		rec.Checksum = src.Checksum
	}
	if err := s.put(c, rec, "ObjectCreated:Copy"); err != nil {
		return err
	}
	return writeXML(c.w, http.StatusOK, copyObjectResult{Xmlns: xmlns, LastModified: rec.Modified.Format(timeFormat), ETag: rec.ETag})
}
