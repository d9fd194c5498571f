package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// S3 still takes presigned URLs of AWS Signature Version 2 (query
// parameters AWSAccessKeyId, Expires and Signature), which boto3's
// generate_presigned_url makes unless told to sign with SigV4. A Verifier
// with S3 set accepts them for path-style URLs: the signature is the
// base64 HMAC-SHA1, with the secret, of
//
//	METHOD\nContent-MD5\nContent-Type\nExpires\n<x-amz-* headers><path as sent>[?<sub-resources>]
//
// and the body is not covered.

// isPresignedV2 reports whether a raw query string carries SigV2 query
// parameters.
func isPresignedV2(rawQuery string) bool {
	_, key := queryParam(rawQuery, "AWSAccessKeyId")
	_, sig := queryParam(rawQuery, "Signature")
	return key && sig
}

// v2SubResources are the query parameters a SigV2 signature covers.
var v2SubResources = []string{"acl", "cors", "delete", "lifecycle", "location", "logging", "notification",
	"partNumber", "policy", "requestPayment", "response-cache-control", "response-content-disposition",
	"response-content-encoding", "response-content-language", "response-content-type", "response-expires",
	"restore", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website"}

// authenticateV2 fills a from a SigV2 presigned query, or returns why it
// fails.
func (v *Verifier) authenticateV2(r *http.Request, a *Auth) *Error {
	id, _ := queryParam(r.URL.RawQuery, "AWSAccessKeyId")
	expires, ok := queryParam(r.URL.RawQuery, "Expires")
	seconds, err := strconv.ParseInt(expires, 10, 64)
	if !ok || err != nil {
		return authError(codeAccessDenied, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if now.After(time.Unix(seconds, 0)) {
		return authError(codeAccessDenied, msgPresignExpired)
	}
	token, ok := queryParam(r.URL.RawQuery, "x-amz-security-token") // as boto3 spells it
	if !ok {
		token, _ = queryParam(r.URL.RawQuery, SecurityTokenHeader)
	}
	key, lookupErr := v.Lookup(id, token)
	if lookupErr != nil {
		return lookupErr
	}
	a.v, a.r, a.secret, a.identity, a.literal, a.v2 = v, r, key.Secret, key.Identity, unsignedPayload, true
	a.params = authParams{accessKeyID: id, presigned: true}
	a.params.signature, _ = queryParam(r.URL.RawQuery, "Signature")
	return nil
}

// checkV2 compares a SigV2 presigned request's signature with the one
// computed from the secret.
func (a *Auth) checkV2() *Error {
	r := a.r
	expires, _ := queryParam(r.URL.RawQuery, "Expires")
	var b strings.Builder
	b.WriteString(r.Method + "\n" + r.Header.Get("Content-Md5") + "\n" + r.Header.Get("Content-Type") + "\n" + expires + "\n")
	var amz []string
	for name, values := range r.Header {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-") {
			amz = append(amz, lower+":"+strings.Join(values, ","))
		}
	}
	slices.Sort(amz)
	for _, h := range amz {
		b.WriteString(h + "\n")
	}
	b.WriteString(requestPath(r))
	q, _ := url.ParseQuery(r.URL.RawQuery)
	sep := "?"
	for _, name := range v2SubResources {
		if values, ok := q[name]; ok {
			b.WriteString(sep + name)
			if values[0] != "" {
				b.WriteString("=" + values[0])
			}
			sep = "&"
		}
	}
	mac := hmac.New(sha1.New, []byte(a.secret))
	mac.Write([]byte(b.String()))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), []byte(a.params.signature)) != 1 {
		return authError(codeInvalidSignature, msgSignatureMismatch)
	}
	return nil
}
