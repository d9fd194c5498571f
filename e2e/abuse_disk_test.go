package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"golang.org/x/sys/unix"
)

// Abuse: the data disk fills up (a file written beside the data, and
// uploads through the API), or JetStream meets a write error that is not a
// full disk. The node answers writes with 503 ServiceException while it
// lasts, keeps serving reads and invocations, and heals by itself once the
// cause is gone: every kind of write succeeds again without a restart, and
// nothing that was acknowledged is lost.

// smallDataDisk mounts a tmpfs of sizeMB for a server's data directory and
// returns the data directory on it. It is unmounted when the test ends,
// after the server stopped. It skips the test unless it runs as root.
func smallDataDisk(t *testing.T, sizeMB int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small data disk needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size="+strconv.Itoa(sizeMB)+"m,mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return filepath.Join(mnt, "data")
}

// fillDisk appends random bytes to the file path until the filesystem has
// about leave bytes free (or none).
func fillDisk(t *testing.T, path string, leave int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, max(0, free-leave)); err != nil && !errors.Is(err, unix.ENOSPC) {
		t.Fatal(err)
	}
}

// requireStorageRefused requires err to be the answer to a write while
// storage is unavailable: 503 ServiceException saying why.
func requireStorageRefused(t *testing.T, what string, err error, why string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded while storage was %s", what, why)
	}
	requireAPIError(t, err, "ServiceException", http.StatusServiceUnavailable, "storage is "+why)
}

// waitWritable retries a small write until it succeeds (the node healed).
func (ts *testServer) waitWritable(t *testing.T, function string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := ts.Lambda().TagResource(context.Background(), &lambda.TagResourceInput{
			Resource: aws.String(fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", ts.region(), testAccountID, function)),
			Tags:     map[string]string{"healed": "yes"}})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("storage did not heal within 60 s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// bigZip is a deployment package of about size bytes that does not
// compress.
func bigZip(t *testing.T, size int) []byte {
	t.Helper()
	blob := make([]byte, size)
	rand.Read(blob)
	return zipEntries(t, zipEntry{Name: "app.py", Body: pyApp}, zipEntry{Name: "blob.bin", Body: string(blob), Store: true})
}

func TestDiskFullHeals(t *testing.T) {
	t.Parallel()
	dataDir := smallDataDisk(t, 256)
	// The environments' /tmp disks live on the root file system: a 512 MB
	// /tmp would not fit on this data disk.
	ts := startServer(t, withDataDir(dataDir), withArgs("--async-time-scale", asyncTimeScale, "--tmp-dir", t.TempDir()))
	ctx := context.Background()
	client := ts.Lambda()
	b := ts.startBystander(t)

	// Acknowledged before the disk fills: a function, and an async event
	// that cannot run yet (its function's reserved concurrency is 0, so the
	// event waits in the queue, throttled).
	held := "held-" + strings.ToLower(rand.Text()[:8])
	ts.createPy(t, held, "echo")
	if _, err := client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(held), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	marker := "accepted-before-the-disk-filled-" + rand.Text()[:8]
	ts.invokeEvent(t, held, fmt.Sprintf(`{"marker":%q}`, marker))

	// A file beside the data leaves a few MB; an upload through the API
	// then fills the disk while JetStream writes it.
	filler := filepath.Join(filepath.Dir(dataDir), "filler")
	fillDisk(t, filler, 6<<20)
	big := "big-" + strings.ToLower(rand.Text()[:8])
	_, err := client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(big), Runtime: types.RuntimePython312, Handler: aws.String("app.echo"),
		Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: bigZip(t, 12<<20)}})
	requireStorageRefused(t, "an upload that fills the disk", err, "full")
	fillDisk(t, filler, 0)

	// Every kind of write is refused with the same clear answer, fast.
	_, err = client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("small-" + big), Runtime: types.RuntimePython312, Handler: aws.String("app.echo"),
		Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: pyAppZip(t)}})
	requireStorageRefused(t, "CreateFunction", err, "full")
	_, err = client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(held), MaximumRetryAttempts: aws.Int32(1)})
	requireStorageRefused(t, "PutFunctionEventInvokeConfig", err, "full")
	_, err = client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(held), Name: aws.String("live"), FunctionVersion: aws.String("$LATEST")})
	requireStorageRefused(t, "CreateAlias", err, "full")
	_, err = client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(b.name), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)})
	requireStorageRefused(t, "an asynchronous Invoke", err, "full")
	raw := ts.do(t, http.MethodDelete, "/2015-03-31/functions/"+held, nil)
	if raw.Status != http.StatusServiceUnavailable || raw.Header.Get("X-Amzn-ErrorType") != "ServiceException" || raw.Header.Get("Retry-After") == "" {
		t.Errorf("DeleteFunction on a full disk: %d %v %s; want 503 ServiceException with Retry-After", raw.Status, raw.Header, raw.Body)
	}
	var body map[string]string
	if err := json.Unmarshal(raw.Body, &body); err != nil || !strings.Contains(body["Message"], "storage is full") {
		t.Errorf("DeleteFunction on a full disk: body %s", raw.Body)
	}
	// Reads are served meanwhile.
	if _, err := client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(held)}); err != nil {
		t.Errorf("GetFunction on a full disk: %v", err)
	}
	if _, err := client.ListFunctions(ctx, &lambda.ListFunctionsInput{}); err != nil {
		t.Errorf("ListFunctions on a full disk: %v", err)
	}

	// Space is freed: the node heals by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	ts.waitWritable(t, held)
	b.finish(t)
	if !strings.Contains(ts.Output(), "reopening JetStream's streams") {
		t.Errorf("the upload did not make JetStream fail a write (no reopening in the log); the test did not test healing")
	}
	ts.requireEveryWrite(t)

	// Nothing half-written is visible: the upload that failed left no
	// function; nothing acknowledged is lost: the event accepted before the
	// disk filled runs once its function may run.
	if _, err := client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(big)}); err == nil {
		t.Errorf("the function whose upload failed exists")
	}
	if _, err := client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String(held)}); err != nil {
		t.Fatal(err)
	}
	ts.waitLogEvents(t, held, marker)
	ts.invokeOK(t, held, `{"after":"healing"}`)
}

// JetStream fails writes that make a file larger than the process may
// write (RLIMIT_FSIZE lowered on the running server by prlimit): a write
// error that is not a full disk. The node refuses writes with 503
// "storage is unavailable" and heals once the limit is lifted.
func TestWriteErrorHeals(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit not installed")
	}
	ts := startServer(t)
	ctx := context.Background()
	client := ts.Lambda()
	b := ts.startBystander(t)
	kept := "kept-" + strings.ToLower(rand.Text()[:8])
	ts.createPy(t, kept, "echo")

	pid := strconv.Itoa(ts.Pid())
	if out, err := exec.Command("prlimit", "--pid", pid, "--fsize=65536:unlimited").CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v: %s", err, out)
	}
	lifted := false
	lift := func() {
		if !lifted {
			lifted = true
			if out, err := exec.Command("prlimit", "--pid", pid, "--fsize=unlimited:unlimited").CombinedOutput(); err != nil {
				t.Fatalf("prlimit: %v: %s", err, out)
			}
		}
	}
	defer lift()
	// The code store's block file grows past the limit with this upload.
	_, err := client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("failed-" + kept), Runtime: types.RuntimePython312, Handler: aws.String("app.echo"),
		Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: bigZip(t, 256<<10)}})
	requireStorageRefused(t, "an upload while writes fail", err, "unavailable")
	_, err = client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(kept), Description: aws.String("x")})
	if err != nil {
		requireStorageRefused(t, "UpdateFunctionConfiguration while writes fail", err, "unavailable")
	}
	if _, err := client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(kept)}); err != nil {
		t.Errorf("GetFunction while writes fail: %v", err)
	}

	lift()
	ts.waitWritable(t, kept)
	b.finish(t)
	if !strings.Contains(ts.Output(), "Critical write error") {
		t.Errorf("JetStream met no write error; the test did not test healing")
	}
	ts.requireEveryWrite(t)
	ts.invokeOK(t, kept, `{"after":"healing"}`)
}

// The server starts on a small data disk, and refuses to start on one
// below the minimum, saying how much it needs.
func TestSmallDisk(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withDataDir(smallDataDisk(t, 256)), withArgs("--tmp-dir", t.TempDir()))
	ts.createPy(t, "small-disk", "echo")
	ts.invokeOK(t, "small-disk", `{}`)
	ts.Stop()

	tooSmall := smallDataDisk(t, 128)
	_, stderr, code := runLamina(t, serverEnv(serverConfig{}), "server", "--listen", "127.0.0.1:0", "--url-listen", "127.0.0.1:0", "--data", tooSmall)
	if code == 0 || !strings.Contains(stderr, "needs at least 96 MB") || len(lines(stderr)) == 0 {
		t.Fatalf("server on a 128 MB disk: exit %d, stderr:\n%s\nwant a refusal saying what it needs", code, stderr)
	}
	if last := lines(stderr)[len(lines(stderr))-1]; !strings.HasPrefix(last, "lamina: not enough disk for the store") {
		t.Errorf("the refusal is not one line that says what is wrong: %q", last)
	}
}
