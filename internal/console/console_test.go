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
// and echoes what it was asked.
func apiEcho(t *testing.T) http.Handler {
	verifier := &sigv4.Verifier{Service: "lambda", Region: testRegion, Lookup: func(id, _ string) (sigv4.Key, *sigv4.Error) {
		secret, ok := lookup(id)
		if !ok {
			return sigv4.Key{}, sigv4.ErrUnrecognizedClient()
		}
		return sigv4.Key{Secret: secret}, nil
	}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key, err := verifier.Verify(r, body)
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, err.Error())
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"key": key, "path": r.URL.Path, "query": r.URL.RawQuery, "body": string(body),
			"cookie": r.Header.Get("Cookie"), "target": r.Header.Get("X-Amz-Target")})
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
	res = b.do("GET", "/console/api/aws/s3/", "", map[string]string{csrfHeader: b.csrf})
	if readAll(res); res.StatusCode != 404 || res.Header.Get("X-Amzn-ErrorType") != "UnknownOperationException" {
		t.Errorf("an API the console does not call: %d", res.StatusCode)
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

func TestQuantileOfEmptyHistogramIsNaN(t *testing.T) {
	if v := (histogram{}).quantileMs(0.5); !math.IsNaN(float64(v)) {
		t.Errorf("got %v", v)
	}
}
