package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// ProcessProvider runs each environment as a plain child process group on
// the host, without isolation: the runtime sees host paths and shares the
// host's network (its Runtime API and AWS endpoint listen on free loopback
// ports). It has no cgroups: no memory, process or CPU limits, alone or for
// all sandboxes together. It freezes a sandbox by stopping the runtime's process group
// (SIGSTOP), which misses processes that leave the group. It is for hosts
// where the namespace sandbox cannot run, and for debugging.
type ProcessProvider struct {
	// ScratchDir is where each sandbox gets its private /tmp substitute.
	ScratchDir string
}

// Name returns "process".
func (p *ProcessProvider) Name() string { return "process" }

// Close does nothing: a process provider holds nothing on the host.
func (p *ProcessProvider) Close() error { return nil }

// Create opens the sandbox's Runtime API and AWS endpoint listeners and its
// scratch directory.
func (p *ProcessProvider) Create(ctx context.Context, spec Spec) (Sandbox, error) {
	tmp := filepath.Join(p.ScratchDir, spec.ID)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", spec.ID, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("sandbox %s: runtime API listener: %w", spec.ID, err)
	}
	endpoint, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("sandbox %s: AWS endpoint listener: %w", spec.ID, err)
	}
	opt := ""
	if len(spec.LayerDirs) > 0 {
		opt = spec.LayerDirs[len(spec.LayerDirs)-1]
	}
	return &processSandbox{
		paths:    Paths{TaskRoot: spec.TaskDir, RuntimeDir: spec.RuntimeDir, Opt: opt, Tmp: tmp},
		ln:       ln,
		endpoint: endpoint,
		exited:   make(chan struct{}),
	}, nil
}

type processSandbox struct {
	paths    Paths
	ln       net.Listener
	endpoint net.Listener
	exited   chan struct{}

	mu        sync.Mutex
	pgid      int // the process group of everything started in it
	cmd       *exec.Cmd
	status    *os.File // /proc/PID/status, for VmHWM
	clearRefs *os.File // /proc/PID/clear_refs, to reset VmHWM
	exitErr   error
	destroy   sync.Once
}

func (s *processSandbox) Paths() Paths { return s.paths }

func (s *processSandbox) RuntimeAPI() (net.Listener, string) { return s.ln, s.ln.Addr().String() }

func (s *processSandbox) Endpoint() (net.Listener, string) {
	return s.endpoint, s.endpoint.Addr().String()
}

// command returns the command of p, in the sandbox's process group (the
// first process started leads it). The caller holds s.mu.
func (s *processSandbox) command(p Process) *exec.Cmd {
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Env = append(p.Env, "TMPDIR="+s.paths.Tmp)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = p.Output, p.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: s.pgid, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Spawn starts a process beside the runtime, in its process group.
func (s *processSandbox) Spawn(p Process) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("sandbox: runtime already started")
	}
	cmd := s.command(p)
	if err := startProcess(cmd); err != nil {
		return &ExecError{Path: p.Argv[0], Err: err}
	}
	if s.pgid == 0 {
		s.pgid = cmd.Process.Pid
	}
	go cmd.Wait() // reaped; its end shows as end of file on its output
	return nil
}

// Dial connects to addr on the host: a process sandbox shares its network.
func (s *processSandbox) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func (s *processSandbox) Start(p Process) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("sandbox: runtime already started")
	}
	cmd := s.command(p)
	if err := startProcess(cmd); err != nil {
		return &ExecError{Path: p.Argv[0], Err: err}
	}
	if s.pgid == 0 {
		s.pgid = cmd.Process.Pid
	}
	s.cmd = cmd
	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	s.status, _ = os.Open(proc + "/status")
	s.clearRefs, _ = os.OpenFile(proc+"/clear_refs", os.O_WRONLY, 0)
	go func() {
		_ = cmd.Wait() // the exit status is all there is to know
		s.mu.Lock()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			s.exitErr = exitError(ws.ExitStatus(), ws.Signal())
		}
		s.mu.Unlock()
		close(s.exited)
	}()
	return nil
}

func (s *processSandbox) Exited() <-chan struct{} { return s.exited }

// OutOfMemory is always false: a process sandbox has no memory limit.
func (s *processSandbox) OutOfMemory() bool { return false }

func (s *processSandbox) ExitError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitErr
}

// MemoryPeak reads the runtime process's peak resident set (VmHWM) from
// /proc/PID/status, kept open since Start.
func (s *processSandbox) MemoryPeak() int64 {
	s.mu.Lock()
	f := s.status
	s.mu.Unlock()
	if f == nil {
		return 0
	}
	buf := make([]byte, 4096)
	n, _ := f.ReadAt(buf, 0)
	_, rest, ok := bytes.Cut(buf[:n], []byte("VmHWM:"))
	if !ok {
		return 0
	}
	rest, _, _ = bytes.Cut(rest, []byte("kB"))
	kb, _ := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
	return kb * 1024
}

// ResetMemoryPeak resets VmHWM to the current resident set (clear_refs 5).
func (s *processSandbox) ResetMemoryPeak() {
	s.mu.Lock()
	f := s.clearRefs
	s.mu.Unlock()
	if f != nil {
		_, _ = f.WriteAt([]byte("5"), 0)
	}
}

// Freeze stops the runtime's process group with SIGSTOP.
func (s *processSandbox) Freeze() error { return s.signalGroup(syscall.SIGSTOP) }

// Thaw continues the runtime's process group with SIGCONT.
func (s *processSandbox) Thaw() error { return s.signalGroup(syscall.SIGCONT) }

// signalGroup sends sig to the sandbox's process group, if the runtime
// started and has not exited (the group id may then be another's).
func (s *processSandbox) signalGroup(sig syscall.Signal) error {
	pid := s.pid()
	if pid == 0 {
		return nil
	}
	s.mu.Lock()
	pgid := s.pgid
	s.mu.Unlock()
	select {
	case <-s.exited:
		return errors.New("sandbox: the runtime has exited")
	default:
	}
	return syscall.Kill(-pgid, sig)
}

func (s *processSandbox) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Destroy kills the runtime's whole process group and removes the scratch
// directory.
func (s *processSandbox) Destroy() error {
	s.destroy.Do(func() {
		s.ln.Close()
		s.endpoint.Close()
		s.mu.Lock()
		pgid := s.pgid
		s.mu.Unlock()
		if pgid != 0 {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		if s.pid() != 0 {
			<-s.exited
		}
		os.RemoveAll(s.paths.Tmp)
		s.mu.Lock()
		for _, f := range []*os.File{s.status, s.clearRefs} {
			if f != nil {
				f.Close()
			}
		}
		s.mu.Unlock()
	})
	return nil
}
