package manager

import (
	"context"
	"errors"

	"github.com/lamina-project/lamina"
)

// Worker is the contract between the manager and the worker of one node:
// the manager decides whether and where an invocation runs, the worker runs
// it in an execution environment of that node. On one node the worker is
// in-process (*worker.Worker); in a cluster a worker on another node is the
// same contract carried over NATS request-reply, and nothing above the
// manager changes.
//
// Every argument and result is plain data that encodes to JSON and back
// (lamina.Invocation, lamina.InvocationResult, Provision, WorkerState), and
// every error is one of three kinds that a remote implementation carries
// across the wire and gives back as they were:
//
//   - ErrNoMemory (match it with errors.Is): the worker has no room for
//     another environment. The manager turns it into Lambda's throttle;
//     workers never name throttle reasons.
//   - *lamina.Error: a failure in AWS's terms (its Status, Code, Message,
//     Type and Reason survive JSON as they are), e.g. a 500 ServiceException
//     from a worker that is shutting down.
//   - anything else: Lamina failed to run the invocation (a sandbox that
//     cannot be created, code that cannot be unpacked); the caller reports
//     it as a 500 ServiceException.
//
// A worker on another node adds two of its own, about the way there:
// ErrWorkerUnavailable (the invocation did not start: the node does not
// answer, is stopping, or has too many requests in flight; the manager tries
// another node) and ErrWorkerLost (the node stopped answering while the
// invocation was under way: it may have run, so it is not tried again).
//
// Implementations are safe for concurrent use.
type Worker interface {
	// Invoke runs req in a warm environment of req.Function (the function
	// version to run, resolved by the manager) or in a new one, and returns
	// how it ended. A function's own failure (an error it returned, a
	// timeout, a crash, a failed init) is a result with FunctionError set,
	// never an error. Invoke returns when the invocation has ended: its
	// duration is bounded by the function's Timeout, plus the init of a cold
	// start (at most the worker's init limit, tried twice). An invocation
	// that has started runs to its end even when ctx ends (the caller left),
	// as on Lambda; a remote implementation may stop waiting for the answer
	// when ctx ends, and must otherwise wait at least that long.
	Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error)

	// Provision keeps p.Count environments of p.Function initialised ahead
	// of invocations for the provisioned concurrency config p.Config. It
	// returns once the change is taken, not when the environments are ready
	// (State shows them as they become so); environments that fail are
	// replaced. A Provision with another function version or configuration
	// (RevisionId) than the last for the same config replaces its
	// environments; Count 0 (Function may then be nil) gives them up: they
	// become on-demand environments and expire when idle. Provisioned
	// environments are never evicted for memory and never expire.
	Provision(ctx context.Context, p Provision) error

	// State reports the worker's environments and memory now: what
	// GetProvisionedConcurrencyConfig shows, and what placement among
	// several workers will weigh.
	State(ctx context.Context) (WorkerState, error)
}

// ErrNoMemory is a worker's answer when its memory budget cannot hold
// another environment of the function, even after evicting idle on-demand
// environments. The manager throttles the invocation.
var ErrNoMemory = errors.New("the worker's memory budget has no room for another environment")

// ErrWorkerUnavailable is a remote worker's answer when an invocation (or
// another request) did not reach it or was refused before it started: no
// node answers on its subject, it is stopping, or it has as many requests in
// flight as it takes. The invocation did not run; the manager places it on
// another node.
var ErrWorkerUnavailable = errors.New("the worker is unavailable")

// ErrWorkerLost is a remote worker's answer when its node stopped answering
// while an invocation was under way (no sign of life for a few seconds, or
// past the invocation's deadline). The invocation may have run: the manager
// does not run it again, and the caller gets a 500 ServiceException (the
// async queue retries its events).
var ErrWorkerLost = errors.New("the worker's node stopped answering")

// Provision asks a worker to keep environments of a provisioned concurrency
// config initialised.
type Provision struct {
	// Config names the config: ProvisionedKey(function, qualifier).
	Config string
	// Function is the version the config's environments run (an alias's
	// primary version); nil when Count is 0.
	Function *lamina.Function `json:",omitempty"`
	// Count is how many environments to keep.
	Count int
}

// ProvisionedKey names the provisioned concurrency config of a function
// qualifier (a version number or an alias) on the workers.
func ProvisionedKey(function, qualifier string) string { return function + ":" + qualifier }

// WorkerState is what a worker reports about itself.
type WorkerState struct {
	// MemoryBudgetMB bounds the sum of MemorySize of the worker's live and
	// starting environments; MemoryUsedMB is that sum now.
	MemoryBudgetMB int
	MemoryUsedMB   int
	// BusyMB is the memory of the environments that run an invocation or
	// are starting; EvictableMB that of the idle on-demand environments,
	// which a new environment may take the place of. MemoryBudgetMB -
	// MemoryUsedMB + EvictableMB is the room for new environments.
	BusyMB      int
	EvictableMB int
	// Environments counts the live environments (busy or idle); Idle those
	// of them waiting for an invocation.
	Environments int
	Idle         int
	// Provisioned reports each provisioned concurrency config the worker
	// keeps environments for, by config key (ProvisionedKey).
	Provisioned map[string]ProvisionedState `json:",omitempty"`
}

// ProvisionedState is what a worker has ready for one provisioned
// concurrency config.
type ProvisionedState struct {
	// Version and RevisionId name the function version the config's
	// environments run now (the last Provision's Function).
	Version    string
	RevisionId string
	// Allocated counts the initialised environments of that version;
	// Available those of them that are idle, ready for an invocation.
	Allocated int
	Available int
}

// Runs reports whether the state is about environments of fn (the same
// version and configuration).
func (p ProvisionedState) Runs(fn *lamina.Function) bool {
	return fn != nil && p.Version == fn.Configuration.Version && p.RevisionId == fn.Configuration.RevisionId
}
