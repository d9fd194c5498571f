package console

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lamina-project/lamina/internal/sigv4"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	testKeyID  = "LKIACONSOLETEST00001"
	testSecret = "console-test-secret-0123456789"
	testRegion = "us-east-1"
)

func lookup(id string) (string, bool) {
	if id == testKeyID {
		return testSecret, true
	}
	return "", false
}

// apiEcho is a stand-in for the API: it verifies SigV4 as the frontend does
// for the service the request's scope names, and echoes what it was asked.
func apiEcho(t *testing.T) http.Handler {
	keyOf := func(id, _ string) (sigv4.Key, *sigv4.Error) {
		secret, ok := lookup(id)
		if !ok {
			return sigv4.Key{}, sigv4.ErrUnrecognizedClient()
		}
		return sigv4.Key{Secret: secret}, nil
	}
	verifiers := map[string]*sigv4.Verifier{}
	for _, service := range []string{"lambda", "logs", "events", "sqs", "kinesis", "s3", "sns"} {
		verifiers[service] = &sigv4.Verifier{Service: service, Region: testRegion, Lookup: keyOf, S3: service == "s3"}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verifier := verifiers[sigv4.ScopeService(r)]
		if verifier == nil {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "no service in the scope")
			return
		}
		key, err := verifier.Verify(r, body)
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, err.Error())
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"key": key, "path": r.URL.Path, "query": r.URL.RawQuery, "body": string(body),
			"cookie": r.Header.Get("Cookie"), "target": r.Header.Get("X-Amz-Target"), "service": sigv4.ScopeService(r),
			"rawPath": r.URL.EscapedPath()})
	})
}

type browser struct {
	t      *testing.T
	srv    *httptest.Server
	cookie *http.Cookie
	csrf   string
}

func newBrowser(t *testing.T, c *Console) *browser {
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return &browser{t: t, srv: srv}
}

func (b *browser) do(method, path, body string, headers map[string]string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return res
}

func (b *browser) signIn(secret string) *http.Response {
	b.t.Helper()
	res := b.do("POST", "/console/api/session", `{"accessKeyId":"`+testKeyID+`","secretAccessKey":"`+secret+`"}`, nil)
	for _, c := range res.Cookies() {
		if c.Name == cookieName {
			b.cookie = c
		}
	}
	if res.StatusCode == 200 {
		var info sessionInfo
		_ = json.NewDecoder(res.Body).Decode(&info)
		b.csrf = info.CSRFToken
	}
	return res
}

func readAll(res *http.Response) string {
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func newConsole(t *testing.T) *Console {
	return New(Config{API: apiEcho(t), Region: testRegion, Credentials: lookup, Node: "n1"})
}

func TestSignInChecksTheKeyPair(t *testing.T) {
	b := newBrowser(t, newConsole(t))
	res := b.signIn("wrong")
	if body := readAll(res); res.StatusCode != 401 || res.Header.Get("X-Amzn-ErrorType") != "UnrecognizedClientException" ||
		!strings.Contains(body, `"message"`) || b.cookie != nil {
		t.Fatalf("wrong secret: %d %s %s, cookie %v", res.StatusCode, res.Header.Get("X-Amzn-ErrorType"), body, b.cookie)
	}
	res = b.signIn(testSecret)
	readAll(res)
	if res.StatusCode != 200 || b.cookie == nil || b.csrf == "" {
		t.Fatalf("sign-in: %d, cookie %v, csrf %q", res.StatusCode, b.cookie, b.csrf)
	}
	set := res.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %s", set, want)
		}
	}
	// The page can read its session (and CSRF token) back with the cookie.
	res = b.do("GET", "/console/api/session", "", nil)
	if body := readAll(res); res.StatusCode != 200 || !strings.Contains(body, b.csrf) {
		t.Fatalf("GET session: %d %s", res.StatusCode, body)
	}
}

func TestCallsNeedSessionAndCSRFToken(t *testing.T) {
	b := newBrowser(t, newConsole(t))
	path := "/console/api/aws/lambda/2015-03-31/functions"
	if res := b.do("GET", path, "", nil); res.StatusCode != 401 {
		t.Fatalf("without a session: %d %s", res.StatusCode, readAll(res))
	}
	b.signIn(testSecret)
	for name, headers := range map[string]map[string]string{
		"no token":     nil,
		"wrong token":  {csrfHeader: "x" + b.csrf},
		"cross-site":   {csrfHeader: b.csrf, "Sec-Fetch-Site": "cross-site"},
		"other origin": {csrfHeader: b.csrf, "Origin": "http://evil.example"},
	} {
		res := b.do("POST", path, "{}", headers)
		if body := readAll(res); res.StatusCode != 403 || res.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
			t.Errorf("%s: %d %s", name, res.StatusCode, body)
		}
	}
	// Another site's page cannot sign in either (login CSRF).
	res := b.do("POST", "/console/api/session", `{}`, map[string]string{"Origin": "http://evil.example"})
	if readAll(res); res.StatusCode != 403 {
		t.Errorf("cross-origin sign-in: %d", res.StatusCode)
	}
	// Signing out ends the session.
	if res := b.do("DELETE", "/console/api/session", "", map[string]string{csrfHeader: b.csrf}); res.StatusCode != 204 {
		t.Fatalf("sign out: %d", res.StatusCode)
	}
	if res := b.do("GET", path, "", map[string]string{csrfHeader: b.csrf}); res.StatusCode != 401 {
		t.Fatalf("after sign-out: %d", res.StatusCode)
	}
}

func TestCallsAreSignedForTheSessionsKey(t *testing.T) {
	b := newBrowser(t, newConsole(t))
	b.signIn(testSecret)
	res := b.do("POST", "/console/api/aws/lambda/2015-03-31/functions/f%3A1/invocations?Qualifier=live", `{"a":1}`,
		map[string]string{csrfHeader: b.csrf, "Content-Type": "application/json", "X-Amz-Target": "T"})
	body := readAll(res)
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil || res.StatusCode != 200 {
		t.Fatalf("proxied call: %d %s", res.StatusCode, body)
	}
	if got["key"] != testKeyID || got["path"] != "/2015-03-31/functions/f:1/invocations" || got["query"] != "Qualifier=live" ||
		got["body"] != `{"a":1}` || got["target"] != "T" {
		t.Errorf("the API got %v", got)
	}
	if got["cookie"] != "" {
		t.Errorf("the session cookie reached the API: %q", got["cookie"])
	}
	res = b.do("GET", "/console/api/aws/sts/", "", map[string]string{csrfHeader: b.csrf})
	if readAll(res); res.StatusCode != 404 || res.Header.Get("X-Amzn-ErrorType") != "UnknownOperationException" {
		t.Errorf("an API the console does not call: %d", res.StatusCode)
	}
}

// echoed makes a console call and returns what the API got, or fails.
func (b *browser) echoed(method, path, body string, headers map[string]string) map[string]string {
	b.t.Helper()
	h := map[string]string{csrfHeader: b.csrf}
	for k, v := range headers {
		h[k] = v
	}
	res := b.do(method, path, body, h)
	text := readAll(res)
	var got map[string]string
	if err := json.Unmarshal([]byte(text), &got); err != nil || res.StatusCode != 200 {
		b.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, text)
	}
	return got
}

func TestServicesAreSignedWithTheirSigningNames(t *testing.T) {
	b := newBrowser(t, newConsole(t))
	b.signIn(testSecret)
	got := b.echoed("POST", "/console/api/aws/sqs/", `{"QueueNamePrefix":"q"}`,
		map[string]string{"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"})
	if got["service"] != "sqs" || got["target"] != "AmazonSQS.ListQueues" || got["body"] != `{"QueueNamePrefix":"q"}` {
		t.Errorf("SQS call: %v", got)
	}
	got = b.echoed("POST", "/console/api/aws/kinesis/", `{}`,
		map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.ListShards"})
	if got["service"] != "kinesis" {
		t.Errorf("Kinesis call: %v", got)
	}
	// S3 signs the path as sent: an object key with escaped characters
	// verifies, and reaches the API as the browser escaped it.
	got = b.echoed("PUT", "/console/api/aws/s3/bucket/dir/a%20b%2Bc%3C%3E.txt", "hello", map[string]string{"Content-Type": "text/plain"})
	if got["service"] != "s3" || got["rawPath"] != "/bucket/dir/a%20b%2Bc%3C%3E.txt" || got["path"] != "/bucket/dir/a b+c<>.txt" || got["body"] != "hello" {
		t.Errorf("S3 upload: %v", got)
	}
	got = b.echoed("GET", "/console/api/aws/sns/?Action=ListTopics&Version=2010-03-31", "", nil)
	if got["service"] != "sns" || got["query"] != "Action=ListTopics&Version=2010-03-31" {
		t.Errorf("SNS call: %v", got)
	}
	for _, path := range []string{"/", "/bucket?list-type=2&prefix=a%2F&delimiter=%2F", "/bucket?notification", "/bucket/key"} {
		if got := b.echoed("GET", "/console/api/aws/s3"+path, "", nil); got["service"] != "s3" {
			t.Errorf("GET %s: %v", path, got)
		}
	}
}

func TestOnlyThePagesCallsOfOtherServicesPass(t *testing.T) {
	b := newBrowser(t, newConsole(t))
	b.signIn(testSecret)
	for _, tc := range []struct {
		method, path, target string
	}{
		{"POST", "/console/api/aws/sqs/", "AmazonSQS.DeleteQueue"},
		{"POST", "/console/api/aws/sqs/", "AmazonSQS.SetQueueAttributes"},
		{"POST", "/console/api/aws/sqs/", ""},                          // the query protocol
		{"GET", "/console/api/aws/sqs/?Action=ListQueues", ""},         // the query protocol
		{"POST", "/console/api/aws/sqs/123/q", "AmazonSQS.ListQueues"}, // not the JSON path
		{"POST", "/console/api/aws/kinesis/", "Kinesis_20131202.PutRecord"},
		{"POST", "/console/api/aws/kinesis/", "Kinesis_20131202.DeleteStream"},
		{"POST", "/console/api/aws/kinesis/", "AmazonSQS.ListQueues"}, // another service's operation
		{"PUT", "/console/api/aws/s3/bucket", ""},                     // CreateBucket
		{"DELETE", "/console/api/aws/s3/bucket", ""},
		{"DELETE", "/console/api/aws/s3/bucket/key", ""},
		{"PUT", "/console/api/aws/s3/bucket?notification", ""},
		{"GET", "/console/api/aws/s3/bucket", ""}, // ListObjects v1
		{"GET", "/console/api/aws/s3/bucket?list-type=2&versions", ""},
		{"GET", "/console/api/aws/s3/bucket?policy", ""},
		{"PUT", "/console/api/aws/s3/bucket/key?uploadId=1&partNumber=1", ""},
		{"GET", "/console/api/aws/s3/bucket/key?acl", ""},
		{"POST", "/console/api/aws/s3/bucket?delete", ""},
		{"GET", "/console/api/aws/s3/", "AmazonSQS.PurgeQueue"}, // a JSON call signed for S3
		{"GET", "/console/api/aws/sns/?Action=Publish&TopicArn=t&Message=m", ""},
		{"GET", "/console/api/aws/sns/?Action=ListTopics&Action=DeleteTopic", ""},
		{"POST", "/console/api/aws/sns/?Action=ListTopics", ""}, // a body may name another Action
	} {
		h := map[string]string{csrfHeader: b.csrf}
		if tc.target != "" {
			h["X-Amz-Target"] = tc.target
		}
		res := b.do(tc.method, tc.path, "", h)
		if body := readAll(res); res.StatusCode != 403 || res.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
			t.Errorf("%s %s %s: %d %s, want 403 AccessDeniedException", tc.method, tc.path, tc.target, res.StatusCode, body)
		}
	}
	// Without the CSRF token even an allowed call is refused.
	res := b.do("GET", "/console/api/aws/s3/bucket/key", "", nil)
	if readAll(res); res.StatusCode != 403 {
		t.Errorf("a download without the CSRF token: %d", res.StatusCode)
	}
}

func TestEveryAnswerForbidsFramingAndInlineScript(t *testing.T) {
	b := newBrowser(t, newConsole(t))
	for _, path := range []string{"/console/", "/console/app.js", "/console/functions/x", "/console/api/session", "/console/api/nope"} {
		res := b.do("GET", path, "", nil)
		readAll(res)
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") ||
			strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
	res := b.do("GET", "/console/app.js", "", nil)
	if body := readAll(res); res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(body, "render(") {
		t.Errorf("app.js: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	res = b.do("POST", "/console/", "", nil)
	if readAll(res); res.StatusCode != 405 || res.Header.Get("X-Amzn-ErrorType") == "" {
		t.Errorf("POST a page: %d", res.StatusCode)
	}
}

// TestNoInlineScriptInPages checks the page the CSP protects has no script
// of its own: every script is a file of the console's origin.
func TestNoInlineScriptInPages(t *testing.T) {
	index, _ := assets.ReadFile("assets/index.html")
	page := string(index)
	for _, bad := range []string{"<script>", "onload=", "onclick=", "javascript:", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	// Function output, names and logs are rendered by Preact as text: no
	// page sets HTML from data.
	for _, name := range []string{"app.js", "ui.js", "api.js", "pages/function.js", "pages/logs.js", "pages/functions.js", "pages/create.js"} {
		src, err := assets.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"innerHTML", "dangerouslySetInnerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
	}
}

// TestErrorsAndJSONAreEscaped checks that what the console writes cannot
// be read as markup: JSON with <, > and & escaped, never text/html.
func TestErrorsAndJSONAreEscaped(t *testing.T) {
	b := newBrowser(t, newConsole(t))
	res := b.do("GET", "/console/api/<script>alert(1)</script>", "", nil)
	body := readAll(res)
	if strings.Contains(body, "<script>") || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("unknown operation: %s %s", res.Header.Get("Content-Type"), body)
	}
	rec := httptest.NewRecorder()
	writeJSON(rec, map[string]string{"log": "<img src=x onerror=alert(1)>"})
	if strings.Contains(rec.Body.String(), "<img") {
		t.Errorf("JSON not escaped: %s", rec.Body.String())
	}
}

func TestSessionsAreBounded(t *testing.T) {
	s := newSessions()
	now := time.Unix(1_000_000, 0)
	s.now = func() time.Time { return now }
	for range maxSessions + 10 {
		now = now.Add(time.Millisecond)
		s.create(testKeyID)
	}
	if len(s.byID) != maxSessions {
		t.Fatalf("%d sessions kept, want %d", len(s.byID), maxSessions)
	}
	id, _ := s.create(testKeyID)
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: id})
	if s.lookup(req) == nil {
		t.Fatal("a new session is not found")
	}
	now = now.Add(sessionIdle + time.Second)
	if s.lookup(req) != nil {
		t.Fatal("an idle session did not end")
	}
}

func TestSamplerQuantilesAndBounds(t *testing.T) {
	reg := prometheus.NewRegistry()
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"node": "n1"}, reg)
	inv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lamina_invocations_total"}, []string{"function"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lamina_invocation_duration_seconds", Buckets: []float64{0.01, 0.1, 1}}, []string{"function"})
	wrapped.MustRegister(inv, dur)
	s := NewSampler(reg, time.Second)
	start := time.Unix(2_000_000, 0)
	s.Sample(start)
	for range 99 {
		inv.WithLabelValues("f").Inc()
		dur.WithLabelValues("f").Observe(0.005)
	}
	inv.WithLabelValues("f").Inc()
	dur.WithLabelValues("f").Observe(0.5)
	s.Sample(start.Add(time.Second))
	got := s.Series("f")
	if n := len(got.Time); n != 1 { // f appeared in the second gathering
		t.Fatalf("%d samples of f, want 1", n)
	}
	if *got.Invocations[0] != 100 {
		t.Errorf("invocations %v, want 100", *got.Invocations[0])
	}
	if p50 := *got.DurationP50[0]; p50 <= 0 || p50 > 10 {
		t.Errorf("p50 %v ms, want within the first bucket (0–10 ms)", p50)
	}
	if p99 := *got.DurationP99[0]; p99 <= 0 || p99 > 10 {
		t.Errorf("p99 %v ms: 99 of 100 are under 10 ms", p99)
	}
	// The next interval had no invocation: no duration, zero invocations.
	s.Sample(start.Add(2 * time.Second))
	got = s.Series("f")
	if *got.Invocations[1] != 0 || got.DurationP50[1] != nil {
		t.Errorf("an idle interval: invocations %v, p50 %v", *got.Invocations[1], got.DurationP50[1])
	}
	node := s.Series("")
	if len(node.Time) != 3 || *node.Invocations[1] != 100 {
		t.Errorf("node series: %d samples, %v", len(node.Time), node.Invocations)
	}
	// A series keeps SampleCount samples.
	for i := range SampleCount + 5 {
		s.Sample(start.Add(time.Duration(3+i) * time.Second))
	}
	if n := len(s.Series("f").Time); n != SampleCount {
		t.Errorf("%d samples kept, want %d", n, SampleCount)
	}
}

func TestSamplerBoundsFunctions(t *testing.T) {
	s := NewSampler(prometheus.NewRegistry(), time.Second)
	for i := range MaxFunctions + 3 {
		s.ringOf(strings.Repeat("f", 1+i%50)+string(rune('a'+i/50)), int64(i), sample{invocations: 1})
	}
	if len(s.functions) != MaxFunctions {
		t.Errorf("%d series, want at most %d", len(s.functions), MaxFunctions)
	}
}

func TestSamplerKeepsMappingLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lamina_event_source_lag_seconds"}, []string{"mapping", "function"})
	reg.MustRegister(lag)
	s := NewSampler(reg, time.Second)
	start := time.Unix(2_000_000, 0)
	lag.WithLabelValues("m-1", "f").Set(12.5)
	s.Sample(start)
	lag.DeleteLabelValues("m-1", "f") // the node stopped polling it
	s.Sample(start.Add(time.Second))
	got := s.MappingLag("m-1")
	if len(got.Time) != 2 || got.Lag[0] == nil || *got.Lag[0] != 12.5 || got.Lag[1] != nil {
		t.Errorf("lag series %v %v, want 12.5 then a gap", got.Time, got.Lag)
	}
	if other := s.MappingLag("m-2"); len(other.Time) != 0 {
		t.Errorf("a mapping never polled has %d samples", len(other.Time))
	}
	for i := range MaxMappings + 3 {
		s.sampleLags(int64(i), map[string]float64{"m" + strings.Repeat("x", i): 1})
	}
	if len(s.mappings) != MaxMappings {
		t.Errorf("%d lag series, want at most %d", len(s.mappings), MaxMappings)
	}
}

func TestQuantileOfEmptyHistogramIsNaN(t *testing.T) {
	if v := (histogram{}).quantileMs(0.5); !math.IsNaN(float64(v)) {
		t.Errorf("got %v", v)
	}
}
