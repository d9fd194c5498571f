package frontend

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/credentials"
	"github.com/lamina-project/lamina/internal/netlimit"
)

const (
	testKeyID  = "LKIAADMISSIONTEST001"
	testSecret = "admission-test-secret"
)

// testIssuer issues the temporary credentials of the tests; those of
// environment "env-live" are live.
var testIssuer = credentials.NewIssuer([]byte("admission-test-key-0123456789abc"))

// newAdmissionFrontend is a frontend without a node behind it, enough to
// admit requests: admission needs only the credentials and the bounds.
func newAdmissionFrontend(budget int64) *Frontend {
	keys := &credentials.Keys{Admin: credentials.Pair{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, Issuer: testIssuer,
		Live: func(environment string) bool { return environment == "env-live" }}
	return New(Config{
		Region: "us-east-1", AccountID: "000000000000",
		Credentials: keys.Lookup,
		APIBodies:   netlimit.NewBodies(budget, netlimit.MinRate{Grace: time.Second, BytesPerSecond: 1 << 20}, nil),
		Metrics:     http.NotFoundHandler(),
	}, Deps{})
}

// countingBody records how much of it was read.
type countingBody struct {
	r    io.Reader
	read int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *countingBody) Close() error { return nil }

// serverRequest builds a POST as net/http's server would hand it over,
// signed now with secret unless secret is empty, and with its body
// counting the bytes read.
func serverRequest(t testing.TB, path string, body []byte, secret string) (*http.Request, *countingBody) {
	t.Helper()
	var creds *aws.Credentials
	if secret != "" {
		creds = &aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: secret}
	}
	return signedServerRequest(t, http.MethodPost, path, "lambda", nil, body, creds)
}

// signedServerRequest builds a request as net/http's server would hand it
// over, with header, signed now for service with creds unless they are
// nil, and with its body counting the bytes read.
func signedServerRequest(t testing.TB, method, path, service string, header http.Header, body []byte, creds *aws.Credentials) (*http.Request, *countingBody) {
	t.Helper()
	r, err := http.NewRequest(method, "http://127.0.0.1:9000"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		r.Header[k] = v
	}
	if creds != nil {
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), *creds, r, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var wire bytes.Buffer
	if err := r.Write(&wire); err != nil {
		t.Fatal(err)
	}
	parsed, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingBody{r: parsed.Body}
	parsed.Body = counted
	return parsed, counted
}

var createOp = operation{name: "CreateFunction", maxBody: 1 << 20, bodyCopies: 3}

// recorder is a ResponseRecorder that, like a server's response, lets
// http.ResponseController set the connection's read deadline; it keeps
// the deadlines set.
type recorder struct {
	*httptest.ResponseRecorder
	deadlines []time.Time
}

func (w *recorder) SetReadDeadline(d time.Time) error {
	w.deadlines = append(w.deadlines, d)
	return nil
}

// lastDeadline is the read deadline the connection was left with.
func (w *recorder) lastDeadline() time.Time {
	if len(w.deadlines) == 0 {
		return time.Time{}
	}
	return w.deadlines[len(w.deadlines)-1]
}

func admitted(f *Frontend, r *http.Request, op operation) (*request, *recorder, func(), error) {
	w := &recorder{ResponseRecorder: httptest.NewRecorder()}
	rq := &request{w: w, r: r, op: op.name}
	release, err := f.admit(rq, op)
	return rq, w, release, err
}

func requireCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	var le *lamina.Error
	if !errors.As(err, &le) || le.Status != status || le.Code != code {
		t.Fatalf("admit = %v, want %d %s", err, status, code)
	}
}

func TestAdmitAuthenticatesBeforeReadingTheBody(t *testing.T) {
	f := newAdmissionFrontend(1 << 20)
	body := []byte(`{"FunctionName":"f"}`)
	for _, tt := range []struct {
		name, secret string
		change       func(*http.Request)
		code         string
	}{
		{"unsigned", "", nil, "MissingAuthenticationTokenException"},
		{"unknown key", testSecret, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), testKeyID, "LKIAUNKNOWN000000001", 1))
		}, "UnrecognizedClientException"},
		{"stale", testSecret, func(r *http.Request) {
			r.Header.Set("X-Amz-Date", time.Now().Add(-time.Hour).UTC().Format("20060102T150405Z"))
		}, "InvalidSignatureException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, counted := serverRequest(t, "/2015-03-31/functions", body, tt.secret)
			if tt.change != nil {
				tt.change(r)
			}
			_, w, release, err := admitted(f, r, createOp)
			release()
			requireCode(t, err, http.StatusForbidden, tt.code)
			if counted.read != 0 {
				t.Errorf("%d bytes of the body read before the refusal", counted.read)
			}
			// What net/http discards of the unread body after the answer
			// must arrive soon.
			if d := w.lastDeadline(); d.IsZero() || d.After(time.Now().Add(refusedBodyGrace)) {
				t.Errorf("the connection was left with read deadline %v", d)
			}
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		r, counted := serverRequest(t, "/2015-03-31/functions", body, "not the secret")
		_, _, release, err := admitted(f, r, createOp)
		release()
		requireCode(t, err, http.StatusForbidden, "InvalidSignatureException")
		if counted.read != len(body) {
			t.Errorf("%d bytes read, want the whole body: the signature covers it", counted.read)
		}
	})
}

func TestAdmitBodyBudget(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 1000)
	f := newAdmissionFrontend(5000)

	r, _ := serverRequest(t, "/2015-03-31/functions", body, testSecret)
	rq, w, holding, err := admitted(f, r, createOp)
	if err != nil || !bytes.Equal(rq.body, body) {
		t.Fatalf("admit = %v with %d bytes of body", err, len(rq.body))
	}
	// The body was read against a deadline, which is cleared for the
	// operation: an invocation may run for 15 minutes.
	if len(w.deadlines) < 2 || w.deadlines[0].IsZero() || !w.lastDeadline().IsZero() {
		t.Errorf("read deadlines set: %v, want some, then none", w.deadlines)
	}
	if used := f.cfg.APIBodies.Used(); used != 3000 {
		t.Errorf("a code upload of 1000 bytes reserved %d, want 3000", used)
	}

	r, counted := serverRequest(t, "/2015-03-31/functions", body, testSecret)
	_, w, release, err := admitted(f, r, createOp)
	release()
	requireCode(t, err, http.StatusTooManyRequests, "TooManyRequestsException")
	if err.(*lamina.Error).Reason != "CallerRateLimitExceeded" || w.Header().Get("Retry-After") == "" {
		t.Errorf("the refusal has Reason %q and Retry-After %q", err.(*lamina.Error).Reason, w.Header().Get("Retry-After"))
	}
	if counted.read != 0 {
		t.Errorf("%d bytes of a refused body read", counted.read)
	}

	holding()
	if used := f.cfg.APIBodies.Used(); used != 0 {
		t.Errorf("%d bytes still reserved after the release", used)
	}
	r, _ = serverRequest(t, "/2015-03-31/functions", body, testSecret)
	if _, _, release, err := admitted(f, r, createOp); err != nil {
		t.Errorf("after the release: %v", err)
	} else {
		release()
	}
}

func TestAdmitBodyLimit(t *testing.T) {
	f := newAdmissionFrontend(1 << 20)
	op := operation{name: "Invoke", maxBody: 100, tooLarge: invokeTooLarge}
	body := bytes.Repeat([]byte("x"), 101)

	r, counted := serverRequest(t, "/2015-03-31/functions/f/invocations", body, testSecret)
	_, _, release, err := admitted(f, r, op)
	release()
	requireCode(t, err, http.StatusRequestEntityTooLarge, "RequestTooLargeException")
	if counted.read != 0 {
		t.Errorf("%d bytes of a body over its declared limit read", counted.read)
	}

	// Without a Content-Length the limit is found while reading, and the
	// reservation (the whole limit) is given back.
	r, _ = serverRequest(t, "/2015-03-31/functions/f/invocations", body, testSecret)
	r.ContentLength = -1
	_, _, release, err = admitted(f, r, op)
	release()
	requireCode(t, err, http.StatusRequestEntityTooLarge, "RequestTooLargeException")
	if used := f.cfg.APIBodies.Used(); used != 0 {
		t.Errorf("%d bytes still reserved", used)
	}
}

// TestFunctionCredentialsReachDataOperationsOnly: a function's temporary
// credentials pass admission for invocations, and are refused, before the
// body is read, every other operation of every route family the API
// serves: function management, policies, layers, configurations, tags,
// logs, rules, Lamina's own routes, metrics. The admin key's power is
// unchanged. Credentials of an environment that is gone are refused.
func TestFunctionCredentialsReachDataOperationsOnly(t *testing.T) {
	f := newAdmissionFrontend(1 << 20)
	tmp := testIssuer.Issue(credentials.Session{Function: "fn", Role: "arn:aws:iam::000000000000:role/lambda-role", Environment: "env-live"})
	session := &aws.Credentials{AccessKeyID: tmp.AccessKeyID, SecretAccessKey: tmp.SecretAccessKey, SessionToken: tmp.SessionToken}
	admin := &aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	body := []byte(`{"a":1}`)

	for _, op := range []operation{{name: "Invoke", maxBody: 1 << 20}, {name: "InvokeAsync", maxBody: 1 << 20}} {
		r, _ := signedServerRequest(t, http.MethodPost, "/2015-03-31/functions/f/invocations", "lambda", nil, body, session)
		if rq, _, release, err := admitted(f, r, op); err != nil || !bytes.Equal(rq.body, body) {
			t.Errorf("%s with the function's credentials: %v", op.name, err)
		} else {
			release()
		}
	}

	refused := []struct {
		method, path, service, target, action string
	}{
		{"POST", "/2015-03-31/functions", "lambda", "", "lambda:CreateFunction"},
		{"GET", "/2015-03-31/functions", "lambda", "", "lambda:ListFunctions"},
		{"GET", "/2015-03-31/functions/f", "lambda", "", "lambda:GetFunction"},
		{"PUT", "/2015-03-31/functions/f/code", "lambda", "", "lambda:UpdateFunctionCode"},
		{"DELETE", "/2015-03-31/functions/f", "lambda", "", "lambda:DeleteFunction"},
		{"POST", "/2015-03-31/functions/f/policy", "lambda", "", "lambda:AddPermission"},
		{"GET", "/2015-03-31/functions/f/policy", "lambda", "", "lambda:GetPolicy"},
		{"POST", "/2015-03-31/functions/f/versions", "lambda", "", "lambda:PublishVersion"},
		{"POST", "/2015-03-31/functions/f/aliases", "lambda", "", "lambda:CreateAlias"},
		{"POST", "/2018-10-31/layers/l/versions", "lambda", "", "lambda:PublishLayerVersion"},
		{"PUT", "/2017-10-31/functions/f/concurrency", "lambda", "", "lambda:PutFunctionConcurrency"},
		{"POST", "/2021-10-31/functions/f/url", "lambda", "", "lambda:CreateFunctionUrlConfig"},
		{"PUT", "/2019-09-25/functions/f/event-invoke-config", "lambda", "", "lambda:PutFunctionEventInvokeConfig"},
		{"GET", "/2016-08-19/account-settings", "lambda", "", "lambda:GetAccountSettings"},
		{"POST", "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af", "lambda", "", "lambda:TagResource"},
		{"GET", "/_lamina/runtimes", "lambda", "", "lambda:ListRuntimes"},
		{"GET", "/_lamina/nodes", "lambda", "", "lambda:ListNodes"},
		{"POST", "/_lamina/apis", "lambda", "", "lambda:CreateHttpApi"},
		{"GET", "/metrics", "lambda", "", "lambda:GetMetrics"},
		{"POST", "/", "logs", "Logs_20140328.FilterLogEvents", "logs:FilterLogEvents"},
		{"POST", "/", "events", "AWSEvents.PutRule", "events:PutRule"},
	}
	for _, c := range refused {
		var header http.Header
		if c.target != "" {
			header = http.Header{"X-Amz-Target": {c.target}}
		}
		r, counted := signedServerRequest(t, c.method, c.path, c.service, header, body, session)
		w := httptest.NewRecorder()
		f.Handler().ServeHTTP(w, r)
		want := "User: arn:aws:sts::000000000000:assumed-role/lambda-role/fn is not authorized to perform: " + c.action +
			" because no identity-based policy allows the " + c.action + " action"
		if w.Code != http.StatusForbidden || w.Header().Get("X-Amzn-ErrorType") != "AccessDeniedException" || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s %s %s with the function's credentials: %d %s %s", c.method, c.path, c.target, w.Code, w.Header().Get("X-Amzn-ErrorType"), w.Body)
		}
		if counted.read != 0 {
			t.Errorf("%s %s: %d bytes of the body read before the refusal", c.method, c.path, counted.read)
		}
	}

	// The admin key is admitted to what the function's credentials are not.
	r, _ := signedServerRequest(t, http.MethodPost, "/2015-03-31/functions", "lambda", nil, body, admin)
	if _, _, release, err := admitted(f, r, createOp); err != nil {
		t.Errorf("CreateFunction with the admin key: %v", err)
	} else {
		release()
	}
	// The admin key with a session token is no session.
	withToken := *admin
	withToken.SessionToken = tmp.SessionToken
	r, _ = signedServerRequest(t, http.MethodPost, "/2015-03-31/functions", "lambda", nil, body, &withToken)
	_, _, release, err := admitted(f, r, createOp)
	release()
	requireCode(t, err, http.StatusForbidden, "UnrecognizedClientException")

	// Credentials of an environment that is gone.
	gone := testIssuer.Issue(credentials.Session{Function: "fn", Role: "arn:aws:iam::000000000000:role/lambda-role", Environment: "env-gone"})
	r, counted := signedServerRequest(t, http.MethodPost, "/2015-03-31/functions/f/invocations", "lambda", nil, body,
		&aws.Credentials{AccessKeyID: gone.AccessKeyID, SecretAccessKey: gone.SecretAccessKey, SessionToken: gone.SessionToken})
	_, _, release, err = admitted(f, r, operation{name: "Invoke", maxBody: 1 << 20})
	release()
	requireCode(t, err, http.StatusForbidden, "ExpiredTokenException")
	if counted.read != 0 {
		t.Errorf("%d bytes of the body of expired credentials read", counted.read)
	}
}

func BenchmarkAdmit(b *testing.B) {
	f := newAdmissionFrontend(1 << 30)
	body := []byte(`{"key1":"value1","key2":"value2","key3":"value3"}`)
	op := operation{name: "Invoke", maxBody: lamina.MaxSyncPayload}
	r, _ := serverRequest(b, "/2015-03-31/functions/f/invocations", body, testSecret)
	b.ReportAllocs()
	for b.Loop() {
		r.Body = io.NopCloser(bytes.NewReader(body))
		_, _, release, err := admitted(f, r, op)
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
}
