package e2e

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/lamina-project/lamina/internal/credentials"
)

var exportLineRE = regexp.MustCompile(`export AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) AWS_DEFAULT_REGION=(\S+)`)

// readyOutput waits until the server's current process has printed all it
// prints once ready, and returns its stdout. The banner startServer waits
// for comes first; the export line and the hints after it come in writes
// of their own.
func readyOutput(t *testing.T, ts *testServer) string {
	t.Helper()
	const last = "in another terminal.\n" // the end of the ready message
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := ts.Stdout()
		if strings.Contains(out, last) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after it was ready, the server has not printed %q:\n%s", last, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// printedCredentials parses the export line a server printed.
func printedCredentials(t *testing.T, stdout string) (id, secret, region string) {
	t.Helper()
	m := exportLineRE.FindAllStringSubmatch(stdout, -1)
	if len(m) != 1 {
		t.Fatalf("want one `export AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_DEFAULT_REGION=…` line, got %d in:\n%s", len(m), stdout)
	}
	return m[0][1], m[0][2], m[0][3]
}

func checkCredentialsFile(t *testing.T, dataDir, wantID, wantSecret string) {
	t.Helper()
	path := filepath.Join(dataDir, credentials.FileName)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	if mode := info.Mode(); mode != 0o600 {
		t.Errorf("%s has mode %v, want -rw-------", path, mode)
	}
	pair, err := credentials.Load(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if pair.AccessKeyID != wantID || pair.SecretAccessKey != wantSecret {
		t.Errorf("credentials file holds %s, want %s", pair.AccessKeyID, wantID)
	}
}

// TestServerGeneratesCredentials: a first start without LAMINA_* generates a
// key pair, stores it (mode 0600), prints how to use it, and it works; later
// starts reuse it; LAMINA_* replace it.
func TestServerGeneratesCredentials(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withoutAdminEnv())
	ctx := t.Context()

	out := readyOutput(t, ts)
	id, secret, region := printedCredentials(t, out)
	if region != "us-east-1" {
		t.Errorf("AWS_DEFAULT_REGION=%s, want us-east-1", region)
	}
	if !strings.Contains(out, "--endpoint-url "+ts.Endpoint()) {
		t.Errorf("no `--endpoint-url %s` hint in:\n%s", ts.Endpoint(), out)
	}
	if len(id) < 16 || len(secret) < 30 || id == testAccessKeyID {
		t.Errorf("generated pair %q / %q does not look like a fresh key pair", id, secret)
	}
	checkCredentialsFile(t, ts.DataDir(), id, secret)
	printed := ts.LambdaWith(func(o *lambda.Options) { o.Credentials = staticCredentials(id, secret) })
	if _, err := printed.ListFunctions(ctx, &lambda.ListFunctionsInput{}); err != nil {
		t.Fatalf("the printed pair does not work: %v", err)
	}
	ts.createFunction(t, "kept", helloZip(t, "kept"))

	// Second start: the same pair.
	ts.Restart()
	id2, secret2, _ := printedCredentials(t, readyOutput(t, ts))
	if id2 != id || secret2 != secret {
		t.Errorf("second start printed %s, want the stored %s", id2, id)
	}
	checkCredentialsFile(t, ts.DataDir(), id, secret)
	if _, err := printed.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("kept")}); err != nil {
		t.Errorf("the pair of the first start no longer works: %v", err)
	}

	// LAMINA_* given: that pair is used, stored, and the old one is refused.
	const newID, newSecret = "LKIAREPLACEMENT00001", "replacement-secret-0123456789-abcdefghij"
	ts.Reconfigure(withoutAdminEnv(), withEnv(credentials.EnvAccessKeyID+"="+newID, credentials.EnvSecretAccessKey+"="+newSecret))
	ts.Restart()
	if gotID, _ := ts.Credentials(); gotID != newID {
		t.Errorf("after a start with LAMINA_*, the data directory holds %s, want %s", gotID, newID)
	}
	if _, err := ts.Lambda().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("kept")}); err != nil {
		t.Errorf("the LAMINA_* pair does not work: %v", err)
	}
	checkCredentialsFile(t, ts.DataDir(), newID, newSecret)
	_, err := printed.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	requireAPIError(t, err, "UnrecognizedClientException", 403)
}

// TestServerCredentialsFileFromEnv: with LAMINA_* set, the file in the data
// directory holds that pair, mode 0600, and the server prints it.
func TestServerCredentialsFileFromEnv(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	checkCredentialsFile(t, ts.DataDir(), testAccessKeyID, testSecretAccessKey)
	id, secret, _ := printedCredentials(t, readyOutput(t, ts))
	if id != testAccessKeyID || secret != testSecretAccessKey {
		t.Errorf("printed %s / %s, want the LAMINA_* pair", id, secret)
	}
}

// serverFailure runs `lamina server` expecting it to refuse to start, and
// returns its stderr. It checks the exit code is not 0 and stderr is one
// line.
func serverFailure(t *testing.T, env []string, args ...string) string {
	t.Helper()
	stdout, stderr, code := runLamina(t, env, append([]string{"server"}, args...)...)
	if code == 0 {
		t.Errorf("lamina server %s exited 0, want a failure\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), stdout, stderr)
	}
	if l := lines(stderr); len(l) != 1 {
		t.Errorf("lamina server %s: stderr has %d lines, want one clear line:\n%s", strings.Join(args, " "), len(l), stderr)
	}
	if strings.Contains(stdout, readyBanner) {
		t.Errorf("lamina server %s said it was ready:\n%s", strings.Join(args, " "), stdout)
	}
	return strings.TrimSpace(stderr)
}

func defaultServerEnv() []string { return serverEnv(serverConfig{}) }

func TestServerPortTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	dataDir := filepath.Join(t.TempDir(), "data")
	msg := serverFailure(t, defaultServerEnv(), "--listen", addr, "--data", dataDir)
	if !strings.Contains(msg, addr) {
		t.Errorf("error %q does not name the address %s", msg, addr)
	}
	if !strings.Contains(msg, "in use") {
		t.Errorf("error %q does not say the address is in use", msg)
	}
	// The data directory can be used at once by a server on a free port.
	ts := startServer(t, withDataDir(dataDir), withPort(freePort(t)))
	if _, err := ts.Lambda().ListFunctions(t.Context(), &lambda.ListFunctionsInput{}); err != nil {
		t.Fatal(err)
	}
}

func TestServerUnusableDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "regular-file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dataDir := range []string{filepath.Join(file, "data"), file} {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		msg := serverFailure(t, defaultServerEnv(), "--listen", addr, "--data", dataDir)
		if !strings.Contains(msg, dataDir) {
			t.Errorf("--data %s: error %q does not name the directory", dataDir, msg)
		}
	}
}

func TestServerBadArguments(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	msg := serverFailure(t, defaultServerEnv(), "--listen", addr, "--data", dataDir, "--account-id", "123")
	if !strings.Contains(msg, "account") {
		t.Errorf("--account-id 123: error %q", msg)
	}
	msg = serverFailure(t, append(hermeticEnv(), credentials.EnvAccessKeyID+"=ONLYTHEKEY"), "--listen", addr, "--data", dataDir)
	if !strings.Contains(msg, credentials.EnvSecretAccessKey) {
		t.Errorf("only %s set: error %q does not mention %s", credentials.EnvAccessKeyID, msg, credentials.EnvSecretAccessKey)
	}
	msg = serverFailure(t, defaultServerEnv(), "--listen", "not-an-address", "--data", dataDir)
	if !strings.Contains(msg, "not-an-address") {
		t.Errorf("--listen not-an-address: error %q", msg)
	}
}

// TestServerDataDirLocked: a second server on the same data directory refuses
// to start and the first keeps serving.
func TestServerDataDirLocked(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createFunction(t, "first", helloZip(t, "first"))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	msg := serverFailure(t, defaultServerEnv(), "--listen", addr, "--data", ts.DataDir())
	if !strings.Contains(msg, ts.DataDir()) || !strings.Contains(msg, "in use") {
		t.Errorf("error %q, want it to name %s and say it is in use", msg, ts.DataDir())
	}
	if _, err := ts.Lambda().GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String("first")}); err != nil {
		t.Errorf("the first server stopped serving: %v", err)
	}
	// Once the first one stops, the directory is free.
	ts.Restart()
	if _, err := ts.Lambda().GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String("first")}); err != nil {
		t.Error(err)
	}
}

// TestServerSignals: SIGINT and SIGTERM both end the server with exit code 0.
func TestServerSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			ts := startServer(t)
			ts.createFunction(t, "fn", helloZip(t, "fn"))
			ts.StopWith(sig) // requires exit code 0
			// The data directory is released and intact.
			ts.Restart()
			if _, err := ts.Lambda().GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String("fn")}); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestServerListensOnlyOnTheAPI: the embedded NATS server is reached
// in-process; the server's only listening sockets are the API's, the
// function URL listener's and, with namespace sandboxes, the functions' DNS
// forwarder (port 53 of their bridge's address).
func TestServerListensOnlyOnTheAPI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ports, err := listeningPorts(ts.Pid())
	if err != nil {
		t.Skipf("cannot read /proc: %v", err)
	}
	_, apiPort, _ := net.SplitHostPort(ts.Addr())
	_, urlPort, _ := net.SplitHostPort(ts.urlAddr)
	want := []string{apiPort, urlPort}
	if os.Geteuid() == 0 {
		want = append(want, "53")
	}
	slices.Sort(want)
	if !slices.Equal(ports, want) {
		t.Errorf("the server listens on TCP ports %v, want only the API's, the URL listener's (and DNS) %v", ports, want)
	}
}

// listeningPorts returns the TCP ports a process listens on, from /proc.
func listeningPorts(pid int) ([]string, error) {
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	var ports []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "net", table))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			port, err := strconv.ParseUint(hexPort, 16, 16)
			if err != nil {
				continue
			}
			ports = append(ports, strconv.FormatUint(port, 10))
		}
		f.Close()
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

// TestServerRegionAndAccount: --region and --account-id shape ARNs and the
// SigV4 scope.
func TestServerRegionAndAccount(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withRegion("eu-west-3"), withArgs("--account-id", "123456789012"))
	ctx := t.Context()
	if _, _, region := printedCredentials(t, readyOutput(t, ts)); region != "eu-west-3" {
		t.Errorf("printed AWS_DEFAULT_REGION=%s, want eu-west-3", region)
	}
	out := ts.createFunction(t, "regional", helloZip(t, "regional"))
	arn := "arn:aws:lambda:eu-west-3:123456789012:function:regional"
	if aws.ToString(out.FunctionArn) != arn {
		t.Errorf("FunctionArn = %s, want %s", aws.ToString(out.FunctionArn), arn)
	}
	for _, ref := range []string{arn, "123456789012:function:regional"} {
		if _, err := ts.Lambda().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(ref)}); err != nil {
			t.Errorf("GetFunction(%s): %v", ref, err)
		}
	}
	for _, ref := range []string{functionARN("regional"), "000000000000:function:regional", "arn:aws:lambda:eu-west-3:000000000000:function:regional"} {
		_, err := ts.Lambda().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(ref)})
		if err == nil {
			t.Errorf("GetFunction(%s) found the function of another region or account", ref)
		}
	}
	tags, err := ts.Lambda().ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn)})
	if err != nil || tags.Tags == nil {
		t.Errorf("ListTags(%s): %v", arn, err)
	}
	// Signed for us-east-1: refused.
	east := ts.LambdaWith(func(o *lambda.Options) { o.Region = "us-east-1" })
	_, err = east.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	requireAPIError(t, err, "InvalidSignatureException", 403)
}

// TestFreePortNeverRepeats: the harness's free ports are all different, so
// that a server's API, URL and NATS ports never collide. (Closed and
// opened again, listeners on port 0 get a port twice in a few hundred.)
func TestFreePortNeverRepeats(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for range 500 {
		port := freePort(t)
		if seen[port] {
			t.Fatalf("freePort returned %d twice", port)
		}
		seen[port] = true
	}
}
