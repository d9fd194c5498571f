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

func (s *processSandbox) Start(p Process) error {
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Env = append(p.Env, "TMPDIR="+s.paths.Tmp)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = p.Output, p.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("sandbox: runtime already started")
	}
	if err := startProcess(cmd); err != nil {
		return &ExecError{Path: p.Argv[0], Err: err}
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

// signalGroup sends sig to the runtime's process group, if it started and
// has not exited (its group id may then be another's).
func (s *processSandbox) signalGroup(sig syscall.Signal) error {
	pid := s.pid()
	if pid == 0 {
		return nil
	}
	select {
	case <-s.exited:
		return errors.New("sandbox: the runtime has exited")
	default:
	}
	return syscall.Kill(-pid, sig)
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
		if pid := s.pid(); pid != 0 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
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
