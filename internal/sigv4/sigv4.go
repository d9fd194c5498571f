// Package sigv4 verifies AWS Signature Version 4 (SigV4) signatures on
// incoming HTTP requests, so that unmodified AWS SDKs and the AWS CLI can
// authenticate to Lamina.
//
// Both forms of SigV4 are accepted: the Authorization header, and query-string
// ("presigned URL") authentication. The canonical request is rebuilt from the
// request as the server received it, following the rules every non-S3 AWS
// service applies:
//
//   - The URI is the path exactly as sent (r.RequestURI, not the decoded
//     r.URL.Path), percent-encoded once more, so "%3A" is signed as "%253A".
//     aws-sdk-go-v2 signs the path as sent, while botocore and the JavaScript
//     SDK v3 first remove empty, "." and ".." segments; when a path holds such
//     segments and the first form does not match, the normalised form is
//     tried as well.
//   - The query string is split on '&', each name and value is decoded (with
//     '+' meaning a space, as url.QueryUnescape does and as aws-sdk-go-v2
//     reads its own query) and re-encoded as RFC 3986 requires, and the pairs
//     are sorted by encoded name, then encoded value. The SDKs percent-encode
//     a literal '+' as %2B, so decoding '+' as a space agrees with all of
//     them. A query with a malformed percent escape cannot be signed
//     consistently by any client and is rejected as a signature mismatch.
//   - Header values are trimmed and inner runs of spaces collapsed to one, as
//     the SigV4 specification says. Host, Content-Length and
//     Transfer-Encoding, which net/http moves out of r.Header, are rebuilt.
//   - The payload hash is the hex SHA-256 of the body, or UNSIGNED-PAYLOAD when
//     the X-Amz-Content-Sha256 header says so. A hash in that header must be
//     the body's. Presigned requests without the header are UNSIGNED-PAYLOAD.
//
// A server that must not read the bodies of requests it will refuse calls
// Authenticate first, which decides from the headers alone (access key,
// scope, signing time, the form of every parameter), then streams the body
// through the returned Auth, which hashes it, and calls Auth.Verify for the
// signature. Verify does both for a body already in memory.
package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// streamingPayloads are the X-Amz-Content-Sha256 values of S3's streaming
// (aws-chunked) payloads.
var streamingPayloads = map[string]bool{
	"STREAMING-AWS4-HMAC-SHA256-PAYLOAD":         true,
	"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER": true,
	"STREAMING-UNSIGNED-PAYLOAD-TRAILER":         true,
}

const (
	signingAlgorithm  = "AWS4-HMAC-SHA256"
	scopeTerminator   = "aws4_request"
	amzDateLayout     = "20060102T150405Z"
	unsignedPayload   = "UNSIGNED-PAYLOAD"
	defaultMaxSkew    = 5 * time.Minute
	maxPresignExpires = 7 * 24 * time.Hour
)

// AWS error codes returned in Error.Code.
const (
	codeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	codeIncompleteSignature        = "IncompleteSignatureException"
	codeUnrecognizedClient         = "UnrecognizedClientException"
	codeInvalidSignature           = "InvalidSignatureException"
	codeAccessDenied               = "AccessDeniedException"
	codeExpiredToken               = "ExpiredTokenException"
)

// AWS error messages that do not depend on the request.
const (
	msgMissingAuthenticationToken = "Missing Authentication Token"
	msgUnrecognizedClient         = "The security token included in the request is invalid."
	msgExpiredToken               = "The security token included in the request is expired"
	msgSignatureMismatch          = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgHostNotSigned         = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	msgInvalidContentSHA256  = "X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value."
	msgContentSHA256Mismatch = "The provided 'x-amz-content-sha256' header does not match what was computed."
	msgPresignExpired        = "Request has expired"
)

// Query parameters of presigned requests.
const (
	queryAlgorithm     = "X-Amz-Algorithm"
	queryCredential    = "X-Amz-Credential"
	queryDate          = "X-Amz-Date"
	queryExpires       = "X-Amz-Expires"
	querySignedHeaders = "X-Amz-SignedHeaders"
	querySignature     = "X-Amz-Signature"
)

// Verifier checks SigV4 signatures for one service in one region.
//
// Lookup must be set; the other fields have usable zero values. A Verifier is
// safe for concurrent use, caches derived signing keys, and must not be
// copied after first use.
type Verifier struct {
	// Service is the signing name requests must be scoped to, e.g. "lambda".
	Service string
	// Region is the region requests must be scoped to, e.g. "us-east-1".
	Region string
	// Lookup returns what it knows of an access key ID presented with
	// sessionToken (the request's X-Amz-Security-Token, "" when it has
	// none), or the *Error that refuses it: ErrUnrecognizedClient for an
	// unknown key or a token that is not the key's, ErrExpiredToken for
	// temporary credentials that have ended.
	Lookup func(accessKeyID, sessionToken string) (Key, *Error)
	// MaxSkew is how far the signing time of a request may be from Now;
	// zero means 5 minutes, like AWS.
	MaxSkew time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// S3 applies S3's rules: the canonical URI is the path exactly as sent,
	// neither encoded again nor normalised, and X-Amz-Content-Sha256 may
	// also declare a streaming payload (STREAMING-…), whose chunks the
	// caller checks with Auth.ChunkSignature.
	S3 bool

	keys keyCache
}

// Key is what a Verifier's Lookup knows of an access key.
type Key struct {
	Secret string
	// Identity is who the key belongs to, in the Lookup's own terms; the
	// Verifier hands it on unread (Auth.Identity).
	Identity any
}

// SecurityTokenHeader carries the session token of temporary credentials
// (X-Amz-Security-Token, also a query parameter of presigned requests).
const SecurityTokenHeader = "X-Amz-Security-Token"

// ErrUnrecognizedClient refuses an unknown access key, or a session token
// that is not the key's.
func ErrUnrecognizedClient() *Error { return authError(codeUnrecognizedClient, msgUnrecognizedClient) }

// ErrExpiredToken refuses temporary credentials that have ended.
func ErrExpiredToken() *Error { return authError(codeExpiredToken, msgExpiredToken) }

// Error is an authentication failure in AWS's terms: Code is the AWS error
// code (sent as X-Amzn-ErrorType), Status the HTTP status, Message the AWS
// message.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error returns the code and message, e.g.
// "InvalidSignatureException: The request signature we calculated ...".
func (e *Error) Error() string {
	return e.Code + ": " + e.Message
}

func authError(code, message string) *Error {
	return &Error{Status: http.StatusForbidden, Code: code, Message: message}
}

// authParams are the signature parameters of a request, taken from its
// Authorization header or from its presigned query string.
type authParams struct {
	accessKeyID   string
	scope         string // date/region/service/aws4_request
	scopeDate     string
	scopeRegion   string
	scopeService  string
	scopeEnd      string // should be aws4_request
	signedHeaders string
	signature     string
	amzDate       string // signing time in the ISO 8601 basic format signed in the string to sign
	signedAt      time.Time
	presigned     bool
	expires       time.Duration // validity of a presigned request
}

// Verify returns the access key ID of a correctly signed request, or an
// *Error saying why the request is not authenticated. body is the complete
// request body, already read by the caller; Verify does not read r.Body.
// It is Authenticate and Auth.Verify in one step, for callers that hold the
// body already.
func (v *Verifier) Verify(r *http.Request, body []byte) (accessKeyID string, err error) {
	var a Auth
	if err := v.authenticate(r, &a); err != nil {
		return "", err
	}
	if a.literal == "" {
		a.sum = sha256.Sum256(body)
	}
	if err := a.check(); err != nil {
		return "", err
	}
	return a.params.accessKeyID, nil
}

// Authenticate checks everything about a request's authentication that its
// headers (or presigned query) show, without reading its body: the form of
// the Authorization header or query parameters, the access key, the
// credential scope, the signing time and the form of X-Amz-Content-Sha256.
// It returns an *Error, the same Verify would return, when one of them
// fails. The signature, which covers the body, is checked by the returned
// Auth's Verify once the body has been written to it.
//
// A request is accepted when its signature matches the one computed with the
// secret that Lookup returns, its credential scope names v.Region, v.Service
// and its own signing date, and its signing time is within MaxSkew of Now
// (for presigned requests: not later than Now+MaxSkew and not older than
// X-Amz-Expires). With an X-Amz-Content-Sha256 of UNSIGNED-PAYLOAD, and for
// presigned requests without that header, the body is not covered by the
// signature. The X-Amz-Security-Token of temporary credentials goes to
// Lookup with the access key; it is covered by the signature when the
// client signs it, as the SDKs do.
func (v *Verifier) Authenticate(r *http.Request) (*Auth, error) {
	a := new(Auth)
	if err := v.authenticate(r, a); err != nil {
		return nil, err
	}
	return a, nil
}

// Auth is a request that passed every check of Authenticate. Write its body
// to it (it is an io.Writer that hashes), then call Verify.
type Auth struct {
	v        *Verifier
	r        *http.Request
	params   authParams
	secret   string
	identity any
	// literal is the payload line of a body the signature does not cover
	// by its hash (UNSIGNED-PAYLOAD, STREAMING-…); empty when it does.
	literal string
	v2      bool              // a SigV2 presigned URL (S3)
	body    hash.Hash         // of what was written, from the first Write
	sum     [sha256.Size]byte // of the body, once known
}

// Payload is what the request declares its payload to be: the hex SHA-256
// of the body, UNSIGNED-PAYLOAD, or (S3) a STREAMING-… value.
func (a *Auth) Payload() string {
	if a.literal != "" {
		return a.literal
	}
	return a.r.Header.Get("X-Amz-Content-Sha256")
}

// VerifyDeclared checks the signature without reading the body, taking the
// payload the request declares (Payload) for what it is; the caller then
// checks the body against that declaration. A request that declares no
// payload fails as a signature mismatch.
func (a *Auth) VerifyDeclared() error {
	if a.literal != "" {
		return a.Verify()
	}
	claimed := a.r.Header.Get("X-Amz-Content-Sha256")
	if _, err := hex.Decode(a.sum[:], []byte(claimed)); err != nil || claimed == "" {
		return authError(codeInvalidSignature, msgSignatureMismatch)
	}
	if err := a.check(); err != nil {
		return err
	}
	return nil
}

// Signature is the request's signature: the seed of its chunks' signatures.
func (a *Auth) Signature() string { return a.params.signature }

// ChunkSignature returns the signature of a chunk of a streaming payload
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) whose data has SHA-256 dataSum and
// that follows the chunk (or request) signed previous.
func (a *Auth) ChunkSignature(previous string, dataSum []byte) string {
	return a.signString("AWS4-HMAC-SHA256-PAYLOAD\n" + a.params.amzDate + "\n" + a.params.scope + "\n" +
		previous + "\n" + emptySHA256 + "\n" + hex.EncodeToString(dataSum))
}

// TrailerSignature returns the signature of a streaming payload's trailer
// (its header lines, each ending in "\n", with SHA-256 trailerSum) that
// follows the final chunk signed previous.
func (a *Auth) TrailerSignature(previous string, trailerSum []byte) string {
	return a.signString("AWS4-HMAC-SHA256-TRAILER\n" + a.params.amzDate + "\n" + a.params.scope + "\n" +
		previous + "\n" + hex.EncodeToString(trailerSum))
}

// signString returns the hex HMAC of s with the request's signing key.
func (a *Auth) signString(s string) string {
	key := a.v.keys.get(keyScope{secret: a.secret, date: a.params.scopeDate, region: a.params.scopeRegion, service: a.params.scopeService})
	mac := key.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write([]byte(s))
	sum := mac.Sum(nil)
	key.macs.Put(mac)
	return hex.EncodeToString(sum)
}

// emptySHA256 is the hex SHA-256 of nothing.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// AccessKeyID is the access key the request is signed with.
func (a *Auth) AccessKeyID() string { return a.params.accessKeyID }

// Identity is what Lookup said the access key belongs to.
func (a *Auth) Identity() any { return a.identity }

// Write adds p to the request body being hashed. It never fails.
func (a *Auth) Write(p []byte) (int, error) {
	if a.literal != "" {
		return len(p), nil
	}
	if a.body == nil {
		a.body = sha256.New()
	}
	return a.body.Write(p)
}

// Verify checks the request's signature against the body written so far,
// which must be the whole body. It returns nil or an *Error.
func (a *Auth) Verify() error {
	if a.literal == "" {
		if a.body == nil {
			a.sum = sha256.Sum256(nil)
		} else {
			a.body.Sum(a.sum[:0])
		}
	}
	if err := a.check(); err != nil {
		return err
	}
	return nil
}

// authenticate fills a with what the request's headers show, or returns why
// they fail.
func (v *Verifier) authenticate(r *http.Request, a *Auth) *Error {
	var authErr *Error
	if header := r.Header.Get("Authorization"); header != "" {
		a.params, authErr = parseAuthorizationHeader(header, r.Header)
	} else if isPresigned(r.URL.RawQuery) {
		a.params, authErr = parsePresignedQuery(r.URL.RawQuery)
	} else if v.S3 && isPresignedV2(r.URL.RawQuery) {
		return v.authenticateV2(r, a)
	} else {
		authErr = authError(codeMissingAuthenticationToken, msgMissingAuthenticationToken)
	}
	if authErr == nil {
		authErr = v.checkScope(&a.params)
	}
	if authErr == nil {
		authErr = v.checkTime(&a.params)
	}
	if authErr != nil {
		return authErr
	}
	token := r.Header.Get(SecurityTokenHeader)
	if a.params.presigned {
		if t, ok := queryParam(r.URL.RawQuery, SecurityTokenHeader); ok {
			token = t
		}
	}
	key, err := v.Lookup(a.params.accessKeyID, token)
	if err != nil {
		return err
	}
	claimed := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case claimed == unsignedPayload || (claimed == "" && a.params.presigned):
		a.literal = unsignedPayload
	case v.S3 && strings.HasPrefix(claimed, "STREAMING-") && streamingPayloads[claimed]:
		a.literal = claimed
	case claimed != "" && (len(claimed) != 2*sha256.Size || !isHex(claimed)):
		return authError(codeInvalidSignature, msgInvalidContentSHA256)
	}
	a.v, a.r, a.secret, a.identity = v, r, key.Secret, key.Identity
	return nil
}

// check compares the signature with the one computed from the body's hash.
func (a *Auth) check() *Error {
	if a.v2 {
		return a.checkV2()
	}
	return a.v.checkSignature(a.r, a.sum[:], a.literal, &a.params, a.secret)
}

// checkScope requires the credential scope to name v's region and service
// and the request's signing date.
func (v *Verifier) checkScope(p *authParams) *Error {
	switch {
	case p.scopeEnd != scopeTerminator:
		return authError(codeInvalidSignature,
			"Credential should be scoped with a valid terminator: 'aws4_request', not '"+p.scopeEnd+"'. ")
	case p.scopeRegion != v.Region:
		return authError(codeInvalidSignature, "Credential should be scoped to a valid region. ")
	case p.scopeService != v.Service:
		return authError(codeInvalidSignature, "Credential should be scoped to correct service: '"+v.Service+"'. ")
	case p.scopeDate != p.amzDate[:8]:
		return authError(codeInvalidSignature, fmt.Sprintf(
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			p.scopeDate, p.amzDate[:8], p.amzDate))
	}
	return nil
}

// checkTime requires the signing time to be within MaxSkew of now, or for a
// presigned request not after now+MaxSkew and not expired.
func (v *Verifier) checkTime(p *authParams) *Error {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	now = now.UTC()
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	if latest := now.Add(skew); p.signedAt.After(latest) {
		return authError(codeInvalidSignature, fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s.)",
			p.amzDate, latest.Format(amzDateLayout), now.Format(amzDateLayout), describeSkew(skew)))
	}
	if p.presigned {
		if now.After(p.signedAt.Add(p.expires)) {
			return authError(codeAccessDenied, msgPresignExpired)
		}
		return nil
	}
	if earliest := now.Add(-skew); p.signedAt.Before(earliest) {
		return authError(codeInvalidSignature, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s.)",
			p.amzDate, earliest.Format(amzDateLayout), now.Format(amzDateLayout), describeSkew(skew)))
	}
	return nil
}

// describeSkew formats a clock skew allowance the way AWS messages do ("5 min").
func describeSkew(skew time.Duration) string {
	if skew%time.Minute == 0 {
		return strconv.FormatInt(int64(skew/time.Minute), 10) + " min"
	}
	return skew.String()
}

// parseAuthorizationHeader reads
// "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." and the
// signing time from X-Amz-Date, or from Date when X-Amz-Date is absent.
func parseAuthorizationHeader(header string, h http.Header) (authParams, *Error) {
	var p authParams
	algorithm, components, _ := strings.Cut(header, " ")
	if algorithm != signingAlgorithm {
		return p, authError(codeIncompleteSignature,
			"Unsupported AWS 'algorithm': '"+algorithm+"'. Authorization="+header)
	}
	var credential string
	var haveCredential, haveSignedHeaders, haveSignature bool
	for components != "" {
		var component string
		component, components, _ = strings.Cut(components, ",")
		component = strings.TrimSpace(component)
		if component == "" {
			continue
		}
		name, value, ok := strings.Cut(component, "=")
		if !ok {
			return p, authError(codeIncompleteSignature, fmt.Sprintf(
				"'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", component, header))
		}
		switch name {
		case "Credential":
			credential, haveCredential = value, true
		case "SignedHeaders":
			p.signedHeaders, haveSignedHeaders = value, true
		case "Signature":
			p.signature, haveSignature = value, true
		}
	}

	amzDate := h.Get("X-Amz-Date")
	httpDate := h.Get("Date")
	if !haveCredential || !haveSignedHeaders || !haveSignature || (amzDate == "" && httpDate == "") {
		var msg strings.Builder
		if !haveCredential {
			msg.WriteString("Authorization header requires 'Credential' parameter. ")
		}
		if !haveSignature {
			msg.WriteString("Authorization header requires 'Signature' parameter. ")
		}
		if !haveSignedHeaders {
			msg.WriteString("Authorization header requires 'SignedHeaders' parameter. ")
		}
		if amzDate == "" && httpDate == "" {
			msg.WriteString("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
		}
		msg.WriteString("Authorization=")
		msg.WriteString(header)
		return p, authError(codeIncompleteSignature, msg.String())
	}

	if err := p.setCredential(credential); err != nil {
		return p, err
	}
	if err := checkSignedHeaders(p.signedHeaders); err != nil {
		return p, err
	}
	if amzDate != "" {
		if err := p.setAmzDate(amzDate); err != nil {
			return p, err
		}
		return p, nil
	}
	signedAt, err := http.ParseTime(httpDate)
	if err != nil {
		return p, invalidDateError(httpDate)
	}
	p.signedAt = signedAt.UTC()
	p.amzDate = p.signedAt.Format(amzDateLayout)
	return p, nil
}

// isPresigned reports whether a raw query string carries SigV4 query
// parameters.
func isPresigned(rawQuery string) bool {
	for _, name := range [...]string{queryAlgorithm, queryCredential, querySignature} {
		if _, ok := queryParam(rawQuery, name); ok {
			return true
		}
	}
	return false
}

// parsePresignedQuery reads the X-Amz-* parameters of a presigned request.
func parsePresignedQuery(rawQuery string) (authParams, *Error) {
	p := authParams{presigned: true}
	required := [...]string{queryAlgorithm, queryCredential, querySignature, queryDate, querySignedHeaders, queryExpires}
	var values [len(required)]string
	var missing strings.Builder
	for i, name := range required {
		value, ok := queryParam(rawQuery, name)
		if !ok {
			missing.WriteString("AWS query-string parameters must include '" + name + "'. ")
		}
		values[i] = value
	}
	if missing.Len() > 0 {
		missing.WriteString("Re-examine the query-string parameters.")
		return p, authError(codeIncompleteSignature, missing.String())
	}
	algorithm, credential, amzDate, expires := values[0], values[1], values[3], values[5]
	p.signature, p.signedHeaders = values[2], values[4]

	if algorithm != signingAlgorithm {
		return p, authError(codeIncompleteSignature, "Unsupported AWS 'algorithm': '"+algorithm+"'.")
	}
	if err := p.setCredential(credential); err != nil {
		return p, err
	}
	if err := checkSignedHeaders(p.signedHeaders); err != nil {
		return p, err
	}
	if err := p.setAmzDate(amzDate); err != nil {
		return p, err
	}
	seconds, err := strconv.ParseInt(expires, 10, 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return p, authError(codeIncompleteSignature, "X-Amz-Expires should be a number")
	case seconds < 0:
		return p, authError(codeIncompleteSignature, "X-Amz-Expires must be non-negative")
	case seconds > int64(maxPresignExpires/time.Second):
		return p, authError(codeIncompleteSignature, "X-Amz-Expires must be less than a week (in seconds) that is 604800")
	}
	p.expires = time.Duration(seconds) * time.Second
	return p, nil
}

// queryParam returns the decoded value of the first parameter called name in
// a raw query string; a value with a malformed percent escape is returned as
// it is.
func queryParam(rawQuery, name string) (string, bool) {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		key, value, _ := strings.Cut(pair, "=")
		if key != name {
			continue
		}
		decoded, err := url.QueryUnescape(value)
		if err != nil {
			return value, true
		}
		return decoded, true
	}
	return "", false
}

// setCredential splits "AKID/yyyymmdd/region/service/aws4_request".
func (p *authParams) setCredential(credential string) *Error {
	accessKeyID, scope, _ := strings.Cut(credential, "/")
	date, rest, _ := strings.Cut(scope, "/")
	region, rest, _ := strings.Cut(rest, "/")
	service, end, found := strings.Cut(rest, "/")
	if !found || strings.Contains(end, "/") {
		return authError(codeIncompleteSignature,
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '"+credential+"'")
	}
	p.accessKeyID, p.scope = accessKeyID, scope
	p.scopeDate, p.scopeRegion, p.scopeService, p.scopeEnd = date, region, service, end
	return nil
}

// setAmzDate parses a signing time in ISO 8601 basic format.
func (p *authParams) setAmzDate(amzDate string) *Error {
	signedAt, err := time.Parse(amzDateLayout, amzDate)
	if err != nil || len(amzDate) != len(amzDateLayout) {
		return invalidDateError(amzDate)
	}
	p.amzDate, p.signedAt = amzDate, signedAt
	return nil
}

func invalidDateError(date string) *Error {
	return authError(codeIncompleteSignature,
		"Date must be in ISO-8601 'basic format'. Got '"+date+"'. See http://en.wikipedia.org/wiki/ISO_8601")
}

// checkSignedHeaders requires a list of distinct lowercase header names in
// ascending order that includes host, as every SigV4 signer produces.
func checkSignedHeaders(signedHeaders string) *Error {
	previous, hasHost := "", false
	for names := signedHeaders; ; {
		name, rest, more := strings.Cut(names, ";")
		if !isLowercaseToken(name) || name <= previous {
			return authError(codeIncompleteSignature,
				"SignedHeaders must list distinct lowercase header names in sorted order, separated by ';'. SignedHeaders="+signedHeaders)
		}
		hasHost = hasHost || name == "host"
		if !more {
			break
		}
		previous, names = name, rest
	}
	if !hasHost {
		return authError(codeIncompleteSignature, msgHostNotSigned)
	}
	return nil
}

// isLowercaseToken reports whether name is a non-empty HTTP token (RFC 9110)
// without uppercase letters.
func isLowercaseToken(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return name != ""
}
