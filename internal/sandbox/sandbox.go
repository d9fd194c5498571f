// Package sandbox isolates execution environments. A Provider creates one
// Sandbox per environment; the worker starts the runtime inside it, serves
// the environment's Runtime API on the listener the sandbox gives, and
// destroys it when the environment is done.
//
// The contract every implementation keeps:
//   - Create returns a sandbox in which nothing runs yet; Start runs exactly
//     one runtime process in it, after any processes Spawn runs beside it.
//     The exception: a sandbox whose runtime process was started ahead
//     (Spec.Prestart, Prestarted), where Start hands that process its
//     function instead.
//   - The listeners of RuntimeAPI and Endpoint are reachable by the
//     processes of this sandbox and by no other sandbox.
//   - Exited is closed once the runtime process has ended (by itself or by
//     Destroy), and ExitError then tells how it ended.
//   - Freeze stops every process of the sandbox (the runtime and whatever it
//     started) until Thaw, as Lambda freezes an idle environment; frozen
//     processes make no progress and use no CPU. Freeze returns once the
//     freeze is ordered, not when the last process has stopped. Freezing a
//     frozen sandbox and thawing a thawed one change nothing. After Destroy
//     both return an error.
//   - Destroy kills every process of the sandbox, frozen or not, releases
//     everything it holds (listener, mounts, cgroups, directories) and is
//     safe to call more than once and concurrently with anything else.
//   - A Provider's Close releases what the provider holds on the host (the
//     namespace provider's parent cgroup); call it after every sandbox is
//     destroyed.
package sandbox

import (
	"context"
	"net"
	"os"
	"strconv"
	"syscall"
)

// Spec describes an environment to create.
type Spec struct {
	// ID names the sandbox uniquely on this node (used for its resources).
	ID string
	// TaskDir is the host directory of the function's unpacked code.
	TaskDir string
	// RuntimeDir is the host directory of Lamina's runtime files for the
	// function's runtime family.
	RuntimeDir string
	// LayerDirs are host directories of the function's unpacked layers, in
	// order; a later one overrides an earlier one.
	LayerDirs []string
	// MemoryMB is the function's memory size.
	MemoryMB int
	// EphemeralMB is the size of /tmp.
	EphemeralMB int
	// ReadOnlyDirs are host directories shown read-only at their own path,
	// such as an interpreter's installation prefix outside /usr; each must
	// pass HostDirVisibility. Sandboxes that share the host's file system
	// (process) need not do anything with them.
	ReadOnlyDirs []string
	// Prestart, when set, is the runtime process this function's Start
	// would run, as it can be started before any function is known (see
	// Prestart). A provider may then return a sandbox in which it runs
	// already (see Prestarted); others ignore it.
	Prestart *Prestart
}

// Prestart describes a runtime process that a provider may start ahead, in
// a sandbox prepared before its function is known, with nothing of any
// function in it: only Spec's RuntimeDir and ReadOnlyDirs are shown, and
// the environment is Env. Its descriptor 3 is the read end of a pipe on
// which Start writes the function's assignment, one JSON object
// {"env": ["KEY=value", ...], "cwd": "..."}, then closes it; the process
// reads it to its end, replaces its environment with env and changes to
// cwd (the function's directories are shown by then) before it does
// anything of its function's.
type Prestart struct {
	Argv []string
	Env  []string
}

// Prestarter is a Provider that can start runtimes ahead (Spec.Prestart).
type Prestarter interface {
	Provider
	// Paths says where every sandbox of the provider shows things.
	Paths() Paths
}

// Prestarted is implemented by sandboxes whose runtime process may have
// been started ahead (Spec.Prestart).
type Prestarted interface {
	// PrestartedOutput returns the read end of the pipe the runtime started
	// ahead writes its stdout and stderr to, or nil when it was not started
	// ahead. When it was, Start hands it the function (Process.Env and
	// Dir; Argv must be Prestart's) instead of starting a process, and
	// Process.Output is not used.
	PrestartedOutput() *os.File
}

// Paths says where a sandbox shows things to its runtime.
type Paths struct {
	TaskRoot   string // the function's code (LAMBDA_TASK_ROOT)
	RuntimeDir string // Lamina's runtime files (LAMBDA_RUNTIME_DIR)
	Opt        string // the merged layers
	Tmp        string // the writable scratch directory
}

// Process is the runtime process to start in a sandbox.
type Process struct {
	// Argv is the command; Argv[0] is a path as the sandbox shows it.
	Argv []string
	// Env is the complete environment, "KEY=value".
	Env []string
	// Dir is the working directory, as the sandbox shows it.
	Dir string
	// Output receives the process's stdout and stderr.
	Output *os.File
}

// Provider creates sandboxes of one kind.
type Provider interface {
	// Name says which kind of isolation this provider gives, for logs.
	Name() string
	// Create prepares a sandbox for spec.
	Create(ctx context.Context, spec Spec) (Sandbox, error)
	// Close releases what the provider holds on the host.
	Close() error
}

// Sandbox is one isolated execution environment.
type Sandbox interface {
	// Paths says where the sandbox shows code, runtime, layers and /tmp.
	Paths() Paths
	// RuntimeAPI returns the listener on which the worker serves this
	// environment's Runtime API, and the address ("host:port") that the
	// runtime inside uses to reach it (AWS_LAMBDA_RUNTIME_API).
	RuntimeAPI() (net.Listener, string)
	// Spawn runs a process beside the runtime (a Lambda extension), before
	// Start; it ends with the sandbox. Its end is not reported: its Output
	// reaches end of file then.
	Spawn(p Process) error
	// Endpoint returns the listener on which the worker serves this
	// environment's AWS endpoint (the API as the environment's own
	// credentials reach it), and the address ("host:port") the runtime
	// inside uses to reach it (AWS_ENDPOINT_URL).
	Endpoint() (net.Listener, string)
	// Start runs the runtime process.
	Start(p Process) error
	// Dial connects to a TCP address ("host:port", host an address) as a
	// process of the sandbox would: on the sandbox's own loopback, when it
	// has its own network.
	Dial(ctx context.Context, addr string) (net.Conn, error)
	// Exited is closed when the runtime process has ended.
	Exited() <-chan struct{}
	// ExitError describes how the runtime process ended ("exit status 1",
	// "signal: killed"); nil before it has, or if it exited with status 0.
	ExitError() error
	// OutOfMemory reports whether the memory limit has killed a process of
	// the sandbox.
	OutOfMemory() bool
	// MemoryPeak returns the highest memory use of the sandbox in bytes since
	// it started or since the last ResetMemoryPeak.
	MemoryPeak() int64
	// ResetMemoryPeak starts a new measurement period for MemoryPeak.
	ResetMemoryPeak()
	// Freeze stops every process of the sandbox until Thaw.
	Freeze() error
	// Thaw lets the processes of a frozen sandbox run again.
	Thaw() error
	// Destroy kills everything in the sandbox and releases its resources.
	Destroy() error
}

// ExecError is returned by Start when the runtime's executable cannot be
// run (missing, not executable, bad format).
type ExecError struct {
	Path string
	Err  error
}

func (e *ExecError) Error() string { return "exec " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ExecError) Unwrap() error { return e.Err }

// ExitError says how a runtime process ended when it did not exit with
// status 0. Its text is Go's and Lambda's: "exit status 3", "signal: killed".
type ExitError struct {
	Code   int            // exit status, when it exited
	Signal syscall.Signal // the signal that ended it, or 0
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return "signal: " + e.Signal.String()
	}
	return "exit status " + strconv.Itoa(e.Code)
}

// exitError returns the ExitError of a process that exited with code or was
// ended by sig (0 when it was not), or nil for a clean exit.
func exitError(code int, sig syscall.Signal) error {
	switch {
	case sig > 0:
		return &ExitError{Signal: sig}
	case code != 0:
		return &ExitError{Code: code}
	}
	return nil
}
