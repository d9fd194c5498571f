package sigv4

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// scratch holds the buffers of one verification, reused through scratchPool
// so that verifying a typical request does not allocate.
type scratch struct {
	buf        []byte                // the canonical request, then the string to sign
	query      []queryPair           // canonical query parameters, sorted
	payload    [2 * sha256.Size]byte // last line of the canonical request
	payloadLen int
	mac        []byte                // computed signature
	expected   []byte                // computed signature, hex
	provided   [2 * sha256.Size]byte // signature sent by the client
}

// queryPair is one query parameter, name and value in canonical encoding.
type queryPair struct {
	name, value string
}

// maxPooledBuffer bounds the buffer kept by a pooled scratch, so that one
// request with a huge query string does not pin memory.
const maxPooledBuffer = 64 << 10

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// checkSignature compares the request's signature with the one computed
// from secret. bodySum is the SHA-256 of the body; it is not used when the
// payload line is a literal (UNSIGNED-PAYLOAD, S3's STREAMING-… values).
func (v *Verifier) checkSignature(r *http.Request, bodySum []byte, literal string, p *authParams, secret string) *Error {
	if len(p.signature) != 2*sha256.Size {
		return authError(codeInvalidSignature, msgSignatureMismatch)
	}
	s := scratchPool.Get().(*scratch)
	defer func() {
		if cap(s.buf) <= maxPooledBuffer {
			clear(s.query) // drop references to the request
			scratchPool.Put(s)
		}
	}()
	if err := s.setPayloadHash(r.Header.Get("X-Amz-Content-Sha256"), bodySum, literal); err != nil {
		return err
	}
	if !s.setCanonicalQuery(r.URL.RawQuery, p.presigned) {
		return authError(codeInvalidSignature, msgSignatureMismatch)
	}
	key := v.keys.get(keyScope{secret: secret, date: p.scopeDate, region: p.scopeRegion, service: p.scopeService})
	path := requestPath(r)
	if s.signatureMatches(r, p, key, path, !v.S3) {
		return nil
	}
	if v.S3 {
		return authError(codeInvalidSignature, msgSignatureMismatch)
	}
	if normalized := removeDotSegments(path); normalized != path && s.signatureMatches(r, p, key, normalized, true) {
		return nil
	}
	return authError(codeInvalidSignature, msgSignatureMismatch)
}

// setPayloadHash sets the payload line of the canonical request from the
// X-Amz-Content-Sha256 header (claimed, whose form Authenticate checked)
// and the body's hash, or to literal when it is not empty.
func (s *scratch) setPayloadHash(claimed string, bodySum []byte, literal string) *Error {
	if literal != "" {
		s.payloadLen = copy(s.payload[:], literal)
		return nil
	}
	s.payloadLen = hex.Encode(s.payload[:], bodySum)
	if claimed == "" {
		return nil
	}
	if !strings.EqualFold(claimed, string(s.payload[:])) {
		return authError(codeInvalidSignature, msgContentSHA256Mismatch)
	}
	// Sign the value as the client sent it, which may be upper case.
	copy(s.payload[:], claimed)
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return false
		}
	}
	return true
}

// setCanonicalQuery decodes and re-encodes the parameters of a raw query
// string and sorts them, leaving out X-Amz-Signature from presigned requests.
// It reports false if the query has a malformed percent escape.
func (s *scratch) setCanonicalQuery(rawQuery string, presigned bool) bool {
	s.query = s.query[:0]
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, ok := canonicalQueryComponent(rawName)
		if !ok {
			return false
		}
		value, ok := canonicalQueryComponent(rawValue)
		if !ok {
			return false
		}
		if presigned && name == querySignature {
			continue
		}
		s.query = append(s.query, queryPair{name: name, value: value})
	}
	slices.SortFunc(s.query, func(a, b queryPair) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	return true
}

// canonicalQueryComponent returns the SigV4 encoding of a raw query name or
// value: decoded with url.QueryUnescape, then percent-encoded except for
// unreserved characters. Components the SDKs send are usually canonical
// already and are returned without allocating.
func canonicalQueryComponent(raw string) (string, bool) {
	if isCanonicalEncoding(raw) {
		return raw, true
	}
	decoded, err := url.QueryUnescape(raw)
	if err != nil {
		return "", false
	}
	return string(appendURIEncoded(make([]byte, 0, 3*len(decoded)), decoded, false)), true
}

// isCanonicalEncoding reports whether s holds only unreserved characters and
// upper-case percent escapes of reserved characters.
func isCanonicalEncoding(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			continue
		}
		if c != '%' || i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) {
			return false
		}
		high, _ := unhex(s[i+1])
		low, _ := unhex(s[i+2])
		if isUnreserved(high<<4 | low) {
			return false
		}
		i += 2
	}
	return true
}

// signatureMatches builds the canonical request with the given path
// (percent-encoded once more when encode is set) and reports whether its
// signature equals the one the client sent.
func (s *scratch) signatureMatches(r *http.Request, p *authParams, key *signingKey, path string, encode bool) bool {
	s.buf = s.appendCanonicalRequest(s.buf[:0], r, p, path, encode)
	requestHash := sha256.Sum256(s.buf)

	s.buf = append(s.buf[:0], signingAlgorithm+"\n"...)
	s.buf = append(s.buf, p.amzDate...)
	s.buf = append(s.buf, '\n')
	s.buf = append(s.buf, p.scope...)
	s.buf = append(s.buf, '\n')
	s.buf = hex.AppendEncode(s.buf, requestHash[:])

	mac := key.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(s.buf)
	s.mac = mac.Sum(s.mac[:0])
	key.macs.Put(mac)

	s.expected = hex.AppendEncode(s.expected[:0], s.mac)
	copy(s.provided[:], p.signature)
	return subtle.ConstantTimeCompare(s.provided[:], s.expected) == 1
}

// appendCanonicalRequest appends
// METHOD\nPATH\nQUERY\nHEADERS\n\nSIGNEDHEADERS\nPAYLOADHASH.
func (s *scratch) appendCanonicalRequest(dst []byte, r *http.Request, p *authParams, path string, encode bool) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	if encode {
		dst = appendURIEncoded(dst, path, true)
	} else {
		dst = append(dst, path...)
	}
	dst = append(dst, '\n')
	for i, pair := range s.query {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, pair.name...)
		dst = append(dst, '=')
		dst = append(dst, pair.value...)
	}
	dst = append(dst, '\n')
	for names := p.signedHeaders; names != ""; {
		var name string
		name, names, _ = strings.Cut(names, ";")
		dst = append(dst, name...)
		dst = append(dst, ':')
		dst = appendHeaderValues(dst, r, name)
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = append(dst, p.signedHeaders...)
	dst = append(dst, '\n')
	return append(dst, s.payload[:s.payloadLen]...)
}

// requestPath returns the escaped path exactly as the client sent it.
func requestPath(r *http.Request) string {
	path := r.RequestURI
	if !strings.HasPrefix(path, "/") {
		// Absolute-form request target, or a request not read by a server.
		path = r.URL.EscapedPath()
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "/"
	}
	return path
}

// removeDotSegments normalises a path the way botocore and the JavaScript
// SDK do before signing: empty and "." segments are dropped, ".." removes
// the segment before it, and a trailing slash is kept.
func removeDotSegments(path string) string {
	var segments []string
	for segment := range strings.SplitSeq(path, "/") {
		switch segment {
		case "", ".":
		case "..":
			if len(segments) > 0 {
				segments = segments[:len(segments)-1]
			}
		default:
			segments = append(segments, segment)
		}
	}
	normalized := "/" + strings.Join(segments, "/")
	if len(segments) > 0 && strings.HasSuffix(path, "/") {
		normalized += "/"
	}
	return normalized
}

// appendHeaderValues appends the canonical value of the header called name
// (lowercase): its values trimmed, runs of spaces collapsed, joined by ','.
func appendHeaderValues(dst []byte, r *http.Request, name string) []byte {
	switch name {
	case "host":
		host := r.Host
		if host == "" {
			host = r.URL.Host
		}
		return appendCanonicalValue(dst, host)
	case "content-length":
		if _, sent := r.Header["Content-Length"]; !sent && r.ContentLength >= 0 {
			return strconv.AppendInt(dst, r.ContentLength, 10)
		}
	case "transfer-encoding":
		if _, sent := r.Header["Transfer-Encoding"]; !sent {
			return appendJoinedValues(dst, r.TransferEncoding)
		}
	}
	return appendJoinedValues(dst, headerValues(r.Header, name))
}

func appendJoinedValues(dst []byte, values []string) []byte {
	for i, value := range values {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCanonicalValue(dst, value)
	}
	return dst
}

// headerValues returns the values of the header called name (lowercase),
// finding its canonical MIME form without allocating for common names.
func headerValues(h http.Header, name string) []string {
	var key [64]byte
	if len(name) > len(key) {
		return h[textproto.CanonicalMIMEHeaderKey(name)]
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
			if upper {
				c -= 'a' - 'A'
			}
		case '0' <= c && c <= '9', c == '-':
		default:
			return h[textproto.CanonicalMIMEHeaderKey(name)]
		}
		key[i] = c
		upper = c == '-'
	}
	return h[string(key[:len(name)])]
}

// appendCanonicalValue appends a header value without leading and trailing
// spaces and tabs and with inner runs of spaces collapsed to one space.
func appendCanonicalValue(dst []byte, value string) []byte {
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if value[i] == ' ' && i > 0 && value[i-1] == ' ' {
			continue
		}
		dst = append(dst, value[i])
	}
	return dst
}

// appendURIEncoded percent-encodes every byte of s except the RFC 3986
// unreserved characters, and except '/' if keepSlash is set.
func appendURIEncoded(dst []byte, s string, keepSlash bool) []byte {
	const upperHex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || (keepSlash && c == '/') {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&0xf])
		}
	}
	return dst
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isUpperHex(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'F'
}

// unhex returns the value of a hexadecimal digit of either case.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
