package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// cgroup v1 (legacy and hybrid hosts): the limits are in the memory, pids
// and cpu controllers, at <own cgroup>/lamina/<node>/<sandbox> in each. A
// control group beside them freezes and kills: on a hybrid host, a cgroup
// of the same path in the unified hierarchy, whose core files work without
// any controller; on a legacy host, one in the v1 freezer controller.

// v1Controllers are the v1 controllers that hold sandboxes' limits.
var v1Controllers = []string{"memory", "pids", "cpu"}

type v1Node struct {
	host    cgroupHost
	name    string
	limits  nodeLimits
	control controlParent // where sandboxes' control groups go
	swap    bool          // memory.memsw.* exist: swap is accounted

	mu sync.Mutex
	cg cgroup1.Cgroup // the node in memory, pids and cpu
}

// v1Path is the path of lamina/<rel> under this process's cgroup in each
// v1 controller.
func v1Path(host cgroupHost, rel string) cgroup1.Path {
	return func(name cgroup1.Name) (string, error) {
		own, ok := host.own[string(name)]
		if !ok {
			return "", fmt.Errorf("this process is in no cgroup of the %s controller", name)
		}
		return filepath.Join(own, laminaDir, rel), nil
	}
}

func newV1Node(host cgroupHost, name string, limits nodeLimits) (*v1Node, error) {
	for _, c := range v1Controllers {
		if _, err := os.Stat(filepath.Join(host.root, c, "cgroup.procs")); err != nil {
			return nil, fmt.Errorf("cgroup v1 controller %s is not mounted at %s", c, filepath.Join(host.root, c))
		}
	}
	control, err := newControlParent(host, name)
	if err != nil {
		return nil, err
	}
	for _, c := range v1Controllers {
		sweep(filepath.Join(host.root, c, host.own[c], laminaDir), signalAll)
	}
	n := &v1Node{host: host, name: name, limits: limits, control: control,
		swap: fileExists(filepath.Join(host.root, "memory", "memory.memsw.limit_in_bytes"))}
	if err := n.create(); err != nil {
		control.remove()
		return nil, err
	}
	return n, nil
}

// create creates the node in memory, pids and cpu with its limits (again,
// should something have removed it).
func (n *v1Node) create() error {
	cg, err := cgroup1.New(v1Path(n.host, n.name), nodeResources(n.limits, n.swap), cgroup1.WithHierarchy(n.hierarchy))
	if err != nil {
		return fmt.Errorf("cgroups: node: %w", err)
	}
	n.cg = cg
	return nil
}

// hierarchy is the v1 controllers that hold the limits.
func (n *v1Node) hierarchy() ([]cgroup1.Subsystem, error) {
	return []cgroup1.Subsystem{cgroup1.NewMemory(n.host.root), cgroup1.NewPids(n.host.root), cgroup1.NewCpu(n.host.root)}, nil
}

// dir is the node's directory in a v1 controller.
func (n *v1Node) dir(controller string) string {
	return filepath.Join(n.host.root, controller, n.host.own[controller], laminaDir, n.name)
}

func (n *v1Node) pidsDir() string { return n.dir("pids") }

func (n *v1Node) newSandbox(id string, memoryMB int) (sandboxCgroup, error) {
	// Older Lamina servers on this host sweep empty cgroups under lamina/
	// of the shared v1 controllers, an idle node among them.
	n.mu.Lock()
	for _, c := range v1Controllers {
		if !fileExists(n.dir(c)) {
			if err := n.create(); err != nil {
				n.mu.Unlock()
				return nil, err
			}
			break
		}
	}
	node := n.cg
	n.mu.Unlock()
	cg, err := node.New(id, sandboxResources(memoryMB, n.swap))
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	s := &v1Sandbox{cg: cg, memDir: filepath.Join(n.dir("memory"), id), cpuDir: filepath.Join(n.dir("cpu"), id), swap: n.swap}
	if s.ctl, err = n.control.newGroup(id); err != nil {
		cg.Delete()
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return s, nil
}

func (n *v1Node) remove() error {
	err := n.control.remove()
	signalAll(n.dir("memory"))
	for _, c := range v1Controllers {
		if e := removeTree(n.dir(c)); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// v1Sandbox is a sandbox's cgroup on a v1 (legacy or hybrid) host.
type v1Sandbox struct {
	cg     cgroup1.Cgroup
	memDir string
	cpuDir string
	ctl    controlGroup
	swap   bool // swap is accounted: memory+swap is limited too

	// memory.max_usage_in_bytes, read for the peak and written to reset it
	// around every invocation, stays open (opening a cgroup file costs
	// about 10 µs); nil if it cannot be opened.
	peakOnce sync.Once
	peak     *os.File

	removeOnce sync.Once
	removeErr  error
}

func (s *v1Sandbox) add(pid int) error {
	if err := s.cg.Add(cgroup1.Process{Pid: pid}); err != nil {
		return err
	}
	return s.ctl.add(pid)
}

// setMemory writes the memory and CPU limits itself: the kernel refuses a
// memory limit above the memory+swap limit, and containerd's Update (v3.1.3)
// writes the memory limit first even when it grows.
func (s *v1Sandbox) setMemory(memoryMB int) error {
	r := sandboxResources(memoryMB, s.swap)
	limit := strconv.FormatInt(*r.Memory.Limit, 10)
	memory := []string{"memory.limit_in_bytes"}
	if s.swap {
		memory = append(memory, "memory.memsw.limit_in_bytes")
		if readInt(filepath.Join(s.memDir, "memory.limit_in_bytes")) < *r.Memory.Limit {
			memory[0], memory[1] = memory[1], memory[0] // it grows: memory+swap first
		}
	}
	writes := [][2]string{
		{filepath.Join(s.memDir, memory[0]), limit},
		{filepath.Join(s.cpuDir, "cpu.shares"), strconv.FormatUint(*r.CPU.Shares, 10)},
		{filepath.Join(s.cpuDir, "cpu.cfs_quota_us"), strconv.FormatInt(*r.CPU.Quota, 10)},
	}
	if len(memory) > 1 {
		writes = append(writes, [2]string{filepath.Join(s.memDir, memory[1]), limit})
	}
	for _, w := range writes {
		if err := writeFile(w[0], w[1]); err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
	}
	return nil
}

func (s *v1Sandbox) freeze() error { return s.ctl.freeze() }
func (s *v1Sandbox) thaw() error   { return s.ctl.thaw() }
func (s *v1Sandbox) kill() error   { return s.ctl.kill() }

func (s *v1Sandbox) oomKills() int {
	return int(keyedValue(filepath.Join(s.memDir, "memory.oom_control"), "oom_kill"))
}

func (s *v1Sandbox) peakFile() *os.File {
	s.peakOnce.Do(func() {
		s.peak, _ = os.OpenFile(filepath.Join(s.memDir, "memory.max_usage_in_bytes"), os.O_RDWR, 0)
	})
	return s.peak
}

func (s *v1Sandbox) memoryPeak() int64 { return readOpenInt(s.peakFile()) }

func (s *v1Sandbox) resetMemoryPeak() {
	if f := s.peakFile(); f != nil {
		_, _ = f.WriteAt([]byte("0"), 0)
	}
}

func (s *v1Sandbox) remove() error {
	s.removeOnce.Do(func() {
		if f := s.peakFile(); f != nil {
			f.Close()
		}
		err := s.ctl.remove()
		for delay := time.Millisecond; delay < 2*time.Second; delay *= 2 {
			if s.removeErr = s.cg.Delete(); s.removeErr == nil {
				break
			}
			time.Sleep(delay)
		}
		if s.removeErr == nil {
			s.removeErr = err
		}
	})
	return s.removeErr
}

// controlGroup freezes, thaws and kills the processes of one sandbox as a
// whole.
type controlGroup interface {
	add(pid int) error
	freeze() error
	thaw() error
	kill() error
	remove() error
}

// controlParent makes the control groups of a node's sandboxes.
type controlParent interface {
	newGroup(id string) (controlGroup, error)
	// remove kills what is left in the node's control groups and removes
	// them.
	remove() error
}

// newControlParent creates the node's parent of control groups: in the
// unified hierarchy on a hybrid host whose unified hierarchy can freeze,
// else in the v1 freezer controller. It sweeps the nodes of dead servers
// there first.
func newControlParent(host cgroupHost, name string) (controlParent, error) {
	if host.mode == cgroupHybrid {
		base := filepath.Join(host.root, "unified", host.own[""], laminaDir)
		sweep(base, killUnified)
		dir := filepath.Join(base, name)
		if err := mkdirCgroup(host, dir); err == nil && fileExists(filepath.Join(dir, "cgroup.freeze")) {
			return unifiedParent{host: host, dir: dir}, nil
		}
		removeTree(dir) // a kernel older than 5.2 cannot freeze with cgroup v2
	}
	own, ok := host.own["freezer"]
	if !ok {
		return nil, fmt.Errorf("cgroups: neither cgroup.freeze in %s nor the v1 freezer controller is available", filepath.Join(host.root, "unified"))
	}
	base := filepath.Join(host.root, "freezer", own, laminaDir)
	sweep(base, killFrozen)
	dir := filepath.Join(base, name)
	if err := mkdirCgroup(host, dir); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return freezerParent{host: host, dir: dir}, nil
}

// mkdirCgroup creates dir and its missing parents as cgroups.
func mkdirCgroup(host cgroupHost, dir string) error {
	if fileExists(dir) {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir && !fileExists(parent) {
		if err := mkdirCgroup(host, parent); err != nil {
			return err
		}
	}
	if err := host.mkdir(dir); err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}

// unifiedParent holds a node's control groups in the v2 hierarchy (the
// unified one of a hybrid host, which has no controllers).
type unifiedParent struct {
	host cgroupHost
	dir  string
}

func (p unifiedParent) newGroup(id string) (controlGroup, error) {
	return newUnifiedGroup(p.host, filepath.Join(p.dir, id))
}

func (p unifiedParent) remove() error {
	killUnified(p.dir)
	return removeTree(p.dir)
}

// unifiedGroup is a control group in a v2 hierarchy.
type unifiedGroup struct {
	m   *cgroup2.Manager
	dir string
	// cgroup.freeze stays open: the worker freezes and thaws around every
	// warm invocation, and a write to an open file costs about 2 µs where
	// opening, writing and reading back as containerd does costs 20.
	freezeFile *os.File
}

// newUnifiedGroup creates the v2 cgroup dir (its parent exists) and loads
// it.
func newUnifiedGroup(host cgroupHost, dir string) (*unifiedGroup, error) {
	mount := host.root
	if host.mode == cgroupHybrid {
		mount = filepath.Join(host.root, "unified")
	}
	if err := host.mkdir(dir); err != nil {
		return nil, err
	}
	rel, _ := filepath.Rel(mount, dir)
	m, err := cgroup2.Load("/"+rel, cgroup2.WithMountpoint(mount))
	if err != nil {
		os.Remove(dir)
		return nil, err
	}
	freezeFile, err := os.OpenFile(filepath.Join(dir, "cgroup.freeze"), os.O_WRONLY, 0)
	if err != nil {
		os.Remove(dir)
		return nil, err
	}
	return &unifiedGroup{m: m, dir: dir, freezeFile: freezeFile}, nil
}

func (g *unifiedGroup) add(pid int) error { return g.m.AddProc(uint64(pid)) }

// freeze writes cgroup.freeze; the kernel stops the processes
// asynchronously (cgroup.events says "frozen 1" once all have).
func (g *unifiedGroup) freeze() error { return g.writeFreeze("1") }
func (g *unifiedGroup) thaw() error   { return g.writeFreeze("0") }

func (g *unifiedGroup) writeFreeze(value string) error {
	_, err := g.freezeFile.WriteAt([]byte(value), 0)
	return err
}

// kill writes cgroup.kill (kernel 5.14 and later; containerd falls back to
// freezing and signalling every process). Frozen processes die too.
func (g *unifiedGroup) kill() error { return g.m.Kill() }

func (g *unifiedGroup) remove() error {
	g.freezeFile.Close()
	return removeTree(g.dir)
}

// killUnified kills every process in the v2 cgroup at dir and below.
func killUnified(dir string) {
	if writeFile(filepath.Join(dir, "cgroup.kill"), "1") != nil {
		signalAll(dir)
	}
}

// freezerParent holds a node's control groups in the v1 freezer
// controller.
type freezerParent struct {
	host cgroupHost
	dir  string
}

func (p freezerParent) newGroup(id string) (controlGroup, error) {
	dir := filepath.Join(p.dir, id)
	if err := p.host.mkdir(dir); err != nil {
		return nil, err
	}
	return freezerGroup(dir), nil
}

func (p freezerParent) remove() error {
	killFrozen(p.dir)
	return removeTree(p.dir)
}

// freezerGroup is a cgroup of the v1 freezer controller. The controller's
// frozen processes do not die of SIGKILL until thawed, so kill freezes,
// signals and thaws.
type freezerGroup string

func (g freezerGroup) add(pid int) error {
	return writeFile(filepath.Join(string(g), "cgroup.procs"), strconv.Itoa(pid))
}

// freeze writes freezer.state; the kernel stops the processes
// asynchronously (freezer.state reads FROZEN once all have).
func (g freezerGroup) freeze() error {
	return writeFile(filepath.Join(string(g), "freezer.state"), "FROZEN")
}

func (g freezerGroup) thaw() error {
	return writeFile(filepath.Join(string(g), "freezer.state"), "THAWED")
}

// kill freezes the group so that nothing in it forks meanwhile, waits
// (briefly) until it is frozen, signals every process and thaws it so that
// they die.
func (g freezerGroup) kill() error {
	if err := g.freeze(); err != nil {
		return err
	}
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		state, _ := os.ReadFile(filepath.Join(string(g), "freezer.state"))
		if strings.TrimSpace(string(state)) == "FROZEN" {
			break
		}
	}
	for _, pid := range cgroupPids(string(g)) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return g.thaw()
}

func (g freezerGroup) remove() error { return removeTree(string(g)) }

// killFrozen kills every process in the v1 freezer cgroup at dir and its
// children, thawing them so that they die.
func killFrozen(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			freezerGroup(filepath.Join(dir, e.Name())).kill()
		}
	}
	signalAll(dir)
}
