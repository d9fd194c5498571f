package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// The identity of the server the benchmarks start.
const (
	accessKeyID     = "LKIABENCHMARKKEY0001"
	secretAccessKey = "bench-secret-access-key-0123456789abcdefg"
	region          = "us-east-1"
	role            = "arn:aws:iam::000000000000:role/lamina-bench"
	readyBanner     = "Lamina is ready at"
)

// Server settings: room for 64 concurrent environments of 128 MB and more.
const (
	memoryBudgetMB   = 16384
	concurrencyLimit = 1000
	functionMemoryMB = 128
)

// Inline no-op handlers of the interpreted runtimes. Like the Go function
// (testdata/noop), they ignore the event and return null.
const (
	pythonNoop = "def handler(event, context):\n    return None\n"
	nodeNoop   = "export const handler = async () => null;\n"
)

// runtimeCase is one runtime the benchmarks run a no-op function on.
type runtimeCase struct {
	name    string // go, python, node
	runtime types.Runtime
	handler string
}

var runtimeCases = []runtimeCase{
	{"go", types.RuntimeProvidedal2023, "bootstrap"},
	{"python", types.RuntimePython312, "app.handler"},
	{"node", types.RuntimeNodejs20x, "index.handler"},
}

// warmFunction and coldFunction name the functions of a runtime: one kept
// warm, one whose configuration changes before every cold start.
func warmFunction(rt string) string { return "noop-" + rt }
func coldFunction(rt string) string { return "cold-" + rt }

// fixture is what every benchmark shares: the built binaries and one running
// Lamina server with the functions created. It is set up on first use and
// torn down by TestMain.
type fixture struct {
	dir       string // temporary directory holding everything below
	laminaBin string
	bootstrap string // the no-op Go function
	goZip     []byte
	server    *process
	addr      string // of the server, host:port
	sdk       *lambda.Client
}

var (
	fixtureOnce sync.Once
	theFixture  *fixture
	fixtureErr  error
	rieOnce     sync.Once
	theRIE      *process
	rieAddress  string
	rieErr      error
)

// getFixture returns the shared fixture, setting it up the first time.
func getFixture(b *testing.B) *fixture {
	b.Helper()
	fixtureOnce.Do(func() { theFixture, fixtureErr = setUp() })
	if fixtureErr != nil {
		b.Fatalf("bench setup: %v", fixtureErr)
	}
	return theFixture
}

func TestMain(m *testing.M) {
	code := m.Run()
	tearDown()
	os.Exit(code)
}

func setUp() (*fixture, error) {
	dir, err := os.MkdirTemp("", "lamina-bench-")
	if err != nil {
		return nil, err
	}
	f := &fixture{dir: dir, laminaBin: filepath.Join(dir, "lamina"), bootstrap: filepath.Join(dir, "fn", "bootstrap")}
	started := time.Now()
	if bin := os.Getenv("BENCH_LAMINA_BINARY"); bin != "" {
		f.laminaBin = bin
	} else if err := goBuild(".", nil, f.laminaBin, "github.com/lamina-project/lamina/cmd/lamina"); err != nil {
		return f, err
	}
	// As AWS documents building a provided.al2023 Go function. testdata/noop
	// is a module of its own, so that Lamina's need not require aws-lambda-go.
	if err := goBuild(filepath.Join("testdata", "noop"), []string{"CGO_ENABLED=0"}, f.bootstrap, ".", "-tags", "lambda.norpc"); err != nil {
		return f, err
	}
	code, err := os.ReadFile(f.bootstrap)
	if err != nil {
		return f, err
	}
	if f.goZip, err = zipFiles(map[string]zipFile{"bootstrap": {string(code), 0o755}}); err != nil {
		return f, err
	}
	fmt.Fprintf(os.Stderr, "bench: built lamina and the Go function in %v\n", time.Since(started).Round(time.Millisecond))

	if err := f.startServer("server", strings.Fields(os.Getenv("BENCH_SERVER_ARGS"))...); err != nil {
		return f, err
	}
	if err := f.createFunctions(); err != nil {
		return f, err
	}
	fmt.Fprintf(os.Stderr, "bench: lamina server ready at %s with %d functions after %v\n",
		f.addr, 2*len(runtimeCases), time.Since(started).Round(time.Millisecond))
	return f, nil
}

// startServer starts a lamina server on a free loopback port, with its data
// (name-data) and its log (name.log) in f.dir, and extra arguments.
func (f *fixture) startServer(name string, extra ...string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	f.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	argv := []string{f.laminaBin, "server", "--listen", f.addr, "--url-listen", "127.0.0.1:0", "--data", filepath.Join(f.dir, name+"-data"),
		"--memory-budget", strconv.Itoa(memoryBudgetMB), "--concurrency-limit", strconv.Itoa(concurrencyLimit),
		"--idle-timeout", "30m"}
	argv = append(argv, extra...)
	f.server, err = startProcess(filepath.Join(f.dir, name+".log"), hermeticEnv(
		"LAMINA_ACCESS_KEY_ID="+accessKeyID, "LAMINA_SECRET_ACCESS_KEY="+secretAccessKey), argv...)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: %s\n", strings.Join(argv, " "))
	if err := f.server.waitForOutput(readyBanner, 60*time.Second); err != nil {
		return fmt.Errorf("lamina server: %w\n%s", err, f.server.output())
	}
	f.sdk = newSDKClient("http://" + f.addr)
	return nil
}

// createFunctions creates the warm and the cold function of every runtime
// and invokes each once, which unpacks the code and checks that it runs.
func (f *fixture) createFunctions() error {
	for _, rt := range runtimeCases {
		code, err := f.codeOf(rt)
		if err != nil {
			return err
		}
		for _, name := range []string{warmFunction(rt.name), coldFunction(rt.name)} {
			if err := f.createFunction(name, rt, code); err != nil {
				return err
			}
			if _, err := f.invokeSDK(name, false); err != nil {
				return fmt.Errorf("first invoke of %s: %w", name, err)
			}
		}
	}
	return nil
}

// tearDown stops the server and RIE, reports leaked processes and the
// server's errors, and prints the summary of the run.
func tearDown() {
	if theRIE != nil {
		theRIE.stop(5 * time.Second)
	}
	f := theFixture
	if f == nil {
		return
	}
	if f.server != nil {
		descendants := descendantsOf(f.server.pid())
		nodeCgroup := nodeCgroupOf(f.server.output())
		stopping := time.Now()
		if err := f.server.stop(30 * time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "bench: WARNING: lamina server: %v\n", err)
		}
		fmt.Fprintf(os.Stderr, "bench: lamina server with %d processes under it stopped in %v\n",
			len(descendants), time.Since(stopping).Round(time.Millisecond))
		if nodeCgroup != "" {
			if _, err := os.Stat(nodeCgroup); err == nil {
				fmt.Fprintf(os.Stderr, "bench: WARNING: the server's node cgroup %s outlived it: %v\n", nodeCgroup, cgroupChildren(nodeCgroup))
			}
		}
		if leaked := stillRunning(descendants, 2*time.Second); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "bench: WARNING: %d environment processes outlived the server: %v; killing them\n", len(leaked), leaked)
			for _, p := range leaked {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
		reportServerErrors(f.server.output())
	}
	printSummary()
	os.RemoveAll(f.dir)
}

// nodeCgroupOf is the node cgroup a server logged at start (node_cgroup=,
// the parent of all its sandboxes' cgroups), or "" when it has none.
func nodeCgroupOf(serverLog string) string {
	_, rest, ok := strings.Cut(serverLog, "node_cgroup=")
	if !ok {
		return ""
	}
	return strings.Fields(rest)[0]
}

// cgroupChildren lists the cgroups left under dir.
func cgroupChildren(dir string) []string {
	if dir == "" {
		return nil
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// reportServerErrors prints the server's ERROR and WARN log lines, if any.
func reportServerErrors(out string) {
	var bad []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") || strings.Contains(line, "panic") {
			bad = append(bad, line)
		}
	}
	if len(bad) == 0 {
		return
	}
	fmt.Fprintf(os.Stderr, "bench: the lamina server logged %d errors or warnings; the first ones:\n", len(bad))
	for _, line := range bad[:min(len(bad), 10)] {
		fmt.Fprintln(os.Stderr, "  ", line)
	}
}

// goBuild runs `go build -o out flags... pkg` in dir with extra environment.
func goBuild(dir string, env []string, out, pkg string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if data, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, data)
	}
	return nil
}

// hermeticEnv is this process's environment without LAMINA_* and AWS_*
// variables, plus extra.
func hermeticEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "LAMINA_") || strings.HasPrefix(kv, "AWS_")
	})
	return append(env, extra...)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// zipFile is one entry of a deployment package.
type zipFile struct {
	body string
	mode os.FileMode
}

func zipFiles(files map[string]zipFile) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, f := range files {
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
		hdr.SetMode(f.mode)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(w, f.body); err != nil {
			return nil, err
		}
	}
	err := zw.Close()
	return buf.Bytes(), err
}

func (f *fixture) codeOf(rt runtimeCase) ([]byte, error) {
	switch rt.name {
	case "go":
		return f.goZip, nil
	case "python":
		return zipFiles(map[string]zipFile{"app.py": {pythonNoop, 0o644}})
	case "node":
		return zipFiles(map[string]zipFile{"index.mjs": {nodeNoop, 0o644}})
	}
	return nil, fmt.Errorf("unknown runtime case %q", rt.name)
}

func (f *fixture) createFunction(name string, rt runtimeCase, code []byte) error {
	_, err := f.sdk.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      rt.runtime,
		Handler:      aws.String(rt.handler),
		Role:         aws.String(role),
		MemorySize:   aws.Int32(functionMemoryMB),
		Timeout:      aws.Int32(30),
		Code:         &types.FunctionCode{ZipFile: code},
	})
	if err != nil {
		return fmt.Errorf("CreateFunction %s: %w", name, err)
	}
	return nil
}

// newSDKClient is an aws-sdk-go-v2 Lambda client for endpoint, with the
// bench's key pair, no retries (a failure shows at once) and enough idle
// connections for 64 concurrent callers (the SDK's default keeps 10 per host,
// which would make it open new connections at concurrency 32 and 64).
func newSDKClient(endpoint string) *lambda.Client {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 512
		t.MaxIdleConnsPerHost = 512
	})
	return lambda.New(lambda.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey, Source: "bench"}, nil
		}),
		RetryMaxAttempts: 1,
		HTTPClient:       httpClient,
	})
}

var emptyEvent = []byte("{}")

// invokeSDK invokes name with the SDK client and an empty event, and returns
// the decoded log tail when tail is set. A function error is an error.
func (f *fixture) invokeSDK(name string, tail bool) (string, error) {
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: emptyEvent}
	if tail {
		in.LogType = types.LogTypeTail
	}
	out, err := f.sdk.Invoke(context.Background(), in)
	if err != nil {
		return "", err
	}
	if out.FunctionError != nil {
		return "", fmt.Errorf("invoke %s: function error %s: %s", name, *out.FunctionError, out.Payload)
	}
	if !tail {
		return "", nil
	}
	if out.LogResult == nil {
		return "", fmt.Errorf("invoke %s: no X-Amz-Log-Result", name)
	}
	data, err := decodeBase64(*out.LogResult)
	return string(data), err
}

// ---------------------------------------------------------------------------
// Processes

// process is a child process (the lamina server or RIE) with its output in a
// file.
type process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

func startProcess(logPath string, env []string, argv ...string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) output() string {
	data, _ := os.ReadFile(p.logPath)
	return string(data)
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitForOutput waits until the process has written s.
func (p *process) waitForOutput(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.output(), s) {
		if p.exited() {
			return fmt.Errorf("exited (%v) before writing %q", p.waitErr, s)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("did not write %q within %v", s, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// waitForPort waits until addr accepts TCP connections.
func (p *process) waitForPort(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("exited (%v) before listening on %s", p.waitErr, addr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %v", addr, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the exit; after timeout it kills the
// process group. It returns an error for an unclean or late exit.
func (p *process) stop(timeout time.Duration) error {
	if p.exited() {
		return fmt.Errorf("had exited before the end of the run: %v", p.waitErr)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("did not exit within %v of SIGTERM; killed", timeout)
	}
	var exitErr *exec.ExitError
	if errors.As(p.waitErr, &exitErr) {
		return fmt.Errorf("exited after SIGTERM with %v", p.waitErr)
	}
	return nil
}

// ---------------------------------------------------------------------------
// RIE

// rieAddr starts AWS's Runtime Interface Emulator serving the no-op Go
// function on first use, and returns its address.
func rieAddr(b *testing.B, f *fixture) string {
	b.Helper()
	rieOnce.Do(func() {
		port, err := freePort()
		if err != nil {
			rieErr = err
			return
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		rie := rieBinary()
		if rie == "" {
			rieErr = errors.New("aws-lambda-rie not found (set BENCH_RIE, or go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d)")
			return
		}
		theRIE, rieErr = startProcess(filepath.Join(f.dir, "rie.log"), hermeticEnv(), rie,
			"--runtime-interface-emulator-address", addr, f.bootstrap)
		if rieErr != nil {
			return
		}
		rieErr = theRIE.waitForPort(addr, 20*time.Second)
		rieAddress = addr
	})
	if rieErr != nil {
		b.Fatalf("RIE: %v", rieErr)
	}
	return rieAddress
}

// rieBinary finds aws-lambda-rie: $BENCH_RIE, then PATH, then GOBIN or
// GOPATH/bin.
func rieBinary() string {
	if p := os.Getenv("BENCH_RIE"); p != "" {
		return p
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return ""
	}
	for _, dir := range strings.Fields(string(out)) {
		for _, cand := range []string{filepath.Join(dir, "aws-lambda-rie"), filepath.Join(dir, "bin", "aws-lambda-rie")} {
			if _, err := os.Stat(cand); err == nil {
				return cand
			}
		}
	}
	return ""
}
