package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The cgroup driver. All of one server's sandboxes live under one parent
// cgroup of its own (the node), which bounds them together: pids.max well
// below the host's pid_max, and a memory limit of the node's memory budget.
// Each sandbox has a child cgroup with its own limits, and is frozen,
// thawed and killed as a whole through it.
//
// Hosts lay cgroups out in one of three ways, and the driver hides the
// difference behind cgroupNode and sandboxCgroup:
//
//   - cgroup v2 (unified): one hierarchy with every controller (cgroups_v2.go);
//   - hybrid: the memory, pids and cpu controllers on cgroup v1, and an
//     empty v2 hierarchy at /sys/fs/cgroup/unified, whose core files
//     (cgroup.freeze, cgroup.kill, cgroup.events) freeze and kill sandboxes
//     beside the v1 limits (cgroups_v1.go);
//   - legacy: cgroup v1 only; the v1 freezer controller freezes (cgroups_v1.go).

// Limits every sandbox gets, as on Lambda.
const (
	maxProcesses = 1024 // processes and threads
	maxOpenFiles = 1024
	// memoryPerVCPU is the memory size at which Lambda gives a function one
	// full vCPU.
	memoryPerVCPU = 1769
	cfsPeriod     = 100000 // µs
)

// cgroupRoot is where cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// laminaDir is the directory under a server's own cgroup (or the root, on a
// v2 host where the server cannot have its own) that holds the nodes of
// every server there.
const laminaDir = "lamina"

// cgroupMode is how a host lays its cgroups out.
type cgroupMode int

const (
	cgroupLegacy  cgroupMode = iota + 1 // v1 controllers only
	cgroupHybrid                        // v1 controllers and an empty v2 hierarchy
	cgroupUnified                       // v2 only
)

func (m cgroupMode) String() string {
	switch m {
	case cgroupLegacy:
		return "v1"
	case cgroupHybrid:
		return "hybrid"
	case cgroupUnified:
		return "v2"
	}
	return "none"
}

// cgroupHost says where a host's cgroup hierarchies are and where this
// process sits in them. Unit tests describe a fake file system with it.
type cgroupHost struct {
	root string // where the hierarchies are mounted
	mode cgroupMode
	// own is this process's cgroup: by v1 controller name, and under ""
	// in the v2 hierarchy (the unified one in hybrid mode).
	own map[string]string
	pid int // this process, which may have to move to a leaf on v2
	// mkdir creates one cgroup directory; on a real host, os.Mkdir (the
	// kernel fills it). A fake fills it as the kernel would.
	mkdir func(path string) error
}

// thisHost detects how this host lays its cgroups out and where this
// process sits in them.
func thisHost() (cgroupHost, error) {
	h := cgroupHost{root: cgroupRoot, pid: os.Getpid(), mkdir: func(path string) error { return os.Mkdir(path, 0o755) }}
	switch cgroups.Mode() {
	case cgroups.Legacy:
		h.mode = cgroupLegacy
	case cgroups.Hybrid:
		h.mode = cgroupHybrid
	case cgroups.Unified:
		h.mode = cgroupUnified
	default:
		return h, errors.New("no cgroup hierarchy is mounted at " + cgroupRoot)
	}
	v1, unified, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
	if err != nil {
		return h, err
	}
	// v1 paths relative to where each controller is mounted (inside a
	// container without a cgroup namespace, the mount is the container's
	// own cgroup).
	localized := cgroup1.PidPath(h.pid)
	h.own = map[string]string{"": unified}
	for c := range v1 {
		if p, err := localized(cgroup1.Name(c)); err == nil {
			h.own[c] = p
		}
	}
	return h, nil
}

// nodeLimits bound all of one server's sandboxes together.
type nodeLimits struct {
	memoryMB int   // the node's memory budget
	pids     int64 // processes and threads
}

// cgroupNode is the parent cgroup of one server's sandboxes, and makes
// their cgroups.
type cgroupNode interface {
	// newSandbox creates the cgroup of sandbox id with its limits (memoryMB
	// of memory, maxProcesses, CPU in proportion to memory).
	newSandbox(id string, memoryMB int) (sandboxCgroup, error)
	// pidsDir is the directory whose pids.max and pids.current bound the
	// node's processes (for logs, operators and tests).
	pidsDir() string
	// remove kills whatever is left in the node and removes its cgroups.
	remove() error
}

// sandboxCgroup is one sandbox's cgroup: its limits and measurements, and
// the handle that freezes, thaws and kills its processes as a whole.
type sandboxCgroup interface {
	// add moves process pid (and its future children) into the cgroup.
	add(pid int) error
	// setMemory gives the cgroup the limits of a sandbox of memoryMB
	// instead of those it was created with.
	setMemory(memoryMB int) error
	// freeze stops every process of the cgroup until thaw. It does not wait
	// for the last of them to stop.
	freeze() error
	// thaw lets the processes of a frozen cgroup run again.
	thaw() error
	// kill sends SIGKILL to every process of the cgroup, frozen or not.
	kill() error
	// oomKills returns how many processes the memory limit has killed.
	oomKills() int
	// memoryPeak returns the highest memory use since creation or the last
	// resetMemoryPeak, in bytes.
	memoryPeak() int64
	// resetMemoryPeak starts a new measurement period for memoryPeak.
	resetMemoryPeak()
	// remove removes the cgroup, waiting for processes that are still
	// exiting. It is safe to call more than once.
	remove() error
}

// newCgroupNode creates the node parent of this server on host, with
// limits, after sweeping the nodes dead servers left behind.
func newCgroupNode(host cgroupHost, limits nodeLimits) (cgroupNode, error) {
	name, err := nodeName(host.pid)
	if err != nil {
		return nil, err
	}
	switch host.mode {
	case cgroupLegacy, cgroupHybrid:
		return newV1Node(host, name, limits)
	case cgroupUnified:
		return newV2Node(host, name, limits)
	}
	return nil, errors.New("no cgroup hierarchy found")
}

// sandboxResources are the limits of a sandbox of memoryMB: that much
// memory and no swap, maxProcesses, a CPU share under contention in
// proportion to memory, and a ceiling of as many whole vCPUs as the memory
// buys (at least one, so that small functions still start fast).
func sandboxResources(memoryMB int, swap bool) *specs.LinuxResources {
	limit := int64(memoryMB) << 20
	pids := int64(maxProcesses)
	shares := uint64(max(2, 1024*memoryMB/memoryPerVCPU))
	quota := int64(max(1, (memoryMB+memoryPerVCPU-1)/memoryPerVCPU)) * cfsPeriod
	period := uint64(cfsPeriod)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &limit},
		Pids:   &specs.LinuxPids{Limit: &pids},
		CPU:    &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period},
	}
	if swap {
		r.Memory.Swap = &limit // memory+swap = memory: no swap
	}
	return r
}

// nodeResources are the node parent's limits.
func nodeResources(limits nodeLimits, swap bool) *specs.LinuxResources {
	memory := int64(limits.memoryMB) << 20
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &memory},
		Pids:   &specs.LinuxPids{Limit: &limits.pids},
	}
	if swap {
		r.Memory.Swap = &memory
	}
	return r
}

// DefaultNodePids is the default bound on the processes and threads of all
// of a server's sandboxes together: half of what the host has left, the
// smaller of kernel.pid_max and kernel.threads-max less the threads already
// running (at least 64).
func DefaultNodePids() int64 {
	limit := readInt("/proc/sys/kernel/pid_max")
	if threads := readInt("/proc/sys/kernel/threads-max"); threads > 0 && (limit == 0 || threads < limit) {
		limit = threads
	}
	if limit == 0 {
		limit = 32768
	}
	return max((limit-runningThreads())/2, 64)
}

// runningThreads is how many threads the host runs now (the fourth field of
// /proc/loadavg: "runnable/total").
func runningThreads() int64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) < 4 {
		return 0
	}
	_, total, _ := strings.Cut(fields[3], "/")
	n, _ := strconv.ParseInt(total, 10, 64)
	return n
}

// readInt reads a file holding one integer; 0 when it cannot.
func readInt(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	return n
}

// readOpenInt reads the integer in an open cgroup file from its start; 0
// when f is nil or holds none.
func readOpenInt(f *os.File) int64 {
	if f == nil {
		return 0
	}
	var buf [32]byte
	n, _ := f.ReadAt(buf[:], 0)
	v, _ := strconv.ParseInt(string(bytes.TrimSpace(buf[:n])), 10, 64)
	return v
}

// keyedValue returns the value of key in a flat keyed file such as
// memory.events ("oom_kill 2"); 0 when absent.
func keyedValue(path, key string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// writeFile writes one value to a cgroup file.
func writeFile(path, value string) error {
	return os.WriteFile(path, []byte(value), 0o644)
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Nodes are named after the process that owns them, so that a node whose
// server is gone can be told from a live one: node-<pid>-<start>-<n>, with
// the process's start time in clock ticks since boot (a reused pid has
// another) and n counting the nodes of this process (tests make several).

var nodesMade atomic.Int64

// nodeName is the name of a new node of process pid.
func nodeName(pid int) (string, error) {
	start, err := processStart(pid)
	if err != nil {
		return "", fmt.Errorf("cgroups: %w", err)
	}
	return fmt.Sprintf("node-%d-%d-%d", pid, start, nodesMade.Add(1)), nil
}

// leafName is the name of the v2 leaf process pid moves itself to.
func leafName(pid int) (string, error) {
	start, err := processStart(pid)
	if err != nil {
		return "", fmt.Errorf("cgroups: %w", err)
	}
	return fmt.Sprintf("server-%d-%d", pid, start), nil
}

// processStart returns the start time of process pid (field 22 of
// /proc/PID/stat).
func processStart(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold anything.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64) // field 22 is the 20th after ")"
}

// ownerAlive reports whether the process whose node or leaf is named name
// still runs; ok is false for names of neither form.
func ownerAlive(name string) (alive, ok bool) {
	fields := strings.Split(name, "-")
	if len(fields) < 3 || fields[0] != "node" && fields[0] != "server" {
		return false, false
	}
	pid, err1 := strconv.Atoi(fields[1])
	start, err2 := strconv.ParseUint(fields[2], 10, 64)
	if err1 != nil || err2 != nil {
		return false, false
	}
	now, err := processStart(pid)
	return err == nil && now == start, true
}

// staleAfter is how old an empty cgroup of an unknown name must be to be
// swept: older Lamina versions put sandboxes straight under lamina/, and a
// server that crashed left them; one being created right now is younger.
const staleAfter = time.Minute

// sweep removes from dir (a lamina/ directory of one hierarchy) the nodes
// of servers that are gone, killing what is left in them with kill, and
// empty stale cgroups of older versions. The nodes of live servers are
// never touched. It returns how many it removed.
func sweep(dir string, kill func(cgroupDir string)) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	removed := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		alive, ours := ownerAlive(e.Name())
		switch {
		case alive:
			continue
		case ours:
			kill(path)
		default:
			info, err := e.Info()
			if err != nil || time.Since(info.ModTime()) < staleAfter || len(cgroupPids(path)) > 0 {
				continue
			}
		}
		if removeTree(path) == nil {
			removed++
		}
	}
	return removed
}

// cgroupPids returns the processes in the cgroup at dir and below it.
func cgroupPids(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if pid, err := strconv.Atoi(s.Text()); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// signalAll sends SIGKILL to every process of the cgroup at dir and below.
func signalAll(dir string) {
	for _, pid := range cgroupPids(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// removeTree removes the cgroup at dir and every cgroup under it, retrying
// while the last processes exit (up to about 2 s). os.RemoveAll removes
// child directories before their parent; the kernel's files in them cannot
// be unlinked and need not be (rmdir removes a cgroup with its files).
func removeTree(dir string) error {
	var err error
	for delay := time.Millisecond; ; delay *= 2 {
		if err = os.RemoveAll(dir); err == nil || delay > time.Second {
			return err
		}
		time.Sleep(delay)
	}
}
