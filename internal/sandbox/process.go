package sandbox

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ProcessProvider runs each environment as a plain child process group on
// the host, without isolation: the runtime sees host paths and shares the
// host's network (its Runtime API listens on a free loopback port). It is for
// hosts where the namespace sandbox cannot run, and for debugging.
type ProcessProvider struct {
	// ScratchDir is where each sandbox gets its private /tmp substitute.
	ScratchDir string
}

// Name returns "process".
func (p *ProcessProvider) Name() string { return "process" }

// Create opens the sandbox's Runtime API listener and scratch directory.
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
	opt := ""
	if len(spec.LayerDirs) > 0 {
		opt = spec.LayerDirs[len(spec.LayerDirs)-1]
	}
	return &processSandbox{
		paths:  Paths{TaskRoot: spec.TaskDir, RuntimeDir: spec.RuntimeDir, Opt: opt, Tmp: tmp},
		ln:     ln,
		exited: make(chan struct{}),
	}, nil
}

type processSandbox struct {
	paths  Paths
	ln     net.Listener
	exited chan struct{}

	mu      sync.Mutex
	cmd     *exec.Cmd
	exitErr error
	destroy sync.Once
}

func (s *processSandbox) Paths() Paths { return s.paths }

func (s *processSandbox) RuntimeAPI() (net.Listener, string) { return s.ln, s.ln.Addr().String() }

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
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		close(s.exited)
	}()
	return nil
}

func (s *processSandbox) Exited() <-chan struct{} { return s.exited }

func (s *processSandbox) ExitError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitErr
}

// MemoryPeak reads the runtime process's peak resident set (VmHWM).
func (s *processSandbox) MemoryPeak() int64 {
	pid := s.pid()
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// ResetMemoryPeak resets VmHWM to the current resident set (clear_refs 5).
func (s *processSandbox) ResetMemoryPeak() {
	if pid := s.pid(); pid != 0 {
		_ = os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
	}
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
		if pid := s.pid(); pid != 0 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-s.exited
		}
		os.RemoveAll(s.paths.Tmp)
	})
	return nil
}
