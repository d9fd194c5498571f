package frontend

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// codeDownloadPath is where GetFunction's Code.Location points: a URL on
// Lamina itself, signed with the deployment's code URL key and valid for
// codeURLLifetime, from which the zip downloads without other credentials
// (as AWS's presigned S3 URLs do).
const (
	codeDownloadPath = "/_lamina/code/"
	codeURLLifetime  = 10 * time.Minute
)

// codeURL returns a signed download URL of the archive digest, on the host
// the request came to.
func (f *Frontend) codeURL(r *http.Request, digest string) string {
	expires := strconv.FormatInt(time.Now().Add(codeURLLifetime).Unix(), 10)
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	q := url.Values{"Expires": {expires}, "Signature": {f.codeSignature(digest, expires)}}
	return scheme + "://" + r.Host + codeDownloadPath + digest + "?" + q.Encode()
}

func (f *Frontend) codeSignature(digest, expires string) string {
	mac := hmac.New(sha256.New, f.cfg.CodeURLKey)
	mac.Write([]byte(digest + "\n" + expires))
	return hex.EncodeToString(mac.Sum(nil))
}

// downloadCode serves a code archive to the holder of a valid signed URL.
func (f *Frontend) downloadCode(rq *request) error {
	digest := rq.r.PathValue("digest")
	q := rq.r.URL.Query()
	expires := q.Get("Expires")
	sig, err := hex.DecodeString(q.Get("Signature"))
	want, _ := hex.DecodeString(f.codeSignature(digest, expires))
	if err != nil || !hmac.Equal(sig, want) {
		return &lamina.Error{Status: http.StatusForbidden, Code: "AccessDenied", Type: "User", Message: "The signature of this code URL is not valid."}
	}
	if exp, err := strconv.ParseInt(expires, 10, 64); err != nil || time.Now().Unix() > exp {
		return &lamina.Error{Status: http.StatusForbidden, Code: "AccessDenied", Type: "User", Message: "This code URL has expired; call GetFunction for a new one."}
	}
	body, size, err := f.store.OpenCode(rq.r.Context(), digest)
	if errors.Is(err, store.ErrNotFound) {
		return &lamina.Error{Status: http.StatusNotFound, Code: "NoSuchKey", Type: "User", Message: "The code archive no longer exists."}
	}
	if err != nil {
		return err
	}
	defer body.Close()
	h := rq.w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	rq.w.WriteHeader(http.StatusOK)
	_, err = io.Copy(rq.w, body)
	if err != nil {
		f.log.Warn("code download interrupted", "digest", digest, "err", err)
	}
	return nil
}
