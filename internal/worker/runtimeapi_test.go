package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/sandbox/sandboxtest"
	"golang.org/x/sys/unix"
)

// testEnv is an environment on a fake sandbox whose Runtime API is served
// with limits, and the Runtime API's base URL.
func testEnv(t *testing.T, limits apiLimits) (*environment, *sandboxtest.Sandbox, string) {
	t.Helper()
	sb := newTestSandbox(t)
	fn := &lamina.Function{Configuration: lamina.FunctionConfiguration{FunctionName: "f", Version: lamina.LatestVersion, RevisionId: "r1", Timeout: 60, MemorySize: 128}}
	env := &environment{
		id: "env-test", key: keyOf(fn), fn: fn, memoryMB: 128, sb: sb,
		ready: make(chan struct{}), initFailed: make(chan answer, 1),
		next: make(chan *invocation), destroyed: make(chan struct{}),
	}
	ln, addr := sb.RuntimeAPI()
	srv, err := env.serveRuntimeAPI(ln, limits, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	env.api = srv
	t.Cleanup(env.destroy)
	return env, sb, "http://" + addr + "/2018-06-01/runtime"
}

// answered is an HTTP answer: status and body.
type answered struct {
	status int
	body   string
}

func call(t *testing.T, client *http.Client, method, url string, body io.Reader, header ...string) answered {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return answered{resp.StatusCode, string(data)}
}

// requireAPIError checks an answer of the Runtime API's error shape.
func requireAPIError(t *testing.T, what string, a answered, status int, errorType, inMessage string) {
	t.Helper()
	var body struct{ ErrorMessage, ErrorType string }
	if a.status != status || json.Unmarshal([]byte(a.body), &body) != nil || body.ErrorType != errorType || !strings.Contains(body.ErrorMessage, inMessage) {
		t.Errorf("%s: %d %s, want %d with errorType %s and a message with %q", what, a.status, a.body, status, errorType, inMessage)
	}
}

func requireAccepted(t *testing.T, what string, a answered) {
	t.Helper()
	if a.status != http.StatusAccepted || a.body != `{"status":"OK"}` {
		t.Errorf("%s: %d %s, want 202 {\"status\":\"OK\"}", what, a.status, a.body)
	}
}

// startInvoke runs an invocation in env in the background.
func startInvoke(env *environment, id, payload string) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		done <- env.invoke(&lamina.Invocation{RequestID: id, Payload: []byte(payload), Function: env.fn})
	}()
	return done
}

// nextEvent waits in /next for an event and returns its request id.
func nextEvent(t *testing.T, client *http.Client, base string) string {
	t.Helper()
	resp, err := client.Get(base + "/invocation/next")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/next answered %d", resp.StatusCode)
	}
	return resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
}

// waitState waits until env's runtime state is s.
func waitState(t *testing.T, env *environment, s runtimeState) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		env.mu.Lock()
		cur := env.state
		env.mu.Unlock()
		if cur == s {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runtime state is %s, want %s", cur, s)
		}
	}
}

func TestRuntimeAPIStateMachine(t *testing.T) {
	t.Parallel()
	env, _, base := testEnv(t, runtimeAPILimits)
	// The runtime keeps one keep-alive connection; other is another process
	// in the sandbox, with connections of its own.
	runtime := &http.Client{Transport: &http.Transport{}}
	other := &http.Client{Transport: &http.Transport{}}

	requireAPIError(t, "POST /response before any /next", call(t, runtime, "POST", base+"/invocation/x/response", strings.NewReader("{}")),
		403, "InvalidStateTransition", "State transition from Started to InvocationResponse failed")

	done := startInvoke(env, "req-1", `{"n":1}`)
	if id := nextEvent(t, runtime, base); id != "req-1" {
		t.Fatalf("/next gave request %q, want req-1", id)
	}
	select {
	case <-env.ready:
	default:
		t.Error("the first /next did not end init")
	}
	requireAPIError(t, "a second /next while an invocation is in flight", call(t, runtime, "GET", base+"/invocation/next", nil),
		403, "InvalidStateTransition", "State transition from Running to Ready failed")
	requireAPIError(t, "/init/error after init", call(t, runtime, "POST", base+"/init/error", strings.NewReader("{}")),
		403, "InvalidStateTransition", "State transition from Running to InitError failed")
	requireAPIError(t, "POST /response for another request", call(t, runtime, "POST", base+"/invocation/req-0/response", strings.NewReader("{}")),
		400, "InvalidRequestID", "Invalid request ID")
	requireAccepted(t, "POST /response", call(t, runtime, "POST", base+"/invocation/req-1/response", strings.NewReader(`"one"`)))
	if out := <-done; string(out.answer.payload) != `"one"` || out.answer.errorType != "" {
		t.Errorf("the invocation ended with %+v, want the response \"one\"", out.answer)
	}
	requireAPIError(t, "a second POST /response", call(t, runtime, "POST", base+"/invocation/req-1/response", strings.NewReader("{}")),
		403, "InvalidStateTransition", "State transition from RuntimeResponseSentState to InvocationResponse failed")
	requireAPIError(t, "POST /error after the response", call(t, runtime, "POST", base+"/invocation/req-1/error", strings.NewReader("{}")),
		403, "InvalidStateTransition", "to InvocationErrorResponse failed")

	// Between events, another connection's /next is refused while the
	// runtime's is open.
	requireAPIError(t, "/next of another process between events", call(t, other, "GET", base+"/invocation/next", nil),
		403, "InvalidStateTransition", "the next event goes to the connection that got the last one")

	// One /next at a time: a second one while the first waits is refused,
	// and the event goes to the first.
	first := make(chan string, 1)
	go func() { first <- nextEvent(t, runtime, base) }()
	waitState(t, env, stateReady)
	requireAPIError(t, "a /next while another waits", call(t, other, "GET", base+"/invocation/next", nil),
		403, "InvalidStateTransition", "State transition from Ready to Ready failed")
	done = startInvoke(env, "req-2", `{}`)
	if id := <-first; id != "req-2" {
		t.Fatalf("the waiting /next got %q, want req-2", id)
	}
	requireAPIError(t, "/next of another process during an invocation", call(t, other, "GET", base+"/invocation/next", nil),
		403, "InvalidStateTransition", "State transition from Running to Ready failed")
	requireAccepted(t, "POST /error", call(t, runtime, "POST", base+"/invocation/req-2/error",
		strings.NewReader(`{"errorMessage":"m","errorType":"Function.Mine"}`)))
	if out := <-done; out.answer.errorType != "Function.Mine" {
		t.Errorf("the invocation ended with %+v, want the posted error", out.answer)
	}

	// A /next given up (its connection closed) frees the turn: the runtime
	// reconnects.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/invocation/next", nil)
	gaveUp := make(chan error, 1)
	go func() {
		_, err := runtime.Do(req)
		gaveUp <- err
	}()
	waitState(t, env, stateReady)
	cancel()
	<-gaveUp
	waitState(t, env, stateAnswered)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		env.mu.Lock()
		closed := env.eventConn == nil
		env.mu.Unlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not notice that the runtime's connection closed")
		}
	}
	done = startInvoke(env, "req-3", `{}`)
	reconnected := &http.Client{Transport: &http.Transport{}}
	if id := nextEvent(t, reconnected, base); id != "req-3" {
		t.Fatalf("/next after a given-up one got %q, want req-3", id)
	}
	requireAccepted(t, "POST /response", call(t, reconnected, "POST", base+"/invocation/req-3/response", strings.NewReader(`3`)))
	<-done
}

func TestRuntimeAPIInitError(t *testing.T) {
	t.Parallel()
	env, _, base := testEnv(t, runtimeAPILimits)
	client := &http.Client{}
	requireAccepted(t, "POST /init/error", call(t, client, "POST", base+"/init/error",
		strings.NewReader(`{"errorMessage":"bad import","errorType":"Runtime.ImportModuleError"}`)))
	if a := <-env.initFailed; a.errorType != "Runtime.ImportModuleError" {
		t.Errorf("init failed with %+v, want the posted error", a)
	}
	requireAPIError(t, "a second /init/error", call(t, client, "POST", base+"/init/error", strings.NewReader("{}")),
		403, "InvalidStateTransition", "State transition from InitError to InitError failed")
	requireAPIError(t, "/next after an init error", call(t, client, "GET", base+"/invocation/next", nil),
		403, "InvalidStateTransition", "State transition from InitError to Ready failed")
}

func TestRuntimeAPIBodyLimits(t *testing.T) {
	t.Parallel()
	env, _, base := testEnv(t, runtimeAPILimits)
	client := &http.Client{}
	// invokeAnswering runs an invocation whose runtime posts body (chunked
	// when chunked) to route, and returns the post's answer and the
	// invocation's.
	invokeAnswering := func(route string, body []byte, chunked bool) (answered, answer) {
		t.Helper()
		done := startInvoke(env, "req", `{}`)
		id := nextEvent(t, client, base)
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // no length known: sent chunked
		}
		a := call(t, client, "POST", base+"/invocation/"+id+"/"+route, r)
		return a, (<-done).answer
	}

	for _, chunked := range []bool{false, true} {
		name := map[bool]string{false: "with Content-Length", true: "chunked"}[chunked]
		a, out := invokeAnswering("response", bytes.Repeat([]byte("x"), lamina.MaxRuntimeAPIPayload), chunked)
		requireAccepted(t, "a response of exactly the limit, "+name, a)
		if len(out.payload) != lamina.MaxRuntimeAPIPayload {
			t.Errorf("%s: the caller got %d bytes, want %d", name, len(out.payload), lamina.MaxRuntimeAPIPayload)
		}
		a, out = invokeAnswering("response", bytes.Repeat([]byte("x"), lamina.MaxRuntimeAPIPayload+1), chunked)
		requireAPIError(t, "a response over the limit, "+name, a, 413, "RequestEntityTooLarge", "(6291556 bytes)")
		if out.errorType != lamina.ErrorTypeResponseTooLarge {
			t.Errorf("%s: the caller got %+v, want %s", name, out, lamina.ErrorTypeResponseTooLarge)
		}

		prefix, suffix := `{"errorMessage":"`, `","errorType":"Function.Big"}`
		errBody := prefix + strings.Repeat("e", maxRuntimeErrorBody-len(prefix)-len(suffix)) + suffix
		a, out = invokeAnswering("error", []byte(errBody), chunked)
		requireAccepted(t, "an error of the limit, "+name, a)
		if len(errBody) != maxRuntimeErrorBody || out.errorType != "Function.Big" || string(out.payload) != errBody {
			t.Errorf("%s: an error of %d bytes reached the caller as %s with %d bytes", name, len(errBody), out.errorType, len(out.payload))
		}
		a, out = invokeAnswering("error", []byte(errBody+" "), chunked)
		requireAPIError(t, "an error over the limit, "+name, a, 413, "RequestEntityTooLarge", "(1048576 bytes)")
		if out.errorType != lamina.ErrorTypeResponseTooLarge || !strings.Contains(string(out.payload), "Error payload size exceeded") {
			t.Errorf("%s: an error over the limit reached the caller as %s %s", name, out.errorType, out.payload)
		}
	}

	// An init error over its limit fails init all the same.
	env2, _, base2 := testEnv(t, runtimeAPILimits)
	a := call(t, client, "POST", base2+"/init/error", bytes.NewReader(make([]byte, maxRuntimeErrorBody+1)),
		"Lambda-Runtime-Function-Error-Type", "Runtime.Big")
	requireAPIError(t, "an init error over the limit", a, 413, "RequestEntityTooLarge", "(1048576 bytes)")
	if out := <-env2.initFailed; out.errorType != "Runtime.Big" {
		t.Errorf("init failed with %+v, want the header's error type", out)
	}
}

// rawRequest sends head (request line and headers) on a new connection and
// returns the status of the answer, which the server must give without the
// body that head announces.
func rawRequest(t *testing.T, addr, head string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", head, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRuntimeAPIOneBodyAtATime: of many posts for the invocation in flight,
// one is taken and read; the others are refused before any of their body is
// read, so an environment holds one body at a time.
func TestRuntimeAPIOneBodyAtATime(t *testing.T) {
	t.Parallel()
	env, sb, base := testEnv(t, runtimeAPILimits)
	addr := sb.Listener().Addr().String()
	head := func(path string) string {
		return "POST /2018-06-01/runtime" + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 6291556\r\n\r\n"
	}
	// Refused at once, announced 6 MB bodies unsent: wrong state, unknown id.
	if got := rawRequest(t, addr, head("/invocation/x/response")); got != 403 {
		t.Errorf("a response post before any invocation: %d, want 403 before its body", got)
	}
	done := startInvoke(env, "req", `{}`)
	id := nextEvent(t, &http.Client{}, base)
	if got := rawRequest(t, addr, head("/invocation/other/error")); got != 400 {
		t.Errorf("an error post for another request: %d, want 400 before its body", got)
	}
	if got := rawRequest(t, addr, head("/init/error")); got != 403 {
		t.Errorf("an init error post after init: %d, want 403 before its body", got)
	}

	// The invocation's own id: the first post takes it (its body stalls),
	// every later one is refused without being read.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, head("/invocation/"+id+"/response")+"partial")
	waitState(t, env, stateAnswered)
	for _, route := range []string{"response", "error"} {
		if got := rawRequest(t, addr, head("/invocation/"+id+"/"+route)); got != 403 {
			t.Errorf("a second %s post for the invocation while the first is read: %d, want 403 before its body", route, got)
		}
	}
	c.Close() // the taken body is cut short: the invocation ends with that
	if out := <-done; out.answer.errorType != "Runtime.TruncatedResponse" {
		t.Errorf("the invocation ended with %+v, want Runtime.TruncatedResponse", out.answer)
	}
}

// TestRuntimeAPIConnectionLimit: a flood of connections costs the server at
// most maxConns accepted connections; the rest wait in a backlog of the
// configured size, and are served as slots free up.
func TestRuntimeAPIConnectionLimit(t *testing.T) {
	t.Parallel()
	limits := runtimeAPILimits
	limits.headerTimeout = 200 * time.Millisecond // slow headers are cut soon
	env, sb, base := testEnv(t, limits)
	addr := sb.Listener().Addr().String()

	raw, err := sb.Listener().SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	raw.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if err != nil {
		t.Fatal(err)
	}
	// For a listening socket, Linux reports the backlog in tcpi_sacked.
	if int(info.Sacked) != limits.backlog {
		t.Errorf("the listen backlog is %d, want %d", info.Sacked, limits.backlog)
	}

	// Connections that send half a request line, as many as the client's
	// file limit allows here, each dialled without waiting for the others.
	const flood = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	for range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return // not completed: the backlog was full
			}
			c.Write([]byte("GET /2018-06-01/run"))
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// The server cuts each slow header after headerTimeout, so slots keep
	// freeing up; the runtime's own request gets through.
	done := startInvoke(env, "req", `{}`)
	id := nextEvent(t, &http.Client{}, base)
	requireAccepted(t, "POST /response during the flood", call(t, &http.Client{}, "POST", base+"/invocation/"+id+"/response", strings.NewReader("{}")))
	<-done
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	completed := len(conns)
	mu.Unlock()
	_, peak, accepted := sb.Listener().Counts()
	t.Logf("%d connections dialled, %d completed by the kernel, %d accepted by the server over time, at most %d at once", flood, completed, accepted, peak)
	if peak > limits.maxConns {
		t.Errorf("the server had %d connections of the environment open at once, want at most %d", peak, limits.maxConns)
	}
	if peak < limits.maxConns {
		t.Errorf("the server never had more than %d connections open: the flood did not reach the limit of %d", peak, limits.maxConns)
	}
}

// TestRuntimeAPITimeouts: slow headers and slow bodies are cut, idle
// keep-alive connections closed; a /next long poll and the streamed answer
// to the invocation in flight outlive the read timeout.
func TestRuntimeAPITimeouts(t *testing.T) {
	t.Parallel()
	limits := runtimeAPILimits
	limits.headerTimeout = 200 * time.Millisecond
	limits.readTimeout = 300 * time.Millisecond
	limits.idleTimeout = 300 * time.Millisecond
	env, sb, base := testEnv(t, limits)
	addr := sb.Listener().Addr().String()

	// requireClosed sends send on a new connection and requires the server
	// to close it, and returns what it answered.
	requireClosed := func(what, send string) []byte {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, send)
		c.SetReadDeadline(time.Now().Add(time.Minute)) // bounds a broken server only
		data, err := io.ReadAll(c)
		if err != nil {
			t.Errorf("%s: the server did not close the connection: %v", what, err)
		}
		return data
	}
	for what, send := range map[string]string{
		"a request line never finished": "GET /2018-06-01/runtime/invocation/next HT",
		"an idle keep-alive connection": "",
	} {
		if data := requireClosed(what, send); len(data) > 0 && !bytes.HasPrefix(data, []byte("HTTP/1.1 4")) {
			t.Errorf("%s: answered %q", what, data)
		}
	}
	// An init error whose body stalls: cut at the read timeout, and the
	// init error counts with what came (accepted, as the emulator does).
	requireClosed("a stalled init error body", "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\n"+
		"Lambda-Runtime-Function-Error-Type: Runtime.Slow\r\nContent-Length: 1000\r\n\r\n{")
	if a := <-env.initFailed; a.errorType != "Runtime.Slow" {
		t.Errorf("init failed with %+v, want Runtime.Slow", a)
	}

	env, _, base = testEnv(t, limits)
	client := &http.Client{}
	next := make(chan string, 1)
	go func() { next <- nextEvent(t, client, base) }()
	waitState(t, env, stateReady)
	time.Sleep(2 * limits.readTimeout) // the long poll outlives the read timeout
	done := startInvoke(env, "req", `{}`)
	id := <-next
	// A streamed response that takes longer than the read timeout.
	pr, pw := io.Pipe()
	go func() {
		for i := range 3 {
			fmt.Fprintf(pw, "part%d ", i)
			time.Sleep(limits.readTimeout)
		}
		pw.Close()
	}()
	requireAccepted(t, "a streamed response slower than the read timeout",
		call(t, client, "POST", base+"/invocation/"+id+"/response", pr, "Lambda-Runtime-Function-Response-Mode", "streaming"))
	if out := <-done; string(out.answer.payload) != "part0 part1 part2 " {
		t.Errorf("the caller got %q", out.answer.payload)
	}
}
