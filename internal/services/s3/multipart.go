package s3

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina/internal/store"
)

type initiateResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Bucket   string
	Key      string
	UploadID string `xml:"UploadId"`
}

func (s *Service) createUpload(c *call) error {
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
	alg := strings.ToLower(c.Request.Header.Get("X-Amz-Checksum-Algorithm"))
	if alg != "" && checksumAlgorithms[alg] == nil {
		return errInvalidRequest("Checksum algorithm provided is unsupported.")
	}
	if _, err := readAll(c, 0); err != nil {
		return err
	}
	u := &uploadRecord{ID: strings.ReplaceAll(uuid.NewString(), "-", ""), Bucket: c.bucket, Key: c.key,
		Initiated: time.Now().UTC(), Headers: headers, Metadata: metadata, ChecksumAlgorithm: alg}
	if err := s.uploads.Create(c.Context(), u.ID, u); err != nil {
		return storeFailure(err)
	}
	if alg != "" {
		c.w.Header().Set("X-Amz-Checksum-Algorithm", checksumNames[alg])
	}
	return writeXML(c.w, http.StatusOK, initiateResult{Xmlns: xmlns, Bucket: c.bucket, Key: c.key, UploadID: u.ID})
}

// upload returns the upload a request names, of its bucket and key.
func (s *Service) upload(c *call) (*uploadRecord, error) {
	id := c.Request.URL.Query().Get("uploadId")
	u, err := s.uploads.Get(c.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.Bucket != c.bucket || u.Key != c.key)) {
		return nil, errNoSuchUpload()
	}
	if err != nil {
		return nil, storeFailure(err)
	}
	return u, nil
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	LastModified string
	ETag         string
}

// uploadPart serves UploadPart and UploadPartCopy.
func (s *Service) uploadPart(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	u, err := s.upload(c)
	if err != nil {
		return err
	}
	number, err := strconv.Atoi(c.Request.URL.Query().Get("partNumber"))
	if err != nil || number < 1 || number > MaxParts {
		return errInvalidArgument("Part number must be an integer between 1 and %d, inclusive", MaxParts)
	}
	p := &partRecord{Upload: u.ID, Number: number, Modified: time.Now().UTC()}
	copying := c.Request.Header.Get("X-Amz-Copy-Source") != ""
	if copying {
		src, err := s.source(c)
		if err != nil {
			return err
		}
		start, length := int64(0), src.Size
		if v := c.Request.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
			rng, err := parseRange(v, src.Size)
			if err != nil || rng == nil {
				return errInvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
			}
			start, length = rng.start, rng.length
		}
		if length > MaxPutSize {
			return errEntityTooLarge()
		}
		if _, err := readAll(c, 0); err != nil {
			return err
		}
		if p.Blob, p.ETag, err = s.copyBlob(c.Context(), src, start, length); err != nil {
			return err
		}
	} else {
		ref, b, err := s.receive(c, MaxPutSize)
		if err != nil {
			return err
		}
		p.Blob, p.ETag, p.Checksum = ref, b.etag(), b.checksum
	}
	if err := s.storePart(c.Context(), p); err != nil {
		return err
	}
	if copying {
		return writeXML(c.w, http.StatusOK, copyPartResult{Xmlns: xmlns, LastModified: p.Modified.Format(timeFormat), ETag: p.ETag})
	}
	c.w.Header().Set("ETag", p.ETag)
	setChecksumHeader(c.w.Header(), p.Checksum)
	c.w.WriteHeader(http.StatusOK)
	return nil
}

// storePart records a part, replacing (and deleting the body of) one of
// the same number.
func (s *Service) storePart(ctx context.Context, p *partRecord) error {
	key := partKey(p.Upload, p.Number)
	for {
		var old blobRef
		_, err := s.parts.Update(ctx, key, func(cur *partRecord) error {
			old = cur.Blob
			*cur = *p
			return nil
		})
		if err == nil {
			s.blobs.remove(old.ID)
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			s.blobs.remove(p.Blob.ID)
			return storeFailure(err)
		}
		err = s.parts.Create(ctx, key, p)
		if errors.Is(err, store.ErrExists) {
			continue
		}
		if err != nil {
			s.blobs.remove(p.Blob.ID)
			return storeFailure(err)
		}
		// The upload may have been completed or aborted meanwhile.
		if _, err := s.uploads.Get(ctx, p.Upload); errors.Is(err, store.ErrNotFound) {
			s.removeParts(ctx, p.Upload, nil)
			return errNoSuchUpload()
		}
		return nil
	}
}

type completeRequest struct {
	Parts []struct {
		PartNumber     int
		ETag           string
		ChecksumCRC32  string
		ChecksumCRC32C string
		ChecksumSHA1   string
		ChecksumSHA256 string
	} `xml:"Part"`
}

type completeResult struct {
	XMLName        xml.Name `xml:"CompleteMultipartUploadResult"`
	Xmlns          string   `xml:"xmlns,attr"`
	Location       string
	Bucket         string
	Key            string
	ETag           string
	ChecksumCRC32  string `xml:",omitempty"`
	ChecksumCRC32C string `xml:",omitempty"`
	ChecksumSHA1   string `xml:",omitempty"`
	ChecksumSHA256 string `xml:",omitempty"`
}

func (s *Service) completeUpload(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	u, err := s.upload(c)
	if err != nil {
		return err
	}
	var in completeRequest
	if err := s.decodeXML(c, &in); err != nil {
		return err
	}
	if len(in.Parts) == 0 {
		return errMalformedXML()
	}
	if len(in.Parts) > MaxParts {
		return errInvalidArgument("Part number must be an integer between 1 and %d, inclusive", MaxParts)
	}
	rec := &objectRecord{Bucket: c.bucket, Key: c.key, Modified: time.Now().UTC(), Headers: u.Headers, Metadata: u.Metadata,
		Parts: len(in.Parts)}
	used := map[int]bool{}
	md5s := md5.New()
	var sums []byte
	for i, want := range in.Parts {
		if i > 0 && want.PartNumber <= in.Parts[i-1].PartNumber {
			return s3Error(http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.")
		}
		p, err := s.parts.Get(c.Context(), partKey(u.ID, want.PartNumber))
		if errors.Is(err, store.ErrNotFound) || (err == nil && strings.Trim(want.ETag, `"`) != strings.Trim(p.ETag, `"`)) {
			return s3Error(http.StatusBadRequest, "InvalidPart",
				"One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
		}
		if err != nil {
			return storeFailure(err)
		}
		if i < len(in.Parts)-1 && p.Blob.Size < MinPartSize {
			return s3Error(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
		}
		raw, _ := hex.DecodeString(strings.Trim(p.ETag, `"`))
		md5s.Write(raw)
		if u.ChecksumAlgorithm != "" {
			v, _ := base64.StdEncoding.DecodeString(p.Checksum.Value)
			sums = append(sums, v...)
		}
		used[p.Number] = true
		rec.Blobs = append(rec.Blobs, p.Blob)
		rec.Size += p.Blob.Size
	}
	rec.ETag = fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(md5s.Sum(nil)), len(in.Parts))
	if alg := u.ChecksumAlgorithm; alg != "" {
		h := checksumAlgorithms[alg]()
		h.Write(sums)
		rec.Checksum = checksum{Algorithm: alg, Value: fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(h.Sum(nil)), len(in.Parts))}
	}
	// The upload ends before the object is stored, so that a concurrent
	// completion or abort of it cannot also take its parts.
	if _, err := s.uploads.Remove(c.Context(), u.ID, nil); errors.Is(err, store.ErrNotFound) {
		return errNoSuchUpload()
	} else if err != nil {
		return storeFailure(err)
	}
	if err := s.put(c, rec, "ObjectCreated:CompleteMultipartUpload"); err != nil {
		return err
	}
	s.removeParts(context.WithoutCancel(c.Context()), u.ID, used)
	out := completeResult{Xmlns: xmlns, Location: "/" + c.bucket + "/" + c.key, Bucket: c.bucket, Key: c.key, ETag: rec.ETag}
	switch rec.Checksum.Algorithm {
	case "crc32":
		out.ChecksumCRC32 = rec.Checksum.Value
	case "crc32c":
		out.ChecksumCRC32C = rec.Checksum.Value
	case "sha1":
		out.ChecksumSHA1 = rec.Checksum.Value
	case "sha256":
		out.ChecksumSHA256 = rec.Checksum.Value
	}
	return writeXML(c.w, http.StatusOK, out)
}

// removeParts deletes the part records of an upload, and the bodies of
// those not kept (kept: now an object's).
func (s *Service) removeParts(ctx context.Context, upload string, kept map[int]bool) {
	for _, p := range s.parts.List(upload+".", nil) {
		if _, err := s.parts.Remove(ctx, partKey(upload, p.Number), nil); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("removing a part record failed; the sweep will free its body", "upload", upload, "part", p.Number, "err", err)
			continue
		}
		if !kept[p.Number] {
			s.blobs.remove(p.Blob.ID)
		}
	}
}

// abort ends an upload and deletes its parts.
func (s *Service) abort(ctx context.Context, id string) error {
	if _, err := s.uploads.Remove(ctx, id, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
		return storeFailure(err)
	}
	s.removeParts(ctx, id, nil)
	return nil
}

func (s *Service) abortUpload(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	u, err := s.upload(c)
	if err != nil {
		return err
	}
	if err := s.abort(c.Context(), u.ID); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

type partEntry struct {
	PartNumber     int
	LastModified   string
	ETag           string
	Size           int64
	ChecksumCRC32  string `xml:",omitempty"`
	ChecksumCRC32C string `xml:",omitempty"`
	ChecksumSHA1   string `xml:",omitempty"`
	ChecksumSHA256 string `xml:",omitempty"`
}

type listPartsResult struct {
	XMLName              xml.Name `xml:"ListPartsResult"`
	Xmlns                string   `xml:"xmlns,attr"`
	Bucket               string
	Key                  string
	UploadID             string `xml:"UploadId"`
	PartNumberMarker     int
	NextPartNumberMarker int
	MaxParts             int
	IsTruncated          bool
	StorageClass         string
	Parts                []partEntry `xml:"Part"`
}

func (s *Service) listParts(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	u, err := s.upload(c)
	if err != nil {
		return err
	}
	q := c.Request.URL.Query()
	marker, _ := strconv.Atoi(q.Get("part-number-marker"))
	max := maxKeys
	if v, err := strconv.Atoi(q.Get("max-parts")); err == nil && v >= 0 {
		max = min(v, maxKeys)
	}
	out := listPartsResult{Xmlns: xmlns, Bucket: c.bucket, Key: c.key, UploadID: u.ID, PartNumberMarker: marker, MaxParts: max, StorageClass: "STANDARD"}
	for _, p := range s.parts.List(u.ID+".", nil) {
		if p.Number <= marker {
			continue
		}
		if len(out.Parts) >= max {
			out.IsTruncated = true
			break
		}
		e := partEntry{PartNumber: p.Number, LastModified: p.Modified.Format(timeFormat), ETag: p.ETag, Size: p.Blob.Size}
		switch p.Checksum.Algorithm {
		case "crc32":
			e.ChecksumCRC32 = p.Checksum.Value
		case "crc32c":
			e.ChecksumCRC32C = p.Checksum.Value
		case "sha1":
			e.ChecksumSHA1 = p.Checksum.Value
		case "sha256":
			e.ChecksumSHA256 = p.Checksum.Value
		}
		out.Parts = append(out.Parts, e)
		out.NextPartNumberMarker = p.Number
	}
	return writeXML(c.w, http.StatusOK, out)
}

type uploadEntry struct {
	Key          string
	UploadID     string `xml:"UploadId"`
	Initiated    string
	StorageClass string
}

type listUploadsResult struct {
	XMLName            xml.Name `xml:"ListMultipartUploadsResult"`
	Xmlns              string   `xml:"xmlns,attr"`
	Bucket             string
	KeyMarker          string
	UploadIDMarker     string `xml:"UploadIdMarker"`
	NextKeyMarker      string `xml:",omitempty"`
	NextUploadIDMarker string `xml:"NextUploadIdMarker,omitempty"`
	Prefix             string
	MaxUploads         int
	IsTruncated        bool
	Uploads            []uploadEntry `xml:"Upload"`
}

func (s *Service) listUploads(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	q := c.Request.URL.Query()
	prefix := q.Get("prefix")
	out := listUploadsResult{Xmlns: xmlns, Bucket: c.bucket, Prefix: prefix, MaxUploads: maxKeys,
		KeyMarker: q.Get("key-marker"), UploadIDMarker: q.Get("upload-id-marker")}
	uploads := s.uploads.List("", func(u *uploadRecord) bool {
		return u.Bucket == c.bucket && strings.HasPrefix(u.Key, prefix) && u.Key > out.KeyMarker
	})
	slices.SortStableFunc(uploads, func(a, b *uploadRecord) int { return strings.Compare(a.Key, b.Key) })
	for _, u := range uploads {
		if len(out.Uploads) >= maxKeys {
			out.IsTruncated = true
			break
		}
		out.Uploads = append(out.Uploads, uploadEntry{Key: u.Key, UploadID: u.ID, Initiated: u.Initiated.Format(timeFormat), StorageClass: "STANDARD"})
		out.NextKeyMarker, out.NextUploadIDMarker = u.Key, u.ID
	}
	if !out.IsTruncated {
		out.NextKeyMarker, out.NextUploadIDMarker = "", ""
	}
	return writeXML(c.w, http.StatusOK, out)
}
