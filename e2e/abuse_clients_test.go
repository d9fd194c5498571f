package e2e

// Client floods (issue 10, item 2): hostile network clients against the
// API and function URL listeners — slow headers and slow bodies beyond the
// connection caps, from one address and from several, unsigned large bodies
// sent slowly, a burst of signed large uploads over the body budget — while
// a bystander function keeps answering, the server's memory and file
// descriptors stay within their bounds, and every kind of write succeeds
// right after. Also: /metrics is not public.
//
// The bystander and the test's own SDK calls come from 127.0.0.1; the
// attackers come from 127.0.0.2 and up (Linux routes all of 127.0.0.0/8 to
// lo), so the per-address caps leave the bystander its room. Full-scale
// versions of these attacks are in soak_clients_test.go, behind
// LAMINA_SOAK=1.

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// attackerAddr is the loopback address of attacker i (0: 127.0.0.2).
func attackerAddr(i int) string {
	return fmt.Sprintf("127.0.%d.%d", (i+2)/250, (i+2)%250)
}

// dialFrom opens a TCP connection to addr from the local address from.
func dialFrom(ctx context.Context, from, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return d.DialContext(ctx, "tcp", addr)
}

// clientFrom is an HTTP client whose connections come from the local
// address from.
func clientFrom(from string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) { return dialFrom(ctx, from, addr) },
	}}
}

// slowOutcome is how the server ended one hostile connection.
type slowOutcome struct {
	from   string
	resp   *http.Response // the answer, when one came before the close
	body   []byte
	err    error // of the connection, when it did not end in EOF or a reset
	opened time.Time
	ended  time.Time
}

// status is the answer's status, 0 for a connection closed without one.
func (o slowOutcome) status() int {
	if o.resp == nil {
		return 0
	}
	return o.resp.StatusCode
}

// slowClientTimeout bounds how long a hostile connection waits for the
// server to end it; reaching it means the server never cut the client.
const slowClientTimeout = 3 * time.Minute

// slowClient opens a connection from from to addr, sends prefix (a request
// whose headers or body are never finished), then sends trickle one byte
// at a time every interval (interval zero: nothing more), until the server
// answers or closes the connection.
func slowClient(from, addr string, prefix []byte, interval time.Duration) slowOutcome {
	o := slowOutcome{from: from, opened: time.Now()}
	defer func() { o.ended = time.Now() }()
	ctx, cancel := context.WithTimeout(context.Background(), slowClientTimeout)
	defer cancel()
	c, err := dialFrom(ctx, from, addr)
	if err != nil {
		o.err = err
		o.ended = time.Now()
		return o
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(slowClientTimeout))
	if _, err := c.Write(prefix); err != nil && !isReset(err) {
		o.err = err
	}
	if interval > 0 {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(interval):
				}
				if _, err := c.Write([]byte("0")); err != nil {
					return
				}
			}
		}()
	}
	data, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		o.err = err
	}
	if len(data) > 0 {
		resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if rerr == nil {
			o.body, _ = io.ReadAll(resp.Body)
			o.resp = resp
		} else {
			o.err = fmt.Errorf("unparsable answer %q: %v", data, rerr)
		}
	}
	o.ended = time.Now()
	return o
}

func isReset(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

// flood runs n slow clients from each of the addresses at once and
// returns their outcomes once every one has ended.
func flood(addrs []string, n int, target string, prefix []byte, interval time.Duration) []slowOutcome {
	out := make([]slowOutcome, len(addrs)*n)
	var wg sync.WaitGroup
	for i, from := range addrs {
		for j := range n {
			wg.Go(func() { out[i*n+j] = slowClient(from, target, prefix, interval) })
		}
	}
	wg.Wait()
	return out
}

// procUsage is what a process holds, from /proc.
type procUsage struct {
	rssMB, hwmMB, fds int
}

func readProcUsage(pid int) (procUsage, error) {
	var u procUsage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for line := range strings.Lines(string(status)) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "VmRSS:":
			u.rssMB = kb >> 10
		case "VmHWM:":
			u.hwmMB = kb >> 10
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	u.fds = len(fds)
	return u, err
}

// usageWatch samples a process's usage until stopped and keeps the peaks.
type usageWatch struct {
	pid     int
	before  procUsage
	stop    chan struct{}
	done    chan struct{}
	maxRSS  atomic.Int64
	maxFDs  atomic.Int64
	samples atomic.Int64
}

func watchUsage(t *testing.T, pid int) *usageWatch {
	t.Helper()
	before, err := readProcUsage(pid)
	if err != nil {
		t.Fatal(err)
	}
	w := &usageWatch{pid: pid, before: before, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			if u, err := readProcUsage(pid); err == nil {
				w.maxRSS.Store(max(w.maxRSS.Load(), int64(u.rssMB)))
				w.maxFDs.Store(max(w.maxFDs.Load(), int64(u.fds)))
				w.samples.Add(1)
			}
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return w
}

// finish stops sampling and requires the peaks within the bounds: memory
// grown by at most growthMB (over the peak seen before), descriptors by
// at most fds.
func (w *usageWatch) finish(t *testing.T, growthMB, fds int) {
	t.Helper()
	close(w.stop)
	<-w.done
	after, err := readProcUsage(w.pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server usage: before %+v, peak RSS %d MB (VmHWM %d MB), peak fds %d, %d samples",
		w.before, w.maxRSS.Load(), after.hwmMB, w.maxFDs.Load(), w.samples.Load())
	if limit := max(w.before.hwmMB, w.before.rssMB) + growthMB; after.hwmMB > limit {
		t.Errorf("the server's peak RSS was %d MB, over the bound of %d MB", after.hwmMB, limit)
	}
	if limit := w.before.fds + fds; int(w.maxFDs.Load()) > limit {
		t.Errorf("the server held %d file descriptors, over the bound of %d", w.maxFDs.Load(), limit)
	}
}

// codeUpload streams the JSON body of a CreateFunction request for name,
// whose zip holds app.py and size bytes drawn from seed, without holding
// the zip or the body in memory: the same arguments give the same bytes.
func codeUpload(name string, seed uint64, size int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprintf(pw, `{"FunctionName":%q,"Runtime":"python3.12","Role":%q,"Handler":"app.echo","Code":{"ZipFile":"`, name, testRole)
		enc := base64.NewEncoder(base64.StdEncoding, pw)
		zw := zip.NewWriter(enc)
		app, _ := zw.CreateHeader(&zip.FileHeader{Name: "app.py", Method: zip.Deflate})
		_, _ = io.WriteString(app, pyApp)
		blob, _ := zw.CreateHeader(&zip.FileHeader{Name: "blob.bin", Method: zip.Store})
		_, err := io.CopyN(blob, rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}), size)
		if err == nil {
			err = zw.Close()
		}
		if err == nil {
			err = enc.Close()
		}
		if err == nil {
			_, err = io.WriteString(pw, `"}}`)
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// signedCodeUpload returns a CreateFunction request with a streamed body
// of a zip of size bytes, signed for the server: the body is generated
// twice, once to hash it.
func (ts *testServer) signedCodeUpload(t *testing.T, name string, seed uint64, size int64) *http.Request {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, codeUpload(name, seed, size))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, ts.Endpoint()+"/2015-03-31/functions", codeUpload(name, seed, size))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/json")
	id, secret := ts.Credentials()
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
		req, hex.EncodeToString(h.Sum(nil)), "lambda", ts.region(), time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

// requireRetryLater checks an answer that asks the client to come back:
// its status and, for the API, AWS's error shape with the given code.
func requireRetryLater(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s: got %d (Retry-After %q), want %d with Retry-After", what, resp.StatusCode, resp.Header.Get("Retry-After"), status)
	}
	var fields map[string]string
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Errorf("%s: body %q is not a JSON object: %v", what, body, err)
	}
	if code == "" {
		if fields["Message"] == "" {
			t.Errorf("%s: body %q has no Message", what, body)
		}
		return
	}
	if got := resp.Header.Get("X-Amzn-ErrorType"); got != code {
		t.Errorf("%s: X-Amzn-ErrorType %q, want %q", what, got, code)
	}
	if fields["message"] == "" && fields["Message"] == "" || fields["Type"] == "" {
		t.Errorf("%s: body %q is not AWS's error shape", what, body)
	}
	if code == "TooManyRequestsException" && fields["Reason"] != "CallerRateLimitExceeded" {
		t.Errorf("%s: Reason %q, want CallerRateLimitExceeded", what, fields["Reason"])
	}
}

// Limits of the server the flood tests run against.
const (
	floodMaxConns        = 300
	floodMaxConnsPerAddr = 40
	floodURLMaxConns     = 60
	floodURLPerAddr      = 25
	floodHeaderTimeout   = 5 * time.Second
	floodAPIBudgetMB     = 64
	floodURLBudgetMB     = 16
)

func startFloodServer(t *testing.T, extra ...string) *testServer {
	return startServer(t, withArgs(append([]string{
		"--max-conns", strconv.Itoa(floodMaxConns), "--max-conns-per-addr", strconv.Itoa(floodMaxConnsPerAddr),
		"--url-max-conns", strconv.Itoa(floodURLMaxConns), "--url-max-conns-per-addr", strconv.Itoa(floodURLPerAddr),
		"--header-timeout", floodHeaderTimeout.String(),
		"--api-body-budget", strconv.Itoa(floodAPIBudgetMB), "--url-body-budget", strconv.Itoa(floodURLBudgetMB),
	}, extra...)...))
}

// floodUsageBounds are the bounds the flood tests hold the server to:
// memory grows by at most twice the body budgets (the Go heap may grow to
// twice what is live) and 64 MB for connections and the bystander;
// descriptors by at most the connection caps, the refusals being answered
// and a few for the environments the test starts.
const (
	floodGrowthMB = 2*(floodAPIBudgetMB+floodURLBudgetMB) + 64
	floodFDs      = floodMaxConns + floodURLMaxConns + 2*64 + 32
)

// closedEarly reports whether a connection closed without an answer ended
// before the header timeout: the server never cuts a client before it, so
// such a connection was refused at accept while every answering slot was
// busy.
func (o slowOutcome) closedEarly() bool {
	return o.status() == 0 && o.ended.Sub(o.opened) < floodHeaderTimeout
}

// requireCapHeld checks the outcomes of a flood of slow-header
// connections from one address: some were refused at once (with AWS's 429
// and Retry-After, or closed without an answer when the refusals being
// answered were at their bound), the others were held until the header
// timeout cut them, and while every connection was open at once no more
// than cap were held. It returns how many were answered 429.
func requireCapHeld(t *testing.T, outcomes []slowOutcome, limit int) int {
	t.Helper()
	var answered, unanswered, held int
	var lastOpened, firstCut time.Time
	for _, o := range outcomes {
		if o.err != nil {
			t.Errorf("slow header from %s: %v", o.from, o.err)
			continue
		}
		switch {
		case o.closedEarly():
			unanswered++
		case o.status() == 0:
			held++
			if firstCut.IsZero() || o.ended.Before(firstCut) {
				firstCut = o.ended
			}
		case o.status() == http.StatusTooManyRequests:
			answered++
			requireRetryLater(t, "connection over the per-address cap", o.resp, o.body, http.StatusTooManyRequests, "TooManyRequestsException")
		default:
			t.Errorf("slow header from %s answered %d %s", o.from, o.status(), o.body)
		}
		if o.opened.After(lastOpened) {
			lastOpened = o.opened
		}
	}
	from := outcomes[0].from
	t.Logf("slow headers from %s: %d refused with 429, %d refused without an answer, %d held until the header timeout", from, answered, unanswered, held)
	if answered+unanswered == 0 {
		t.Errorf("none of %d slow headers from %s was refused (cap %d)", len(outcomes), from, limit)
	}
	// If every connection was open before the first held one was cut,
	// exactly the cap was held.
	if lastOpened.Before(firstCut) && held != limit {
		t.Errorf("%d slow headers from %s were held at once, the cap is %d", held, from, limit)
	}
	return answered
}

// TestAbuseSlowClients floods both listeners with slow clients: slow
// headers beyond the per-address cap from one address and from several,
// slow bodies to a public function URL beyond its caps and body budget,
// signed slow bodies, and unsigned 66 MB bodies sent slowly.
func TestAbuseSlowClients(t *testing.T) {
	t.Parallel()
	ts := startFloodServer(t)
	ts.createPy(t, "public", "echo")
	id := urlID(t, aws.ToString(ts.createURL(t, "public", "", types.FunctionUrlAuthTypeNone, nil).FunctionUrl))
	b := ts.startBystander(t)
	usage := watchUsage(t, ts.Pid())

	var wg sync.WaitGroup
	var oneAddr, severalAddrs, urlBodies, signedBodies, unsigned []slowOutcome
	slowHeader := []byte("POST /2015-03-31/functions HTTP/1.1\r\nHost: lamina\r\nContent-Type: application/json\r\n")
	// Slow headers, beyond the per-address cap: from one address, and from
	// five more; together within the API's overall cap, so the bystander
	// keeps its room.
	wg.Go(func() {
		oneAddr = flood([]string{attackerAddr(0)}, floodMaxConnsPerAddr+20, ts.Addr(), slowHeader, 0)
	})
	several := []string{attackerAddr(1), attackerAddr(2), attackerAddr(3), attackerAddr(4), attackerAddr(5)}
	wg.Go(func() {
		severalAddrs = flood(several, floodMaxConnsPerAddr+10, ts.Addr(), slowHeader, 0)
	})
	// Slow bodies to a public (AuthType NONE) function URL: 1 MB announced,
	// a byte every half second sent, from three addresses, beyond the
	// per-address and overall caps and the body budget of the URL listener.
	urlBody := fmt.Appendf(nil, "POST /%s/ HTTP/1.1\r\nHost: lamina\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", id, 1<<20)
	wg.Go(func() {
		urlBodies = flood([]string{attackerAddr(6), attackerAddr(7), attackerAddr(8)}, floodURLPerAddr+5, ts.urlAddr, urlBody, 500*time.Millisecond)
	})
	// Signed CreateFunction calls whose 2 MB bodies stall after 1 KB.
	signedBody := bytes.Repeat([]byte("x"), 2<<20)
	req, err := http.NewRequest(http.MethodPost, ts.Endpoint()+"/2015-03-31/functions", bytes.NewReader(signedBody))
	if err != nil {
		t.Fatal(err)
	}
	id2, secret := ts.Credentials()
	sum := sha256.Sum256(signedBody)
	if err := v4.NewSigner().SignHTTP(t.Context(), aws.Credentials{AccessKeyID: id2, SecretAccessKey: secret}, req, hex.EncodeToString(sum[:]), "lambda", ts.region(), time.Now()); err != nil {
		t.Fatal(err)
	}
	var signedPrefix bytes.Buffer
	req.Header.Set("Content-Length", strconv.Itoa(len(signedBody)))
	fmt.Fprintf(&signedPrefix, "POST /2015-03-31/functions HTTP/1.1\r\nHost: %s\r\n", ts.Addr())
	_ = req.Header.Write(&signedPrefix)
	signedPrefix.WriteString("\r\n")
	signedPrefix.Write(signedBody[:1024])
	wg.Go(func() {
		signedBodies = flood([]string{attackerAddr(9)}, 5, ts.Addr(), signedPrefix.Bytes(), 0)
	})
	// Unsigned 66 MB CreateFunction bodies, sent slowly: refused from their
	// headers before the body is read.
	unsignedPrefix := fmt.Appendf(nil, "POST /2015-03-31/functions HTTP/1.1\r\nHost: lamina\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"FunctionName\":\"", 66<<20)
	wg.Go(func() {
		unsigned = flood([]string{attackerAddr(10)}, 20, ts.Addr(), unsignedPrefix, 100*time.Millisecond)
	})
	wg.Wait()

	b.finish(t)
	usage.finish(t, floodGrowthMB, floodFDs)

	answered := requireCapHeld(t, oneAddr, floodMaxConnsPerAddr)
	for i := range several {
		answered += requireCapHeld(t, severalAddrs[i*(floodMaxConnsPerAddr+10):(i+1)*(floodMaxConnsPerAddr+10)], floodMaxConnsPerAddr)
	}
	if answered == 0 {
		t.Error("no slow header over the per-address cap was answered 429")
	}

	counts := map[string]int{}
	for _, o := range urlBodies {
		switch {
		case o.err != nil:
			t.Errorf("slow body to the function URL from %s: %v", o.from, o.err)
		case o.closedEarly():
			counts["refused without an answer"]++
		case o.status() == 0 || o.status() == http.StatusRequestTimeout:
			counts["cut by the minimum rate"]++
		case o.status() == http.StatusServiceUnavailable:
			counts["refused: listener full"]++
			requireRetryLater(t, "connection over the URL listener's cap", o.resp, o.body, http.StatusServiceUnavailable, "")
		case o.status() == http.StatusTooManyRequests && o.resp.Header.Get("X-Amzn-RequestId") == "":
			counts["refused: per-address cap"]++
			requireRetryLater(t, "connection over the URL per-address cap", o.resp, o.body, http.StatusTooManyRequests, "")
		case o.status() == http.StatusTooManyRequests:
			counts["refused: body budget spent"]++
			requireRetryLater(t, "body over the URL body budget", o.resp, o.body, http.StatusTooManyRequests, "")
		default:
			t.Errorf("slow body to the function URL answered %d %s", o.status(), o.body)
		}
	}
	t.Logf("slow bodies to the function URL: %v", counts)
	for _, want := range []string{"cut by the minimum rate", "refused: listener full", "refused: per-address cap", "refused: body budget spent"} {
		if counts[want] == 0 {
			t.Errorf("no slow body to the function URL was %s", want)
		}
	}

	for _, o := range signedBodies {
		if o.err != nil || (o.status() != 0 && o.status() != http.StatusRequestTimeout) {
			t.Errorf("signed slow body: %d %s (%v), want a 408 or a close", o.status(), o.body, o.err)
		}
	}
	for _, o := range unsigned {
		if o.err != nil || o.status() != http.StatusForbidden || o.resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" {
			t.Errorf("unsigned 66 MB body: %d %s %s (%v), want 403 MissingAuthenticationTokenException", o.status(), o.resp.Header.Get("X-Amzn-ErrorType"), o.body, o.err)
		}
	}

	ts.requireEveryWrite(t)
	// Nothing is left held: every attacker connection is gone.
	requireListenerMetric(t, ts, `lamina_listener_connections{listener="url"}`, 0)
}

// TestAbuseLargeUploads sends a burst of signed CreateFunction calls with
// 16 MB bodies (a 12 MB zip, three times its body reserved), more than the
// API's body budget holds: those over it are answered 429 at once, in
// AWS's shape with Retry-After, and the server's memory stays bounded.
func TestAbuseLargeUploads(t *testing.T) {
	t.Parallel()
	ts := startFloodServer(t)
	b := ts.startBystander(t)
	usage := watchUsage(t, ts.Pid())

	const uploads, zipSize = 8, 12 << 20
	client := clientFrom(attackerAddr(0))
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range uploads {
		wg.Go(func() {
			req := ts.signedCodeUpload(t, fmt.Sprintf("large-%d", i), uint64(i), zipSize)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("upload %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
			switch resp.StatusCode {
			case http.StatusCreated:
			case http.StatusTooManyRequests:
				requireRetryLater(t, "upload over the body budget", resp, body, http.StatusTooManyRequests, "TooManyRequestsException")
			default:
				t.Errorf("upload %d: %d %s", i, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	b.finish(t)
	usage.finish(t, floodGrowthMB, floodFDs)
	t.Logf("uploads of %d MB zips: %v", zipSize>>20, statuses)
	if statuses[http.StatusCreated] == 0 || statuses[http.StatusTooManyRequests] == 0 {
		t.Errorf("want some uploads created and some refused for the budget, got %v", statuses)
	}
	ts.requireEveryWrite(t)
}

// requireListenerMetric waits until the signed /metrics shows metric with
// value want.
func requireListenerMetric(t *testing.T, ts *testServer, metric string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := ts.do(t, "GET", "/metrics", nil)
		got := metricValue(string(r.Body), metric)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, want %v", metric, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricValue reads one sample of Prometheus text, -1 when absent.
// Every series carries the node's label, which metric leaves out.
func metricValue(text, metric string) float64 {
	for line := range strings.Lines(text) {
		line = nodeLabel.ReplaceAllString(line, "")
		line = strings.Replace(strings.Replace(line, "{,", "{", 1), "{} ", " ", 1)
		if rest, ok := strings.CutPrefix(line, metric+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// nodeLabel matches the node label of a series in the text format.
var nodeLabel = regexp.MustCompile(`,?node="[^"]*"`)

// TestMetricsArePrivate checks that the API's /metrics needs SigV4 (the
// CLI signs it), and that --metrics-listen serves Prometheus without.
func TestMetricsArePrivate(t *testing.T) {
	t.Parallel()
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	ts := startServer(t, withArgs("--metrics-listen", metricsAddr))
	ts.createPy(t, "counted", "echo")
	ts.invokeOK(t, "counted", `{}`)

	resp, err := http.Get(ts.Endpoint() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" || strings.Contains(string(body), "counted") {
		t.Errorf("unsigned GET /metrics: %d %s %s, want 403 MissingAuthenticationTokenException", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
	}
	if r := ts.signedRequest(t, "GET", "/metrics", nil, "LKIAUNKNOWNKEY000001", "not-the-secret", time.Now()); r.Status != http.StatusForbidden {
		t.Errorf("GET /metrics signed with an unknown key: %d, want 403", r.Status)
	}

	invocations := `lamina_invocations_total{function="counted"}`
	if r := ts.do(t, "GET", "/metrics", nil); r.Status != http.StatusOK || metricValue(string(r.Body), invocations) != 1 {
		t.Errorf("signed GET /metrics: %d, %s = %v, want 200 and 1", r.Status, invocations, metricValue(string(r.Body), invocations))
	}
	stdout, stderr, code := ts.Run("metrics")
	if code != 0 || metricValue(stdout, invocations) != 1 || metricValue(stdout, `lamina_request_body_budget_bytes{listener="api"}`) != 512<<20 {
		t.Errorf("lamina metrics: exit %d, stderr %q; %s = %v, want 1, and the API body budget", code, stderr, invocations, metricValue(stdout, invocations))
	}

	resp, err = http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || metricValue(string(body), invocations) != 1 {
		t.Errorf("GET /metrics on --metrics-listen: %d, %s = %v, want 200 and 1", resp.StatusCode, invocations, metricValue(string(body), invocations))
	}
	if !strings.Contains(ts.Output(), "metrics for Prometheus") {
		t.Errorf("the server did not log its metrics address")
	}
}
