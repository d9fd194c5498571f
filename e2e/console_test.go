package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// browserTimeout bounds the whole browser run; no assertion depends on it.
const browserTimeout = 10 * time.Minute

// chromiumPath returns the headless browser the console test drives:
// $LAMINA_CHROMIUM, else Debian's chromium.
func chromiumPath() string {
	if p := os.Getenv("LAMINA_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestConsoleInBrowser drives the web console in headless Chromium
// (e2e/console/console.mjs, with playwright-core): sign-in, creating a
// function in the inline editor, invoking it with test events, following
// and filtering its logs, the live functions list, a configuration change,
// the charts, keyboard-only use and a 400 px window. It saves screenshots in
// $LAMINA_CONSOLE_SCREENSHOTS when set (docs/console holds the README's).
// Without Chromium or the npm packages it skips, except under CI, where
// .ci/run installs both.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	skipWithoutBrowser(t)
	runBrowserScript(t, startServer(t), "console/console.mjs")
}

// skipWithoutBrowser skips a browser test when Chromium or playwright-core
// is missing, except under CI, where .ci/run installs both.
func skipWithoutBrowser(t *testing.T) {
	t.Helper()
	missing := ""
	if chromiumPath() == "" {
		missing = "no headless Chromium (apt-get install chromium, or set LAMINA_CHROMIUM)"
	} else if _, err := os.Stat(filepath.Join("console", "node_modules", "playwright-core")); err != nil {
		missing = "playwright-core is not installed (npm ci --prefix e2e/console)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("the console's browser test cannot run in CI: %s; .ci/run installs it", missing)
		}
		t.Skipf("skipping the console's browser test: %s", missing)
	}
}

// runBrowserScript runs a script of e2e/console against the server ts in
// headless Chromium, in a network namespace of its own, and fails unless it
// passes every step. It saves screenshots in $LAMINA_CONSOLE_SCREENSHOTS
// when set (docs/console holds the README's).
func runBrowserScript(t *testing.T, ts *testServer, script string, env ...string) {
	t.Helper()
	script, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("LAMINA_CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if shots, err = filepath.Abs(shots); err != nil {
		t.Fatal(err)
	}
	id, secret := ts.Credentials()
	ns, endpoint := isolatedLoopback(t, ts.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/proc/self/fd/3", "node", script)
	cmd.ExtraFiles = []*os.File{ns}
	cmd.Env = append(append(os.Environ(),
		"LAMINA_ENDPOINT="+endpoint, "LAMINA_ACCESS_KEY_ID="+id, "LAMINA_SECRET_ACCESS_KEY="+secret,
		"CHROMIUM="+chromiumPath(), "SCREENSHOTS="+shots, "HOME="+t.TempDir()), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("browser run:\n%s", out.String())
	if err != nil {
		t.Fatalf("the console's browser test failed: %v (screenshots of the pages at the failure are in %s)", err, shots)
	}
	if !strings.Contains(out.String(), "all steps passed") {
		t.Fatal("the browser run ended without passing every step")
	}
}

// isolatedLoopback returns a network namespace of the test's own, with
// nothing but its loopback, and the address there of a forwarder to target
// (the server on the host's loopback). The browser runs in it: Chromium
// aborts its requests in flight (ERR_NETWORK_CHANGED) whenever an interface
// or address of its network namespace changes, as the function networks of
// the servers that other tests run beside it change the host's all the
// time. The namespace has no name and goes with its last file descriptor.
func isolatedLoopback(t *testing.T, target string) (ns *os.File, endpoint string) {
	t.Helper()
	var ln net.Listener
	done := make(chan error, 1)
	// A thread that enters another namespace is not used again.
	go func() {
		runtime.LockOSThread()
		handle, err := netns.New()
		if err != nil {
			done <- err
			return
		}
		ns = os.NewFile(uintptr(handle), "netns")
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err == nil {
			ln, err = net.Listen("tcp", "127.0.0.1:0")
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("a network namespace for the browser: %v", err)
	}
	t.Cleanup(func() { ln.Close(); ns.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return ns, "http://" + ln.Addr().String()
}

// TestConsoleSecurityHeadersAndSession checks, with a plain HTTP client, what
// a browser relies on: the console's pages forbid framing and inline
// script, the API refuses console calls without the session's CSRF token,
// and a signed-in session reaches the API through the console.
func TestConsoleSecurityHeadersAndSession(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	res, err := client.Get(ts.Endpoint() + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		res.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("GET /console/: %d, headers %v", res.StatusCode, res.Header)
	}
	id, secret := ts.Credentials()
	res, err = client.Post(ts.Endpoint()+"/console/api/session", "application/json",
		strings.NewReader(`{"accessKeyId":"`+id+`","secretAccessKey":"`+secret+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Set-Cookie"), "SameSite=Strict") ||
		!strings.Contains(res.Header.Get("Set-Cookie"), "HttpOnly") {
		t.Fatalf("sign-in: %d %s, Set-Cookie %q", res.StatusCode, body, res.Header.Get("Set-Cookie"))
	}
	// The cookie alone does not reach the API.
	res, err = client.Get(ts.Endpoint() + "/console/api/aws/lambda/2015-03-31/functions")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || res.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
		t.Fatalf("a console call without the CSRF token: %d %s", res.StatusCode, res.Header.Get("X-Amzn-ErrorType"))
	}
}
