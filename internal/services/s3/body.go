package s3

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/sigv4"
)

// checksumAlgorithms are the algorithms of x-amz-checksum-<name>, by name.
var checksumAlgorithms = map[string]func() hash.Hash{
	"crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"crc64nvme": func() hash.Hash { return crc64.New(crc64NVME) },
	"sha1":      sha1.New,
	"sha256":    sha256.New,
}

// crc64NVME is the table of CRC-64/NVME (its reversed polynomial).
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// checksumNames spell the algorithms as S3's XML and headers do.
var checksumNames = map[string]string{
	"crc32": "CRC32", "crc32c": "CRC32C", "crc64nvme": "CRC64NVME", "sha1": "SHA1", "sha256": "SHA256",
}

// checksum is a declared checksum of a body: its algorithm (lowercase) and
// base64 value.
type checksum struct {
	Algorithm string `json:"alg,omitempty"`
	Value     string `json:"value,omitempty"`
}

// body reads a request body as S3 does: it decodes aws-chunked payloads
// (verifying their chunk and trailer signatures), and once the body has
// been read to its end checks it against what the request declared — its
// SHA-256 (X-Amz-Content-Sha256), Content-MD5, x-amz-checksum-<alg> as a
// header or a trailer, x-amz-decoded-content-length — and computes its MD5
// (the ETag) and its checksum.
type body struct {
	r        io.Reader // the decoded payload, hashed as it is read
	chunks   *chunkedReader
	md5      hash.Hash
	sha      hash.Hash // of the raw body, when X-Amz-Content-Sha256 is a hash
	wantSHA  []byte
	sum      hash.Hash // of the declared (or trailed) checksum algorithm
	checksum checksum  // declared in a header; Value empty when it comes in the trailer
	wantMD5  []byte
	wantLen  int64 // x-amz-decoded-content-length, or -1
	n        int64
}

// newBody prepares the reading of a request's body.
func newBody(r *http.Request, raw io.Reader, auth *sigv4.Auth) (*body, error) {
	b := &body{md5: md5.New(), wantLen: -1}
	if raw == nil {
		raw = http.NoBody
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if auth != nil {
		payload = auth.Payload()
	}
	if md := r.Header.Get("Content-Md5"); md != "" {
		sum, err := base64.StdEncoding.DecodeString(md)
		if err != nil || len(sum) != md5.Size {
			return nil, s3Error(http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified was invalid.")
		}
		b.wantMD5 = sum
	}
	for name := range checksumAlgorithms {
		if v := r.Header.Get("X-Amz-Checksum-" + name); v != "" {
			b.checksum = checksum{Algorithm: name, Value: v}
			b.sum = checksumAlgorithms[name]()
		}
	}
	streaming := strings.HasPrefix(payload, "STREAMING-") || hasToken(r.Header.Get("Content-Encoding"), "aws-chunked")
	if streaming {
		if dl := r.Header.Get("X-Amz-Decoded-Content-Length"); dl != "" {
			n, err := strconv.ParseInt(dl, 10, 64)
			if err != nil || n < 0 {
				return nil, errInvalidArgument("x-amz-decoded-content-length is not a number.")
			}
			b.wantLen = n
		}
		b.chunks = &chunkedReader{r: bufio.NewReaderSize(raw, 4096), remaining: -1}
		if payload == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" || payload == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" {
			if auth == nil {
				return nil, s3Error(http.StatusForbidden, "AccessDenied", "A signed streaming payload needs a signed request.")
			}
			b.chunks.auth, b.chunks.previous = auth, auth.Signature()
		}
		if trailer := strings.ToLower(r.Header.Get("X-Amz-Trailer")); trailer != "" {
			name := strings.TrimPrefix(trailer, "x-amz-checksum-")
			if checksumAlgorithms[name] == nil {
				return nil, errInvalidRequest("The value specified in the x-amz-trailer header is not supported")
			}
			b.checksum, b.sum = checksum{Algorithm: name}, checksumAlgorithms[name]()
			b.chunks.trailer = trailer
		}
		raw = b.chunks
	} else if len(payload) == 2*sha256.Size {
		want, err := hex.DecodeString(payload)
		if err == nil {
			b.sha, b.wantSHA = sha256.New(), want
		}
	}
	writers := []io.Writer{b.md5}
	if b.sha != nil {
		writers = append(writers, b.sha)
	}
	if b.sum != nil {
		writers = append(writers, b.sum)
	}
	b.r = io.TeeReader(raw, io.MultiWriter(writers...))
	return b, nil
}

// Read reads the decoded payload.
func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

// verify checks, once the body has been read to its end, that it is what
// the request declared; it returns S3's error when it is not.
func (b *body) verify() error {
	if b.wantSHA != nil && subtle.ConstantTimeCompare(b.sha.Sum(nil), b.wantSHA) != 1 {
		return s3Error(http.StatusBadRequest, "XAmzContentSHA256Mismatch",
			"The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	if b.wantLen >= 0 && b.n != b.wantLen {
		return s3Error(http.StatusBadRequest, "IncompleteBody", "The request body terminated unexpectedly")
	}
	if b.wantMD5 != nil && !bytes.Equal(b.md5.Sum(nil), b.wantMD5) {
		return s3Error(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
	}
	if b.sum != nil {
		want := b.checksum.Value
		if want == "" && b.chunks != nil {
			want = b.chunks.trailers[b.chunks.trailer]
		}
		got := base64.StdEncoding.EncodeToString(b.sum.Sum(nil))
		if want == "" {
			return errInvalidRequest("The trailer %s was declared but not sent.", b.chunks.trailer)
		}
		if got != want {
			return s3Error(http.StatusBadRequest, "BadDigest", "The %s you specified did not match the calculated checksum.",
				checksumNames[b.checksum.Algorithm])
		}
		b.checksum.Value = got
	}
	return nil
}

// etag is the body's ETag: its quoted hex MD5.
func (b *body) etag() string { return `"` + hex.EncodeToString(b.md5.Sum(nil)) + `"` }

// readAll reads a small body (an XML document) whole, within limit, and
// verifies it.
func readAll(c *call, limit int64) ([]byte, error) {
	b, err := newBody(c.Request, c.BodyReader, c.Auth)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(b, limit+1))
	if err != nil {
		return nil, bodyError(err)
	}
	if int64(len(data)) > limit {
		return nil, s3Error(http.StatusBadRequest, "MaxMessageLengthExceeded", "Your request was too big.")
	}
	if err := b.verify(); err != nil {
		return nil, err
	}
	return data, nil
}

// bodyError turns a failure to read a body into S3's error: what the
// chunked decoder refused as it is, anything else an incomplete body.
func bodyError(err error) error {
	var e *awsproto.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, os.ErrDeadlineExceeded):
		return s3Error(http.StatusBadRequest, "RequestTimeout",
			"Your socket connection to the server was not read from or written to within the timeout period.")
	}
	return s3Error(http.StatusBadRequest, "IncompleteBody", "The request body could not be read: %v", err)
}

// hasToken reports whether a comma-separated header value holds token.
func hasToken(value, token string) bool {
	for v := range strings.SplitSeq(value, ",") {
		if strings.EqualFold(strings.TrimSpace(v), token) {
			return true
		}
	}
	return false
}

// chunkedReader decodes an aws-chunked payload:
//
//	<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n … 0[;chunk-signature=<sig>]\r\n
//	[<trailer>:<value>\r\n …][x-amz-trailer-signature:<sig>\r\n]\r\n
//
// verifying each chunk's signature (signed payloads) as its data ends.
type chunkedReader struct {
	r        *bufio.Reader
	auth     *sigv4.Auth // set for signed chunks
	previous string      // the signature the next chunk's is chained to
	trailer  string      // the trailer header declared, lowercase
	trailers map[string]string

	remaining int64     // of the current chunk; -1 before the first header
	signature string    // the current chunk's
	data      hash.Hash // SHA-256 of the current chunk's data
	done      bool
}

// maxChunkLine bounds a chunk header or trailer line.
const maxChunkLine = 4096

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.remaining <= 0 {
		if c.done {
			return 0, io.EOF
		}
		if c.remaining == 0 {
			if err := c.endChunk(); err != nil {
				return 0, err
			}
		}
		if err := c.startChunk(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.r.Read(p)
	c.remaining -= int64(n)
	if c.data != nil {
		c.data.Write(p[:n])
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// chunkError is a malformed or wrongly signed chunk.
func chunkError(format string, args ...any) error {
	return s3Error(http.StatusBadRequest, "InvalidChunkSizeError", format, args...)
}

func (c *chunkedReader) line() (string, error) {
	line, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > maxChunkLine {
		return "", chunkError("A chunk header is too long.")
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// endChunk reads the CRLF after a chunk's data and checks its signature.
func (c *chunkedReader) endChunk() error {
	if l, err := c.line(); err != nil || l != "" {
		if err != nil {
			return err
		}
		return chunkError("A chunk's data is longer than its size says.")
	}
	return c.checkSignature()
}

func (c *chunkedReader) checkSignature() error {
	if c.auth == nil {
		return nil
	}
	var sum []byte
	if c.data != nil {
		sum = c.data.Sum(nil)
	} else {
		s := sha256.Sum256(nil)
		sum = s[:]
	}
	want := c.auth.ChunkSignature(c.previous, sum)
	if subtle.ConstantTimeCompare([]byte(want), []byte(c.signature)) != 1 {
		return s3Error(http.StatusForbidden, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}
	c.previous = c.signature
	return nil
}

// startChunk reads a chunk header; at the final (empty) chunk it reads the
// trailer and ends the payload.
func (c *chunkedReader) startChunk() error {
	l, err := c.line()
	if err != nil {
		return err
	}
	sizeHex, ext, _ := strings.Cut(l, ";")
	size, err := strconv.ParseInt(strings.TrimSpace(sizeHex), 16, 64)
	if err != nil || size < 0 {
		return chunkError("A chunk size is not a hexadecimal number.")
	}
	c.signature = ""
	if c.auth != nil {
		sig, ok := strings.CutPrefix(strings.TrimSpace(ext), "chunk-signature=")
		if !ok {
			return s3Error(http.StatusForbidden, "SignatureDoesNotMatch", "A chunk of a signed payload has no signature.")
		}
		c.signature = sig
		c.data = sha256.New()
	}
	c.remaining = size
	if size > 0 {
		return nil
	}
	c.data = nil
	if err := c.checkSignature(); err != nil {
		return err
	}
	c.done = true
	return c.readTrailer()
}

// readTrailer reads the trailer lines after the final chunk, checking the
// trailer's signature when the payload is signed.
func (c *chunkedReader) readTrailer() error {
	c.trailers = map[string]string{}
	var signed strings.Builder
	trailerSig := ""
	for range 16 {
		l, err := c.line()
		if err == io.ErrUnexpectedEOF && c.trailer == "" {
			return nil // a payload without a trailer may end at its final chunk
		}
		if err != nil {
			return err
		}
		if l == "" {
			break
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return chunkError("A trailer line is malformed.")
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			trailerSig = value
			continue
		}
		c.trailers[name] = value
		signed.WriteString(name + ":" + value + "\n")
	}
	if c.auth != nil && c.trailer != "" {
		sum := sha256.Sum256([]byte(signed.String()))
		want := c.auth.TrailerSignature(c.previous, sum[:])
		if subtle.ConstantTimeCompare([]byte(want), []byte(trailerSig)) != 1 {
			return s3Error(http.StatusForbidden, "SignatureDoesNotMatch", "The trailer's signature does not match.")
		}
	}
	return nil
}
