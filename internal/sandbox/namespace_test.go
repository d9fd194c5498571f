//go:build linux && cgo

package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lamina-project/lamina/internal/sandbox/hosttest"
)

// python is the interpreter the probes run on inside sandboxes.
const python = "/usr/bin/python3"

func newProvider(t testing.TB) *NamespaceProvider {
	t.Helper()
	return newProviderWith(t, NamespaceOptions{MemoryBudgetMB: 4096})
}

// newProviderWith makes a provider with opts (in a temporary state
// directory) and closes it at the end of the test, after the sandboxes.
func newProviderWith(t testing.TB, opts NamespaceOptions) *NamespaceProvider {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("namespace sandboxes need root")
	}
	opts.StateDir = t.TempDir()
	p, err := NewNamespaceProvider(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing the provider: %v", err)
		}
	})
	return p
}

// run creates a sandbox with the given task files, runs python with script
// in it and returns its output, how it exited, and the sandbox (destroyed at
// the end of the test).
func run(t *testing.T, p *NamespaceProvider, memoryMB int, script string) (string, Sandbox) {
	t.Helper()
	return runSpec(t, p, Spec{MemoryMB: memoryMB, EphemeralMB: 16}, script)
}

// runSpec is run with a spec of the test's own (ID and TaskDir are set).
func runSpec(t *testing.T, p *NamespaceProvider, spec Spec, script string) (string, Sandbox) {
	t.Helper()
	spec.ID, spec.TaskDir = fmt.Sprintf("test-%d", time.Now().UnixNano()), taskDir(t, "probe.py", script)
	sb := create(t, p, spec)
	out := runToExit(t, sb, Process{Argv: []string{python, "-u", "/var/task/probe.py"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/var/task"})
	return out, sb
}

// probe runs a Python script that prints one JSON object and decodes it.
func probe(t *testing.T, p *NamespaceProvider, script string) map[string]any {
	t.Helper()
	out, sb := run(t, p, 128, "import json, os, sys\nr = {}\n"+script+"\nprint(json.dumps(r))\n")
	if err := sb.ExitError(); err != nil {
		t.Fatalf("probe failed: %v\n%s", err, out)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("probe output: %v\n%s", err, out)
	}
	return r
}

func TestNamespaceSandboxIdentityAndFileSystem(t *testing.T) {
	p := newProvider(t)
	r := probe(t, p, `
r["ids"] = [os.getuid(), os.geteuid(), os.getgid()]
st = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
r["caps"] = [st[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")]
r["nnp"] = st["NoNewPrivs"].strip()
r["seccomp"] = st["Seccomp"].strip()
r["pids"] = sorted(p for p in os.listdir("/proc") if p.isdigit())
r["root"] = sorted(os.listdir("/"))
r["etc"] = sorted(os.listdir("/etc"))
r["dev"] = sorted(os.listdir("/dev"))
r["hostname"] = os.uname().nodename
r["uid_map"] = open("/proc/self/uid_map").read().split()
for path in ["/var/task/x", "/usr/x", "/etc/x", "/x"]:
    try:
        open(path, "w")
        r[path] = "written"
    except OSError as e:
        r[path] = e.errno
open("/tmp/x", "w").write("ok")
r["tmp"] = open("/tmp/x").read()
r["passwd"] = open("/etc/passwd").read()
`)
	want := map[string]any{
		"ids": []any{993.0, 993.0, 990.0}, "nnp": "1", "seccomp": "2", "pids": []any{"1", "2"},
		"hostname": "lamina", "tmp": "ok",
		"/var/task/x": 30.0, "/usr/x": 30.0, "/etc/x": 30.0, "/x": 30.0, // EROFS
	}
	for k, v := range want {
		if fmt.Sprint(r[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, r[k], v)
		}
	}
	for _, c := range r["caps"].([]any) {
		if c != "0000000000000000" {
			t.Errorf("capabilities = %v, want all empty", r["caps"])
			break
		}
	}
	for _, entry := range r["root"].([]any) {
		switch entry {
		case "bin", "dev", "etc", "lib", "lib64", "opt", "proc", "sbin", "tmp", "usr", "var", "lib32", "libx32":
		default:
			t.Errorf("unexpected /%s in the sandbox's root", entry)
		}
	}
	for _, entry := range r["etc"].([]any) {
		switch entry {
		case "passwd", "group", "hosts", "resolv.conf", "nsswitch.conf", "localtime", "ld.so.cache", "ld.so.conf",
			"ssl", "pki", "ca-certificates", "alternatives":
		default:
			t.Errorf("unexpected /etc/%s in the sandbox", entry)
		}
	}
	if fmt.Sprint(r["dev"]) != "[fd full null random stderr stdin stdout urandom zero]" {
		t.Errorf("/dev = %v", r["dev"])
	}
	uidMap := r["uid_map"].([]any)
	if uidMap[0] != "0" || uidMap[2] != "65536" {
		t.Errorf("uid_map = %v", uidMap)
	}
	if base, _ := strconv.Atoi(uidMap[1].(string)); base < uidRangeBase {
		t.Errorf("root maps to host uid %d, want an unprivileged range from %d", base, uidRangeBase)
	}
	if !strings.Contains(r["passwd"].(string), "sbx_user1051:x:993:990") {
		t.Errorf("/etc/passwd lacks the sandbox user:\n%s", r["passwd"])
	}
}

func TestNamespaceSandboxSeccomp(t *testing.T) {
	p := newProvider(t)
	r := probe(t, p, `
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
def call(f, *args):
    ctypes.set_errno(0)
    rc = f(*args)
    return errno.errorcode.get(ctypes.get_errno(), "0") if rc == -1 else "ok"
r["mount"] = call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None)
r["unshare"] = call(libc.unshare, 0x10000000)
r["clone_newuser"] = call(libc.syscall, 56, 0x10000000 | 17, 0, 0, 0, 0)
r["clone3"] = call(libc.syscall, 435, 0, 0)
r["bpf"] = call(libc.syscall, 321, 0, 0, 0)
r["keyctl"] = call(libc.syscall, 250, 0, 0, 0, 0, 0)
r["reboot"] = call(libc.syscall, 169, 0, 0, 0, 0)
r["ptrace_init"] = call(libc.syscall, 101, 16, 1, 0, 0)
import subprocess, threading
r["fork"] = subprocess.run(["/bin/true"]).returncode
t = threading.Thread(target=lambda: None); t.start(); t.join()
r["thread"] = "ok"
`)
	want := map[string]string{"mount": "EPERM", "unshare": "EPERM", "clone_newuser": "EPERM", "clone3": "ENOSYS",
		"bpf": "EPERM", "keyctl": "EPERM", "reboot": "EPERM", "ptrace_init": "EPERM", "fork": "0", "thread": "ok"}
	for k, v := range want {
		if fmt.Sprint(r[k]) != v {
			t.Errorf("%s: %v, want %v", k, r[k], v)
		}
	}
}

func TestNamespaceSandboxNetwork(t *testing.T) {
	p := newProvider(t)
	// A host listener the sandbox must not reach.
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	hostPort := host.(*net.TCPListener).Addr().(*net.TCPAddr).Port

	script := fmt.Sprintf(`
import socket, urllib.request, json
r = {}
s = socket.socket(); s.settimeout(2)
r["host"] = s.connect_ex(("127.0.0.1", %d))
r["api"] = urllib.request.urlopen("http://127.0.0.1:9001/hello", timeout=5).read().decode()
r["ifaces"] = sorted(n for _, n in socket.if_nameindex())
print(json.dumps(r))
`, hostPort)
	sb := create(t, p, Spec{ID: "net-test", TaskDir: taskDir(t, "probe.py", script), MemoryMB: 128})
	ln, addr := sb.RuntimeAPI()
	if addr != "127.0.0.1:9001" {
		t.Errorf("runtime API address %s, want 127.0.0.1:9001", addr)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inside") }))
	// From the host, 127.0.0.1:9001 is not this sandbox's API.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:9001", time.Second); err == nil {
		c.Close()
		t.Log("note: something on the host listens on 127.0.0.1:9001 (not the sandbox)")
	}
	out := runToExit(t, sb, Process{Argv: []string{python, "/var/task/probe.py"}, Dir: "/var/task"})
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r["api"] != "inside" {
		t.Errorf("runtime API from inside: %v", r["api"])
	}
	if r["host"] == 0.0 {
		t.Errorf("the sandbox reached a listener on the host's loopback")
	}
	if fmt.Sprint(r["ifaces"]) != "[lo]" {
		t.Errorf("interfaces: %v, want only lo", r["ifaces"])
	}
}

func TestNamespaceSandboxMemoryLimit(t *testing.T) {
	p := newProvider(t)
	out, sb := run(t, p, 128, "x = bytearray(400 << 20)\nprint('survived')\n")
	if strings.Contains(out, "survived") {
		t.Fatal("allocating 400 MB with a 128 MB limit succeeded")
	}
	if !sb.OutOfMemory() {
		t.Error("OutOfMemory() = false after the memory limit killed the runtime")
	}
	if err := sb.ExitError(); err == nil || err.Error() != "signal: killed" {
		t.Errorf("exit: %v, want signal: killed", err)
	}
}

func TestNamespaceSandboxMemoryPeak(t *testing.T) {
	p := newProvider(t)
	_, sb := run(t, p, 256, "x = bytearray(100 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\n")
	if peak := sb.MemoryPeak(); peak < 100<<20 || peak > 256<<20 {
		t.Errorf("peak %d MB after touching 100 MB", peak>>20)
	}
}

func TestNamespaceSandboxProcessLimit(t *testing.T) {
	p := newProvider(t)
	r := probe(t, p, `
import threading
started, stop = 0, threading.Event()
threads = []
try:
    for i in range(2000):
        th = threading.Thread(target=stop.wait); th.start(); threads.append(th); started += 1
except RuntimeError:
    pass
stop.set()
r["threads"] = started
`)
	if n := r["threads"].(float64); n >= maxProcesses || n < 100 {
		t.Errorf("started %v threads; want fewer than %d (and more than a few)", n, maxProcesses)
	}
}

func TestNamespaceSandboxExecError(t *testing.T) {
	p := newProvider(t)
	sb, err := p.Create(context.Background(), Spec{ID: "exec-test", TaskDir: t.TempDir(), MemoryMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	_, w, _ := os.Pipe()
	defer w.Close()
	err = sb.Start(Process{Argv: []string{"/var/task/bootstrap"}, Dir: "/var/task", Output: w})
	if _, ok := err.(*ExecError); !ok {
		t.Fatalf("Start of a missing executable: %v (%T), want *ExecError", err, err)
	}
}

// resources counts what a sandbox could leak in this process and on the host.
type resources struct {
	processes, mounts, cgroups, fds, goroutines int
	loopDevices, spares, images                 int // of /tmp disks
	heap                                        uint64
}

// countResources counts what p and the sandboxes it made hold, those it
// keeps prepared included (settle first).
func countResources(t testing.TB, p *NamespaceProvider) resources {
	var r resources
	all, _ := hosttest.LoopDevices(t, p.disks.dir)
	r.loopDevices, r.spares = len(all), spares(p)
	images, _ := os.ReadDir(p.disks.dir)
	r.images = len(images)
	// Processes of sandboxes: children of this process (inits). What runs
	// inside a sandbox stays in its PID namespace and cgroups: were any of
	// it left, the sandbox's cgroups could not be removed and Destroy would
	// fail. (Other servers on this host may run sandboxes meanwhile, so
	// host-wide counts would not tell.)
	entries, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		status, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		fields := map[string]string{}
		for _, line := range strings.Split(string(status), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		if fields["PPid"] == self {
			r.processes++
		}
	}
	// Mounts on this host under the provider's directory: a sandbox's own
	// live in its mount namespace. (Other tests and servers on this host
	// mount and unmount meanwhile, so a host-wide count would not tell.)
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	r.mounts = strings.Count(string(mounts), " "+filepath.Dir(p.rootDir))
	for _, dir := range nodeDirs(p.node) {
		list, _ := os.ReadDir(dir)
		for _, e := range list {
			if e.IsDir() {
				r.cgroups++
			}
		}
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	r.fds = len(fds)
	r.goroutines = runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	r.heap = ms.HeapAlloc
	return r
}

// TestNamespaceSandboxTeardownLeaksNothing creates, uses and destroys
// sandboxes in a loop and checks that processes, mounts, cgroups, file
// descriptors, /tmp's loop devices and images, and memory come back to
// where they started. The soak run of the issue is the same test with
// LAMINA_SOAK=10000.
func TestNamespaceSandboxTeardownLeaksNothing(t *testing.T) {
	p := newDiskProvider(t)
	cycles := 100
	if n, err := strconv.Atoi(os.Getenv("LAMINA_SOAK")); err == nil {
		cycles = n
	}
	task := t.TempDir()
	cycle := func(i int) {
		sb, err := p.Create(context.Background(), Spec{ID: fmt.Sprintf("leak-%d", i), TaskDir: task, MemoryMB: 128, EphemeralMB: 16})
		if err != nil {
			t.Fatal(err)
		}
		r, w, _ := os.Pipe()
		if err := sb.Start(Process{Argv: []string{"/bin/sh", "-c", "sleep 30 & echo started"}, Dir: "/", Output: w}); err != nil {
			t.Fatal(err)
		}
		w.Close()
		io.ReadAll(r) // until the runtime has exited; its child sleeps on
		r.Close()
		if err := sb.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
	cycle(-1) // warm up: the spawner thread, pools
	settle(t, p)
	before := countResources(t, p)
	start := time.Now()
	for i := range cycles {
		cycle(i)
	}
	elapsed := time.Since(start)
	// Goroutines that served the sandboxes end shortly after Destroy.
	var after resources
	settle(t, p)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		after = countResources(t, p)
		if after.goroutines <= before.goroutines && after.processes <= before.processes && after.loopDevices <= after.spares ||
			time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d cycles in %v (%v each); before %+v after %+v", cycles, elapsed, elapsed/time.Duration(cycles), before, after)
	if after.processes > before.processes || after.mounts != before.mounts || after.cgroups != before.cgroups ||
		after.fds > before.fds || after.goroutines > before.goroutines || after.loopDevices > after.spares || after.images != 0 {
		t.Errorf("leak after %d cycles: before %+v, after %+v", cycles, before, after)
	}
	if after.heap > before.heap+8<<20 {
		t.Errorf("heap grew from %d to %d bytes over %d cycles", before.heap, after.heap, cycles)
	}
}

// addRefusingNode is a cgroup node whose sandboxes' cgroups refuse to take
// a process: a failure between the start of a sandbox's init and its setup.
type addRefusingNode struct{ cgroupNode }

func (n addRefusingNode) newSandbox(id string, memoryMB int) (sandboxCgroup, error) {
	cg, err := n.cgroupNode.newSandbox(id, memoryMB)
	if err != nil {
		return nil, err
	}
	return addRefusingCgroup{cg}, nil
}

type addRefusingCgroup struct{ sandboxCgroup }

func (addRefusingCgroup) add(int) error { return errors.New("injected: the cgroup refused the init") }

// TestNamespaceSandboxCreateFailingAfterStart: when putting the started
// init into its cgroup fails, preparing the sandbox (what Create does when
// no prepared one is ready) returns the error (its Destroy does not wait
// for an init nobody watches) and leaves no process, cgroup or file
// descriptor behind.
func TestNamespaceSandboxCreateFailingAfterStart(t *testing.T) {
	p := newProvider(t)
	task := t.TempDir()
	runTrue(t, p, Spec{ID: "leak-warmup", TaskDir: task, MemoryMB: 128}).Destroy() // the spawner thread
	settle(t, p) // the pool is full: nothing else prepares meanwhile
	before := countResources(t, p)
	node := p.node
	p.node = addRefusingNode{node}
	created := make(chan error, 1)
	go func() {
		_, err := p.prepare("leak-cgroup-add")
		created <- err
	}()
	select {
	case err := <-created:
		if err == nil || !strings.Contains(err.Error(), "injected") {
			t.Errorf("prepare = %v, want the cgroup's refusal", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("prepare still runs 30 s after the cgroup refused the init: its Destroy waits for an init nobody watches")
	}
	p.node = node
	var after resources
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		after = countResources(t, p)
		if after.processes <= before.processes && after.cgroups <= before.cgroups && after.fds <= before.fds || time.Now().After(deadline) {
			break
		}
	}
	if after.processes > before.processes || after.cgroups > before.cgroups || after.fds > before.fds {
		t.Errorf("the failed Create left: before %+v, after %+v", before, after)
	}
}

// BenchmarkNamespaceSandbox measures creating a sandbox, starting /bin/true
// in it and destroying it.
func BenchmarkNamespaceSandbox(b *testing.B) {
	p := newProvider(b)
	task := b.TempDir()
	for i := 0; b.Loop(); i++ {
		runTrue(b, p, Spec{ID: fmt.Sprintf("bench-%d", i), TaskDir: task, MemoryMB: 128}).Destroy()
	}
}

// ticker is a Python runtime that prints a line every 10 ms, from itself and
// from a child process, for tests of freezing.
const ticker = `
import os, sys, time
if os.fork() == 0:
    while True:
        print("child", flush=True)
        time.sleep(0.01)
while True:
    print("runtime", flush=True)
    time.sleep(0.01)
`

// startTicker starts the ticker in a sandbox of p.
func startTicker(t *testing.T, p *NamespaceProvider) (Sandbox, *lineCounter) {
	t.Helper()
	spec := Spec{ID: fmt.Sprintf("freeze-%d", time.Now().UnixNano()), TaskDir: taskDir(t, "ticker.py", ticker), MemoryMB: 128, EphemeralMB: 16}
	sb := create(t, p, spec)
	c := startTicking(t, sb, Process{Argv: []string{python, "/var/task/ticker.py"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/var/task"})
	return sb, c
}

// TestNamespaceSandboxFreezeThaw: a frozen sandbox's processes (the runtime
// and a child it forked) make no progress; thawed, they go on; a frozen
// sandbox is destroyed like any other.
func TestNamespaceSandboxFreezeThaw(t *testing.T) {
	p := newProvider(t)
	sb, c := startTicker(t, p)

	if err := sb.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := sb.Freeze(); err != nil {
		t.Errorf("freezing a frozen sandbox: %v", err)
	}
	// Once the output stops, it stays stopped.
	still := waitStill(t, c, "runtime", "child")
	runtime, child := still[0], still[1]
	time.Sleep(500 * time.Millisecond)
	if r, c0 := c.count("runtime"), c.count("child"); r != runtime || c0 != child {
		t.Errorf("frozen for 0.5 s, the runtime printed %d lines and its child %d", r-runtime, c0-child)
	}

	if err := sb.Thaw(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the runtime and its child print again after the thaw", func() bool {
		return c.count("runtime") > runtime && c.count("child") > child
	})

	// Destroyed while frozen: everything dies, and the cgroups go.
	if err := sb.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := sb.Destroy(); err != nil {
		t.Fatalf("destroying a frozen sandbox: %v", err)
	}
	select {
	case <-sb.Exited():
	default:
		t.Error("Destroy returned before the runtime ended")
	}
	if err := sb.Destroy(); err != nil {
		t.Errorf("a second Destroy: %v", err)
	}
	if sb.Freeze() == nil || sb.Thaw() == nil {
		t.Error("Freeze or Thaw of a destroyed sandbox succeeded")
	}
	for _, dir := range nodeDirs(p.node) {
		if cg := filepath.Join(dir, sb.(*namespaceSandbox).name); fileExists(cg) {
			t.Errorf("cgroup %s remains after Destroy", cg)
		}
	}
}

// TestNamespaceSandboxNodeProcessLimit: the node's pids.max bounds all
// sandboxes together, below what each may have alone.
func TestNamespaceSandboxNodeProcessLimit(t *testing.T) {
	const nodePids, held = 150, 100
	p := newProviderWith(t, NamespaceOptions{MemoryBudgetMB: 4096, NodePids: nodePids})
	if got := readInt(filepath.Join(p.node.pidsDir(), "pids.max")); got != nodePids {
		t.Fatalf("the node's pids.max is %d, want %d", got, nodePids)
	}
	// One sandbox holds 100 processes...
	task := taskDir(t, "hold.py", fmt.Sprintf(`
import os, time
for i in range(%d):
    os.posix_spawn("/bin/sleep", ["sleep", "60"], {})
print("holding", flush=True)
time.sleep(60)
`, held))
	holder := create(t, p, Spec{ID: "holder", TaskDir: task, MemoryMB: 256})
	out := startPiped(t, holder, Process{Argv: []string{python, "/var/task/hold.py"}, Dir: "/var/task"})
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "holding\n" {
		t.Fatalf("the holder said %q", line)
	}
	// ...so another gets only what is left of the node's 150.
	got := probe(t, p, `
kids = []
try:
    while len(kids) < 1000:
        kids.append(os.posix_spawn("/bin/sleep", ["sleep", "60"], {}))
except OSError as e:
    r["error"] = e.errno
r["processes"] = len(kids)
for k in kids:
    os.kill(k, 9)
`)
	n := got["processes"].(float64)
	t.Logf("with %d processes held in another sandbox, a sandbox started %v of its own under the node's pids.max %d", held, n, nodePids)
	if n > nodePids-held || n == 0 || got["error"] != 11.0 { // EAGAIN
		t.Errorf("started %v processes, then errno %v; want EAGAIN after at most %d", n, got["error"], nodePids-held)
	}
	// The node's limit, not another, stopped it (pids.peak: kernel 6.1).
	if peak := filepath.Join(p.node.pidsDir(), "pids.peak"); fileExists(peak) && readInt(peak) != nodePids {
		t.Errorf("the node's pids.peak is %d, want its pids.max %d", readInt(peak), nodePids)
	}
}

// TestNamespaceSandboxNodeMemoryLimit: the node's memory limit (the memory
// budget) binds a sandbox whose own limit is larger.
func TestNamespaceSandboxNodeMemoryLimit(t *testing.T) {
	p := newProviderWith(t, NamespaceOptions{MemoryBudgetMB: 200})
	out, sb := run(t, p, 1024, "x = bytearray(400 << 20)\nprint('survived')\n")
	if strings.Contains(out, "survived") {
		t.Fatal("allocating 400 MB in a node of 200 MB succeeded")
	}
	if !sb.OutOfMemory() {
		t.Error("OutOfMemory() = false after the node's memory limit killed the runtime")
	}
}

// TestNamespaceSandboxLayers: the function's layers are one read-only /opt,
// the last layer's files over the earlier ones', whatever the length of
// their host paths (the host makes the overlay, and the kernel takes at
// most 256 bytes of directories from it in one go); /var/task and /var/runtime
// are read-only.
func TestNamespaceSandboxLayers(t *testing.T) {
	p := newProvider(t)
	deep := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	var layers []string
	for i, files := range []map[string]string{{"a": "1", "b": "1"}, {"b": "2", "c": "2"}, {"c": "3"}} {
		dir := filepath.Join(deep, fmt.Sprintf("layer-%d-%s", i, strings.Repeat("x", 60)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		layers = append(layers, dir)
	}
	if n := len(strings.Join(layers, ":")); n <= 256 {
		t.Fatalf("the layers' paths take %d bytes: not enough to test the limit", n)
	}
	runtimeDir := t.TempDir()
	out, sb := runSpec(t, p, Spec{MemoryMB: 128, EphemeralMB: 16, LayerDirs: layers, RuntimeDir: runtimeDir}, `
import json, os
r = {n: open("/opt/" + n).read() for n in ("a", "b", "c")}
for d in ("/opt", "/var/task", "/var/runtime"):
    try:
        open(d + "/new", "w")
    except OSError as e:
        r[d] = e.errno
print(json.dumps(r, sort_keys=True))
`)
	if err := sb.ExitError(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := `{"/opt": 30, "/var/runtime": 30, "/var/task": 30, "a": "1", "b": "2", "c": "3"}` + "\n"; out != want {
		t.Errorf("got %s want %s", out, want)
	}
}
