package s3

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/sigv4"
)

const (
	testKeyID  = "AKIDTEST"
	testSecret = "test-secret"
)

// hmacSum returns the HMAC-SHA256 of msg with key.
func hmacSum(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// signingKey derives SigV4's key as the specification says.
func signingKey(date string) []byte {
	k := hmacSum([]byte("AWS4"+testSecret), date)
	for _, part := range []string{"us-east-1", "s3", "aws4_request"} {
		k = hmacSum(k, part)
	}
	return k
}

// streamingRequest signs a PUT whose payload is declared as payload and
// returns it with its seed signature.
func streamingRequest(t *testing.T, payload string, decodedLen int, trailer string, now time.Time) (*http.Request, string) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:9000/bucket/key", nil)
	r.Header.Set("X-Amz-Content-Sha256", payload)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(decodedLen))
	if trailer != "" {
		r.Header.Set("X-Amz-Trailer", trailer)
	}
	err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, r, payload, "s3", "us-east-1", now)
	if err != nil {
		t.Fatal(err)
	}
	auth := r.Header.Get("Authorization")
	return r, auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
}

// signedChunks encodes data as aws-chunked with chunk signatures chained
// from seed, and a CRC32 trailer (signed) when withTrailer.
func signedChunks(data []byte, chunk int, seed string, now time.Time, withTrailer bool) []byte {
	key := signingKey(now.Format("20060102"))
	scope := now.Format("20060102") + "/us-east-1/s3/aws4_request"
	amzDate := now.Format("20060102T150405Z")
	empty := sha256.Sum256(nil)
	prev := seed
	var out bytes.Buffer
	sign := func(part []byte) string {
		sum := sha256.Sum256(part)
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + hex.EncodeToString(empty[:]) + "\n" + hex.EncodeToString(sum[:])
		prev = hex.EncodeToString(hmacSum(key, sts))
		return prev
	}
	for off := 0; off < len(data); off += chunk {
		part := data[off:min(off+chunk, len(data))]
		fmt.Fprintf(&out, "%x;chunk-signature=%s\r\n", len(part), sign(part))
		out.Write(part)
		out.WriteString("\r\n")
	}
	fmt.Fprintf(&out, "0;chunk-signature=%s\r\n", sign(nil))
	if withTrailer {
		var crc [4]byte
		binary.BigEndian.PutUint32(crc[:], crc32.ChecksumIEEE(data))
		line := "x-amz-checksum-crc32:" + base64.StdEncoding.EncodeToString(crc[:]) + "\n"
		sum := sha256.Sum256([]byte(line))
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + hex.EncodeToString(sum[:])
		out.WriteString(strings.TrimSuffix(line, "\n") + "\r\nx-amz-trailer-signature:" + hex.EncodeToString(hmacSum(key, sts)) + "\r\n")
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

// readBody authenticates r as the S3 API does and reads raw as its body.
func readBody(t *testing.T, r *http.Request, raw []byte) ([]byte, *body, error) {
	t.Helper()
	v := &sigv4.Verifier{Service: "s3", Region: "us-east-1", S3: true,
		Lookup: func(id, _ string) (sigv4.Key, *sigv4.Error) {
			if id != testKeyID {
				return sigv4.Key{}, sigv4.ErrUnrecognizedClient()
			}
			return sigv4.Key{Secret: testSecret}, nil
		}}
	auth, err := v.Authenticate(r)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if err := auth.VerifyDeclared(); err != nil {
		t.Fatalf("VerifyDeclared: %v", err)
	}
	b, err := newBody(r, bytes.NewReader(raw), auth)
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(b)
	if err != nil {
		return data, b, err
	}
	return data, b, b.verify()
}

func s3Code(err error) string {
	var e *awsproto.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return fmt.Sprint(err)
}

func TestSignedStreamingPayload(t *testing.T) {
	now := time.Now().UTC()
	data := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80,000 bytes: several chunks
	for _, withTrailer := range []bool{false, true} {
		payload, trailer := "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", ""
		if withTrailer {
			payload, trailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "x-amz-checksum-crc32"
		}
		r, seed := streamingRequest(t, payload, len(data), trailer, now)
		raw := signedChunks(data, 64<<10, seed, now, withTrailer)
		got, b, err := readBody(t, r, raw)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes, %v; want the payload", payload, len(got), err)
		}
		if withTrailer && (b.checksum.Algorithm != "crc32" || b.checksum.Value == "") {
			t.Errorf("%s: checksum %+v, want the trailer's CRC32", payload, b.checksum)
		}

		tampered := bytes.Replace(raw, []byte("0123"), []byte("X123"), 1)
		if _, _, err := readBody(t, r, tampered); s3Code(err) != "SignatureDoesNotMatch" {
			t.Errorf("%s with a changed byte: %v, want SignatureDoesNotMatch", payload, err)
		}
		r2, _ := streamingRequest(t, payload, len(data), trailer, now)
		if _, _, err := readBody(t, r2, signedChunks(data, 64<<10, strings.Repeat("0", 64), now, withTrailer)); s3Code(err) != "SignatureDoesNotMatch" {
			t.Errorf("%s chained to another seed: %v, want SignatureDoesNotMatch", payload, err)
		}
	}
}

func TestUnsignedPayloadTrailer(t *testing.T) {
	data := []byte("hello, trailer")
	var crc [4]byte
	binary.BigEndian.PutUint32(crc[:], crc32.ChecksumIEEE(data))
	good := base64.StdEncoding.EncodeToString(crc[:])
	for _, tc := range []struct {
		name, value, want string
	}{{"right checksum", good, ""}, {"wrong checksum", "AAAAAA==", "BadDigest"}} {
		r, _ := streamingRequest(t, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", len(data), "x-amz-checksum-crc32", time.Now().UTC())
		raw := fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n", len(data), data, tc.value)
		got, _, err := readBody(t, r, []byte(raw))
		if tc.want == "" && (err != nil || !bytes.Equal(got, data)) {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
		if tc.want != "" && s3Code(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		header        string
		start, length int64
		none, invalid bool
	}{
		{header: "bytes=0-9", start: 0, length: 10},
		{header: "bytes=90-", start: 90, length: 10},
		{header: "bytes=-5", start: 95, length: 5},
		{header: "bytes=-500", start: 0, length: 100},
		{header: "bytes=50-500", start: 50, length: 50},
		{header: "bytes=100-", invalid: true},
		{header: "bytes=1-2,5-6", none: true},
		{header: "items=1-2", none: true},
		{header: "", none: true},
	} {
		rng, err := parseRange(tc.header, 100)
		switch {
		case tc.invalid:
			if s3Code(err) != "InvalidRange" {
				t.Errorf("%q: %v, want InvalidRange", tc.header, err)
			}
		case tc.none:
			if rng != nil || err != nil {
				t.Errorf("%q: %+v %v, want the whole object", tc.header, rng, err)
			}
		case err != nil || rng == nil || rng.start != tc.start || rng.length != tc.length:
			t.Errorf("%q: %+v %v, want %d+%d", tc.header, rng, err, tc.start, tc.length)
		}
	}
}

func TestEventKeyAndMatching(t *testing.T) {
	if got := eventKey("images/red flower+1=a,b.jpg"); got != "images/red+flower%2B1%3Da%2Cb.jpg" {
		t.Errorf("eventKey: %s", got)
	}
	n := notificationConfig{Events: []string{"s3:ObjectCreated:*"}, Prefix: "images/", Suffix: ".jpg"}
	for event, key := range map[string]string{"ObjectCreated:Put": "images/a.jpg", "ObjectCreated:CompleteMultipartUpload": "images/b.jpg"} {
		if !n.matches(event, key) {
			t.Errorf("%s %s does not match %+v", event, key, n)
		}
	}
	for event, key := range map[string]string{"ObjectRemoved:Delete": "images/a.jpg", "ObjectCreated:Put": "docs/a.jpg", "ObjectCreated:Copy": "images/a.png"} {
		if n.matches(event, key) {
			t.Errorf("%s %s matches %+v", event, key, n)
		}
	}
	put := notificationConfig{Events: []string{"s3:ObjectCreated:Put"}, Prefix: "images/thumbs/"}
	del := notificationConfig{Events: []string{"s3:ObjectRemoved:*"}}
	other := notificationConfig{Events: []string{"s3:ObjectCreated:*"}, Prefix: "docs/"}
	if !overlap(&n, &put) || overlap(&n, &del) || overlap(&n, &other) {
		t.Errorf("overlap: %v %v %v, want true false false", overlap(&n, &put), overlap(&n, &del), overlap(&n, &other))
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct{ host, path, bucket, key string }{
		{"127.0.0.1:9000", "/b/k/x y", "b", "k/x y"},
		{"localhost:9000", "/b", "b", ""},
		{"b.localhost:9000", "/k/x", "b", "k/x"},
		{"b.s3.us-east-1.localhost", "/k", "b", "k"},
		{"b.s3.amazonaws.com", "/", "b", ""},
		{"s3.localhost:9000", "/b/k", "b", "k"},
		{"[::1]:9000", "/b/k", "b", "k"},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://"+tc.host+tc.path, nil)
		if b, k := target(r); b != tc.bucket || k != tc.key {
			t.Errorf("%s%s: %q %q, want %q %q", tc.host, tc.path, b, k, tc.bucket, tc.key)
		}
	}
}
