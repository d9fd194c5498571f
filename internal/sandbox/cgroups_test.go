package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// Unit tests of the cgroup driver over a fake cgroup file system: a
// temporary directory laid out like /sys/fs/cgroup, whose cgroup
// directories the fake fills with the files the kernel would (see
// fakeCgroups.mkdir). They check what the driver writes where, for v2,
// hybrid and legacy hosts; the real hierarchies of this host are tested in
// cgroups_host_test.go.

// fakeCgroups is a fake /sys/fs/cgroup.
type fakeCgroups struct {
	t    *testing.T
	root string
	mode cgroupMode
	// noPeak fakes a kernel older than 5.19 (no memory.peak); noFreeze one
	// older than 5.2 (no cgroup.freeze).
	noPeak, noFreeze bool
}

// newFakeCgroups lays out the hierarchies of a host in mode, with this
// process in the cgroups own names (by v1 controller, "" for v2).
func newFakeCgroups(t *testing.T, mode cgroupMode) *fakeCgroups {
	f := &fakeCgroups{t: t, root: t.TempDir(), mode: mode}
	switch mode {
	case cgroupUnified:
		f.write("cgroup.procs", "")
		f.write("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc")
		f.write("cgroup.subtree_control", "")
	case cgroupHybrid, cgroupLegacy:
		for _, c := range []string{"memory", "pids", "cpu", "freezer"} {
			f.write(c+"/cgroup.procs", "")
		}
		f.write("memory/memory.memsw.limit_in_bytes", "9223372036854771712")
		if mode == cgroupHybrid {
			f.write("unified/cgroup.procs", "")
			f.write("unified/cgroup.controllers", "")
		}
	}
	return f
}

// host describes the fake host with this process in own.
func (f *fakeCgroups) host(own map[string]string) cgroupHost {
	return cgroupHost{root: f.root, mode: f.mode, own: own, pid: os.Getpid(), mkdir: f.mkdir}
}

// mkdir creates a cgroup directory with the files the kernel puts there.
func (f *fakeCgroups) mkdir(path string) error {
	if err := os.Mkdir(path, 0o755); err != nil {
		return err
	}
	rel, _ := filepath.Rel(f.root, path)
	files := map[string]string{"cgroup.procs": ""}
	switch {
	case strings.HasPrefix(rel, "freezer/"):
		files["freezer.state"] = "THAWED"
	default: // a v2 hierarchy: the host's, or the unified one of a hybrid host
		files["cgroup.events"] = "populated 0\nfrozen 0\n"
		files["cgroup.kill"] = ""
		files["cgroup.type"] = "domain"
		files["cgroup.subtree_control"] = ""
		files["cgroup.controllers"] = ""
		if !f.noFreeze {
			files["cgroup.freeze"] = "0"
		}
		if f.mode == cgroupUnified {
			files["cgroup.controllers"] = "cpu memory pids"
			for name, value := range map[string]string{"memory.max": "max", "memory.swap.max": "max",
				"memory.current": "0", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
				"pids.max": "max", "cpu.weight": "100", "cpu.max": "max 100000"} {
				files[name] = value
			}
			if !f.noPeak {
				files["memory.peak"] = "0"
			}
		}
	}
	for name, value := range files {
		if err := os.WriteFile(filepath.Join(path, name), []byte(value), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// write writes a file of the fake (relative to its root), making its
// directory.
func (f *fakeCgroups) write(rel, value string) {
	f.t.Helper()
	path := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// want checks the content of a file of the fake.
func (f *fakeCgroups) want(rel, value string) {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.root, rel))
	if err != nil {
		f.t.Errorf("%s: %v", rel, err)
		return
	}
	if got := strings.TrimSpace(string(data)); got != value {
		f.t.Errorf("%s = %q, want %q", rel, got, value)
	}
}

// exists reports whether a path of the fake exists.
func (f *fakeCgroups) exists(rel string) bool { return fileExists(filepath.Join(f.root, rel)) }

// nodeDirs lists the directories of a node in every hierarchy.
func nodeDirs(node cgroupNode) []string {
	switch n := node.(type) {
	case *v1Node:
		dirs := []string{n.dir("memory"), n.dir("pids"), n.dir("cpu")}
		switch c := n.control.(type) {
		case unifiedParent:
			dirs = append(dirs, c.dir)
		case freezerParent:
			dirs = append(dirs, c.dir)
		}
		return dirs
	case *v2Node:
		return []string{n.dir}
	}
	return nil
}

// rel is path relative to the fake's root.
func (f *fakeCgroups) rel(path string) string {
	rel, err := filepath.Rel(f.root, path)
	if err != nil {
		f.t.Fatal(err)
	}
	return rel
}

// ownName is the name of this process's node n or leaf.
func ownName(t *testing.T, prefix string) string {
	start, err := processStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), start)
}

var testLimits = nodeLimits{memoryMB: 3000, pids: 5000}

func TestCgroupsV2AloneInOwnCgroup(t *testing.T) {
	f := newFakeCgroups(t, cgroupUnified)
	// A systemd service of its own: the server is alone in its cgroup.
	own := "system.slice/lamina.service"
	if err := mkdirCgroup(f.host(nil), filepath.Join(f.root, own)); err != nil {
		t.Fatal(err)
	}
	f.write(own+"/cgroup.procs", strconv.Itoa(os.Getpid())+"\n")
	node, err := newCgroupNode(f.host(map[string]string{"": "/" + own}), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	// The server moved itself to a leaf, so that its cgroup may enable
	// controllers for the nodes.
	leaf := own + "/lamina/" + ownName(t, "server")
	f.want(leaf+"/cgroup.procs", strconv.Itoa(os.Getpid()))
	f.want(own+"/cgroup.subtree_control", "+cpu +memory +pids")
	f.want(own+"/lamina/cgroup.subtree_control", "+cpu +memory +pids")

	dir := f.rel(node.pidsDir())
	if filepath.Dir(dir) != own+"/lamina" || !strings.HasPrefix(filepath.Base(dir), ownName(t, "node")+"-") {
		t.Fatalf("node at %s, want %s/lamina/%s-N", dir, own, ownName(t, "node"))
	}
	f.want(dir+"/memory.max", strconv.Itoa(3000<<20))
	f.want(dir+"/memory.swap.max", "0")
	f.want(dir+"/pids.max", "5000")
	f.want(dir+"/cgroup.subtree_control", "+cpu +memory +pids")

	sb, err := node.newSandbox("env-1", 1024)
	if err != nil {
		t.Fatal(err)
	}
	env := dir + "/env-1"
	f.want(env+"/memory.max", strconv.Itoa(1024<<20))
	f.want(env+"/memory.swap.max", "0")
	f.want(env+"/pids.max", "1024")
	f.want(env+"/cpu.max", "100000 100000")
	f.want(env+"/cpu.weight", strconv.FormatUint(cgroup2.ConvertCPUSharesToCgroupV2Value(1024*1024/memoryPerVCPU), 10))
	// A prepared sandbox gets its function's limits.
	if err := sb.setMemory(3538); err != nil {
		t.Fatal(err)
	}
	f.want(env+"/memory.max", strconv.Itoa(3538<<20))
	f.want(env+"/cpu.max", "200000 100000")
	f.want(env+"/cpu.weight", strconv.FormatUint(cgroup2.ConvertCPUSharesToCgroupV2Value(1024*3538/memoryPerVCPU), 10))

	if err := sb.add(4242); err != nil {
		t.Fatal(err)
	}
	f.want(env+"/cgroup.procs", "4242")
	if err := sb.freeze(); err != nil {
		t.Fatal(err)
	}
	f.want(env+"/cgroup.freeze", "1")
	if err := sb.thaw(); err != nil {
		t.Fatal(err)
	}
	f.want(env+"/cgroup.freeze", "0")
	if err := sb.kill(); err != nil {
		t.Fatal(err)
	}
	f.want(env+"/cgroup.kill", "1")

	f.write(env+"/memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n")
	if n := sb.oomKills(); n != 2 {
		t.Errorf("oomKills = %d, want 2 (from memory.events)", n)
	}
	sb.resetMemoryPeak() // the kernel resets the peak for this open file
	f.write(env+"/memory.peak", "12345678")
	if peak := sb.memoryPeak(); peak != 12345678 {
		t.Errorf("memoryPeak = %d, want 12345678 (memory.peak)", peak)
	}

	f.write(env+"/cgroup.procs", "") // the processes have exited
	if err := sb.remove(); err != nil {
		t.Fatal(err)
	}
	if err := sb.remove(); err != nil {
		t.Errorf("a second remove: %v", err)
	}
	if f.exists(env) {
		t.Errorf("%s remains after remove", env)
	}
	if err := node.remove(); err != nil {
		t.Fatal(err)
	}
	if f.exists(dir) {
		t.Errorf("%s remains after the node's remove", dir)
	}
	f.want(dir+"/../"+ownName(t, "server")+"/cgroup.procs", strconv.Itoa(os.Getpid())) // the server stays in its leaf
}

func TestCgroupsV2SecondNodeOfTheSameProcess(t *testing.T) {
	f := newFakeCgroups(t, cgroupUnified)
	// After a first node moved this process to its leaf, /proc/self/cgroup
	// names the leaf.
	leaf := "system.slice/lamina.service/lamina/" + ownName(t, "server")
	if err := mkdirCgroup(f.host(nil), filepath.Join(f.root, leaf)); err != nil {
		t.Fatal(err)
	}
	f.write(leaf+"/cgroup.procs", strconv.Itoa(os.Getpid())+"\n")
	node, err := newCgroupNode(f.host(map[string]string{"": "/" + leaf}), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := filepath.Dir(f.rel(node.pidsDir())), filepath.Dir(leaf); got != want {
		t.Errorf("node under %s, want %s (beside the leaf)", got, want)
	}
}

func TestCgroupsV2SharedCgroupUsesRoot(t *testing.T) {
	f := newFakeCgroups(t, cgroupUnified)
	// A login session or a test harness: other processes share the cgroup,
	// so the server cannot make it a parent of nodes.
	own := "user.slice/session-1.scope"
	if err := mkdirCgroup(f.host(nil), filepath.Join(f.root, own)); err != nil {
		t.Fatal(err)
	}
	f.write(own+"/cgroup.procs", fmt.Sprintf("1234\n%d\n", os.Getpid()))
	node, err := newCgroupNode(f.host(map[string]string{"": "/" + own}), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got := filepath.Dir(f.rel(node.pidsDir())); got != "lamina" {
		t.Errorf("node under %s, want lamina (at the root)", got)
	}
	f.want("cgroup.subtree_control", "+cpu +memory +pids")
	f.want(own+"/cgroup.procs", fmt.Sprintf("1234\n%d", os.Getpid())) // nobody moved
	f.want(own+"/cgroup.subtree_control", "")
}

func TestCgroupsV2WithoutMemoryPeak(t *testing.T) {
	f := newFakeCgroups(t, cgroupUnified)
	f.noPeak = true // a kernel older than 5.19
	node, err := newCgroupNode(f.host(map[string]string{"": "/"}), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := node.newSandbox("env-1", 128)
	if err != nil {
		t.Fatal(err)
	}
	f.write(f.rel(node.pidsDir())+"/env-1/memory.current", "777")
	sb.resetMemoryPeak()
	if peak := sb.memoryPeak(); peak != 777 {
		t.Errorf("memoryPeak without memory.peak = %d, want memory.current (777)", peak)
	}
}

func TestCgroupsHybrid(t *testing.T) {
	f := newFakeCgroups(t, cgroupHybrid)
	own := map[string]string{"memory": "/process_api/x", "pids": "/", "cpu": "/", "freezer": "/", "": "/"}
	node, err := newCgroupNode(f.host(own), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(node.pidsDir())
	if f.rel(node.pidsDir()) != "pids/lamina/"+name {
		t.Errorf("node's pids cgroup at %s, want pids/lamina/%s", f.rel(node.pidsDir()), name)
	}
	mem := "memory/process_api/x/lamina/" + name
	f.want(mem+"/memory.limit_in_bytes", strconv.Itoa(3000<<20))
	f.want(mem+"/memory.memsw.limit_in_bytes", strconv.Itoa(3000<<20))
	f.want("pids/lamina/"+name+"/pids.max", "5000")
	if !f.exists("unified/lamina/" + name + "/cgroup.freeze") {
		t.Fatalf("no node in the unified hierarchy")
	}

	sb, err := node.newSandbox("env-1", 3538)
	if err != nil {
		t.Fatal(err)
	}
	f.want(mem+"/env-1/memory.limit_in_bytes", strconv.Itoa(3538<<20))
	f.want(mem+"/env-1/memory.memsw.limit_in_bytes", strconv.Itoa(3538<<20))
	f.want("pids/lamina/"+name+"/env-1/pids.max", "1024")
	f.want("cpu/lamina/"+name+"/env-1/cpu.shares", "2048")
	f.want("cpu/lamina/"+name+"/env-1/cpu.cfs_quota_us", "200000")
	f.want("cpu/lamina/"+name+"/env-1/cpu.cfs_period_us", "100000")
	// A prepared sandbox gets its function's limits.
	if err := sb.setMemory(128); err != nil {
		t.Fatal(err)
	}
	f.want(mem+"/env-1/memory.limit_in_bytes", strconv.Itoa(128<<20))
	f.want(mem+"/env-1/memory.memsw.limit_in_bytes", strconv.Itoa(128<<20))
	f.want("cpu/lamina/"+name+"/env-1/cpu.shares", strconv.Itoa(1024*128/memoryPerVCPU))
	f.want("cpu/lamina/"+name+"/env-1/cpu.cfs_quota_us", "100000")
	if err := sb.setMemory(3538); err != nil {
		t.Fatal(err)
	}
	f.want(mem+"/env-1/memory.limit_in_bytes", strconv.Itoa(3538<<20))
	f.want(mem+"/env-1/memory.memsw.limit_in_bytes", strconv.Itoa(3538<<20))
	f.want("cpu/lamina/"+name+"/env-1/cpu.shares", "2048")
	f.want("cpu/lamina/"+name+"/env-1/cpu.cfs_quota_us", "200000")

	if err := sb.add(4242); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{mem, "pids/lamina/" + name, "cpu/lamina/" + name, "unified/lamina/" + name} {
		f.want(dir+"/env-1/cgroup.procs", "4242")
	}
	if err := sb.freeze(); err != nil {
		t.Fatal(err)
	}
	f.want("unified/lamina/"+name+"/env-1/cgroup.freeze", "1")
	if f.exists("freezer/lamina/" + name) {
		t.Error("a hybrid host whose unified hierarchy can freeze uses the v1 freezer too")
	}
	if err := sb.thaw(); err != nil {
		t.Fatal(err)
	}
	f.want("unified/lamina/"+name+"/env-1/cgroup.freeze", "0")
	if err := sb.kill(); err != nil {
		t.Fatal(err)
	}
	f.want("unified/lamina/"+name+"/env-1/cgroup.kill", "1")

	f.write(mem+"/env-1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
	if n := sb.oomKills(); n != 3 {
		t.Errorf("oomKills = %d, want 3 (from memory.oom_control)", n)
	}
	f.write(mem+"/env-1/memory.max_usage_in_bytes", "4096000")
	if peak := sb.memoryPeak(); peak != 4096000 {
		t.Errorf("memoryPeak = %d, want 4096000", peak)
	}
	sb.resetMemoryPeak() // the kernel takes "0" as a reset; the fake keeps the rest of the old text
	if data, _ := os.ReadFile(filepath.Join(f.root, mem, "env-1/memory.max_usage_in_bytes")); !strings.HasPrefix(string(data), "0") {
		t.Errorf("memory.max_usage_in_bytes = %q after resetMemoryPeak, want 0 written", data)
	}

	for _, dir := range []string{mem, "pids/lamina/" + name, "cpu/lamina/" + name, "unified/lamina/" + name} {
		f.write(dir+"/env-1/cgroup.procs", "") // the processes have exited
	}
	if err := sb.remove(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range nodeDirs(node) {
		if fileExists(filepath.Join(dir, "env-1")) {
			t.Errorf("%s/env-1 remains after remove", f.rel(dir))
		}
	}
	if err := node.remove(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range nodeDirs(node) {
		if fileExists(dir) {
			t.Errorf("%s remains after the node's remove", f.rel(dir))
		}
	}
}

func TestCgroupsHybridWithoutUnifiedFreezeUsesV1Freezer(t *testing.T) {
	f := newFakeCgroups(t, cgroupHybrid)
	f.noFreeze = true // a kernel older than 5.2
	node, err := newCgroupNode(f.host(map[string]string{"memory": "/", "pids": "/", "cpu": "/", "freezer": "/", "": "/"}), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(node.pidsDir())
	if f.exists("unified/lamina/" + name) {
		t.Error("a node in a unified hierarchy that cannot freeze")
	}
	sb, err := node.newSandbox("env-1", 128)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.freeze(); err != nil {
		t.Fatal(err)
	}
	f.want("freezer/lamina/"+name+"/env-1/freezer.state", "FROZEN")
}

func TestCgroupsLegacyFreezerKills(t *testing.T) {
	f := newFakeCgroups(t, cgroupLegacy)
	node, err := newCgroupNode(f.host(map[string]string{"memory": "/", "pids": "/", "cpu": "/", "freezer": "/"}), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(node.pidsDir())
	sb, err := node.newSandbox("env-1", 128)
	if err != nil {
		t.Fatal(err)
	}
	// A real process, whose pid the fake's freezer cgroup then holds.
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleep.Process.Kill()
	if err := sb.add(sleep.Process.Pid); err != nil {
		t.Fatal(err)
	}
	state := "freezer/lamina/" + name + "/env-1/freezer.state"
	if err := sb.freeze(); err != nil {
		t.Fatal(err)
	}
	f.want(state, "FROZEN")
	if err := sb.thaw(); err != nil {
		t.Fatal(err)
	}
	f.want(state, "THAWED")
	// kill freezes, signals every process and thaws.
	if err := sb.freeze(); err != nil {
		t.Fatal(err)
	}
	if err := sb.kill(); err != nil {
		t.Fatal(err)
	}
	f.want(state, "THAWED")
	err = sleep.Wait()
	if ws, ok := sleep.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the process in the cgroup ended with %v, want SIGKILL", err)
	}
}

func TestCgroupsSweep(t *testing.T) {
	f := newFakeCgroups(t, cgroupUnified)
	host := f.host(map[string]string{"": "/"})
	// A node of a server that is gone (pid 4194305 is above any pid_max),
	// of a live process (pid 1, at its real start time), and cgroups of
	// older versions.
	initStart, err := processStart(1)
	if err != nil {
		t.Fatal(err)
	}
	dead, live := "lamina/node-4194305-7-1", fmt.Sprintf("lamina/node-1-%d-1", initStart)
	for _, dir := range []string{dead, dead + "/env-a", live, live + "/env-b", "lamina/env-old", "lamina/env-new", "lamina/env-busy"} {
		if err := mkdirCgroup(host, filepath.Join(f.root, dir)); err != nil {
			t.Fatal(err)
		}
	}
	f.write("lamina/env-busy/cgroup.procs", "4194306\n")
	old := time.Now().Add(-2 * staleAfter)
	for _, dir := range []string{"lamina/env-old", "lamina/env-busy"} {
		os.Chtimes(filepath.Join(f.root, dir), old, old)
	}
	if _, err := newCgroupNode(host, testLimits); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]bool{dead: false, live: true, live + "/env-b": true,
		"lamina/env-old": false, "lamina/env-new": true, "lamina/env-busy": true} {
		if got := f.exists(dir); got != want {
			t.Errorf("%s exists: %v, want %v", dir, got, want)
		}
	}
}

func TestCgroupsOwnerAlive(t *testing.T) {
	for name, want := range map[string][2]bool{
		ownName(t, "node") + "-3":               {true, true},
		ownName(t, "server"):                    {true, true},
		"node-4194305-7-1":                      {false, true},
		fmt.Sprintf("node-%d-1-1", os.Getpid()): {false, true}, // this pid, another start: reused
		"env-abc":                               {false, false},
		"node-x-1-1":                            {false, false},
	} {
		alive, ok := ownerAlive(name)
		if alive != want[0] || ok != want[1] {
			t.Errorf("ownerAlive(%q) = %v, %v; want %v, %v", name, alive, ok, want[0], want[1])
		}
	}
}

func TestDefaultNodePids(t *testing.T) {
	n := DefaultNodePids()
	pidMax := readInt("/proc/sys/kernel/pid_max")
	t.Logf("default node pids.max %d (pid_max %d, threads running %d)", n, pidMax, runningThreads())
	if n < 64 || n > pidMax/2 {
		t.Errorf("DefaultNodePids() = %d, want at most half of pid_max %d", n, pidMax)
	}
}
