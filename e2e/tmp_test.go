package e2e

// Tests of /tmp in the namespace sandbox (issue 11): a disk of its own of
// EphemeralStorage size, not charged to the function's memory, ENOSPC past
// its size, private to its environment and gone with it.

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lamina-project/lamina/internal/sandbox/hosttest"
)

// tmpPy is the code of the /tmp tests' function (app.py).
const tmpPy = `import errno
import os
import zlib


def write(event, context):
    # Writes event["mb"] MB to /tmp/data and reads it back, comparing
    # checksums; then, with event["fill"], writes on until /tmp is full.
    block = os.urandom(1 << 20)
    crc = 0
    with open("/tmp/data", "wb") as f:
        for i in range(event["mb"]):
            chunk = i.to_bytes(4, "little") + block[4:]
            f.write(chunk)
            crc = zlib.crc32(chunk, crc)
    back = 0
    with open("/tmp/data", "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            back = zlib.crc32(chunk, back)
    out = {"written": crc, "readBack": back}
    if event.get("fill"):
        written, fd = 0, os.open("/tmp/fill", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                written += os.write(fd, block)
        except OSError as e:
            out["fillError"] = errno.errorcode.get(e.errno, str(e.errno))
        finally:
            os.close(fd)
        out["totalMB"] = (os.path.getsize("/tmp/data") + written) / (1 << 20)
        os.remove("/tmp/fill")
    return out
`

// waitTmpDisks waits until done says the server's /tmp disks are as wanted.
func waitTmpDisks(t *testing.T, dataDir, what string, done func(all, mounted []string) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all, mounted := hosttest.LoopDevices(t, dataDir)
		if done(all, mounted) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, %s: loop devices %v, mounted %v", what, all, mounted)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSandboxTmpNotMemory: a 128 MB function writes 400 MB to /tmp and
// reads it back, then fills /tmp: ENOSPC at its size, not
// Runtime.OutOfMemory; the environment survives and serves again.
func TestSandboxTmpNotMemory(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	ts := startServer(t)
	ts.createFunction(t, "writer", zipFiles(t, map[string]string{"app.py": tmpPy}), withMemorySize(128), withTimeout(120),
		func(in *lambda.CreateFunctionInput) {
			in.Handler = aws.String("app.write")
			in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(512)}
		})

	r := ts.invokeOK(t, "writer", `{"mb": 400}`)
	out := r.object(t)
	if out["written"] != out["readBack"] {
		t.Errorf("400 MB read back from /tmp with checksum %v, written with %v", out["readBack"], out["written"])
	}
	if used := maxMemoryUsedMB(t, r); used > 128 {
		t.Errorf("Max Memory Used = %v MB, above the 128 MB limit", used)
	}

	for i := range 2 { // the environment still serves after a full /tmp
		r := ts.invokeOK(t, "writer", `{"mb": 1, "fill": true}`)
		if r.cold(t) {
			t.Errorf("call %d after writing 400 MB was a cold start: the environment did not survive", i+2)
		}
		out := r.object(t)
		if mb := num(t, out, "totalMB"); out["fillError"] != "ENOSPC" || mb < 512 || mb >= 513 {
			t.Errorf("call %d: %v MB in /tmp, then %v; want 512 MB (EphemeralStorage) then ENOSPC", i+2, mb, out["fillError"])
		}
	}
}

// TestSandboxTmpGoesWithEnvironment: an environment's /tmp is a loop
// device mounted while it lives; when it ends (idle timeout, server stop,
// server crash) neither device nor image remains.
func TestSandboxTmpGoesWithEnvironment(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	ts := startServer(t, withArgs("--idle-timeout", "4s")) // long enough to look at the environment on a busy machine
	ts.createSandboxPy(t, "tmp", "tmp")
	oneMounted := func(all, mounted []string) bool { return len(mounted) == 1 }
	noneMounted := func(all, mounted []string) bool { return len(mounted) == 0 }
	none := func(all, mounted []string) bool { return len(all) == 0 }

	ts.invokeOK(t, "tmp", `{"write": "a"}`)
	if _, mounted := hosttest.LoopDevices(t, ts.DataDir()); len(mounted) != 1 {
		t.Errorf("mounted /tmp disks of the server with one environment: %v, want one", mounted)
	}
	// The idle timeout ends the environment; spare disks (unmounted) stay.
	waitTmpDisks(t, ts.DataDir(), "the environment expired", noneMounted)
	if images, _ := os.ReadDir(filepath.Join(ts.DataDir(), "sandboxes", "images")); len(images) != 0 {
		t.Errorf("the images directory holds %d named files", len(images))
	}
	// A new environment starts empty.
	if got := ts.invokeOK(t, "tmp", `{}`).object(t)["before"]; len(got.([]any)) != 0 {
		t.Errorf("a new environment's /tmp holds %v, want nothing", got)
	}

	// A clean stop leaves nothing.
	ts.Stop()
	waitTmpDisks(t, ts.DataDir(), "the server stopped", none)

	// Nor does a crash, with an environment alive.
	ts.Restart()
	ts.invokeOK(t, "tmp", `{"write": "b"}`)
	waitTmpDisks(t, ts.DataDir(), "an environment runs", oneMounted)
	ts.Kill()
	waitTmpDisks(t, ts.DataDir(), "the server was killed", none)
}
