// Package sandboxtest is a sandbox.Provider for tests that runs no
// processes. Each sandbox has real loopback listeners for the Runtime API
// and the AWS endpoint, and its "runtime" is a Go function of the test, a
// Script, that talks to the worker's real Runtime API as a runtime process
// would: it asks for events and answers them, fails its init, writes
// output, exits, crashes, runs out of memory. A sandbox honours the sandbox contract that a
// worker can observe: Exited closes when the script ends or the sandbox is
// destroyed, a frozen sandbox's script makes no progress until it is thawed,
// Destroy kills the script at its next call and is safe to repeat.
//
// So the worker's and the manager's logic (cold and warm starts, scale-out,
// idle expiry, memory budgets, init failures, crashes, freezing, stale
// environments, provisioned environments) is tested in milliseconds,
// without sandboxes, interpreters or root.
package sandboxtest

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/lamina-project/lamina/internal/sandbox"
)

// Script plays the runtime of a sandbox; it runs on its own goroutine from
// Start. Its return is the runtime's exit with status 0; Runtime.Exit and
// Runtime.OutOfMemory end it otherwise.
type Script func(rt *Runtime)

// Provider creates sandboxes whose runtime is Script. The zero Provider is
// ready to use; its sandboxes run Echo.
type Provider struct {
	// Script plays the runtime of every sandbox started; nil means Echo.
	Script Script
	// CreateError, when set, is asked before each sandbox is created; an
	// error it returns is Create's.
	CreateError func(spec sandbox.Spec) error

	mu        sync.Mutex
	sandboxes []*Sandbox
	created   chan *Sandbox
}

// Name is "sandboxtest".
func (p *Provider) Name() string { return "sandboxtest" }

// Create makes a sandbox for spec.
func (p *Provider) Create(_ context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if p.CreateError != nil {
		if err := p.CreateError(spec); err != nil {
			return nil, err
		}
	}
	script := p.Script
	if script == nil {
		script = Echo
	}
	sb, err := NewSandbox(spec, script)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.sandboxes = append(p.sandboxes, sb)
	p.mu.Unlock()
	return sb, nil
}

// Close does nothing: the provider holds nothing on the host.
func (p *Provider) Close() error { return nil }

// Sandboxes returns every sandbox created so far, oldest first.
func (p *Provider) Sandboxes() []*Sandbox {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*Sandbox(nil), p.sandboxes...)
}

// Live returns the sandboxes created and not destroyed.
func (p *Provider) Live() []*Sandbox {
	var live []*Sandbox
	for _, sb := range p.Sandboxes() {
		if !sb.Destroyed() {
			live = append(live, sb)
		}
	}
	return live
}

// Sandbox is one sandbox of the Provider (or of NewSandbox).
type Sandbox struct {
	spec     sandbox.Spec
	script   Script
	ln       *Listener
	endpoint net.Listener

	started   atomic.Bool
	process   sandbox.Process
	exited    chan struct{}
	exitOnce  sync.Once
	exitErr   atomic.Pointer[error]
	oom       atomic.Bool
	peak      atomic.Int64
	destroyed chan struct{}
	destroy   sync.Once
	kill      context.CancelFunc // ends the script's Runtime API calls
	killed    context.Context

	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed by Thaw; replaced by Freeze
	calls  []string      // "freeze", "thaw", in order
	frozeC chan struct{} // receives (without blocking) on every Freeze
}

// NewSandbox returns a sandbox for spec whose runtime is script, outside any
// provider; nil script runs nothing at Start (the test then plays the
// runtime over RuntimeAPI itself).
func NewSandbox(spec sandbox.Spec, script Script) (*Sandbox, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	endpoint, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, err
	}
	killed, kill := context.WithCancel(context.Background())
	thawed := make(chan struct{})
	close(thawed)
	return &Sandbox{
		spec:      spec,
		script:    script,
		ln:        &Listener{TCPListener: ln.(*net.TCPListener)},
		endpoint:  endpoint,
		exited:    make(chan struct{}),
		destroyed: make(chan struct{}),
		killed:    killed,
		kill:      kill,
		thawed:    thawed,
		frozeC:    make(chan struct{}, 64),
	}, nil
}

// Spec is what the sandbox was created for.
func (s *Sandbox) Spec() sandbox.Spec { return s.spec }

// Paths are the paths Lambda's sandboxes show.
func (s *Sandbox) Paths() sandbox.Paths {
	return sandbox.Paths{TaskRoot: "/var/task", RuntimeDir: "/var/runtime", Opt: "/opt", Tmp: "/tmp"}
}

// RuntimeAPI returns the loopback listener and its address.
func (s *Sandbox) RuntimeAPI() (net.Listener, string) { return s.ln, s.ln.Addr().String() }

// Endpoint returns the loopback listener of the AWS endpoint and its
// address.
func (s *Sandbox) Endpoint() (net.Listener, string) { return s.endpoint, s.endpoint.Addr().String() }

// Listener is the Runtime API's listener, with its connection counts.
func (s *Sandbox) Listener() *Listener { return s.ln }

// Start runs the script, if any, with p's environment and output.
func (s *Sandbox) Start(p sandbox.Process) error {
	if s.started.Swap(true) {
		panic("sandboxtest: Start called twice")
	}
	s.process = p
	if s.script == nil {
		return nil
	}
	rt := newRuntime(s, p)
	go func() {
		defer s.exit(nil)
		defer rt.client.CloseIdleConnections() // the process's sockets close with it
		s.script(rt)
	}()
	return nil
}

// Spawn refuses: fake sandboxes run no extensions.
func (s *Sandbox) Spawn(p sandbox.Process) error {
	return errors.New("sandboxtest: extensions are not supported")
}

// Dial connects to addr on the host's loopback.
func (s *Sandbox) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// Process is what Start was given (zero before Start).
func (s *Sandbox) Process() sandbox.Process { return s.process }

// exit ends the runtime's process with err (nil: status 0); the first end
// counts.
func (s *Sandbox) exit(err error) {
	s.exitOnce.Do(func() {
		s.exitErr.Store(&err)
		close(s.exited)
	})
}

// Exit ends the runtime's process from outside, as a crash between
// invocations does: Exited closes with err as ExitError (nil: status 0).
// The script, if it runs, is killed at its next Runtime call.
func (s *Sandbox) Exit(err error) {
	s.exit(err)
	s.kill()
}

// Exited is closed once the runtime has ended.
func (s *Sandbox) Exited() <-chan struct{} { return s.exited }

// ExitError says how the runtime ended; nil before it has or for status 0.
func (s *Sandbox) ExitError() error {
	if p := s.exitErr.Load(); p != nil {
		return *p
	}
	return nil
}

// OutOfMemory reports whether Runtime.OutOfMemory ended the runtime.
func (s *Sandbox) OutOfMemory() bool { return s.oom.Load() }

// MemoryPeak returns what the script last set with Runtime.SetMemoryPeak.
func (s *Sandbox) MemoryPeak() int64 { return s.peak.Load() }

// ResetMemoryPeak sets the peak to 0.
func (s *Sandbox) ResetMemoryPeak() { s.peak.Store(0) }

// Freeze stops the script at its next Runtime call until Thaw. It fails
// after Destroy, as the contract says.
func (s *Sandbox) Freeze() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Destroyed() {
		return syscall.ESRCH
	}
	s.calls = append(s.calls, "freeze")
	select {
	case s.frozeC <- struct{}{}:
	default:
	}
	if !s.frozen {
		s.frozen = true
		s.thawed = make(chan struct{})
	}
	return nil
}

// Thaw lets a frozen script go on.
func (s *Sandbox) Thaw() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Destroyed() {
		return syscall.ESRCH
	}
	s.calls = append(s.calls, "thaw")
	if s.frozen {
		s.frozen = false
		close(s.thawed)
	}
	return nil
}

// Frozen reports whether the sandbox is frozen now.
func (s *Sandbox) Frozen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frozen
}

// FreezeCalls returns the Freeze and Thaw calls so far, in order, as
// "freeze" and "thaw".
func (s *Sandbox) FreezeCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// Froze receives once for every Freeze (up to 64 unreceived).
func (s *Sandbox) Froze() <-chan struct{} { return s.frozeC }

// waitThawed blocks while the sandbox is frozen, and kills the script
// (runtime.Goexit through its caller) once the sandbox is destroyed.
func (s *Sandbox) waitThawed() bool {
	s.mu.Lock()
	thawed := s.thawed
	s.mu.Unlock()
	select {
	case <-thawed:
		return s.killed.Err() == nil
	case <-s.killed.Done():
		return false
	}
}

// Destroy kills the script (at its next Runtime call), closes the listener
// and ends the runtime with "signal: killed" unless it had ended. It is
// safe to call more than once.
func (s *Sandbox) Destroy() error {
	s.destroy.Do(func() {
		close(s.destroyed)
		s.kill()
		s.ln.Close()
		s.endpoint.Close()
		s.exit(&sandbox.ExitError{Signal: syscall.SIGKILL})
	})
	return nil
}

// Destroyed reports whether Destroy was called.
func (s *Sandbox) Destroyed() bool {
	select {
	case <-s.destroyed:
		return true
	default:
		return false
	}
}

// DestroyedC is closed by Destroy.
func (s *Sandbox) DestroyedC() <-chan struct{} { return s.destroyed }

// Listener is a loopback TCP listener that counts the connections it
// accepted, those of them still open and the most open at once. It is a
// *net.TCPListener underneath (SyscallConn reaches its socket).
type Listener struct {
	*net.TCPListener

	mu                   sync.Mutex
	open, peak, accepted int
}

// Accept accepts a connection and counts it.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.open++
	l.accepted++
	l.peak = max(l.peak, l.open)
	l.mu.Unlock()
	return &countedConn{Conn: c, l: l}, nil
}

// Counts returns the accepted connections still open, the most that were
// open at once and how many were accepted in all.
func (l *Listener) Counts() (open, peak, accepted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.peak, l.accepted
}

type countedConn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
