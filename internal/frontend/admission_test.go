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
	"github.com/lamina-project/lamina/internal/netlimit"
)

const (
	testKeyID  = "LKIAADMISSIONTEST001"
	testSecret = "admission-test-secret"
)

// newAdmissionFrontend is a frontend without a node behind it, enough to
// admit requests: admission needs only the credentials and the bounds.
func newAdmissionFrontend(budget int64) *Frontend {
	return New(Config{
		Region: "us-east-1", AccountID: "000000000000",
		Credentials: func(id string) (string, bool) { return testSecret, id == testKeyID },
		APIBodies:   netlimit.NewBodies(budget, netlimit.MinRate{Grace: time.Second, BytesPerSecond: 1 << 20}, nil),
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
	r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:9000"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	if secret != "" {
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
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
