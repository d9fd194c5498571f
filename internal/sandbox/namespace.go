//go:build linux && cgo

package sandbox

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Where a namespace sandbox shows things, as Lambda does.
var namespacePaths = Paths{TaskRoot: "/var/task", RuntimeDir: "/var/runtime", Opt: "/opt", Tmp: "/tmp"}

// The runtime's identity inside its user namespace: Lambda's sbx_user1051.
const (
	sandboxUID = 993
	sandboxGID = 990
	// runtimeAPIAddr is where each sandbox's Runtime API answers, on the
	// sandbox's own loopback, and endpointAddr its AWS endpoint.
	runtimeAPIAddr = "127.0.0.1:9001"
	endpointAddr   = "127.0.0.1:9002"
	// setupTimeout bounds building a sandbox's root file system.
	setupTimeout = 10 * time.Second
)

// NamespaceProvider isolates each environment with Linux namespaces (mount,
// PID, network, IPC, UTS, and a user namespace for the runtime), a root file
// system of its own, cgroup limits, no capabilities, no_new_privs and a
// seccomp filter. Every sandbox is frozen and killed through its cgroup. It
// needs root, and the memory, pids and cpu controllers on cgroup v1 or v2.
type NamespaceProvider struct {
	rootDir string // an empty directory each init mounts its new root on, privately
	seccomp []byte // the assembled seccomp program
	uids    uidRangeAllocator
	// disks makes each sandbox's /tmp; nil when this host cannot, and /tmp
	// is a tmpfs, for the reason in tmpfsReason.
	disks       *tmpDisks
	tmpfsReason string
	node        cgroupNode // the parent cgroup of all of this provider's sandboxes
	// network gives sandboxes prepared from now on their network; nil:
	// they have only their loopback.
	network   atomic.Pointer[Network]
	prepared  *preparedPool
	prestarts prestartPools // sandboxes with a runtime started ahead (prestart.go)
	made      atomic.Int64  // numbers the sandboxes' cgroups
	log       *slog.Logger
}

// NamespaceOptions configure a NamespaceProvider.
type NamespaceOptions struct {
	// StateDir is the directory the provider keeps its state in.
	StateDir string
	// TmpDir is where the images of sandboxes' /tmp disks are made; empty
	// means StateDir/images. Its file system must keep 1 GiB free beyond
	// a new sandbox's whole /tmp.
	TmpDir string
	// MemoryBudgetMB bounds the memory of all sandboxes together (the
	// node's cgroup limit).
	MemoryBudgetMB int
	// NodePids bounds the processes and threads of all sandboxes together;
	// zero means DefaultNodePids().
	NodePids int64
	// Network gives the sandboxes an outbound network; nil: they have only
	// their loopback (see also UseNetwork). The caller closes it after the
	// provider.
	Network *Network
	// Logger receives a line about the cgroups in use, and failures to
	// prepare sandboxes; nil means slog.Default().
	Logger *slog.Logger
}

// NewNamespaceProvider checks that this host can run namespace sandboxes,
// creates the node's parent cgroup (sweeping those of servers that are
// gone) and prepares opts.StateDir. Close removes the parent cgroup.
func NewNamespaceProvider(opts NamespaceOptions) (*NamespaceProvider, error) {
	if err := CheckNamespaceUser(); err != nil {
		return nil, err
	}
	if opts.MemoryBudgetMB <= 0 {
		return nil, errors.New("the namespace sandbox needs a memory budget")
	}
	if opts.NodePids == 0 {
		opts.NodePids = DefaultNodePids()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	prog, err := seccompProgram()
	if err != nil {
		return nil, err
	}
	rootDir := filepath.Join(opts.StateDir, "root")
	if err := os.MkdirAll(rootDir, 0o700); err != nil {
		return nil, err
	}
	host, err := thisHost()
	if err != nil {
		return nil, err
	}
	node, err := newCgroupNode(host, nodeLimits{memoryMB: opts.MemoryBudgetMB, pids: opts.NodePids})
	if err != nil {
		return nil, err
	}
	opts.Logger.Info("sandbox cgroups", "cgroup_mode", host.mode.String(), "node_cgroup", node.pidsDir(),
		"node_pids_max", opts.NodePids, "node_memory_max_mb", opts.MemoryBudgetMB)
	p := &NamespaceProvider{rootDir: rootDir, seccomp: prog, node: node, log: opts.Logger}
	if opts.TmpDir == "" {
		opts.TmpDir = filepath.Join(opts.StateDir, "images")
	}
	if p.disks, err = newTmpDisks(opts.TmpDir); err != nil {
		p.tmpfsReason = err.Error()
	}
	p.network.Store(opts.Network)
	p.prepared = newPreparedPool(p, preparedSandboxes, true, func() (*namespaceSandbox, error) { return p.prepare(p.name()) },
		opts.Logger)
	return p, nil
}

// CheckNamespaceUser says why this process cannot run namespace sandboxes
// whatever the host has, or nil: they need root.
func CheckNamespaceUser() error {
	if os.Geteuid() != 0 {
		return errors.New("the namespace sandbox needs root")
	}
	return nil
}

// Close destroys the prepared sandboxes and removes the node's parent
// cgroup, killing anything left in it. Call it once every sandbox is
// destroyed.
func (p *NamespaceProvider) Close() error {
	p.prepared.close()
	p.prestarts.each((*preparedPool).close)
	return p.node.remove()
}

// TmpfsReason says why sandboxes' /tmp is a tmpfs, charged to the
// function's memory, instead of a disk of their own; "" when it is a disk.
func (p *NamespaceProvider) TmpfsReason() string { return p.tmpfsReason }

// UseNetwork gives every sandbox created from now on an outbound network
// from n (nil: none), and lets go of those prepared with another. It must
// not run concurrently with Create. The caller closes n once every sandbox
// of n is destroyed, prepared ones too: after Close, or after another
// UseNetwork.
func (p *NamespaceProvider) UseNetwork(n *Network) {
	p.prepared.setNetwork(n)
	p.prestarts.each(func(pool *preparedPool) {
		pool.mu.Lock()
		pool.drain()
		pool.mu.Unlock()
		pool.refill()
	})
}

// name returns the name of a new sandbox's cgroups.
func (p *NamespaceProvider) name() string { return "sandbox-" + strconv.FormatInt(p.made.Add(1), 10) }

// Name returns "namespace".
func (p *NamespaceProvider) Name() string { return "namespace" }

// Create takes a prepared sandbox (prepared.go) with spec's runtime started
// ahead if spec has one and one is ready (prestart.go), or one without, or
// prepares one if none is ready; gives it spec's limits, has its init
// finish the root file system with the function's directories, and returns
// it.
func (p *NamespaceProvider) Create(ctx context.Context, spec Spec) (Sandbox, error) {
	if spec.EphemeralMB <= 0 {
		spec.EphemeralMB = defaultEphemeralMB
	}
	if spec.Prestart != nil {
		if s := p.prestarts.take(p, spec); s != nil {
			err := s.finish(p, spec)
			if err == nil {
				return s, nil
			}
			s.Destroy()
			p.log.Warn("a sandbox with its runtime started ahead failed; starting one afresh", "sandbox", spec.ID, "err", err)
		}
	}
	s, err := p.prepared.take()
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", spec.ID, err)
	}
	if err := s.finish(p, spec); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("sandbox %s: %w", spec.ID, err)
	}
	return s, nil
}

// preparedMemoryMB is the memory size a prepared sandbox's cgroups have
// limits for (Lambda's default); Create changes them for other sizes.
const preparedMemoryMB = 128

// prepare makes a sandbox whose init runs in its namespaces and cgroups and
// has built everything of the root file system that is the same for every
// function (preparedPlan), with the Runtime API listener open: all but
// finish. name names its cgroups.
func (p *NamespaceProvider) prepare(name string) (*namespaceSandbox, error) {
	base, err := p.uids.take()
	if err != nil {
		return nil, err
	}
	s := &namespaceSandbox{name: name, uidBase: base, seccomp: p.seccomp, exited: make(chan struct{}), uids: &p.uids,
		startErr: make(chan error, 1), network: p.network.Load(), memoryMB: preparedMemoryMB}
	if s.network != nil {
		if s.net, err = s.network.take(); err != nil {
			s.Destroy()
			return nil, err
		}
	}
	if err := s.prepare(p.node, p.rootDir); err != nil {
		s.Destroy()
		return nil, err
	}
	return s, nil
}

// namespaceSandbox is one sandbox: its init process (PID 1 inside), its
// cgroups and its Runtime API and AWS endpoint listeners.
type namespaceSandbox struct {
	name     string // of its cgroups
	uidBase  int
	seccomp  []byte
	uids     *uidRangeAllocator
	init     *exec.Cmd
	ctl      *net.UnixConn // control socket to the init
	cg       sandboxCgroup
	memoryMB int      // the memory size the cgroups have limits for
	tmp      *tmpDisk // the disk of /tmp, or nil for a tmpfs
	ln       net.Listener
	endpoint net.Listener
	network  *Network
	net      *netLease // nil without a network
	// Of a runtime started ahead (prestart.go): what it runs, its output
	// (until PrestartedOutput hands it over) and where its assignment goes.
	prestarted  *Prestart
	output      *os.File
	outputTaken bool
	assign      *os.File
	exited      chan struct{}
	// reported is closed once the init's exit report has been read (or
	// cannot be); it exists only after Start.
	reported chan struct{}
	startErr chan error // awaitExit's verdict on a start

	mu      sync.Mutex
	exitErr error
	destroy sync.Once

	// freezeMu orders Freeze and Thaw before Destroy removes the cgroup.
	freezeMu  sync.Mutex
	destroyed bool
}

// prepare starts the init in its namespaces and cgroups, has it build the prepared part of the root file system, and opens the
// Runtime API listener in its network namespace.
func (s *namespaceSandbox) prepare(node cgroupNode, rootDir string) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "sandbox-control"), os.NewFile(uintptr(fds[1]), "sandbox-control")
	defer theirs.Close()
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return err
	}
	s.ctl = conn.(*net.UnixConn)

	cloneflags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
	resolvConf := ""
	var netns *os.File
	if s.net != nil {
		// The init enters the prepared namespace the prepare message
		// carries, and the environment resolves names through the gateway.
		netns, resolvConf = s.net.ns, s.network.resolvConf
	} else {
		cloneflags |= unix.CLONE_NEWNET
		if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			resolvConf = string(data)
		}
	}
	s.init = &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"lamina-sandbox-init"},
		Env:        []string{initEnv + "=3"},
		ExtraFiles: []*os.File{theirs},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneflags,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	if s.cg, err = node.newSandbox(s.name, s.memoryMB); err != nil {
		return err
	}
	if err := startProcess(s.init); err != nil {
		return fmt.Errorf("start init: %w", err)
	}
	// Watched from now on: Destroy waits for the init's end.
	go s.watch()
	pid := s.init.Process.Pid
	if err := s.cg.add(pid); err != nil {
		return err
	}
	// The memory limit must pick the runtime, never the init.
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte("-1000"), 0)

	var files []*os.File
	if netns != nil {
		files = append(files, netns)
	}
	if err := s.send(files, preparedPlan(rootDir, resolvConf)...); err != nil {
		return err
	}
	if _, err := s.expect("prepared", time.Now().Add(setupTimeout)); err != nil {
		return err
	}
	lns, err := listenInNetns(pid, runtimeAPIAddr, endpointAddr)
	if err != nil {
		return err
	}
	s.ln, s.endpoint = lns[0], lns[1]
	return nil
}

// finish gives a prepared sandbox spec's memory limits, if they are not
// the prepared ones, and /tmp, and has the init add the function's
// directories to the root file system and enter it.
func (s *namespaceSandbox) finish(p *NamespaceProvider, spec Spec) error {
	if spec.MemoryMB != s.memoryMB {
		if err := s.cg.setMemory(spec.MemoryMB); err != nil {
			return err
		}
		s.memoryMB = spec.MemoryMB
	}
	plan := functionPlan(spec, s.prestarted == nil)
	var extra []*os.File
	if p.disks != nil {
		var err error
		if s.tmp, err = p.disks.take(spec.EphemeralMB); err != nil {
			return err
		}
		// The disk's file system is mounted already, detached.
		extra = append(extra, s.tmp.mount)
		plan = append(plan, "attach", "/tmp")
	} else {
		plan = append(plan, "tmpfs", "/tmp", fmt.Sprintf("size=%dm,mode=1777", spec.EphemeralMB), "nosuid,nodev")
	}
	if s.prestarted == nil { // else the root is read-only already
		plan = append(plan, "readonly")
	}
	return s.setup(plan, extra...)
}

// setup has the init carry out plan, its bind and overlay operations made
// by the host (detachedMounts); each "attach" of plan itself takes the next
// of extra, after those.
func (s *namespaceSandbox) setup(plan []string, extra ...*os.File) error {
	plan, mounts, err := detachedMounts(plan)
	defer func() {
		for _, m := range mounts {
			m.Close() // the init has its own once they are sent
		}
	}()
	if err != nil {
		return err
	}
	if err := s.send(append(mounts[:len(mounts):len(mounts)], extra...), append([]string{"setup"}, plan...)...); err != nil {
		return err
	}
	_, err = s.expect("ready", time.Now().Add(setupTimeout))
	return err
}

// detachedMounts turns the bind and overlay operations of plan into mounts
// the host makes, detached, since the init makes them after it has entered
// its root, where the host's directories are out of reach: each becomes an
// "attach" of the next of mounts (open_tree clones of the host's
// directories with their flags, a fsmount of the overlay). Other
// operations stay. The caller closes mounts, also on error.
func detachedMounts(plan []string) (ops []string, mounts []*os.File, err error) {
	arity := map[string]int{"mkdir": 2, "bind": 3, "tmpfs": 3, "overlay": 2, "file": 3, "symlink": 2, "attach": 1, "readonly": 0}
	for i := 0; i < len(plan); {
		op := plan[i]
		n, ok := arity[op]
		if !ok || i+n >= len(plan) {
			return ops, mounts, fmt.Errorf("sandbox plan: bad operation %q", op)
		}
		args := plan[i+1 : i+1+n]
		var m *os.File
		switch op {
		case "bind":
			m, err = cloneMount(args[0], args[2])
			ops = append(ops, "attach", args[1])
		case "overlay":
			m, err = overlayMount(args[1])
			ops = append(ops, "attach", args[0])
		default:
			ops = append(ops, plan[i:i+1+n]...)
		}
		if err != nil {
			return ops, mounts, err
		}
		if m != nil {
			mounts = append(mounts, m)
		}
		i += 1 + n
	}
	return ops, mounts, nil
}

// cloneMount makes a detached copy of the mounts at and under the host
// directory src (open_tree), private, with flags ("ro,nosuid,nodev").
func cloneMount(src, flags string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", src, err)
	}
	attr := &unix.MountAttr{Attr_set: mountAttrs(flags), Propagation: unix.MS_PRIVATE}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", src, err)
	}
	return os.NewFile(uintptr(fd), src), nil
}

// overlayMount makes a detached, read-only overlay of the host directories
// lower ("top:…:bottom"). The kernel takes at most 256 bytes for lowerdir
// from fsconfig, so it gets the directories as /proc/self/fd/N.
func overlayMount(lower string) (*os.File, error) {
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	defer unix.Close(fs)
	var short []string
	for dir := range strings.SplitSeq(lower, ":") {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("overlay: %s: %w", dir, err)
		}
		defer unix.Close(fd)
		short = append(short, "/proc/self/fd/"+strconv.Itoa(fd))
	}
	if err := unix.FsconfigSetString(fs, "lowerdir", strings.Join(short, ":")); err != nil {
		return nil, fmt.Errorf("overlay of %s: lowerdir: %w", lower, err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("overlay of %s: create: %w", lower, err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, fmt.Errorf("overlay of %s: %w", lower, err)
	}
	return os.NewFile(uintptr(fd), "overlay"), nil
}

// mountAttrs maps a list of ro, nosuid, nodev, noexec to MOUNT_ATTR_ flags.
func mountAttrs(flags string) uint64 {
	var attrs uint64
	for f := range strings.SplitSeq(flags, ",") {
		switch f {
		case "ro":
			attrs |= unix.MOUNT_ATTR_RDONLY
		case "nosuid":
			attrs |= unix.MOUNT_ATTR_NOSUID
		case "nodev":
			attrs |= unix.MOUNT_ATTR_NODEV
		case "noexec":
			attrs |= unix.MOUNT_ATTR_NOEXEC
		}
	}
	return attrs
}

// preparedPlan is the "prepare" message: the part of a sandbox's root file
// system that is the same for every function, operation by operation (see
// nsinit.c).
func preparedPlan(rootDir, resolvConf string) []string {
	plan := []string{"prepare", rootDir, "lamina"}
	mkdir := func(path, mode string) { plan = append(plan, "mkdir", path, mode) }
	bind := func(src, dst, flags string) { plan = append(plan, "bind", src, dst, flags) }
	file := func(path, mode, content string) { plan = append(plan, "file", path, mode, content) }
	symlink := func(target, path string) { plan = append(plan, "symlink", target, path) }

	// The system's programs and libraries, read-only. /bin, /lib… are
	// symlinks into /usr on merged-/usr systems, directories elsewhere.
	for _, dir := range systemDirs {
		info, err := os.Lstat(dir)
		switch {
		case err != nil:
		case info.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(dir); err == nil {
				symlink(target, dir)
			}
		case info.IsDir():
			mkdir(dir, "0755")
			bind(dir, dir, "ro,nosuid,nodev")
		}
	}

	// A minimal /etc: nothing of the host's but what programs need to run.
	mkdir("/etc", "0755")
	file("/etc/passwd", "0644", "root:x:0:0:root:/root:/sbin/nologin\n"+
		"sbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n"+
		"nobody:x:65534:65534:nobody:/:/sbin/nologin\n")
	file("/etc/group", "0644", "root:x:0:\nsbx_user1051:x:990:\nnobody:x:65534:\n")
	file("/etc/hosts", "0644", "127.0.0.1\tlocalhost sandbox.localdomain\n::1\tlocalhost\n")
	file("/etc/nsswitch.conf", "0644", "passwd: files\ngroup: files\nhosts: files dns\n")
	file("/etc/resolv.conf", "0644", resolvConf)
	symlink("/usr/share/zoneinfo/UTC", "/etc/localtime")
	for _, f := range []string{"/etc/ld.so.cache", "/etc/ld.so.conf"} {
		if _, err := os.Stat(f); err == nil {
			file(f, "0644", "")
			bind(f, f, "ro,nosuid,nodev")
		}
	}
	for _, dir := range []string{"/etc/ssl", "/etc/pki", "/etc/ca-certificates", "/etc/alternatives"} {
		if info, err := os.Stat(dir); err == nil && info.IsDir() {
			mkdir(dir, "0755")
			bind(dir, dir, "ro,nosuid,nodev")
		}
	}

	// Where the function's code, runtime and layers go, and scratch space.
	mkdir("/var", "0755")
	mkdir("/var/task", "0755")
	mkdir("/var/runtime", "0755")
	mkdir("/opt", "0755")
	mkdir("/tmp", "1777")
	mkdir("/proc", "0555")

	// A minimal /dev of the host's harmless devices.
	mkdir("/dev", "0755")
	plan = append(plan, "tmpfs", "/dev", "size=64k,mode=755", "nosuid,noexec")
	for _, dev := range []string{"null", "zero", "full", "random", "urandom"} {
		file("/dev/"+dev, "0666", "")
		bind("/dev/"+dev, "/dev/"+dev, "nosuid,noexec")
	}
	symlink("/proc/self/fd", "/dev/fd")
	symlink("/proc/self/fd/0", "/dev/stdin")
	symlink("/proc/self/fd/1", "/dev/stdout")
	symlink("/proc/self/fd/2", "/dev/stderr")
	return plan
}

// functionPlan is the rest of the root file system, the directories of
// spec's function (see nsinit.c): its interpreter's and the runtime's files
// (withRuntime: unless a runtime started ahead has them already), its code
// and its layers; /tmp is the caller's.
func functionPlan(spec Spec, withRuntime bool) []string {
	var plan []string
	bind := func(src, dst, flags string) { plan = append(plan, "bind", src, dst, flags) }
	if withRuntime {
		plan = readOnlyDirsPlan(spec.ReadOnlyDirs)
		if spec.RuntimeDir != "" {
			bind(spec.RuntimeDir, "/var/runtime", "ro,nosuid,nodev")
		}
	}
	bind(spec.TaskDir, "/var/task", "ro,nosuid,nodev")
	switch len(spec.LayerDirs) {
	case 0:
	case 1:
		bind(spec.LayerDirs[0], "/opt", "ro,nosuid,nodev")
	default: // overlay's first lower directory is the top: the last layer wins
		lower := make([]string, len(spec.LayerDirs))
		for i, dir := range spec.LayerDirs {
			lower[len(lower)-1-i] = dir
		}
		plan = append(plan, "overlay", "/opt", strings.Join(lower, ":"))
	}
	return plan
}

// send writes one message of fields to the init, with the descriptors of
// files (if any) attached.
func (s *namespaceSandbox) send(files []*os.File, fields ...string) error {
	size := 0
	for _, f := range fields {
		size += 4 + len(f)
	}
	msg := make([]byte, 0, size)
	for _, f := range fields {
		msg = binary.LittleEndian.AppendUint32(msg, uint32(len(f)))
		msg = append(msg, f...)
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := s.ctl.WriteMsgUnix(msg, oob, nil); err != nil {
		return fmt.Errorf("sandbox init: %w", err)
	}
	return nil
}

// receive reads one message from the init and splits it into fields.
func (s *namespaceSandbox) receive(deadline time.Time) ([]string, error) {
	buf := make([]byte, 8192)
	s.ctl.SetReadDeadline(deadline)
	n, _, _, _, err := s.ctl.ReadMsgUnix(buf, nil)
	if err != nil {
		return nil, err
	}
	var fields []string
	for msg := buf[:n]; len(msg) >= 4; {
		l := int(binary.LittleEndian.Uint32(msg))
		if 4+l > len(msg) {
			return nil, errors.New("sandbox init: malformed message")
		}
		fields = append(fields, string(msg[4:4+l]))
		msg = msg[4+l:]
	}
	if len(fields) == 0 {
		return nil, errors.New("sandbox init: empty message")
	}
	return fields, nil
}

// expect waits for a message named want; an "error" message or the init's
// end is returned as an error.
func (s *namespaceSandbox) expect(want string, deadline time.Time) ([]string, error) {
	fields, err := s.receive(deadline)
	switch {
	case err != nil:
		return nil, fmt.Errorf("sandbox init: waiting for %s: %w", want, err)
	case fields[0] == want:
		return fields, nil
	case fields[0] == "error" && len(fields) > 1:
		return nil, errors.New(fields[1])
	}
	return nil, fmt.Errorf("sandbox init: got %q, want %s", fields[0], want)
}

// watch waits for the init to end and records how the runtime ended. The
// init reports the runtime's exit just before it exits itself; an init that
// ended without a report was killed.
func (s *namespaceSandbox) watch() {
	_ = s.init.Wait()
	s.mu.Lock()
	reported := s.reported
	s.mu.Unlock()
	if reported != nil {
		<-reported
	}
	s.mu.Lock()
	if s.exitErr == nil {
		s.exitErr = &ExitError{Signal: syscall.SIGKILL}
	}
	s.mu.Unlock()
	close(s.exited)
}

func (s *namespaceSandbox) Paths() Paths { return namespacePaths }

func (s *namespaceSandbox) RuntimeAPI() (net.Listener, string) { return s.ln, runtimeAPIAddr }

func (s *namespaceSandbox) Endpoint() (net.Listener, string) { return s.endpoint, endpointAddr }

// processFields is the message that has the init fork p: verb "start" or
// "spawn".
func (s *namespaceSandbox) processFields(verb string, p Process) []string {
	fields := []string{verb, strconv.Itoa(sandboxUID), strconv.Itoa(sandboxGID), strconv.Itoa(s.uidBase),
		strconv.Itoa(maxOpenFiles), p.Dir, strconv.Itoa(len(p.Argv))}
	fields = append(fields, p.Argv...)
	fields = append(fields, strconv.Itoa(len(p.Env)))
	fields = append(fields, p.Env...)
	return append(fields, string(s.seccomp))
}

// Spawn has the init fork a process beside the runtime, as it forks the
// runtime; only before Start.
func (s *namespaceSandbox) Spawn(p Process) error {
	if err := s.send([]*os.File{p.Output}, s.processFields("spawn", p)...); err != nil {
		return err
	}
	reply, err := s.receive(time.Now().Add(setupTimeout))
	switch {
	case err != nil:
		return fmt.Errorf("sandbox init: spawn: %w", err)
	case reply[0] == "spawned":
		return nil
	case reply[0] == "error" && len(reply) > 1 && strings.HasPrefix(reply[1], "exec "):
		path, cause, _ := strings.Cut(strings.TrimPrefix(reply[1], "exec "), ": ")
		return &ExecError{Path: path, Err: errors.New(cause)}
	case reply[0] == "error" && len(reply) > 1:
		return errors.New(reply[1])
	}
	return fmt.Errorf("sandbox init: unexpected %q", reply[0])
}

// Dial connects to addr ("host:port") in the sandbox's network namespace,
// as a process of the sandbox would.
func (s *namespaceSandbox) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return dialInNetns(ctx, s.init.Process.Pid, addr)
}

// Start has the init fork the runtime into its own user namespace, as the
// sandbox user, with no privileges left.
func (s *namespaceSandbox) Start(p Process) error {
	if s.prestarted != nil {
		return s.hand(p)
	}
	fields := s.processFields("start", p)
	s.mu.Lock()
	s.reported = make(chan struct{})
	s.mu.Unlock()
	go func() {
		if s.awaitStart() {
			s.awaitExit()
		}
	}()
	if err := s.send([]*os.File{p.Output}, fields...); err != nil {
		return err
	}
	select {
	case err := <-s.startErr:
		return err
	case <-time.After(setupTimeout):
		return errors.New("sandbox init: no answer to start")
	}
}

// awaitStart reads the init's answer to a start: whether the runtime
// started, passed to Start through startErr. It reports whether it did;
// if not, the exit will not be reported (and reported is closed).
func (s *namespaceSandbox) awaitStart() bool {
	reply, err := s.receive(time.Time{})
	switch {
	case err != nil:
		s.startErr <- fmt.Errorf("sandbox init: start: %w", err)
	case reply[0] == "started":
		s.startErr <- nil
		return true
	case reply[0] == "error" && len(reply) > 1 && strings.HasPrefix(reply[1], "exec "):
		path, cause, _ := strings.Cut(strings.TrimPrefix(reply[1], "exec "), ": ")
		s.startErr <- &ExecError{Path: path, Err: errors.New(cause)}
	case reply[0] == "error" && len(reply) > 1:
		s.startErr <- errors.New(reply[1])
	default:
		s.startErr <- fmt.Errorf("sandbox init: unexpected %q", reply[0])
	}
	close(s.reported)
	return false
}

// awaitExit reads the init's report of how the runtime exited, once it
// has started.
func (s *namespaceSandbox) awaitExit() {
	defer close(s.reported)
	fields, err := s.receive(time.Time{})
	if err != nil || fields[0] != "exit" || len(fields) < 3 {
		return // the init ended without a report: watch records a kill
	}
	code, _ := strconv.Atoi(fields[1])
	sig, _ := strconv.Atoi(fields[2])
	s.mu.Lock()
	s.exitErr = exitError(code, syscall.Signal(sig))
	if s.exitErr == nil {
		s.exitErr = errCleanExit
	}
	s.mu.Unlock()
}

// errCleanExit marks a runtime that exited with status 0; ExitError reports
// it as nil.
var errCleanExit = errors.New("exit status 0")

func (s *namespaceSandbox) Exited() <-chan struct{} { return s.exited }

func (s *namespaceSandbox) ExitError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exitErr == errCleanExit {
		return nil
	}
	return s.exitErr
}

func (s *namespaceSandbox) OutOfMemory() bool { return s.cg != nil && s.cg.oomKills() > 0 }

func (s *namespaceSandbox) MemoryPeak() int64 { return s.cg.memoryPeak() }

func (s *namespaceSandbox) ResetMemoryPeak() { s.cg.resetMemoryPeak() }

// Freeze freezes the sandbox's cgroup: the init, the runtime and whatever
// it started.
func (s *namespaceSandbox) Freeze() error {
	s.freezeMu.Lock()
	defer s.freezeMu.Unlock()
	if s.destroyed {
		return errDestroyed
	}
	return s.cg.freeze()
}

// Thaw thaws the sandbox's cgroup.
func (s *namespaceSandbox) Thaw() error {
	s.freezeMu.Lock()
	defer s.freezeMu.Unlock()
	if s.destroyed {
		return errDestroyed
	}
	return s.cg.thaw()
}

// errDestroyed is returned by Freeze and Thaw after Destroy.
var errDestroyed = errors.New("sandbox: destroyed")

// Destroy kills every process of the cgroup (frozen or not) and the init,
// whose end takes anything else of the PID namespace with it, then removes
// the cgroups and gives the uid range back.
func (s *namespaceSandbox) Destroy() error {
	var err error
	s.destroy.Do(func() {
		s.freezeMu.Lock()
		s.destroyed = true
		s.freezeMu.Unlock()
		if s.ln != nil {
			s.ln.Close()
			s.endpoint.Close()
		}
		if s.cg != nil {
			_ = s.cg.kill()
		}
		if s.init != nil && s.init.Process != nil {
			_ = s.init.Process.Kill()
			<-s.exited
		}
		if s.ctl != nil {
			s.ctl.Close()
		}
		if s.assign != nil {
			s.assign.Close()
		}
		if s.output != nil && !s.outputTaken {
			s.output.Close()
		}
		if s.tmp != nil {
			// Detaching a loop device waits for the kernel (an RCU grace
			// period, milliseconds): let it happen meanwhile.
			go s.tmp.release()
		}
		if s.cg != nil {
			err = s.cg.remove()
		}
		s.uids.release(s.uidBase)
		if s.net != nil {
			s.network.release(s.net)
		}
	})
	return err
}
