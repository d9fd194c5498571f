//go:build linux && cgo

package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCgroupsOnThisHost runs the driver on this host's real cgroup
// hierarchies, in every layout the host can give: on a hybrid host, both
// with freeze and kill through the unified hierarchy (the default there)
// and through the v1 freezer (what a legacy host gets); on a v2 host, v2.
// For each it checks process placement, freezing (the process makes no
// progress), thawing, the node's process limit, kill of a frozen cgroup,
// cgroup.events where v2 has it, and removal. It is the evidence behind
// the table of tested layouts in docs/sandbox.md.
func TestCgroupsOnThisHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root")
	}
	host, err := thisHost()
	if err != nil {
		t.Skip(err)
	}
	modes := []cgroupMode{host.mode}
	if host.mode == cgroupHybrid {
		modes = append(modes, cgroupLegacy)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			h := host
			h.mode = mode
			testCgroupsOnHost(t, h)
		})
	}
}

func testCgroupsOnHost(t *testing.T, host cgroupHost) {
	node, err := newCgroupNode(host, nodeLimits{memoryMB: 512, pids: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := node.remove(); err != nil {
			t.Errorf("removing the node: %v", err)
		}
		for _, dir := range nodeDirs(node) {
			if fileExists(dir) {
				t.Errorf("%s remains after the node's remove", dir)
			}
		}
	}()
	sb, err := node.newSandbox("host-test", 128)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.remove()
	// A prepared sandbox's limits change to its function's: up (on v1, the
	// kernel wants memory+swap raised first) and down again.
	for _, mb := range []int{384, 128} {
		if err := sb.setMemory(mb); err != nil {
			t.Fatalf("setMemory(%d): %v", mb, err)
		}
		if got := memoryLimit(sb); got != int64(mb)<<20 {
			t.Errorf("after setMemory(%d) the memory limit is %d", mb, got)
		}
	}
	control := controlDir(node, "host-test")
	t.Logf("node %v; control group %s", nodeDirs(node), control)

	// A process that, once told to (so that it is in the cgroup before it
	// forks), forks a child that appends to a file every 10 ms, and on a
	// second line spawns up to 60 sleeping children.
	ticks := filepath.Join(t.TempDir(), "ticks")
	proc := exec.Command(python, "-c", `
import os, sys, time
sys.stdin.readline()
if os.fork() == 0:
    while True:
        with open(sys.argv[1], "a") as f:
            f.write("t")
        time.sleep(0.01)
sys.stdin.readline()
kids = []
try:
    while len(kids) < 60:
        kids.append(os.posix_spawn("/bin/sleep", ["sleep", "60"], {}))
except OSError as e:
    pass
print(len(kids), flush=True)
sys.stdin.readline()
`, ticks)
	stdin, _ := proc.StdinPipe()
	stdout, _ := proc.StdoutPipe()
	proc.Stderr = os.Stderr
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer proc.Process.Kill()
	lines := bufio.NewReader(stdout)

	// Placement: in the node's sandbox cgroup of every hierarchy.
	if err := sb.add(proc.Process.Pid); err != nil {
		t.Fatalf("placing a process: %v", err)
	}
	cgroupFile, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", proc.Process.Pid))
	for _, dir := range nodeDirs(node) {
		if rel := relToMount(host, filepath.Join(dir, "host-test")); !strings.Contains(string(cgroupFile), ":"+rel+"\n") {
			t.Errorf("/proc/PID/cgroup lacks %s:\n%s", rel, cgroupFile)
		}
	}
	stdin.Write([]byte("go\n"))
	size := func() int64 {
		info, err := os.Stat(ticks)
		if err != nil {
			return 0
		}
		return info.Size()
	}
	waitFor(t, "the ticker ticks", func() bool { return size() > 0 })
	if host.mode != cgroupLegacy {
		waitFor(t, "cgroup.events says populated", func() bool { return keyedValue(filepath.Join(control, "cgroup.events"), "populated") == 1 })
	}

	// Freeze: the ticker makes no progress until thawed.
	if err := sb.freeze(); err != nil {
		t.Fatalf("freeze: %v", err)
	}
	waitFor(t, "the cgroup reports frozen", func() bool { return frozen(control) })
	before := size()
	time.Sleep(300 * time.Millisecond)
	if after := size(); after != before {
		t.Errorf("frozen, the ticker wrote %d bytes in 0.3 s", after-before)
	}
	if err := sb.thaw(); err != nil {
		t.Fatalf("thaw: %v", err)
	}
	waitFor(t, "the ticker ticks again after the thaw", func() bool { return size() > before })

	// The node's pids.max (40) bounds the 60 children.
	stdin.Write([]byte("go\n"))
	spawned, err := lines.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pidsDir := node.pidsDir()
	current := readInt(filepath.Join(pidsDir, "pids.current"))
	t.Logf("spawned %s children; the node's pids.current is %d", strings.TrimSpace(spawned), current)
	if current != 40 {
		t.Errorf("the node's pids.current = %d, want its pids.max 40", current)
	}

	// Kill while frozen: everything dies.
	if err := sb.freeze(); err != nil {
		t.Fatal(err)
	}
	if err := sb.kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the process outlived kill by 10 s")
	}
	if ws, ok := proc.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the process ended with %v, want SIGKILL", proc.ProcessState)
	}
	waitFor(t, "the node's processes are gone", func() bool { return readInt(filepath.Join(pidsDir, "pids.current")) == 0 })
	if host.mode != cgroupLegacy {
		waitFor(t, "cgroup.events says unpopulated", func() bool { return keyedValue(filepath.Join(control, "cgroup.events"), "populated") == 0 })
	}
	if err := sb.remove(); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if fileExists(control) {
		t.Errorf("%s remains after remove", control)
	}
}

// controlDir is the directory of sandbox id's control group in node.
func controlDir(node cgroupNode, id string) string {
	switch n := node.(type) {
	case *v1Node:
		switch c := n.control.(type) {
		case unifiedParent:
			return filepath.Join(c.dir, id)
		case freezerParent:
			return filepath.Join(c.dir, id)
		}
	case *v2Node:
		return filepath.Join(n.dir, id)
	}
	return ""
}

// frozen reports whether the control group at dir says it is frozen.
func frozen(dir string) bool {
	if strings.Contains(dir, "/freezer/") {
		state, _ := os.ReadFile(filepath.Join(dir, "freezer.state"))
		return strings.TrimSpace(string(state)) == "FROZEN"
	}
	return keyedValue(filepath.Join(dir, "cgroup.events"), "frozen") == 1
}

// relToMount is a cgroup directory as /proc/PID/cgroup names it.
func relToMount(host cgroupHost, dir string) string {
	rel, _ := filepath.Rel(host.root, dir)
	_, rest, _ := strings.Cut(rel, "/") // the hierarchy's mount directory
	if host.mode == cgroupUnified {
		rest = rel
	}
	return "/" + rest
}

// BenchmarkCgroupFreezeThaw measures one freeze and one thaw of a sandbox
// cgroup holding a sleeping process, as the worker does around every warm
// invocation, with this host's default layout.
func BenchmarkCgroupFreezeThaw(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("creating cgroups needs root")
	}
	host, err := thisHost()
	if err != nil {
		b.Skip(err)
	}
	node, err := newCgroupNode(host, nodeLimits{memoryMB: 512, pids: 100})
	if err != nil {
		b.Fatal(err)
	}
	defer node.remove()
	sb, err := node.newSandbox("bench", 128)
	if err != nil {
		b.Fatal(err)
	}
	defer sb.remove()
	sleep := exec.Command("sleep", "600")
	if err := sleep.Start(); err != nil {
		b.Fatal(err)
	}
	defer sleep.Wait()
	defer sb.kill()
	if err := sb.add(sleep.Process.Pid); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := sb.freeze(); err != nil {
			b.Fatal(err)
		}
		if err := sb.thaw(); err != nil {
			b.Fatal(err)
		}
	}
}

// memoryLimit reads the memory limit of a sandbox's cgroup.
func memoryLimit(sb sandboxCgroup) int64 {
	switch sb := sb.(type) {
	case *v1Sandbox:
		return readInt(filepath.Join(sb.memDir, "memory.limit_in_bytes"))
	case *v2Sandbox:
		return readInt(filepath.Join(sb.dir, "memory.max"))
	}
	return -1
}
