package e2e

// Tests of the namespace sandbox (issue 4) through the API: memory limits
// and Max Memory Used, the network, the file system and identity a function
// sees, process and file limits, forbidden system calls, and teardown. Each
// test function attacks, and the attack must fail while the platform keeps
// serving.
//
// They need root (the namespace sandbox does) and skip without it.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// sandboxUIDBase is the first host uid of the ranges sandboxes map their
// users to (2^20).
const sandboxUIDBase = 1 << 20

// sandboxPy is the code of the sandbox tests' functions (app.py).
const sandboxPy = `import ctypes
import errno
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def _errno(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__


def _attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return _errno(e)


def touch(event, context):
    # Holds event["mb"] MB, every page written, then frees it.
    chunks = [b"x" * (1 << 20) for _ in range(event["mb"])]
    n = len(chunks)
    del chunks
    return {"mb": n}


def _write(path, data="x"):
    with open(path, "w") as f:
        f.write(data)


def _tree(top, stop):
    """Every path under top, not descending into stop."""
    found = []
    for path, dirs, files in os.walk(top):
        found.append(path)
        if path == stop:
            dirs[:] = []
        else:
            found.extend(os.path.join(path, f) for f in files)
    return found


def identity(event, context):
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    processes = {}
    for p in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open("/proc/%d/cmdline" % p, "rb") as f:
                processes[str(p)] = f.read().replace(b"\0", b" ").decode().strip()
        except OSError as e:
            processes[str(p)] = "unreadable: " + _errno(e)
    tmp = os.statvfs("/tmp")
    return {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(),
        "groups": os.getgroups(),
        "status": {k: status.get(k) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")},
        "writes": {
            "/var/task": _attempt(lambda: _write("/var/task/intruder")),
            "/var/runtime": _attempt(lambda: _write("/var/runtime/intruder")),
            "/opt": _attempt(lambda: _write("/opt/intruder")),
            "/": _attempt(lambda: _write("/intruder")),
            "/etc": _attempt(lambda: _write("/etc/passwd")),
            "/usr": _attempt(lambda: _write("/usr/intruder")),
            "/tmp": _attempt(lambda: _write("/tmp/probe")),
        },
        "taskReadOnly": bool(os.statvfs("/var/task").f_flag & os.ST_RDONLY),
        "usrNoSuid": bool(os.statvfs("/usr").f_flag & os.ST_NOSUID),
        "task": sorted(os.listdir("/var/task")),
        "exists": {p: os.path.lexists(p) for p in event["paths"]},
        "prefix": sys.prefix,
        "rootTree": _tree("/root", sys.prefix),
        "etc": sorted(os.listdir("/etc")),
        "processes": processes,
        "signalServer": _attempt(lambda: os.kill(event["serverPid"], 0)),
        "tmpBytes": tmp.f_bavail * tmp.f_frsize,
    }


def tmp(event, context):
    before = sorted(os.listdir("/tmp"))
    if event.get("write"):
        _write(os.path.join("/tmp", event["write"]), "secret")
    return {"before": before}


def _connect(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, port))
        return "connected"
    except OSError as e:
        return _errno(e)
    finally:
        s.close()


def net(event, context):
    api = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    out = {"runtimeApi": api, "interfaces": sorted(name for _, name in socket.if_nameindex())}
    if event.get("victim"):
        # Try to answer another environment's invocation.
        url = "http://%s/2018-06-01/runtime/invocation/%s/response" % (api, event["victim"])
        req = urllib.request.Request(url, data=b'{"hijacked": true}', method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                out["hijack"] = r.status
        except urllib.error.HTTPError as e:
            out["hijack"] = e.code
        except OSError as e:
            out["hijack"] = repr(e)
    out["targets"] = {t: _connect(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in event["targets"]}
    open_ports = []
    for port in range(1, 65536):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect(("127.0.0.1", port))
            # A socket whose ephemeral port is the one it connects to
            # connects to itself (TCP simultaneous open): no listener.
            if s.getsockname() != s.getpeername():
                open_ports.append(port)
        except OSError:
            pass
        finally:
            s.close()
    out["openPorts"] = open_ports
    return out


def victim(event, context):
    time.sleep(event.get("seconds", 2))
    return {"from": "victim"}


def limits(event, context):
    out = {"nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE))}
    files = []
    try:
        while len(files) < 5000:
            files.append(open("/dev/null"))
    except OSError as e:
        out["filesError"] = _errno(e)
    out["files"] = len(files)
    for f in files:
        f.close()

    # A thread bomb.
    stop = threading.Event()
    threads = []
    try:
        while len(threads) < 5000:
            th = threading.Thread(target=stop.wait)
            th.start()
            threads.append(th)
    except RuntimeError as e:
        out["threadsError"] = str(e)
    out["threads"] = len(threads)
    stop.set()
    for th in threads:
        th.join()

    # A fork bomb (of small processes, so that memory is not the limit).
    kids = []
    try:
        while len(kids) < 5000:
            kids.append(os.posix_spawn("/bin/sleep", ["sleep", "60"], {}))
    except OSError as e:
        out["processesError"] = _errno(e)
    out["processes"] = len(kids)
    for k in kids:
        os.kill(k, 9)
    for k in kids:
        os.waitpid(k, 0)
    return out


def fill(event, context):
    # Fills /tmp until it is full, then frees it.
    chunk = b"x" * (1 << 20)
    written, err = 0, None
    fd = os.open("/tmp/fill", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while written < (4 << 30):
            written += os.write(fd, chunk)
    except OSError as e:
        err = _errno(e)
    finally:
        os.close(fd)
        os.remove("/tmp/fill")
    return {"writtenMB": written / (1 << 20), "error": err}


def syscalls(event, context):
    libc = ctypes.CDLL(None, use_errno=True)

    def call(fn, *args):
        ctypes.set_errno(0)
        if fn(*args) == 0:
            return "ok"
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

    os.makedirs("/tmp/mnt", exist_ok=True)
    CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID = 0x00020000, 0x10000000, 0x40000000, 0x20000000
    PTRACE_ATTACH = 16
    SYS_init_module = 175  # x86-64
    return {
        "mount": call(libc.mount, b"none", b"/tmp/mnt", b"tmpfs", ctypes.c_ulong(0), None),
        "bind mount": call(libc.mount, b"/var/task", b"/tmp/mnt", None, ctypes.c_ulong(0x1000), None),
        "umount": call(libc.umount2, b"/tmp", 0),
        "unshare user": call(libc.unshare, CLONE_NEWUSER),
        "unshare mount": call(libc.unshare, CLONE_NEWNS),
        "unshare net": call(libc.unshare, CLONE_NEWNET),
        "unshare pid": call(libc.unshare, CLONE_NEWPID),
        "chroot": call(libc.chroot, b"/tmp"),
        "ptrace init": call(libc.ptrace, ctypes.c_long(PTRACE_ATTACH), ctypes.c_long(1), None, None),
        "init_module": call(libc.syscall, ctypes.c_long(SYS_init_module), None, ctypes.c_ulong(0), b""),
        "setuid 0": _attempt(lambda: os.setuid(0)),
    }


def background(event, context):
    # A process that outlives the invocation.
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", event["marker"]],
                         start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"pid": p.pid}


def hello(event, context):
    return {"hello": event.get("name", "world")}
`

// requireSandboxHost skips the test where the namespace sandbox cannot run.
func requireSandboxHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the namespace sandbox needs root: run the e2e tests as root to test it")
	}
	_, v1 := os.Stat("/sys/fs/cgroup/memory/cgroup.procs")
	_, v2 := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	if v1 != nil && v2 != nil {
		t.Skip("the namespace sandbox needs the cgroup memory controller (v1 or v2), which this host lacks")
	}
}

// createSandboxPy creates a python3.12 function running sandboxPy's handler.
func (ts *testServer) createSandboxPy(t *testing.T, name, fn string, mods ...func(*lambda.CreateFunctionInput)) {
	t.Helper()
	ts.createFunction(t, name, zipFiles(t, map[string]string{"app.py": sandboxPy}), append([]func(*lambda.CreateFunctionInput){
		func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app." + fn) },
	}, mods...)...)
}

// withMemorySize sets a function's MemorySize in MB.
func withMemorySize(mb int32) func(*lambda.CreateFunctionInput) {
	return func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(mb) }
}

// maxMemoryUsedMB is a REPORT's Max Memory Used in MB.
func maxMemoryUsedMB(t *testing.T, r invokeResult) float64 {
	t.Helper()
	return r.report(t).ms(t, "Max Memory Used")
}

// TestSandboxMemory: exceeding MemorySize kills the runtime and is reported
// as Runtime.OutOfMemory; Max Memory Used is each invocation's own peak.
func TestSandboxMemory(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	ts := startServer(t)

	t.Run("out of memory", func(t *testing.T) {
		t.Parallel()
		ts.createSandboxPy(t, "oom", "touch", withMemorySize(128), withTimeout(30))
		r := ts.invoke(t, "oom", `{"mb": 400}`)
		e := r.functionError(t, "Runtime.OutOfMemory")
		if msg := str(t, e, "errorMessage"); !strings.Contains(msg, "signal: killed") || !strings.Contains(msg, r.RequestID) {
			t.Errorf("errorMessage = %q, want the request ID and \"signal: killed\"", msg)
		}
		rep := r.report(t)
		if rep.Fields["Status"] != "error" || rep.Fields["Error Type"] != "Runtime.OutOfMemory" {
			t.Errorf("REPORT lacks Status: error and Error Type: Runtime.OutOfMemory: %q", rep.Line)
		}
		if rep.Fields["Memory Size"] != "128 MB" {
			t.Errorf("REPORT Memory Size = %q, want 128 MB", rep.Fields["Memory Size"])
		}
		if used := rep.ms(t, "Max Memory Used"); used < 120 || used > 129 {
			t.Errorf("Max Memory Used = %v MB for a function killed at its 128 MB limit, want about 128: %q", used, rep.Line)
		}
		// The killed environment is not reused: the next call starts a new one.
		next := ts.invokeOK(t, "oom", `{"mb": 1}`)
		if !next.cold(t) {
			t.Errorf("the call after an out-of-memory kill was not a cold start:\n%s", next.Log)
		}
	})

	t.Run("Max Memory Used is per invocation", func(t *testing.T) {
		t.Parallel()
		ts.createSandboxPy(t, "peak", "touch", withMemorySize(512), withTimeout(30))
		big := ts.invokeOK(t, "peak", `{"mb": 100}`)
		small := ts.invokeOK(t, "peak", `{"mb": 1}`)
		if small.cold(t) {
			t.Fatalf("the second call was a cold start; the test needs the same environment:\n%s", small.Log)
		}
		bigUsed, smallUsed := maxMemoryUsedMB(t, big), maxMemoryUsedMB(t, small)
		if bigUsed < 100 || bigUsed > 512 {
			t.Errorf("Max Memory Used = %v MB for a call that held 100 MB, want at least 100", bigUsed)
		}
		if smallUsed >= 100 || smallUsed >= bigUsed {
			t.Errorf("Max Memory Used = %v MB for a small call after one of %v MB in the same environment: the peak was not reset", smallUsed, bigUsed)
		}
		if smallUsed < 1 {
			t.Errorf("Max Memory Used = %v MB: nothing measured", smallUsed)
		}
	})
}

// TestSandboxNetwork: a function reaches its own Runtime API at
// 127.0.0.1:9001 and none of Lamina's: not the API, not the URL listener,
// not NATS, not another environment's Runtime API; the host's addresses are
// refused by the function network's policy (network_test.go tests the rest
// of it).
func TestSandboxNetwork(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	natsPort := freePort(t)
	ts := startServer(t, withArgs("--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort)))
	ts.createSandboxPy(t, "attacker", "net", withTimeout(60))
	ts.createSandboxPy(t, "victim", "victim", withTimeout(30))
	ts.createSandboxPy(t, "bystander", "hello")
	ts.createFunction(t, "records", zipFiles(t, map[string]string{"app.py": asyncPy}), func(in *lambda.CreateFunctionInput) {
		in.Handler = aws.String("app.record")
	})
	ts.putEventInvokeConfig(t, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String("victim"), DestinationConfig: destinationConfig(functionARN("records"), ""),
	})

	_, apiPort, _ := net.SplitHostPort(ts.Addr())
	_, urlPort, _ := net.SplitHostPort(ts.urlAddr)
	targets := []string{
		ts.Addr(), ts.urlAddr, fmt.Sprintf("127.0.0.1:%d", natsPort),
		"127.0.0.1:9001", // its own Runtime API
		"127.0.0.1:9002", // its own AWS endpoint
	}
	// The host's own addresses.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var hostTargets []string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			hostTargets = append(hostTargets, net.JoinHostPort(ipn.IP.String(), apiPort), net.JoinHostPort(ipn.IP.String(), urlPort))
		}
	}
	targets = append(targets, hostTargets...)

	// Another environment runs an invocation meanwhile; the attacker tries
	// to answer it.
	victimID := ts.invokeEvent(t, "victim", `{"seconds": 3}`)
	r := ts.invokeOK(t, "attacker", jsonOf(t, map[string]any{"targets": targets, "victim": victimID}))
	out := r.object(t)

	if got := out["runtimeApi"]; got != "127.0.0.1:9001" {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %v, want 127.0.0.1:9001", got)
	}
	if got := fmt.Sprint(out["interfaces"]); got != "[eth0 lo]" {
		t.Errorf("network interfaces = %v, want lo and the function network's eth0", got)
	}
	results := jsonField(t, out, "targets")
	for _, target := range targets {
		got := results[target]
		switch {
		case target == "127.0.0.1:9001" || target == "127.0.0.1:9002":
			if got != "connected" {
				t.Errorf("connect to its own Runtime API or AWS endpoint %s: %v, want connected", target, got)
			}
		case got == "connected":
			t.Errorf("the function connected to %s", target)
		case got != "ECONNREFUSED":
			// Nothing listens on the sandbox's loopback; the function
			// network's policy refuses the host's addresses.
			t.Errorf("connect to %s: %v, want ECONNREFUSED", target, got)
		}
	}
	if ports := fmt.Sprint(out["openPorts"]); ports != "[9001 9002]" {
		t.Errorf("open TCP ports on the sandbox's 127.0.0.1: %s, want only [9001 9002] (the Runtime API and the AWS endpoint)", ports)
	}
	if got := out["hijack"]; got != float64(http.StatusBadRequest) {
		t.Errorf("posting a response for another environment's invocation: %v, want 400 from its own Runtime API", got)
	}
	// The victim's invocation ended with its own result.
	rec := ts.waitRecordFor(t, "records", victimID)
	if got, want := rec["responsePayload"], map[string]any{"from": "victim"}; !reflect.DeepEqual(got, want) {
		t.Errorf("the victim's result is %v, want %v", got, want)
	}
	// The platform still serves.
	ts.invokeOK(t, "bystander", `{}`)
}

// TestSandboxIsolation: the identity and file system a function gets.
func TestSandboxIsolation(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	ts := startServer(t)
	ts.createSandboxPy(t, "probe", "identity")
	ts.createSandboxPy(t, "probe-1g", "identity", func(in *lambda.CreateFunctionInput) {
		in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(1024)}
	})
	ts.createSandboxPy(t, "tmp-a", "tmp")
	ts.createSandboxPy(t, "tmp-b", "tmp")
	home, _ := os.UserHomeDir()
	// /root shows nothing but, when the interpreter is pyenv's, the
	// interpreter's own installation (see rootTree below).
	hidden := []string{"/root/.ssh", "/root/.bash_history", "/root/.pyenv/shims", "/root/.pyenv/versions/2.7.18", "/home", "/etc/shadow", "/etc/sudoers", "/var/lib", "/sys", "/run", "/boot", "/srv", "/mnt",
		ts.DataDir(), filepath.Join(ts.DataDir(), "cache"), filepath.Join(ts.DataDir(), "credentials"), filepath.Join(home, ".lamina"),
		"/dev/mem", "/dev/kmsg", "/dev/sda", "/dev/vda", "/proc/kcore"}
	event := func() string { return jsonOf(t, map[string]any{"paths": hidden, "serverPid": ts.Pid()}) }

	t.Run("identity, privileges, file system", func(t *testing.T) {
		t.Parallel()
		out := ts.invokeOK(t, "probe", event()).object(t)
		for key, want := range map[string]float64{"uid": 993, "euid": 993, "gid": 990, "egid": 990} {
			if got := num(t, out, key); got != want {
				t.Errorf("%s = %v, want %v", key, got, want)
			}
		}
		wantStatus := map[string]any{"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
			"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}
		if got := jsonField(t, out, "status"); !reflect.DeepEqual(got, wantStatus) {
			t.Errorf("/proc/self/status: %v, want %v", got, wantStatus)
		}
		writes := jsonField(t, out, "writes")
		for path, got := range writes {
			if path == "/tmp" {
				if got != "ok" {
					t.Errorf("writing to /tmp: %v, want ok", got)
				}
			} else if got != "EROFS" && got != "EACCES" && got != "EPERM" {
				t.Errorf("writing to %s: %v, want EROFS or EACCES", path, got)
			}
		}
		if out["taskReadOnly"] != true {
			t.Error("/var/task is not mounted read-only")
		}
		if out["usrNoSuid"] != true {
			t.Error("/usr is not mounted nosuid: setuid programs there would work")
		}
		if got := fmt.Sprint(out["task"]); got != "[app.py]" {
			t.Errorf("/var/task holds %s, want only the function's app.py", got)
		}
		for path, exists := range jsonField(t, out, "exists") {
			if exists != false {
				t.Errorf("%s is visible in the sandbox", path)
			}
		}
		// Of the host's /root, at most the interpreter's installation prefix
		// (e.g. pyenv's /root/.pyenv/versions/3.12.1) and the directories
		// above it are there.
		prefix := str(t, out, "prefix")
		tree, _ := out["rootTree"].([]any)
		for _, p := range tree {
			if p := p.(string); p != prefix && !strings.HasPrefix(prefix, p+"/") {
				t.Errorf("%s is visible in the sandbox, which shows the interpreter's %s only", p, prefix)
			}
		}
		etc, _ := out["etc"].([]any)
		for _, f := range etc {
			if !slices.Contains([]string{"passwd", "group", "hosts", "resolv.conf", "nsswitch.conf", "localtime", "ld.so.cache", "ld.so.conf",
				"ssl", "pki", "ca-certificates", "alternatives"}, f.(string)) {
				t.Errorf("/etc has %q, which the minimal /etc should not hold (all: %v)", f, etc)
			}
		}
		procs := jsonField(t, out, "processes")
		if len(procs) > 3 {
			t.Errorf("/proc shows %d processes, want only the sandbox's own (init and runtime): %v", len(procs), procs)
		}
		for pid, cmd := range procs {
			if s := cmd.(string); strings.Contains(s, "server") || strings.Contains(s, "--listen") {
				t.Errorf("/proc shows a process of the host: %s %s", pid, s)
			}
		}
		if got := out["signalServer"]; got != "ESRCH" && got != "EPERM" {
			t.Errorf("signalling the server's pid %d from the sandbox: %v, want ESRCH", ts.Pid(), got)
		}
		if !ts.Running() {
			t.Fatal("the server died")
		}
	})

	t.Run("EphemeralStorage sizes /tmp", func(t *testing.T) {
		t.Parallel()
		for name, mb := range map[string]float64{"probe": 512, "probe-1g": 1024} {
			out := ts.invokeOK(t, name, event()).object(t)
			if got := num(t, out, "tmpBytes") / (1 << 20); got < mb || got >= mb+1 {
				t.Errorf("%s: /tmp has %v MB free, want %v MB", name, got, mb)
			}
		}
	})

	t.Run("private /tmp", func(t *testing.T) {
		t.Parallel()
		first := ts.invokeOK(t, "tmp-a", `{"write": "secret-a"}`).object(t)
		if got := fmt.Sprint(first["before"]); got != "[]" {
			t.Errorf("a new environment's /tmp holds %s, want nothing", got)
		}
		again := ts.invokeOK(t, "tmp-a", `{}`)
		if again.cold(t) {
			t.Errorf("the second call of tmp-a was a cold start")
		} else if got := fmt.Sprint(again.object(t)["before"]); got != "[secret-a]" {
			t.Errorf("the same environment's /tmp holds %s, want [secret-a]", got)
		}
		if got := fmt.Sprint(ts.invokeOK(t, "tmp-b", `{}`).object(t)["before"]); got != "[]" {
			t.Errorf("another function's /tmp holds %s, want nothing", got)
		}
		// A new environment of the same function starts empty.
		if _, err := ts.Lambda().UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("tmp-a"), Environment: &types.Environment{Variables: map[string]string{"GENERATION": "2"}},
		}); err != nil {
			t.Fatal(err)
		}
		fresh := ts.invokeOK(t, "tmp-a", `{}`)
		if !fresh.cold(t) {
			t.Errorf("the call after a configuration change was not a cold start")
		}
		if got := fmt.Sprint(fresh.object(t)["before"]); got != "[]" {
			t.Errorf("a new environment of tmp-a sees %s in /tmp, want nothing", got)
		}
	})
}

// TestSandboxLimits: processes, threads and open files are limited; the
// function survives a fork bomb; mount, unshare and friends fail.
func TestSandboxLimits(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	ts := startServer(t)
	ts.createSandboxPy(t, "bomb", "limits", withMemorySize(512), withTimeout(60))
	ts.createSandboxPy(t, "syscalls", "syscalls")
	ts.createSandboxPy(t, "filler", "fill", withMemorySize(1024), withTimeout(60))
	ts.createSandboxPy(t, "bystander", "hello")

	t.Run("processes, threads, files", func(t *testing.T) {
		t.Parallel()
		for i := range 2 { // the function still answers after a bomb
			out := ts.invokeOK(t, "bomb", `{}`).object(t)
			if got := fmt.Sprint(out["nofile"]); got != "[1024 1024]" {
				t.Errorf("RLIMIT_NOFILE = %s, want [1024 1024]", got)
			}
			if n := num(t, out, "files"); n >= 1024 || out["filesError"] != "EMFILE" {
				t.Errorf("opened %v files (then %v), want fewer than 1024 and EMFILE", n, out["filesError"])
			}
			if n := num(t, out, "threads"); n >= 1024 || n < 900 || out["threadsError"] == nil {
				t.Errorf("call %d: started %v threads (then %v), want the limit to stop it below 1024", i+1, n, out["threadsError"])
			}
			if n := num(t, out, "processes"); n >= 1024 || n < 900 || out["processesError"] != "EAGAIN" {
				t.Errorf("call %d: started %v processes (then %v), want EAGAIN below 1024", i+1, n, out["processesError"])
			}
		}
		ts.invokeOK(t, "bystander", `{}`)
	})

	t.Run("a full /tmp", func(t *testing.T) {
		t.Parallel()
		for i := range 2 { // the function still answers after filling /tmp
			out := ts.invokeOK(t, "filler", `{}`).object(t)
			if mb := num(t, out, "writtenMB"); out["error"] != "ENOSPC" || mb < 512 || mb >= 513 {
				t.Errorf("call %d: wrote %v MB to /tmp, then %v; want about 512 MB (EphemeralStorage) then ENOSPC", i+1, mb, out["error"])
			}
		}
	})

	t.Run("forbidden system calls", func(t *testing.T) {
		t.Parallel()
		out := ts.invokeOK(t, "syscalls", `{}`).object(t)
		for call, got := range out {
			if got != "EPERM" {
				t.Errorf("%s: %v, want EPERM", call, got)
			}
		}
		if len(out) < 10 {
			t.Errorf("only %d system calls tried: %v", len(out), out)
		}
		ts.invokeOK(t, "bystander", `{}`)
	})
}

// hostProcess is a process as the host sees it.
type hostProcess struct {
	PID     int
	UID     int
	PidNS   string // e.g. "pid:[4026532301]"
	Cmdline string
}

// hostProcesses lists the host's processes (those that vanish while being
// read are left out).
func hostProcesses(t *testing.T) []hostProcess {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []hostProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue
		}
		p := hostProcess{PID: pid, UID: -1}
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					p.UID, _ = strconv.Atoi(f[0])
				}
			}
		}
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		p.Cmdline = string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		p.PidNS, _ = os.Readlink(filepath.Join(dir, "ns", "pid"))
		out = append(out, p)
	}
	return out
}

// TestSandboxTeardown: a process a function leaves running outlives the
// invocation, but not its environment.
func TestSandboxTeardown(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	ts := startServer(t, withArgs("--idle-timeout", "4s")) // long enough to look at the environment on a busy machine
	ts.createSandboxPy(t, "leaver", "background")
	marker := fmt.Sprintf("lamina-e2e-leftover-%d", time.Now().UnixNano())
	ts.invokeOK(t, "leaver", jsonOf(t, map[string]any{"marker": marker}))

	find := func() []hostProcess {
		var found []hostProcess
		for _, p := range hostProcesses(t) {
			if strings.Contains(p.Cmdline, marker) {
				found = append(found, p)
			}
		}
		return found
	}
	// While the environment lives, its background process does, under a
	// host uid of the sandbox range.
	left := find()
	if len(left) != 1 {
		t.Fatalf("%d processes with the marker on the host after the invocation, want 1", len(left))
	}
	bg := left[0]
	if bg.UID < sandboxUIDBase {
		t.Errorf("the sandbox's process runs as host uid %d, want one of the sandbox range (≥ %d)", bg.UID, sandboxUIDBase)
	}
	if bg.PidNS == "" {
		t.Fatal("cannot read the pid namespace of the sandbox's process")
	}
	var ns []hostProcess
	for _, p := range hostProcesses(t) {
		if p.PidNS == bg.PidNS {
			ns = append(ns, p)
		}
	}
	t.Logf("the environment's processes: %+v", ns)

	// The environment expires after 1 s idle; then nothing of it remains.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var remaining []hostProcess
		for _, p := range hostProcesses(t) {
			if p.PidNS == bg.PidNS || strings.Contains(p.Cmdline, marker) {
				remaining = append(remaining, p)
			}
		}
		if len(remaining) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the environment went idle (idle timeout 1 s) these of its processes remain: %+v", remaining)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Nothing with the sandbox's host uid escaped into another namespace.
	for _, p := range hostProcesses(t) {
		if p.UID == bg.UID {
			t.Logf("process %d with the same host uid %d (pid namespace %s, a sandbox of another server?): %q", p.PID, p.UID, p.PidNS, p.Cmdline)
		}
	}
	// The function still works, in a new environment.
	r := ts.invokeOK(t, "leaver", jsonOf(t, map[string]any{"marker": marker + "-2"}))
	if !r.cold(t) {
		t.Errorf("the call after the idle timeout was not a cold start")
	}
}

// TestSandboxNodeCgroupSweptAfterCrash: a server killed with its sandboxes
// leaves its node cgroup behind; the next start removes it, and leaves the
// node of another live server alone.
func TestSandboxNodeCgroupSweptAfterCrash(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	other := startServer(t)
	other.createSandboxPy(t, "hello", "hello")
	other.invokeOK(t, "hello", `{}`)
	ts := startServer(t)
	ts.createSandboxPy(t, "hello", "hello")
	ts.invokeOK(t, "hello", `{}`)
	crashed := ts.nodeCgroup(t)
	ts.Kill()
	if !fileExists(crashed) {
		t.Fatalf("the node cgroup %s is gone right after the crash: nothing left to sweep, the test proves nothing", crashed)
	}
	ts.Restart()
	if fileExists(crashed) {
		t.Errorf("the crashed server's node cgroup %s remains after the next start", crashed)
	}
	if now := ts.nodeCgroup(t); now == crashed || !fileExists(now) {
		t.Errorf("the restarted server's node cgroup is %s (before the crash: %s)", now, crashed)
	}
	if !fileExists(other.nodeCgroup(t)) {
		t.Errorf("another live server's node cgroup %s was swept", other.nodeCgroup(t))
	}
	if r := other.invokeOK(t, "hello", `{}`); r.cold(t) {
		t.Error("another live server's environment was lost")
	}
	ts.invokeOK(t, "hello", `{}`)
}
