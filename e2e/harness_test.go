// Package e2e tests Lamina end to end: every test starts a real `lamina
// server` process (the binary built from ./cmd/lamina) and talks to it over
// HTTP with the real AWS SDK for Go v2, or runs the `lamina` CLI against it.
// Nothing is mocked.
//
// The harness in this file is shared by every test of the package:
//
//   - startServer(t, opts...) runs a server on a free loopback port and a
//     fresh data directory and stops it when the test ends;
//   - (*testServer).Lambda() is an SDK client for it, Run(args...) runs the
//     CLI against it, Stop/Kill/Restart drive the process;
//   - zipFiles/zipEntries build deployment packages in memory;
//   - signedRequest sends hand-signed HTTP requests, for wire-level checks;
//   - (*testServer).InspectStore() opens a stopped server's JetStream data.
//
// Set LAMINA_E2E_BINARY to test a prebuilt binary instead of building one.
package e2e

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/lamina-project/lamina/internal/credentials"
	"github.com/lamina-project/lamina/internal/sdkhttp"
	"github.com/lamina-project/lamina/internal/store"
)

// Fixed identity of the servers the tests start.
const (
	testAccessKeyID     = "LKIAE2ETESTKEY000001"
	testSecretAccessKey = "e2e-test-secret-access-key-0123456789abcd"
	testRegion          = "us-east-1"
	testAccountID       = "000000000000"
	testRole            = "arn:aws:iam::000000000000:role/lamina-e2e"

	// readyBanner is what `lamina server` prints on stdout once it serves.
	readyBanner = "Lamina is ready at"
)

// Timeouts of the harness. They bound how long a broken server can hang a
// test; no assertion depends on them.
const (
	startTimeout = 60 * time.Second // from exec to "ready"
	stopTimeout  = 20 * time.Second // from SIGTERM to exit, before SIGKILL
	runTimeout   = 60 * time.Second // one CLI command
)

// laminaBin is the path of the `lamina` binary under test, set by TestMain.
var laminaBin string

// workDir is a directory that lives as long as the test binary, for things
// built once and shared by tests (the lamina binary, test functions).
var workDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lamina-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	workDir = dir
	if bin := os.Getenv("LAMINA_E2E_BINARY"); bin != "" {
		laminaBin = bin
		return m.Run()
	}
	laminaBin = filepath.Join(dir, "lamina")
	build := exec.Command("go", "build", "-o", laminaBin, "github.com/lamina-project/lamina/cmd/lamina")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building lamina:", err)
		return 1
	}
	return m.Run()
}

// ---------------------------------------------------------------------------
// Server process

// serverConfig is what startServer's options set.
type serverConfig struct {
	dataDir    string   // "" means a new t.TempDir()
	port       int      // 0 means a free port
	args       []string // extra arguments after `server --listen … --data …`
	env        []string // extra environment, KEY=VALUE; later entries win
	noAdminEnv bool     // do not set LAMINA_ACCESS_KEY_ID / LAMINA_SECRET_ACCESS_KEY
	region     string   // --region, and the region of Lambda(); "" means us-east-1
}

// serverOption changes how startServer runs the server.
type serverOption func(*serverConfig)

// withDataDir runs the server on dir instead of a new temporary directory,
// e.g. to start a second server on another's data.
func withDataDir(dir string) serverOption { return func(c *serverConfig) { c.dataDir = dir } }

// withPort makes the server listen on 127.0.0.1:port.
func withPort(port int) serverOption { return func(c *serverConfig) { c.port = port } }

// withArgs appends arguments to the `lamina server` command line.
func withArgs(args ...string) serverOption {
	return func(c *serverConfig) { c.args = append(c.args, args...) }
}

// withEnv adds KEY=VALUE pairs to the server's environment.
func withEnv(kv ...string) serverOption {
	return func(c *serverConfig) { c.env = append(c.env, kv...) }
}

// withRegion runs the server with --region region; Lambda() signs for it.
func withRegion(region string) serverOption {
	return func(c *serverConfig) {
		c.region = region
		c.args = append(c.args, "--region", region)
	}
}

// withoutAdminEnv starts the server without LAMINA_ACCESS_KEY_ID and
// LAMINA_SECRET_ACCESS_KEY, so it generates (or reuses) the pair stored in its
// data directory. The harness then reads that pair from the data directory.
func withoutAdminEnv() serverOption { return func(c *serverConfig) { c.noAdminEnv = true } }

// testServer is one `lamina server` process (or, across Restart, a series of
// them on the same data directory and port).
type testServer struct {
	t       *testing.T
	cfg     serverConfig
	dataDir string
	addr    string // 127.0.0.1:PORT
	urlAddr string // 127.0.0.1:PORT of function URLs and HTTP APIs
	home    string // fake $HOME for Run, whose .lamina is dataDir

	accessKeyID, secretAccessKey string

	output syncBuffer // stdout and stderr of every start, interleaved

	mu     sync.Mutex
	proc   *serverProc // the current or last process
	starts int
	lambda *lambda.Client
}

// serverProc is one run of the server binary.
type serverProc struct {
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{} // closed once the process has exited
	state  *os.ProcessState
	err    error // from cmd.Wait
}

func (p *serverProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit code, or -1 when killed by a signal.
func (p *serverProc) exitCode() int {
	if p.state == nil {
		return -1
	}
	return p.state.ExitCode()
}

// startServer starts `lamina server` on a free loopback port and a new data
// directory (see the options), waits until it serves, and stops it when the
// test ends. It fails the test if the server does not become ready. The
// server's output is logged if the test fails.
func startServer(t *testing.T, opts ...serverOption) *testServer {
	t.Helper()
	ts := newTestServer(t, opts...)
	// A free port found by the test can be taken by a parallel test before
	// the server binds it; try again with another one then.
	for attempt := 1; ; attempt++ {
		ts.pickPorts()
		err := ts.start()
		if err == nil {
			return ts
		}
		if ts.cfg.port == 0 && attempt < 5 && ts.portTaken() {
			t.Logf("port %s was taken, trying another", ts.addr)
			continue
		}
		t.Fatalf("lamina server did not start: %v\n%s", err, ts.Output())
	}
}

// newTestServer prepares a server that startServer, or its caller, then
// starts; it is stopped when the test ends.
func newTestServer(t *testing.T, opts ...serverOption) *testServer {
	t.Helper()
	var cfg serverConfig
	for _, o := range opts {
		o(&cfg)
	}
	ts := &testServer{t: t, cfg: cfg, dataDir: cfg.dataDir}
	if ts.dataDir == "" {
		ts.dataDir = filepath.Join(t.TempDir(), "data")
	}
	ts.home = t.TempDir()
	if err := os.Symlink(ts.dataDir, filepath.Join(ts.home, ".lamina")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.cleanup)
	return ts
}

// pickPorts chooses the API port (unless withPort fixed it) and the
// function URL port of the next start.
func (ts *testServer) pickPorts() {
	port := ts.cfg.port
	if port == 0 {
		port = freePort(ts.t)
	}
	ts.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ts.urlAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(ts.t)))
}

// portTaken reports whether the last start failed because a port it was
// given was taken meanwhile.
func (ts *testServer) portTaken() bool {
	return strings.Contains(ts.current().stderr.String(), "address already in use")
}

// handedPorts are the ports freePort has returned in this test binary.
var handedPorts = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns a TCP port that was free on every IPv4 address a moment
// ago and that it has not returned before in this test binary: the kernel
// may give a port it just let go of to the next listener on port 0, so
// that two calls back to back (an API and a URL port) could return one
// port twice.
func freePort(t *testing.T) int {
	t.Helper()
	handedPorts.Lock()
	defer handedPorts.Unlock()
	for {
		ln, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		// Held until a new port is found, so that the kernel gives another.
		defer ln.Close()
		if port := ln.Addr().(*net.TCPAddr).Port; !handedPorts.ports[port] {
			handedPorts.ports[port] = true
			return port
		}
	}
}

// start runs one server process on ts.addr and ts.dataDir and waits until it
// is ready. It returns an error when the process exits or stays unready.
func (ts *testServer) start() error {
	if err := ts.launch(); err != nil {
		return err
	}
	return ts.waitReady()
}

// launch starts one server process on ts.addr and ts.dataDir, without
// waiting for it.
func (ts *testServer) launch() error {
	ts.mu.Lock()
	ts.starts++
	n := ts.starts
	ts.mu.Unlock()
	fmt.Fprintf(&ts.output, "=== lamina server start #%d on %s, data %s\n", n, ts.addr, ts.dataDir)

	p := &serverProc{done: make(chan struct{})}
	args := []string{"server", "--listen", ts.addr, "--url-listen", ts.urlAddr, "--data", ts.dataDir}
	if os.Geteuid() != 0 {
		// Namespace sandboxes need root: without it, run functions as plain
		// processes (the sandbox's own tests skip then).
		args = append(args, "--sandbox", "process")
	}
	args = append(args, ts.cfg.args...)
	p.cmd = exec.Command(laminaBin, args...)
	p.cmd.Env = serverEnv(ts.cfg)
	p.cmd.Stdout = io.MultiWriter(&p.stdout, &ts.output)
	p.cmd.Stderr = io.MultiWriter(&p.stderr, &ts.output)
	p.cmd.WaitDelay = 5 * time.Second
	// Its own process group, so that cleanup can reap anything the server
	// started (sandboxes); killed with the test binary if that dies.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() {
		p.err = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	ts.mu.Lock()
	ts.proc = p
	ts.mu.Unlock()
	return nil
}

// waitReady waits until the launched process serves, and takes the admin
// pair it accepts.
func (ts *testServer) waitReady() error {
	p := ts.current()
	deadline := time.Now().Add(startTimeout)
	for {
		if strings.Contains(p.stdout.String(), readyBanner) {
			break
		}
		if p.exited() {
			return fmt.Errorf("exited before ready (exit code %d)", p.exitCode())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}

	id, secret := testAccessKeyID, testSecretAccessKey
	if ts.cfg.noAdminEnv {
		pair, err := credentials.Load(ts.dataDir)
		if err != nil {
			return fmt.Errorf("reading the generated credentials: %w", err)
		}
		id, secret = pair.AccessKeyID, pair.SecretAccessKey
	}
	ts.mu.Lock()
	ts.accessKeyID, ts.secretAccessKey = id, secret
	ts.lambda = ts.newLambda(nil)
	ts.mu.Unlock()
	return nil
}

// serverEnv is the environment of a server process: the test's own, without
// anything that configures Lamina or AWS, plus the admin pair and extras.
func serverEnv(cfg serverConfig) []string {
	env := hermeticEnv()
	if !cfg.noAdminEnv {
		env = append(env, credentials.EnvAccessKeyID+"="+testAccessKeyID, credentials.EnvSecretAccessKey+"="+testSecretAccessKey)
	}
	return append(env, cfg.env...)
}

// hermeticEnv is os.Environ without LAMINA_* and AWS_* variables.
func hermeticEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "LAMINA_") || strings.HasPrefix(kv, "AWS_")
	})
}

// cleanup stops the server if it runs, reaps its process group and logs the
// output when the test failed.
func (ts *testServer) cleanup() {
	ts.mu.Lock()
	p := ts.proc
	ts.mu.Unlock()
	if p != nil && !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			ts.t.Errorf("lamina server did not exit %v after SIGTERM; killing it", stopTimeout)
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	if p != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // leftovers of the group, if any
	}
	if ts.t.Failed() {
		ts.t.Logf("lamina server output:\n%s", ts.Output())
	}
}

// Endpoint is the server's base URL, e.g. "http://127.0.0.1:41234".
func (ts *testServer) Endpoint() string { return "http://" + ts.addr }

// Addr is the server's host:port.
func (ts *testServer) Addr() string { return ts.addr }

// URLEndpoint is the base URL of the server's function URL and HTTP API
// listener, e.g. "http://127.0.0.1:PORT".
func (ts *testServer) URLEndpoint() string { return "http://" + ts.urlAddr }

// DataDir is the server's data directory.
func (ts *testServer) DataDir() string { return ts.dataDir }

// Credentials returns the admin key pair the server accepts.
func (ts *testServer) Credentials() (accessKeyID, secretAccessKey string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.accessKeyID, ts.secretAccessKey
}

// Output is everything every process of this server wrote to stdout and
// stderr so far.
func (ts *testServer) Output() string { return ts.output.String() }

// Stdout and Stderr are what the current (or last) process wrote.
func (ts *testServer) Stdout() string { return ts.current().stdout.String() }
func (ts *testServer) Stderr() string { return ts.current().stderr.String() }

func (ts *testServer) current() *serverProc {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.proc
}

// Running reports whether the server process is alive.
func (ts *testServer) Running() bool {
	p := ts.current()
	return p != nil && !p.exited()
}

// Lambda returns an SDK client for the server, with the admin credentials,
// region us-east-1 and no retries, so a failure shows at once.
func (ts *testServer) Lambda() *lambda.Client {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.lambda
}

// LambdaWith returns a client like Lambda's, changed by fn (other
// credentials, region, retries…).
func (ts *testServer) LambdaWith(fn func(*lambda.Options)) *lambda.Client {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.newLambda(fn)
}

func (ts *testServer) newLambda(fn func(*lambda.Options)) *lambda.Client {
	o := lambda.Options{
		Region:           ts.region(),
		BaseEndpoint:     aws.String(ts.Endpoint()),
		Credentials:      staticCredentials(ts.accessKeyID, ts.secretAccessKey),
		RetryMaxAttempts: 1,
		HTTPClient:       sdkhttp.Client(),
	}
	if fn != nil {
		fn(&o)
	}
	return lambda.New(o)
}

// region is the region the server answers as.
func (ts *testServer) region() string {
	if ts.cfg.region == "" {
		return testRegion
	}
	return ts.cfg.region
}

// staticCredentials is a provider of a fixed key pair.
func staticCredentials(id, secret string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "e2e"}, nil
	})
}

// Stop sends SIGTERM and requires a clean exit (code 0).
func (ts *testServer) Stop() { ts.t.Helper(); ts.StopWith(syscall.SIGTERM) }

// StopWith sends sig (SIGTERM or SIGINT) and requires a clean exit (code 0)
// within stopTimeout; after that the process is killed and the test fails.
func (ts *testServer) StopWith(sig syscall.Signal) {
	ts.t.Helper()
	p := ts.current()
	if p == nil || p.exited() {
		ts.t.Fatalf("Stop: the server is not running")
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		ts.t.Fatalf("Stop: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		ts.t.Fatalf("lamina server did not exit within %v of %v", stopTimeout, sig)
	}
	if code := p.exitCode(); code != 0 {
		ts.t.Fatalf("lamina server exited with code %d after %v (want 0); wait: %v", code, sig, p.err)
	}
}

// Kill sends SIGKILL to the server (a crash) and waits for it to die.
func (ts *testServer) Kill() {
	ts.t.Helper()
	p := ts.current()
	if p == nil || p.exited() {
		ts.t.Fatalf("Kill: the server is not running")
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Restart stops the server (if it still runs) and starts it again on the same
// data directory and port, waiting until it is ready.
func (ts *testServer) Restart() {
	ts.t.Helper()
	if ts.Running() {
		ts.Stop()
	}
	if err := ts.start(); err != nil {
		ts.t.Fatalf("lamina server did not restart: %v", err)
	}
}

// Reconfigure replaces the options of the next Restart by opts (extra
// arguments, environment, admin pair); the data directory and the port stay.
// Reconfigure() with no options restores the defaults.
func (ts *testServer) Reconfigure(opts ...serverOption) {
	var cfg serverConfig
	for _, o := range opts {
		o(&cfg)
	}
	cfg.dataDir, cfg.port = ts.dataDir, ts.cfg.port
	ts.cfg = cfg
}

// Pid is the process ID of the current (or last) server process.
func (ts *testServer) Pid() int { return ts.current().cmd.Process.Pid }

// ---------------------------------------------------------------------------
// CLI

// Run runs the `lamina` binary with args as a client of this server, the way
// a user on the same machine would: LAMINA_ENDPOINT is the server's endpoint,
// no AWS_* variables are set, and $HOME is a directory whose .lamina is the
// server's data directory, so the CLI finds the credentials there by default.
func (ts *testServer) Run(args ...string) (stdout, stderr string, code int) {
	ts.t.Helper()
	return ts.RunEnv(nil, args...)
}

// RunEnv is Run with extra environment variables (KEY=VALUE, winning over
// Run's own).
func (ts *testServer) RunEnv(env []string, args ...string) (stdout, stderr string, code int) {
	ts.t.Helper()
	base := append(hermeticEnv(), "LAMINA_ENDPOINT="+ts.Endpoint(), "HOME="+ts.home)
	return runLamina(ts.t, append(base, env...), args...)
}

// runLamina runs the lamina binary with exactly env and args until it exits
// (at most runTimeout) and returns what it printed and its exit code.
func runLamina(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, laminaBin, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
	default:
		t.Fatalf("lamina %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("lamina %s: did not finish within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), runTimeout, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// ---------------------------------------------------------------------------
// Store inspection

// InspectStore opens the JetStream data of the (stopped) server with Lamina's
// own store package, through an embedded NATS server that opens no port. It
// is closed when the test ends.
func (ts *testServer) InspectStore() *store.Store {
	ts.t.Helper()
	if ts.Running() {
		ts.t.Fatal("InspectStore: stop the server first")
	}
	return openStore(ts.t, ts.dataDir)
}

func openStore(t *testing.T, dataDir string) *store.Store {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "lamina",
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "nats"),
		DontListen: true,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats: not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Shutdown()
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(func() {
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	st, err := store.Open(context.Background(), nc, store.Options{})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	return st
}

// ---------------------------------------------------------------------------
// Zips

// zipEntry is one entry of a zip built by zipEntries.
type zipEntry struct {
	Name string
	Body string      // file content, or the target of a symlink
	Mode fs.FileMode // 0 means 0644; fs.ModeSymlink|0777 for a symlink; fs.ModeDir|0755 for a directory
	// Store keeps the content uncompressed (zip.Store) instead of Deflate.
	Store bool
}

// zipFiles returns a zip of regular files (mode 0644), in name order. The
// bytes depend only on files.
func zipFiles(t *testing.T, files map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	entries := make([]zipEntry, len(names))
	for i, name := range names {
		entries[i] = zipEntry{Name: name, Body: files[name]}
	}
	return zipEntries(t, entries...)
}

// zipEntries returns a zip of entries in the given order, with their modes
// (Unix permissions, directories, symlinks). Names are written as given, so
// hostile names ("../x", "/etc/x") can be built. The bytes depend only on
// entries.
func zipEntries(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		mode := e.Mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &zip.FileHeader{Name: e.Name, Method: zip.Deflate}
		if e.Store || mode.IsDir() {
			hdr.Method = zip.Store
		}
		hdr.SetMode(mode)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatalf("zip %q: %v", e.Name, err)
		}
		if _, err := io.WriteString(w, e.Body); err != nil {
			t.Fatalf("zip %q: %v", e.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipContent describes one entry of a zip read back by readZip.
type zipContent struct {
	Mode fs.FileMode
	Body string // content, or symlink target
}

// readZip returns the entries of a zip by name.
func readZip(t *testing.T, data []byte) map[string]zipContent {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("reading zip: %v", err)
	}
	out := make(map[string]zipContent, len(zr.File))
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("zip entry %q: %v", f.Name, err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("zip entry %q: %v", f.Name, err)
		}
		out[f.Name] = zipContent{Mode: f.Mode(), Body: string(body)}
	}
	return out
}

// codeSha256 is what Lambda reports as CodeSha256: base64 of the SHA-256.
func codeSha256(data []byte) string {
	sum := sha256.Sum256(data)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// codeDigest is the name of an archive in Lamina's code store: hex SHA-256.
func codeDigest(data []byte) string {
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

// helloZip is a small valid Python function package.
func helloZip(t *testing.T, marker string) []byte {
	t.Helper()
	return zipFiles(t, map[string]string{
		"app.py": "def handler(event, context):\n    return {'marker': " + strconv.Quote(marker) + "}\n",
	})
}

// ---------------------------------------------------------------------------
// Functions

// createFunction creates a python3.12 function called name with code zip and
// the given changes to the input, failing the test on error.
func (ts *testServer) createFunction(t *testing.T, name string, code []byte, mods ...func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionOutput {
	t.Helper()
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimePython312,
		Handler:      aws.String("app.handler"),
		Role:         aws.String(testRole),
		Code:         &types.FunctionCode{ZipFile: code},
	}
	for _, m := range mods {
		m(in)
	}
	out, err := ts.Lambda().CreateFunction(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	return out
}

// downloadCode gets the function and downloads its code from Code.Location
// with a plain HTTP GET (no AWS credentials).
func (ts *testServer) downloadCode(t *testing.T, name string) []byte {
	t.Helper()
	out, err := ts.Lambda().GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetFunction %s: %v", name, err)
	}
	if out.Code == nil || out.Code.Location == nil {
		t.Fatalf("GetFunction %s: no Code.Location", name)
	}
	status, body := httpGet(t, *out.Code.Location)
	if status != http.StatusOK {
		t.Fatalf("GET Code.Location of %s: status %d: %s", name, status, body)
	}
	return body
}

// httpGet fetches url with a plain GET.
func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, body
}

// ---------------------------------------------------------------------------
// Errors

// requireAPIError requires err to be an API error with the given code and
// HTTP status, and its message to contain each of wantInMessage. It returns
// the error for further checks.
func requireAPIError(t *testing.T, err error, code string, status int, wantInMessage ...string) smithy.APIError {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s (%d)", code, status)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %T %v, want API error %s", err, err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Errorf("error code = %q, want %q (message %q)", apiErr.ErrorCode(), code, apiErr.ErrorMessage())
	}
	if got := httpStatus(err); got != status {
		t.Errorf("HTTP status = %d, want %d (%v)", got, status, err)
	}
	for _, want := range wantInMessage {
		if !strings.Contains(apiErr.ErrorMessage(), want) {
			t.Errorf("error message %q does not contain %q", apiErr.ErrorMessage(), want)
		}
	}
	return apiErr
}

// httpStatus is the HTTP status code behind an SDK error, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// ---------------------------------------------------------------------------
// Raw HTTP

// rawResponse is a response read in full.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// signedRequest sends method path (path may carry a query) with body to the
// server, signed with SigV4 (service lambda, the server's region) by the SDK's signer
// with the given key pair at signingTime. An empty accessKeyID sends the
// request unsigned.
func (ts *testServer) signedRequest(t *testing.T, method, path string, body []byte, accessKeyID, secret string, signingTime time.Time) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, ts.Endpoint()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if accessKeyID != "" {
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secret}
		err := v4.NewSigner().SignHTTP(context.Background(), creds, req, fmt.Sprintf("%x", sum), "lambda", ts.region(), signingTime)
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// do sends a request signed now with the admin pair.
func (ts *testServer) do(t *testing.T, method, path string, body []byte) rawResponse {
	t.Helper()
	id, secret := ts.Credentials()
	return ts.signedRequest(t, method, path, body, id, secret, time.Now())
}

// ---------------------------------------------------------------------------
// Utilities

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

// publishLayer publishes a small layer version called name and returns its
// LayerVersionArn.
func (ts *testServer) publishLayer(t *testing.T, name string) string {
	t.Helper()
	out, err := ts.Lambda().PublishLayerVersion(t.Context(), &lambda.PublishLayerVersionInput{
		LayerName: aws.String(name),
		Content:   &types.LayerVersionContentInput{ZipFile: zipFiles(t, map[string]string{"python/" + name + ".py": "NAME = " + strconv.Quote(name) + "\n"})},
	})
	if err != nil {
		t.Fatalf("publish layer %s: %v", name, err)
	}
	return aws.ToString(out.LayerVersionArn)
}
