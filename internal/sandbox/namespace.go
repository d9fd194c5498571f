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
	network     *Network   // nil: environments have only their loopback
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
	// Logger receives a line about the cgroups in use; nil means
	// slog.Default().
	Logger *slog.Logger
}

// NewNamespaceProvider checks that this host can run namespace sandboxes,
// creates the node's parent cgroup (sweeping those of servers that are
// gone) and prepares opts.StateDir. Close removes the parent cgroup.
func NewNamespaceProvider(opts NamespaceOptions) (*NamespaceProvider, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the namespace sandbox needs root")
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
	p := &NamespaceProvider{rootDir: rootDir, seccomp: prog, node: node}
	if opts.TmpDir == "" {
		opts.TmpDir = filepath.Join(opts.StateDir, "images")
	}
	if p.disks, err = newTmpDisks(opts.TmpDir); err != nil {
		p.tmpfsReason = err.Error()
	}
	return p, nil
}

// Close removes the node's parent cgroup, killing anything left in it. Call
// it once every sandbox is destroyed.
func (p *NamespaceProvider) Close() error { return p.node.remove() }

// TmpfsReason says why sandboxes' /tmp is a tmpfs, charged to the
// function's memory, instead of a disk of their own; "" when it is a disk.
func (p *NamespaceProvider) TmpfsReason() string { return p.tmpfsReason }

// UseNetwork gives every sandbox created from now on an outbound network
// from n. The caller closes n after the last sandbox.
func (p *NamespaceProvider) UseNetwork(n *Network) { p.network = n }

// Name returns "namespace".
func (p *NamespaceProvider) Name() string { return "namespace" }

// Create starts the sandbox's init, limits it with cgroups, has it build the
// root file system, and opens the Runtime API listener inside.
func (p *NamespaceProvider) Create(ctx context.Context, spec Spec) (Sandbox, error) {
	base, err := p.uids.take()
	if err != nil {
		return nil, err
	}
	s := &namespaceSandbox{uidBase: base, seccomp: p.seccomp, exited: make(chan struct{}), uids: &p.uids,
		startErr: make(chan error, 1), network: p.network}
	if spec.EphemeralMB <= 0 {
		spec.EphemeralMB = defaultEphemeralMB
	}
	if p.disks != nil {
		if s.tmp, err = p.disks.take(spec.EphemeralMB); err != nil {
			s.Destroy()
			return nil, fmt.Errorf("sandbox %s: %w", spec.ID, err)
		}
	}
	if s.network != nil {
		if s.net, err = s.network.take(); err != nil {
			s.Destroy()
			return nil, fmt.Errorf("sandbox %s: %w", spec.ID, err)
		}
	}
	if err := s.create(p.node, p.rootDir, spec); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("sandbox %s: %w", spec.ID, err)
	}
	return s, nil
}

// namespaceSandbox is one sandbox: its init process (PID 1 inside), its
// cgroups and its Runtime API and AWS endpoint listeners.
type namespaceSandbox struct {
	uidBase  int
	seccomp  []byte
	uids     *uidRangeAllocator
	init     *exec.Cmd
	ctl      *net.UnixConn // control socket to the init
	cg       sandboxCgroup
	tmp      *tmpDisk // the disk of /tmp, or nil for a tmpfs
	ln       net.Listener
	endpoint net.Listener
	network  *Network
	net      *netLease // nil without a network
	exited   chan struct{}
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

func (s *namespaceSandbox) create(node cgroupNode, rootDir string, spec Spec) error {
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
	tmpDevice := ""
	if s.tmp != nil {
		tmpDevice = s.tmp.path
	}
	plan := setupPlan(rootDir, spec, tmpDevice)
	var netns *os.File
	if s.net != nil {
		// The init enters the prepared namespace the setup message carries,
		// and the environment resolves names through the gateway.
		netns = s.net.ns
		plan = append(plan, "file", "/etc/resolv.conf", "0644", s.network.resolvConf)
	} else {
		cloneflags |= unix.CLONE_NEWNET
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
	if s.cg, err = node.newSandbox(spec.ID, spec.MemoryMB); err != nil {
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

	if err := s.send(netns, plan...); err != nil {
		return err
	}
	if _, err := s.expect("ready", time.Now().Add(setupTimeout)); err != nil {
		return err
	}
	lns, err := listenInNetns(pid, runtimeAPIAddr, endpointAddr)
	if err != nil {
		return err
	}
	s.ln, s.endpoint = lns[0], lns[1]
	return nil
}

// setupPlan is the "setup" message: the root file system of a sandbox,
// operation by operation (see nsinit.c). /tmp is the file system on
// tmpDevice, or a tmpfs when that is "".
func setupPlan(rootDir string, spec Spec, tmpDevice string) []string {
	plan := []string{"setup", rootDir, "lamina"}
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
	plan = append(plan, readOnlyDirsPlan(spec.ReadOnlyDirs)...)

	// A minimal /etc: nothing of the host's but what programs need to run.
	mkdir("/etc", "0755")
	file("/etc/passwd", "0644", "root:x:0:0:root:/root:/sbin/nologin\n"+
		"sbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n"+
		"nobody:x:65534:65534:nobody:/:/sbin/nologin\n")
	file("/etc/group", "0644", "root:x:0:\nsbx_user1051:x:990:\nnobody:x:65534:\n")
	file("/etc/hosts", "0644", "127.0.0.1\tlocalhost\n::1\tlocalhost\n")
	file("/etc/nsswitch.conf", "0644", "passwd: files\ngroup: files\nhosts: files dns\n")
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		resolv = nil
	}
	file("/etc/resolv.conf", "0644", string(resolv))
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

	// The function: code, runtime, layers, scratch space.
	mkdir("/var", "0755")
	mkdir("/var/task", "0755")
	bind(spec.TaskDir, "/var/task", "ro,nosuid,nodev")
	mkdir("/var/runtime", "0755")
	if spec.RuntimeDir != "" {
		bind(spec.RuntimeDir, "/var/runtime", "ro,nosuid,nodev")
	}
	mkdir("/opt", "0755")
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
	mkdir("/tmp", "1777")
	if tmpDevice != "" {
		plan = append(plan, "mount", tmpDevice, "/tmp", "ext4", "nosuid,nodev", tmpMountOptions)
	} else {
		plan = append(plan, "tmpfs", "/tmp", fmt.Sprintf("size=%dm,mode=1777", spec.EphemeralMB), "nosuid,nodev")
	}
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

// send writes one message of fields to the init, with fd (if any) attached.
func (s *namespaceSandbox) send(fd *os.File, fields ...string) error {
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
	if fd != nil {
		oob = unix.UnixRights(int(fd.Fd()))
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

// Start has the init fork the runtime into its own user namespace, as the
// sandbox user, with no privileges left.
func (s *namespaceSandbox) Start(p Process) error {
	fields := []string{"start", strconv.Itoa(sandboxUID), strconv.Itoa(sandboxGID), strconv.Itoa(s.uidBase),
		strconv.Itoa(maxOpenFiles), p.Dir, strconv.Itoa(len(p.Argv))}
	fields = append(fields, p.Argv...)
	fields = append(fields, strconv.Itoa(len(p.Env)))
	fields = append(fields, p.Env...)
	fields = append(fields, string(s.seccomp))
	s.mu.Lock()
	s.reported = make(chan struct{})
	s.mu.Unlock()
	go s.awaitExit()
	if err := s.send(p.Output, fields...); err != nil {
		return err
	}
	select {
	case err := <-s.startErr:
		return err
	case <-time.After(setupTimeout):
		return errors.New("sandbox init: no answer to start")
	}
}

// awaitExit reads the init's answers after a start: whether the runtime
// started (passed to Start through startErr), then how it exited.
func (s *namespaceSandbox) awaitExit() {
	defer close(s.reported)
	reply, err := s.receive(time.Time{})
	switch {
	case err != nil:
		s.startErr <- fmt.Errorf("sandbox init: start: %w", err)
		return
	case reply[0] == "started":
		s.startErr <- nil
	case reply[0] == "error" && len(reply) > 1 && strings.HasPrefix(reply[1], "exec "):
		path, cause, _ := strings.Cut(strings.TrimPrefix(reply[1], "exec "), ": ")
		s.startErr <- &ExecError{Path: path, Err: errors.New(cause)}
		return
	case reply[0] == "error" && len(reply) > 1:
		s.startErr <- errors.New(reply[1])
		return
	default:
		s.startErr <- fmt.Errorf("sandbox init: unexpected %q", reply[0])
		return
	}
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
