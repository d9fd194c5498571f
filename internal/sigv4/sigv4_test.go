package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

const (
	testAccessKeyID = "AKIDEXAMPLE"
	testSecret      = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion      = "us-east-1"
	testService     = "lambda"
	functionARNPath = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Afoo"
	invokePath      = functionARNPath + "/invocations"
)

// testNow is the fixed clock of tests that need deterministic messages.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

var testCredentials = aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecret}

// newTestVerifier verifies requests signed with testCredentials, with or
// without a session token; the token is the Identity of the key.
func newTestVerifier(service string, now func() time.Time) *Verifier {
	return &Verifier{
		Service: service,
		Region:  testRegion,
		Lookup: func(accessKeyID, sessionToken string) (Key, *Error) {
			if accessKeyID == testAccessKeyID {
				return Key{Secret: testSecret, Identity: sessionToken}, nil
			}
			return Key{}, ErrUnrecognizedClient()
		},
		Now: now,
	}
}

// outcome is what the verifying server's handler concluded for one request.
type outcome struct {
	accessKeyID string
	identity    any // what Lookup said of the key
	err         *Error
	// bodyRead tells whether the body was read before the outcome: false
	// when Authenticate refused the request from its headers.
	bodyRead bool
}

// startVerifyingServer serves a Verifier over real HTTP the way the
// frontend uses it: Authenticate from the headers, then the body streamed
// through the Auth, then Auth.Verify. It also checks that Verify, given the
// whole body at once, comes to the same outcome. Each request is answered
// 200 {} or with the AWS error, and its outcome sent on the returned
// channel.
func startVerifyingServer(t *testing.T, v *Verifier) (*httptest.Server, <-chan outcome) {
	t.Helper()
	outcomes := make(chan outcome, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var o outcome
		auth, err := v.Authenticate(r)
		var body bytes.Buffer
		if err == nil {
			o.bodyRead = true
			if _, err := io.Copy(io.MultiWriter(&body, auth), r.Body); err != nil {
				t.Errorf("reading body: %v", err)
			}
			if err = auth.Verify(); err == nil {
				o.accessKeyID, o.identity = auth.AccessKeyID(), auth.Identity()
			}
		}
		if err != nil {
			if !errors.As(err, &o.err) {
				t.Errorf("Authenticate or Verify returned %T, want *Error", err)
				o.err = &Error{Status: http.StatusInternalServerError, Code: "Unknown", Message: err.Error()}
			}
		}
		if !o.bodyRead {
			_, _ = io.Copy(&body, r.Body)
		}
		accessKeyID, verr := v.Verify(r, body.Bytes())
		var verifyErr *Error
		errors.As(verr, &verifyErr)
		if accessKeyID != o.accessKeyID || (verifyErr == nil) != (o.err == nil) || verifyErr != nil && *verifyErr != *o.err {
			t.Errorf("Verify concluded (%q, %v), streaming verification (%q, %v)", accessKeyID, verr, o.accessKeyID, o.err)
		}
		outcomes <- o
		if o.err != nil {
			w.Header().Set("X-Amzn-ErrorType", o.err.Code)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(o.err.Status)
			json.NewEncoder(w).Encode(map[string]string{"message": o.err.Message})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	return srv, outcomes
}

func receive(t *testing.T, outcomes <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-outcomes:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("the server saw no request")
		return outcome{}
	}
}

func payloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// goRequest describes a request to sign with aws-sdk-go-v2's signer.
type goRequest struct {
	method   string
	target   string // path and query, as sent
	body     []byte
	chunked  bool // send the body with Transfer-Encoding: chunked
	headers  http.Header
	creds    aws.Credentials
	region   string
	service  string
	signedAt time.Time
	// payloadHash overrides the hex SHA-256 of the body given to the signer.
	payloadHash string
	// tamper changes the request after signing.
	tamper func(*http.Request)
}

// signAndSend signs req with aws-sdk-go-v2's v4.Signer and sends it to srv.
func signAndSend(t *testing.T, srv *httptest.Server, outcomes <-chan outcome, req goRequest) outcome {
	t.Helper()
	var body io.Reader = http.NoBody
	if len(req.body) > 0 {
		body = bytes.NewReader(req.body)
		if req.chunked {
			body = io.MultiReader(body) // hides the length from net/http
		}
	}
	method := req.method
	if method == "" {
		method = http.MethodPost
	}
	r, err := http.NewRequest(method, srv.URL+req.target, body)
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range req.headers {
		r.Header[name] = values
	}
	creds, region, service, signedAt := req.creds, req.region, req.service, req.signedAt
	if creds.AccessKeyID == "" {
		creds = testCredentials
	}
	if region == "" {
		region = testRegion
	}
	if service == "" {
		service = testService
	}
	if signedAt.IsZero() {
		signedAt = time.Now()
	}
	hash := req.payloadHash
	if hash == "" {
		hash = payloadHash(req.body)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hash, service, region, signedAt); err != nil {
		t.Fatal(err)
	}
	if req.tamper != nil {
		req.tamper(r)
	}
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	o := receive(t, outcomes)
	if (o.err == nil) != (resp.StatusCode == http.StatusOK) {
		t.Fatalf("status %d does not agree with outcome %+v", resp.StatusCode, o)
	}
	return o
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoSignerAccepted signs requests with aws-sdk-go-v2's signer and
// verifies them on a real HTTP server.
func TestGoSignerAccepted(t *testing.T) {
	srv, outcomes := startVerifyingServer(t, newTestVerifier(testService, nil))
	invokeHeaders := http.Header{
		"X-Amz-Invocation-Type": {"RequestResponse"},
		"X-Amz-Client-Context":  {base64.StdEncoding.EncodeToString([]byte(`{"custom":{"a":"b"}}`))},
		"Content-Type":          {"application/json"},
	}
	tests := []struct {
		name string
		req  goRequest
	}{
		{"invoke full ARN", goRequest{target: invokePath, body: []byte(`{"hello":"world"}`), headers: invokeHeaders}},
		{"invoke empty body", goRequest{target: invokePath}},
		{"invoke 3 MiB body", goRequest{target: invokePath, body: randomBytes(t, 3<<20)}},
		{"chunked body", goRequest{target: invokePath, body: randomBytes(t, 100<<10), chunked: true}},
		{"session token", goRequest{target: invokePath, body: []byte(`{}`), creds: aws.Credentials{
			AccessKeyID: testAccessKeyID, SecretAccessKey: testSecret, SessionToken: "FQoGZXIvYXdz//token+with=chars",
		}}},
		{"GetFunction full ARN", goRequest{method: http.MethodGet, target: functionARNPath + "?Qualifier=%24LATEST"}},
		{"trailing slash", goRequest{method: http.MethodGet, target: "/2015-03-31/functions/"}},
		{"root path", goRequest{target: "", body: []byte(`{}`), service: testService}},
		{"query from url.Values", goRequest{method: http.MethodGet, target: "/2015-03-31/functions/?" + url.Values{
			"Marker":   {"page 2 + more $tuff: a/b"},
			"MaxItems": {"10"},
		}.Encode()}},
		{"raw query with spaces, plus, dollar, colon, slash", goRequest{method: http.MethodGet,
			target: "/2015-03-31/functions/?z=last&Marker=a%20b+c%2Bd$e:f/g&a=2&a=1&flag&empty="}},
		{"non-ASCII path and query", goRequest{method: http.MethodGet,
			target: "/2015-03-31/functions/%E2%9C%93/aliases?Name=%E2%9C%93%7E"}},
		{"repeated and padded headers", goRequest{target: invokePath, body: []byte(`{}`), headers: http.Header{
			"X-Amz-Meta-List": {"  one   two  ", "three"},
		}}},
		{"signed 4 minutes ago", goRequest{target: invokePath, signedAt: time.Now().Add(-4 * time.Minute)}},
		{"signed 4 minutes ahead", goRequest{target: invokePath, signedAt: time.Now().Add(4 * time.Minute)}},
		{"unsigned payload", goRequest{target: invokePath, body: []byte(`{"a":1}`), payloadHash: unsignedPayload,
			headers: http.Header{"X-Amz-Content-Sha256": {unsignedPayload}}}},
		{"content sha256 header", goRequest{target: invokePath, body: []byte(`{"a":1}`),
			headers: http.Header{"X-Amz-Content-Sha256": {payloadHash([]byte(`{"a":1}`))}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := signAndSend(t, srv, outcomes, tt.req)
			if o.err != nil {
				t.Fatalf("Verify failed: %v", o.err)
			}
			if o.accessKeyID != testAccessKeyID {
				t.Fatalf("access key ID = %q, want %q", o.accessKeyID, testAccessKeyID)
			}
		})
	}
}

// TestEventBridgeJSON11 verifies a JSON 1.1 style request (POST / with
// X-Amz-Target) for another service.
func TestEventBridgeJSON11(t *testing.T) {
	srv, outcomes := startVerifyingServer(t, newTestVerifier("events", nil))
	o := signAndSend(t, srv, outcomes, goRequest{
		target:  "/",
		service: "events",
		body:    []byte(`{"Entries":[{"Source":"lamina.test","DetailType":"t","Detail":"{}"}]}`),
		headers: http.Header{
			"X-Amz-Target": {"AWSEvents.PutEvents"},
			"Content-Type": {"application/x-amz-json-1.1"},
		},
	})
	if o.err != nil {
		t.Fatalf("Verify failed: %v", o.err)
	}
}

// TestLambdaClient calls the verifying server with the real aws-sdk-go-v2
// Lambda client.
func TestLambdaClient(t *testing.T) {
	srv, outcomes := startVerifyingServer(t, newTestVerifier(testService, nil))
	newClient := func(secret string) *lambda.Client {
		return lambda.NewFromConfig(aws.Config{
			Region: testRegion,
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: secret, SessionToken: "session-token"}, nil
			}),
			RetryMaxAttempts: 1,
		}, func(o *lambda.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	}
	client := newClient(testSecret)
	ctx := context.Background()
	const arn = "arn:aws:lambda:us-east-1:000000000000:function:foo"
	calls := []struct {
		name string
		call func() error
	}{
		{"GetFunction", func() error {
			_, err := client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(arn + ":1")})
			return err
		}},
		{"ListFunctions", func() error {
			_, err := client.ListFunctions(ctx, &lambda.ListFunctionsInput{
				Marker:          aws.String("next page+token/with:special$chars=="),
				MaxItems:        aws.Int32(7),
				FunctionVersion: types.FunctionVersionAll,
			})
			return err
		}},
		{"Invoke", func() error {
			_, err := client.Invoke(ctx, &lambda.InvokeInput{
				FunctionName:   aws.String(arn),
				Qualifier:      aws.String("live"),
				InvocationType: types.InvocationTypeRequestResponse,
				LogType:        types.LogTypeTail,
				ClientContext:  aws.String(base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))),
				Payload:        []byte(`{"hello": "world  with  spaces"}`),
			})
			return err
		}},
		{"Invoke async empty payload", func() error {
			_, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("foo"), InvocationType: types.InvocationTypeEvent})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if o := receive(t, outcomes); o.err != nil || o.accessKeyID != testAccessKeyID {
				t.Fatalf("outcome = %+v", o)
			}
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		_, err := newClient("wrong").GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(arn)})
		var apiErr interface{ ErrorCode() string }
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != codeInvalidSignature {
			t.Fatalf("err = %v, want %s", err, codeInvalidSignature)
		}
		if o := receive(t, outcomes); o.err == nil {
			t.Fatal("request was accepted")
		}
	})
}

// TestPresigned verifies query-string authentication made with
// aws-sdk-go-v2's PresignHTTP.
func TestPresigned(t *testing.T) {
	srv, outcomes := startVerifyingServer(t, newTestVerifier(testService, func() time.Time { return testNow }))
	presign := func(signedAt time.Time, expires string) string {
		target := srv.URL + functionARNPath + "?Qualifier=live"
		if expires != "" {
			target += "&X-Amz-Expires=" + expires
		}
		r, err := http.NewRequest(http.MethodGet, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		creds := testCredentials
		creds.SessionToken = "presign/token+"
		signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, unsignedPayload, testService, testRegion, signedAt)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	get := func(t *testing.T, target string) outcome {
		t.Helper()
		resp, err := srv.Client().Get(target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return receive(t, outcomes)
	}

	if o := get(t, presign(testNow.Add(-time.Hour), "7200")); o.err != nil {
		t.Fatalf("valid presigned URL rejected: %v", o.err)
	}
	if o := get(t, presign(testNow.Add(-6*24*time.Hour), "604800")); o.err != nil {
		t.Fatalf("6 day old presigned URL valid for 7 days rejected: %v", o.err)
	}

	tests := []struct {
		name        string
		target      string
		code, msg   string
		msgContains bool
	}{
		{"expired", presign(testNow.Add(-2*time.Minute), "60"), codeAccessDenied, msgPresignExpired, false},
		{"not yet current", presign(testNow.Add(6*time.Minute), "60"), codeInvalidSignature,
			"Signature not yet current: 20260304T051207Z is still later than 20260304T051107Z (20260304T050607Z + 5 min.)", false},
		{"expires over a week", presign(testNow, "604801"), codeIncompleteSignature,
			"X-Amz-Expires must be less than a week (in seconds) that is 604800", false},
		{"expires negative", presign(testNow, "-1"), codeIncompleteSignature, "X-Amz-Expires must be non-negative", false},
		{"missing expires", presign(testNow, ""), codeIncompleteSignature,
			"AWS query-string parameters must include 'X-Amz-Expires'. Re-examine the query-string parameters.", false},
		{"tampered query", strings.Replace(presign(testNow, "60"), "Qualifier=live", "Qualifier=prod", 1),
			codeInvalidSignature, msgSignatureMismatch, false},
		{"tampered signature", strings.Replace(presign(testNow, "60"), "X-Amz-Signature=", "X-Amz-Signature=0", 1),
			codeInvalidSignature, msgSignatureMismatch, false},
		{"missing signature", srv.URL + "/?X-Amz-Algorithm=AWS4-HMAC-SHA256", codeIncompleteSignature,
			"AWS query-string parameters must include 'X-Amz-Credential'. ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := get(t, tt.target)
			checkError(t, o.err, tt.code, tt.msg, tt.msgContains)
		})
	}
}

func checkError(t *testing.T, err *Error, code, msg string, msgContains bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("request accepted, want %s", code)
	}
	if err.Status != http.StatusForbidden || err.Code != code || !strings.HasPrefix(err.Error(), code+": ") {
		t.Errorf("got %d %s, want 403 %s (message %q)", err.Status, err.Code, code, err.Message)
	}
	if msgContains && !strings.Contains(err.Message, msg) || !msgContains && err.Message != msg {
		t.Errorf("message = %q, want %q", err.Message, msg)
	}
}

// TestRejected covers requests that must not authenticate.
func TestRejected(t *testing.T) {
	srv, outcomes := startVerifyingServer(t, newTestVerifier(testService, func() time.Time { return testNow }))
	body := []byte(`{"hello":"world"}`)
	invoke := func(change func(*goRequest)) goRequest {
		req := goRequest{
			target:   invokePath,
			body:     body,
			signedAt: testNow,
			headers:  http.Header{"X-Amz-Invocation-Type": {"RequestResponse"}},
		}
		if change != nil {
			change(&req)
		}
		return req
	}
	setAuthorization := func(value string) func(*goRequest) {
		return func(req *goRequest) {
			req.tamper = func(r *http.Request) { r.Header.Set("Authorization", value) }
		}
	}
	const scope = "AKIDEXAMPLE/20260304/us-east-1/lambda/aws4_request"
	const signature = "0000000000000000000000000000000000000000000000000000000000000000"

	tests := []struct {
		name        string
		req         goRequest
		code, msg   string
		msgContains bool
	}{
		{"wrong secret", invoke(func(r *goRequest) {
			r.creds = aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: "not the secret"}
		}), codeInvalidSignature, msgSignatureMismatch, false},
		{"unknown key", invoke(func(r *goRequest) {
			r.creds = aws.Credentials{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: testSecret}
		}), codeUnrecognizedClient, msgUnrecognizedClient, false},
		{"tampered body", invoke(func(r *goRequest) {
			r.tamper = func(req *http.Request) {
				req.Body = io.NopCloser(bytes.NewReader([]byte(`{"hello":"World"}`)))
			}
		}), codeInvalidSignature, msgSignatureMismatch, false},
		{"tampered path", invoke(func(r *goRequest) {
			r.tamper = func(req *http.Request) {
				req.URL.RawPath = strings.Replace(req.URL.RawPath, "foo", "bar", 1)
				req.URL.Path = strings.Replace(req.URL.Path, "foo", "bar", 1)
			}
		}), codeInvalidSignature, msgSignatureMismatch, false},
		{"path decoded instead of escaped", invoke(func(r *goRequest) {
			r.tamper = func(req *http.Request) { req.URL.RawPath = "" }
		}), codeInvalidSignature, msgSignatureMismatch, false},
		{"tampered query", invoke(func(r *goRequest) {
			r.target += "?Qualifier=1"
			r.tamper = func(req *http.Request) { req.URL.RawQuery = "Qualifier=2" }
		}), codeInvalidSignature, msgSignatureMismatch, false},
		{"tampered signed header", invoke(func(r *goRequest) {
			r.tamper = func(req *http.Request) { req.Header.Set("X-Amz-Invocation-Type", "Event") }
		}), codeInvalidSignature, msgSignatureMismatch, false},
		{"removed signed header", invoke(func(r *goRequest) {
			r.tamper = func(req *http.Request) { req.Header.Del("X-Amz-Invocation-Type") }
		}), codeInvalidSignature, msgSignatureMismatch, false},
		{"wrong content sha256", invoke(func(r *goRequest) {
			r.headers.Set("X-Amz-Content-Sha256", payloadHash([]byte("other")))
		}), codeInvalidSignature, msgContentSHA256Mismatch, false},
		{"invalid content sha256", invoke(func(r *goRequest) {
			r.headers.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
		}), codeInvalidSignature, msgInvalidContentSHA256, false},
		{"signed 6 minutes ago", invoke(func(r *goRequest) { r.signedAt = testNow.Add(-6 * time.Minute) }),
			codeInvalidSignature,
			"Signature expired: 20260304T050007Z is now earlier than 20260304T050107Z (20260304T050607Z - 5 min.)", false},
		{"signed 6 minutes ahead", invoke(func(r *goRequest) { r.signedAt = testNow.Add(6 * time.Minute) }),
			codeInvalidSignature,
			"Signature not yet current: 20260304T051207Z is still later than 20260304T051107Z (20260304T050607Z + 5 min.)", false},
		{"wrong region", invoke(func(r *goRequest) { r.region = "eu-west-1" }),
			codeInvalidSignature, "Credential should be scoped to a valid region. ", false},
		{"wrong service", invoke(func(r *goRequest) { r.service = "s3" }),
			codeInvalidSignature, "Credential should be scoped to correct service: 'lambda'. ", false},
		{"scope date differs from X-Amz-Date", invoke(func(r *goRequest) {
			r.tamper = func(req *http.Request) { req.Header.Set("X-Amz-Date", "20260303T050607Z") }
		}), codeInvalidSignature,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260304' != '20260303', from '20260303T050607Z'.", false},
		{"missing authorization", invoke(func(r *goRequest) {
			r.tamper = func(req *http.Request) { req.Header.Del("Authorization") }
		}), codeMissingAuthenticationToken, msgMissingAuthenticationToken, false},
		{"missing signature", invoke(setAuthorization("AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=host;x-amz-date")),
			codeIncompleteSignature,
			"Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=host;x-amz-date", false},
		{"missing everything", invoke(func(r *goRequest) {
			r.tamper = func(req *http.Request) {
				req.Header.Set("Authorization", "AWS4-HMAC-SHA256")
				req.Header.Del("X-Amz-Date")
			}
		}), codeIncompleteSignature,
			"Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
				"Authorization header requires 'SignedHeaders' parameter. " +
				"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256", false},
		{"wrong algorithm", invoke(setAuthorization("AWS4-HMAC-SHA512 Credential=" + scope + ", SignedHeaders=host, Signature=" + signature)),
			codeIncompleteSignature, "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.", true},
		{"bearer token", invoke(setAuthorization("Bearer abc")),
			codeIncompleteSignature, "Unsupported AWS 'algorithm': 'Bearer'. Authorization=Bearer abc", false},
		{"credential with 4 elements", invoke(setAuthorization("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=" + signature)),
			codeIncompleteSignature,
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/us-east-1/lambda/aws4_request'", false},
		{"credential with 6 elements", invoke(setAuthorization("AWS4-HMAC-SHA256 Credential=AKID/EXAMPLE/20260304/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=" + signature)),
			codeIncompleteSignature,
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKID/EXAMPLE/20260304/us-east-1/lambda/aws4_request'", false},
		{"wrong terminator", invoke(setAuthorization("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260304/us-east-1/lambda/aws5_request, SignedHeaders=host, Signature=" + signature)),
			codeInvalidSignature, "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ", false},
		{"component without equal sign", invoke(setAuthorization("AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders, Signature=" + signature)),
			codeIncompleteSignature, "'SignedHeaders' not a valid key=value pair (missing equal-sign) in Authorization header", true},
		{"host not signed", invoke(setAuthorization("AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=x-amz-date, Signature=" + signature)),
			codeIncompleteSignature, msgHostNotSigned, false},
		{"unsorted signed headers", invoke(setAuthorization("AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=x-amz-date;host, Signature=" + signature)),
			codeIncompleteSignature, "SignedHeaders must list distinct lowercase header names in sorted order", true},
		{"malformed X-Amz-Date", invoke(func(r *goRequest) {
			r.tamper = func(req *http.Request) { req.Header.Set("X-Amz-Date", "2026-03-04T05:06:07Z") }
		}), codeIncompleteSignature, "Date must be in ISO-8601 'basic format'. Got '2026-03-04T05:06:07Z'.", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := signAndSend(t, srv, outcomes, tt.req)
			checkError(t, o.err, tt.code, tt.msg, tt.msgContains)
			// Only the signature and the body's hash need the body; every
			// other refusal comes from the headers alone.
			needsBody := tt.msg == msgSignatureMismatch || tt.msg == msgContentSHA256Mismatch
			if o.bodyRead != needsBody {
				t.Errorf("body read before the refusal: %v, want %v", o.bodyRead, needsBody)
			}
		})
	}
}

// TestMaxSkew checks a configured clock skew allowance.
func TestMaxSkew(t *testing.T) {
	v := newTestVerifier(testService, func() time.Time { return testNow })
	v.MaxSkew = 30 * time.Second
	srv, outcomes := startVerifyingServer(t, v)
	if o := signAndSend(t, srv, outcomes, goRequest{target: invokePath, signedAt: testNow.Add(-20 * time.Second)}); o.err != nil {
		t.Fatalf("request within skew rejected: %v", o.err)
	}
	o := signAndSend(t, srv, outcomes, goRequest{target: invokePath, signedAt: testNow.Add(-time.Minute)})
	checkError(t, o.err, codeInvalidSignature,
		"Signature expired: 20260304T050507Z is now earlier than 20260304T050537Z (20260304T050607Z - 30s.)", false)
}

// recordedVectors is the content of testdata/botocore_vectors.json and
// testdata/jssdk_vectors.json: requests signed by botocore and by the AWS SDK
// for JavaScript v3 at a fixed time, recorded by the generator scripts beside
// them (gen_botocore_vectors.py, gen_jssdk_vectors.mjs).
type recordedVectors struct {
	Generator string `json:"generator"`
	Vectors   []struct {
		Name        string      `json:"name"`
		Service     string      `json:"service"`
		Region      string      `json:"region"`
		AccessKeyID string      `json:"accessKeyID"`
		SecretKey   string      `json:"secretKey"`
		SigningTime string      `json:"signingTime"`
		Method      string      `json:"method"`
		Target      string      `json:"target"`
		Headers     [][2]string `json:"headers"`
		BodyBase64  string      `json:"bodyBase64"`
	} `json:"vectors"`
}

// sendRaw writes a raw HTTP/1.1 request to srv and returns the response
// status.
func sendRaw(t *testing.T, srv *httptest.Server, raw []byte) int {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func rawRequest(method, target string, headers [][2]string, body []byte) []byte {
	var raw bytes.Buffer
	fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\n", method, target)
	for _, h := range headers {
		fmt.Fprintf(&raw, "%s: %s\r\n", h[0], h[1])
	}
	raw.WriteString("Connection: close\r\n\r\n")
	raw.Write(body)
	return raw.Bytes()
}

// TestRecordedVectors replays, over TCP, requests signed by botocore and by
// the AWS SDK for JavaScript v3.
func TestRecordedVectors(t *testing.T) {
	for _, file := range []string{"testdata/botocore_vectors.json", "testdata/jssdk_vectors.json"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var recorded recordedVectors
		if err := json.Unmarshal(data, &recorded); err != nil {
			t.Fatal(err)
		}
		if len(recorded.Vectors) == 0 {
			t.Fatalf("%s has no vectors", file)
		}
		for _, vec := range recorded.Vectors {
			t.Run(recorded.Generator+"/"+vec.Name, func(t *testing.T) {
				now, err := time.Parse(amzDateLayout, vec.SigningTime)
				if err != nil {
					t.Fatal(err)
				}
				v := &Verifier{
					Service: vec.Service,
					Region:  vec.Region,
					Lookup: func(accessKeyID, sessionToken string) (Key, *Error) {
						// A vector signed with temporary credentials
						// carries its token; the key takes that one only.
						if accessKeyID != vec.AccessKeyID || sessionToken != headerValue(vec.Headers, SecurityTokenHeader) {
							return Key{}, ErrUnrecognizedClient()
						}
						return Key{Secret: vec.SecretKey}, nil
					},
					Now: func() time.Time { return now.Add(time.Minute) },
				}
				srv, outcomes := startVerifyingServer(t, v)
				body, err := base64.StdEncoding.DecodeString(vec.BodyBase64)
				if err != nil {
					t.Fatal(err)
				}

				status := sendRaw(t, srv, rawRequest(vec.Method, vec.Target, vec.Headers, body))
				if o := receive(t, outcomes); status != http.StatusOK || o.err != nil || o.accessKeyID != vec.AccessKeyID {
					t.Fatalf("status %d, outcome %+v", status, o)
				}

				// The same request signed one second later must fail.
				tampered := slices.Clone(vec.Headers)
				for i, h := range tampered {
					if strings.EqualFold(h[0], "X-Amz-Date") {
						tampered[i][1] = now.Add(time.Second).Format(amzDateLayout)
					}
				}
				sendRaw(t, srv, rawRequest(vec.Method, vec.Target, tampered, body))
				checkError(t, receive(t, outcomes).err, codeInvalidSignature, msgSignatureMismatch, false)

				// With another session token it is refused too.
				if headerValue(vec.Headers, SecurityTokenHeader) != "" {
					other := slices.Clone(vec.Headers)
					for i, h := range other {
						if strings.EqualFold(h[0], SecurityTokenHeader) {
							other[i][1] = "another" + h[1]
						}
					}
					sendRaw(t, srv, rawRequest(vec.Method, vec.Target, other, body))
					checkError(t, receive(t, outcomes).err, codeUnrecognizedClient, msgUnrecognizedClient, false)
				}
			})
		}
	}
}

// headerValue returns the value of the header called name in headers, or
// "".
func headerValue(headers [][2]string, name string) string {
	for _, h := range headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// TestSessionTokens: the session token of temporary credentials, in the
// header or in a presigned query, goes to Lookup with the access key;
// what Lookup refuses is refused with its error; and the token, which the
// SDKs sign, cannot be swapped after signing.
func TestSessionTokens(t *testing.T) {
	const token = "FQoGZXIvYXdz//token+with=chars"
	creds := aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecret, SessionToken: token}
	srv, outcomes := startVerifyingServer(t, newTestVerifier(testService, nil))
	if o := signAndSend(t, srv, outcomes, goRequest{target: invokePath, body: []byte(`{}`), creds: creds}); o.err != nil || o.identity != token {
		t.Errorf("signed with a session token: %+v, want the token given to Lookup", o)
	}
	if o := signAndSend(t, srv, outcomes, goRequest{target: invokePath, body: []byte(`{}`)}); o.err != nil || o.identity != "" {
		t.Errorf("signed without a session token: %+v, want no token given to Lookup", o)
	}

	// A token swapped after signing breaks the signature.
	r, err := http.NewRequest(http.MethodPost, srv.URL+invokePath, strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, payloadHash([]byte(`{}`)), testService, testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Header.Get("Authorization"), "x-amz-security-token") {
		t.Fatalf("the Go signer did not sign the token: %s", r.Header.Get("Authorization"))
	}
	r.Header.Set(SecurityTokenHeader, "swapped")
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	checkError(t, receive(t, outcomes).err, codeInvalidSignature, msgSignatureMismatch, false)

	// Presigned, the token is a query parameter.
	r, err = http.NewRequest(http.MethodGet, srv.URL+functionARNPath+"?X-Amz-Expires=60", nil)
	if err != nil {
		t.Fatal(err)
	}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, unsignedPayload, testService, testRegion, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err = srv.Client().Get(signed)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if o := receive(t, outcomes); o.err != nil || o.identity != token {
		t.Errorf("presigned with a session token: %+v (%v), want the token given to Lookup", o, o.err)
	}

	// What Lookup refuses, with its error.
	expired := newTestVerifier(testService, nil)
	expired.Lookup = func(string, string) (Key, *Error) { return Key{}, ErrExpiredToken() }
	srv, outcomes = startVerifyingServer(t, expired)
	o := signAndSend(t, srv, outcomes, goRequest{target: invokePath, body: []byte(`{}`), creds: creds})
	checkError(t, o.err, codeExpiredToken, msgExpiredToken, false)
	if o.bodyRead {
		t.Error("the body of a request with expired credentials was read")
	}
}

// handSign computes a SigV4 Authorization header directly from the
// specification, independently of the package code, for requests that the
// SDK signers cannot produce.
func handSign(method, canonicalPath, canonicalQuery string, headers [][2]string, signedHeaders []string, body []byte, amzDate string) string {
	var canonical strings.Builder
	fmt.Fprintf(&canonical, "%s\n%s\n%s\n", method, canonicalPath, canonicalQuery)
	for _, name := range signedHeaders {
		for _, h := range headers {
			if strings.EqualFold(h[0], name) {
				fmt.Fprintf(&canonical, "%s:%s\n", name, strings.Join(strings.Fields(h[1]), " "))
			}
		}
	}
	fmt.Fprintf(&canonical, "\n%s\n%s", strings.Join(signedHeaders, ";"), payloadHash(body))
	scope := amzDate[:8] + "/" + testRegion + "/" + testService + "/aws4_request"
	requestHash := sha256.Sum256([]byte(canonical.String()))
	stringToSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(requestHash[:])
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	key := []byte("AWS4" + testSecret)
	for _, part := range []string{amzDate[:8], testRegion, testService, "aws4_request"} {
		key = mac(key, part)
	}
	return "AWS4-HMAC-SHA256 Credential=" + testAccessKeyID + "/" + scope +
		",SignedHeaders=" + strings.Join(signedHeaders, ";") +
		",Signature=" + hex.EncodeToString(mac(key, stringToSign))
}

// TestHandSigned covers forms no SDK signer produces: the Date header instead
// of X-Amz-Date, signed Content-Length and Transfer-Encoding, and an
// Authorization header without spaces after commas.
func TestHandSigned(t *testing.T) {
	srv, outcomes := startVerifyingServer(t, newTestVerifier(testService, func() time.Time { return testNow }))
	body := []byte(`{"k":"v"}`)
	const host = "lambda.example.test:9000"

	t.Run("Date header", func(t *testing.T) {
		headers := [][2]string{
			{"Host", host},
			{"Date", testNow.Format(http.TimeFormat)},
			{"Content-Length", strconv.Itoa(len(body))},
		}
		auth := handSign("POST", "/2015-03-31/functions/foo/invocations", "", headers,
			[]string{"content-length", "date", "host"}, body, testNow.Format(amzDateLayout))
		headers = append(headers, [2]string{"Authorization", auth})
		if status := sendRaw(t, srv, rawRequest("POST", "/2015-03-31/functions/foo/invocations", headers, body)); status != http.StatusOK {
			t.Errorf("status %d: %+v", status, receive(t, outcomes))
		} else {
			receive(t, outcomes)
		}
	})

	t.Run("chunked transfer encoding signed", func(t *testing.T) {
		headers := [][2]string{
			{"Host", host},
			{"X-Amz-Date", testNow.Format(amzDateLayout)},
			{"Transfer-Encoding", "chunked"},
		}
		auth := handSign("POST", "/2015-03-31/functions/foo/invocations", "a=%20", headers,
			[]string{"host", "transfer-encoding", "x-amz-date"}, body, testNow.Format(amzDateLayout))
		headers = append(headers, [2]string{"Authorization", auth})
		chunked := []byte(fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body))
		if status := sendRaw(t, srv, rawRequest("POST", "/2015-03-31/functions/foo/invocations?a=+", headers, chunked)); status != http.StatusOK {
			t.Errorf("status %d: %+v", status, receive(t, outcomes))
		} else {
			receive(t, outcomes)
		}
	})
}

func TestCanonicalQueryComponent(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"abc-_.~XYZ09", "abc-_.~XYZ09"},
		{"a+b", "a%20b"},
		{"a%20b", "a%20b"},
		{"a%2Bb", "a%2Bb"},
		{"a%2bb", "a%2Bb"},
		{"%41", "A"},
		{"$:/", "%24%3A%2F"},
		{"%E2%9C%93", "%E2%9C%93"},
		{"✓", "%E2%9C%93"},
	}
	for _, tt := range tests {
		got, ok := canonicalQueryComponent(tt.raw)
		if !ok || got != tt.want {
			t.Errorf("canonicalQueryComponent(%q) = %q, %v; want %q", tt.raw, got, ok, tt.want)
		}
	}
	for _, raw := range []string{"%", "%4", "%zz"} {
		if _, ok := canonicalQueryComponent(raw); ok {
			t.Errorf("canonicalQueryComponent(%q) accepted a malformed escape", raw)
		}
	}
}

func TestRemoveDotSegments(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/", "/"},
		{"/a/b", "/a/b"},
		{"/a/b/", "/a/b/"},
		{"//a//b//", "/a/b/"},
		{"/a/./b/../c", "/a/c"},
		{"/../a", "/a"},
		{"/a/..", "/"},
		{"/a/../", "/"},
		{"/%2E/a", "/%2E/a"},
	}
	for _, tt := range tests {
		if got := removeDotSegments(tt.path); got != tt.want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestAppendCanonicalValue(t *testing.T) {
	tests := []struct{ value, want string }{
		{"", ""},
		{"a", "a"},
		{"  a  ", "a"},
		{"\ta b\t", "a b"},
		{"a    b  c", "a b c"},
		{"attempt=1; max=3", "attempt=1; max=3"},
	}
	for _, tt := range tests {
		if got := string(appendCanonicalValue(nil, tt.value)); got != tt.want {
			t.Errorf("appendCanonicalValue(%q) = %q, want %q", tt.value, got, tt.want)
		}
	}
}

// TestConcurrentVerify runs verifications in parallel, for the race detector.
func TestConcurrentVerify(t *testing.T) {
	v := newTestVerifier(testService, func() time.Time { return testNow })
	body := []byte(`{}`)
	req := serverSideRequest(t, invokePath, body)
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			var err error
			for range 100 {
				if _, err = v.Verify(req, body); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// serverSideRequest signs a POST with aws-sdk-go-v2 at testNow and parses it
// back as net/http's server would see it.
func serverSideRequest(t testing.TB, target string, body []byte) *http.Request {
	r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:9000"+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	if err := v4.NewSigner().SignHTTP(context.Background(), testCredentials, r, payloadHash(body), testService, testRegion, testNow); err != nil {
		t.Fatal(err)
	}
	var wire bytes.Buffer
	if err := r.Write(&wire); err != nil {
		t.Fatal(err)
	}
	parsed, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

func BenchmarkVerify(b *testing.B) {
	v := newTestVerifier(testService, func() time.Time { return testNow })
	body := []byte(`{"key1":"value1","key2":"value2","key3":"value3"}`)
	req := serverSideRequest(b, invokePath+"?Qualifier=live", body)
	if _, err := v.Verify(req, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(req, body); err != nil {
			b.Fatal(err)
		}
	}
}

// unreadBody fails the test when read.
type unreadBody struct{ t *testing.T }

func (b unreadBody) Read([]byte) (int, error) {
	b.t.Error("Authenticate read the request body")
	return 0, io.EOF
}

func (unreadBody) Close() error { return nil }

// TestAuthenticateFromHeaders checks that Authenticate decides from the
// headers alone and that the Auth it returns verifies a body written to it
// in pieces.
func TestAuthenticateFromHeaders(t *testing.T) {
	body := []byte(`{"a body":"that arrives in pieces"}`)
	refused := []struct {
		name   string
		verify *Verifier
		change func(*http.Request)
		code   string
	}{
		{"unknown key", newTestVerifier(testService, func() time.Time { return testNow }), func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), testAccessKeyID, "AKIDUNKNOWN", 1))
		}, codeUnrecognizedClient},
		{"stale date", newTestVerifier(testService, func() time.Time { return testNow.Add(6 * time.Minute) }), nil, codeInvalidSignature},
		{"other service", newTestVerifier("logs", func() time.Time { return testNow }), nil, codeInvalidSignature},
		{"no authorization", newTestVerifier(testService, func() time.Time { return testNow }), func(r *http.Request) {
			r.Header.Del("Authorization")
		}, codeMissingAuthenticationToken},
		{"malformed authorization", newTestVerifier(testService, func() time.Time { return testNow }), func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
		}, codeIncompleteSignature},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			r := serverSideRequest(t, invokePath, body)
			r.Body = unreadBody{t}
			if tt.change != nil {
				tt.change(r)
			}
			auth, err := tt.verify.Authenticate(r)
			var authErr *Error
			if auth != nil || !errors.As(err, &authErr) || authErr.Code != tt.code {
				t.Fatalf("Authenticate = %v, %v; want a %s refusal", auth, err, tt.code)
			}
		})
	}

	v := newTestVerifier(testService, func() time.Time { return testNow })
	for _, tt := range []struct {
		name    string
		written []byte
		ok      bool
	}{
		{"whole body", body, true},
		{"changed body", bytes.ToUpper(body), false},
		{"part of the body", body[:len(body)-1], false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := serverSideRequest(t, invokePath, body)
			r.Body = unreadBody{t}
			auth, err := v.Authenticate(r)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.written {
				auth.Write(tt.written[i : i+1])
			}
			err = auth.Verify()
			if tt.ok && (err != nil || auth.AccessKeyID() != testAccessKeyID) {
				t.Fatalf("Verify = %v for %s, want success", err, auth.AccessKeyID())
			}
			if !tt.ok {
				var authErr *Error
				if !errors.As(err, &authErr) || authErr.Message != msgSignatureMismatch {
					t.Fatalf("Verify = %v, want a signature mismatch", err)
				}
			}
		})
	}
}

func TestScopeService(t *testing.T) {
	for _, tc := range []struct {
		header, query, want string
	}{
		{"AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x", "", "sqs"},
		{"AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=x", "", "s3"},
		{"", "X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=x", "s3"},
		{"AWS4-HMAC-SHA256 Credential=AKID/us-east-1/sqs, Signature=x", "", ""},
		{"Bearer token", "", ""},
		{"", "list-type=2", ""},
	} {
		r := httptest.NewRequest("GET", "/b/k?"+tc.query, nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		if got := ScopeService(r); got != tc.want {
			t.Errorf("ScopeService(%q, %q) = %q, want %q", tc.header, tc.query, got, tc.want)
		}
	}
}
