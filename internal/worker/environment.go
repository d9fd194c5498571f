package worker

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/logs"
	"github.com/lamina-project/lamina/internal/runtimes"
	"github.com/lamina-project/lamina/internal/sandbox"
)

// environment is one execution environment: a sandbox running a function's
// runtime, its Runtime API, and its output. It serves one invocation at a
// time.
type environment struct {
	id        string
	key       envKey
	fn        *lamina.Function
	memoryMB  int
	logStream string
	sb        sandbox.Sandbox
	out       *output
	api       *http.Server
	// The AWS endpoint and the temporary credentials (endpoint.go).
	endpoint   *http.Server
	awsVars    []string
	retireBy   time.Time // when the credentials expire too soon to go on
	endSession func()    // ends the credentials

	ready      chan struct{}    // closed at the runtime's first /next: init is done
	initFailed chan answer      // the runtime posted /init/error
	next       chan *invocation // hands an invocation to the runtime's /next
	destroyed  chan struct{}    // closed by destroy
	destroying sync.Once
	freezer    freezer // freezes the environment while idle

	mu        sync.Mutex
	state     runtimeState // of the runtime, as its Runtime API calls show it
	current   *invocation  // handed to the runtime, not yet answered
	eventConn net.Conn     // the open connection that got the last event
	ext       extensionState
	// shutdownReason is what SHUTDOWN tells the extensions: spindown,
	// timeout or failure.
	shutdownReason string

	telemetry telemetry
	// publish appends log events of env's function (what extensions write
	// while the environment shuts down).
	publish func([]logs.Event)

	// Owned by the worker's lock.
	lastUsed time.Time
	idle     bool
	// provisioned names the provisioned concurrency config the environment
	// belongs to; empty for on-demand environments.
	provisioned string
}

// envKey identifies what an environment runs: environments are reused only
// for the same function version with the same configuration and code.
type envKey struct {
	function string
	version  string
	revision string
}

func keyOf(fn *lamina.Function) envKey {
	c := &fn.Configuration
	return envKey{function: c.FunctionName, version: c.Version, revision: c.RevisionId}
}

// invocation is an invocation in an environment.
type invocation struct {
	req      *lamina.Invocation
	deadline time.Time
	answers  chan answer  // buffered: the Runtime API never blocks on it
	stream   *streamGuard // where a streamed response goes; nil to buffer it
}

// answer is what the runtime said about an invocation (or its init).
type answer struct {
	payload     []byte
	contentType string // of a successful response, as the runtime sent it
	errorType   string // empty on success
}

func (inv *invocation) answer(a answer) { inv.answers <- a }

// newLogStream returns a log stream name as Lambda forms them:
// "YYYY/MM/DD/[VERSION]<32 hex digits>".
func newLogStream(version string, now time.Time) string {
	var b [16]byte
	rand.Read(b[:])
	return now.UTC().Format("2006/01/02") + "/[" + version + "]" + hex.EncodeToString(b[:])
}

// start creates the sandbox and starts the runtime in it. It does not wait
// for init. provisioned names the provisioned concurrency config the
// environment is started for, if any.
func (w *Worker) start(ctx context.Context, fn *lamina.Function, provisioned string) (*environment, error) {
	c := &fn.Configuration
	taskDir, err := w.code.path(ctx, fn.CodeDigest)
	if err != nil {
		return nil, err
	}
	layerDirs := make([]string, len(fn.Layers))
	for i, l := range fn.Layers {
		if layerDirs[i], err = w.code.path(ctx, l.Digest); err != nil {
			return nil, err
		}
	}
	env := &environment{
		id:          "env-" + rand.Text()[:12],
		key:         keyOf(fn),
		fn:          fn,
		memoryMB:    c.MemorySize,
		logStream:   newLogStream(c.Version, time.Now()),
		ready:       make(chan struct{}),
		initFailed:  make(chan answer, 1),
		next:        make(chan *invocation),
		destroyed:   make(chan struct{}),
		provisioned: provisioned,
		freezer:     freezer{log: w.log},
		publish:     func(events []logs.Event) { w.cfg.Logs.Append(c.LogGroupName(), events...) },
	}
	env.ext = extensionState{byID: map[string]*extension{}, registered: make(chan struct{}), changed: make(chan struct{})}
	extensions, err := discoverExtensions(layerDirs)
	if err != nil {
		return nil, &runtimes.EntrypointError{Message: err.Error()}
	}
	ephemeral := lamina.DefaultEphemeralStorage
	if c.EphemeralStorage != nil {
		ephemeral = c.EphemeralStorage.Size
	}
	var prestart *sandbox.Prestart
	var launch runtimes.Launch
	if len(extensions) == 0 { // extensions start before the runtime
		prestart, launch = w.prestart(fn, taskDir, layerDirs)
	}
	env.sb, err = w.cfg.Sandbox.Create(ctx, sandbox.Spec{
		ID:           env.id,
		TaskDir:      taskDir,
		RuntimeDir:   w.cfg.Runtimes.Dir(fn.Family()),
		LayerDirs:    layerDirs,
		MemoryMB:     c.MemorySize,
		EphemeralMB:  ephemeral,
		ReadOnlyDirs: w.cfg.Runtimes.ReadOnlyDirs(fn),
		Prestart:     prestart,
	})
	if err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	paths := env.sb.Paths()
	if prestart == nil {
		// With one, the launch is the one it was made of: Launch may
		// change between two calls (the bytecode, once compiled).
		if launch, err = w.cfg.Runtimes.Launch(fn, paths, taskDir, layerDirs); err != nil {
			env.sb.Destroy()
			return nil, err
		}
	}
	if env.out, err = newRuntimeOutput(env.sb); err != nil {
		env.sb.Destroy()
		return nil, err
	}
	env.telemetry = telemetry{keep: true, dial: env.sb.Dial, done: env.destroyed}
	env.telemetry.emit("platform.initStart", map[string]any{
		"initializationType": initializationType(provisioned), "phase": "init",
		"runtimeVersion": runtimeVersion(w.cfg.Runtimes.Runs(c.Runtime)), "functionName": c.FunctionName, "functionVersion": c.Version,
	})
	ln, apiAddr := env.sb.RuntimeAPI()
	limits := runtimeAPILimits
	limits.maxConns += connsPerExtension * len(extensions)
	if env.api, err = env.serveRuntimeAPI(ln, limits, w.log); err != nil {
		env.destroy()
		return nil, err
	}
	if env.awsVars, err = w.openEndpoint(env); err != nil {
		env.destroy()
		return nil, err
	}

	vars := w.environment(env, paths, apiAddr)
	runtime := sandbox.Process{
		Argv:   launch.Argv,
		Env:    append(vars, launch.Env...),
		Dir:    paths.TaskRoot,
		Output: env.out.writer(),
	}
	if len(extensions) > 0 {
		err = env.launchExtensions(extensions, paths.Opt, vars, runtime)
	} else {
		close(env.ext.registered)
		err = env.sb.Start(runtime)
	}
	if err != nil {
		env.destroy()
		var execErr *sandbox.ExecError
		if errors.As(err, &execErr) {
			return nil, &runtimes.EntrypointError{Message: err.Error()}
		}
		return nil, fmt.Errorf("start runtime: %w", err)
	}
	return env, nil
}

// prestart returns the runtime process of fn as a sandbox may start it
// before fn is known (sandbox.Prestart) and the launch it is made of, or
// nil when fn's runtime cannot start so: the provider cannot, fn's runtime
// is not an interpreter of Lamina's, or fn sets a variable its interpreter
// reads when it starts (or one Lamina sets for it).
func (w *Worker) prestart(fn *lamina.Function, taskDir string, layerDirs []string) (*sandbox.Prestart, runtimes.Launch) {
	ps, ok := w.cfg.Sandbox.(sandbox.Prestarter)
	family := fn.Family()
	if !ok || (family != lamina.FamilyPython && family != lamina.FamilyNode) {
		return nil, runtimes.Launch{}
	}
	paths := ps.Paths()
	launch, err := w.cfg.Runtimes.Launch(fn, paths, taskDir, layerDirs)
	if err != nil {
		return nil, runtimes.Launch{} // Launch reports it after Create
	}
	vars := append(startVars(paths), launch.Env...)
	if c := fn.Configuration.Environment; c != nil {
		for name := range c.Variables {
			if runtimes.ReadAtStart(family, name) || slices.ContainsFunc(vars, func(v string) bool {
				return strings.HasPrefix(v, name+"=")
			}) {
				return nil, runtimes.Launch{}
			}
		}
	}
	return &sandbox.Prestart{Argv: launch.Argv, Env: vars}, launch
}

// startVars are the variables Lambda sets that are the same for every
// function in a sandbox showing paths.
func startVars(paths sandbox.Paths) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin:" + paths.Opt + "/bin",
		"LD_LIBRARY_PATH=/lib64:/usr/lib64:" + paths.RuntimeDir + ":" + paths.TaskRoot + ":" + paths.TaskRoot + "/lib:" + paths.Opt + "/lib",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"LAMBDA_TASK_ROOT=" + paths.TaskRoot,
		"LAMBDA_RUNTIME_DIR=" + paths.RuntimeDir,
	}
}

// environment returns the variables a runtime sees, as Lambda sets them.
func (w *Worker) environment(env *environment, paths sandbox.Paths, apiAddr string) []string {
	c := &env.fn.Configuration
	vars := append(startVars(paths),
		"_HANDLER="+c.Handler,
		"AWS_REGION="+w.cfg.Region,
		"AWS_DEFAULT_REGION="+w.cfg.Region,
		"AWS_LAMBDA_FUNCTION_NAME="+c.FunctionName,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(c.MemorySize),
		"AWS_LAMBDA_FUNCTION_VERSION="+c.Version,
		"AWS_LAMBDA_INITIALIZATION_TYPE="+initializationType(env.provisioned),
		"AWS_LAMBDA_LOG_GROUP_NAME="+c.LogGroupName(),
		"AWS_LAMBDA_LOG_STREAM_NAME="+env.logStream,
		"AWS_LAMBDA_RUNTIME_API="+apiAddr,
		"AWS_XRAY_CONTEXT_MISSING=LOG_ERROR",
		"AWS_XRAY_DAEMON_ADDRESS=169.254.79.129:2000",
	)
	if c.JSONLogs() {
		// The runtimes write JSON log records and drop, at the source,
		// what the application log level would drop.
		vars = append(vars, "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL="+c.LoggingConfig.ApplicationLogLevel)
	}
	vars = append(vars, env.awsVars...)
	if c.Environment != nil {
		for k, v := range c.Environment.Variables {
			vars = append(vars, k+"="+v)
		}
	}
	return vars
}

// initializationType is AWS_LAMBDA_INITIALIZATION_TYPE of an environment.
func initializationType(provisioned string) string {
	if provisioned != "" {
		return "provisioned-concurrency"
	}
	return "on-demand"
}

// initOutcome is how an environment's init ended.
type initOutcome struct {
	duration time.Duration
	failure  *answer // nil when init succeeded
}

// waitInit waits until the runtime asks for its first event (init done),
// reports an init error, exits, or runs out of time.
func (env *environment) waitInit(started time.Time, limit time.Duration) initOutcome {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-env.ready:
		env.telemetry.endBacklog()
		return initOutcome{duration: time.Since(started)}
	case a := <-env.initFailed:
		return initOutcome{duration: time.Since(started), failure: &a}
	case <-env.sb.Exited():
		// An init error is posted just before the runtime exits: prefer it.
		select {
		case a := <-env.initFailed:
			return initOutcome{duration: time.Since(started), failure: &a}
		default:
		}
		a := env.exitAnswer("")
		return initOutcome{duration: time.Since(started), failure: &a}
	case <-timer.C:
		a := answer{errorType: lamina.ErrorTypeTimeout,
			payload: errorPayload(lamina.ErrorTypeTimeout, fmt.Sprintf("Init timed out after %.2f seconds", limit.Seconds()))}
		return initOutcome{duration: limit, failure: &a}
	}
}

// exitAnswer describes the runtime's exit as Lambda reports it: a crash is
// Runtime.ExitError, a kill by the memory limit Runtime.OutOfMemory.
func (env *environment) exitAnswer(requestID string) answer {
	msg := exitReason(env)
	if requestID != "" {
		msg = "RequestId: " + requestID + " Error: " + msg
	}
	errorType := lamina.ErrorTypeExit
	if env.sb.OutOfMemory() {
		errorType = lamina.ErrorTypeOutOfMemory
	}
	return answer{errorType: errorType, payload: errorPayload(errorType, msg)}
}

// exitReason says how the runtime exited, in Lambda's words.
func exitReason(env *environment) string {
	if err := env.sb.ExitError(); err != nil {
		return "Runtime exited with error: " + err.Error()
	}
	return "Runtime exited without providing a reason"
}

// outcome is how an invocation in an environment ended.
type outcome struct {
	answer   answer
	duration time.Duration
	timedOut bool
	crashed  bool
	// stale: the runtime had already exited before it took the invocation
	// (e.g. a Go runtime exits after reporting a panic), so the invocation
	// never started and can run in another environment.
	stale  bool
	memory int64 // peak bytes during the invocation
	// streamed: the response (or its start) went to the invocation's
	// stream.
	streamed bool
	deadline time.Time // of the invocation
}

// invoke runs one invocation in env and waits for its end: the runtime's
// answer, its exit, or the function's timeout.
func (env *environment) invoke(req *lamina.Invocation) (out outcome) {
	timeout := time.Duration(env.fn.Configuration.Timeout) * time.Second
	started := time.Now()
	inv := &invocation{req: req, deadline: started.Add(timeout), answers: make(chan answer, 1)}
	if req.Stream != nil {
		inv.stream = &streamGuard{to: req.Stream}
		defer func() { out.streamed = inv.stream.end() }()
	}
	select {
	case <-env.sb.Exited(): // it exited while idle: it cannot take the event
		return outcome{stale: true}
	default:
	}
	thawLater, err := env.unpark() // thaw a frozen environment, now or once the event is handed over
	if err != nil {
		return outcome{stale: true}
	}
	env.sb.ResetMemoryPeak()
	timer := time.NewTimer(timeout)
	defer timer.Stop()

	out.deadline = inv.deadline
	if env.hasExtensions() {
		env.sendExtensions(eventInvoke, invokeEvent(inv))
	}
	select {
	case env.next <- inv:
		if thawLater {
			_ = env.thaw() // on failure the invocation times out
		}
		select {
		case out.answer = <-inv.answers:
		case <-env.sb.Exited():
			select {
			case out.answer = <-inv.answers: // answered just before exiting
			default:
				out.answer, out.crashed = env.exitAnswer(req.RequestID), true
			}
		case <-timer.C:
			out.timedOut = true
		}
	case <-env.sb.Exited():
		out.stale = true
		return out
	case <-timer.C:
		out.timedOut = true
	}
	out.duration = time.Since(started)
	if out.timedOut {
		out.duration = timeout
		out.answer = answer{errorType: lamina.ErrorTypeTimeout, payload: errorPayload(lamina.ErrorTypeTimeout,
			fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", req.RequestID, timeout.Seconds()))}
	}
	out.memory = env.sb.MemoryPeak()
	return out
}

// collect waits for the output of the runtime and of the extensions so far
// and returns it as log events of env's stream, in time order; it passes
// it on to telemetry subscribers as function and extension records.
func (env *environment) collect() ([]logs.Event, int) {
	events, dropped := env.out.take()
	for i := range events {
		events[i].Stream = env.logStream
		env.telemetry.emitAt(time.UnixMilli(events[i].Timestamp), "function", events[i].Message)
	}
	env.mu.Lock()
	external := env.ext.external
	env.mu.Unlock()
	for _, ext := range external {
		more, n := ext.out.take()
		for i := range more {
			more[i].Stream = env.logStream
			env.telemetry.emitAt(time.UnixMilli(more[i].Timestamp), "extension", more[i].Message)
		}
		events, dropped = append(events, more...), dropped+n
	}
	if len(external) > 0 {
		slices.SortStableFunc(events, func(a, b logs.Event) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	}
	return newLogFormat(&env.fn.Configuration).keepApplication(events), dropped
}

// destroy stops the environment for good: the sandbox with every process in
// it, the Runtime API, the AWS endpoint and credentials, the output pipe.
func (env *environment) destroy() {
	env.destroying.Do(func() {
		if env.hasExtensions() {
			env.shutdown()
		}
		close(env.destroyed)
		if env.api != nil {
			env.api.Close()
		}
		env.closeEndpoint()
		env.sb.Destroy()
		if env.out != nil {
			env.out.close()
		}
	})
}

// shutdown ends an environment with extensions as Lambda does: thawed,
// telemetry delivered, SHUTDOWN to the extensions registered for it, and
// what they write meanwhile logged.
func (env *environment) shutdown() {
	if env.thaw() != nil {
		return
	}
	env.mu.Lock()
	reason := env.shutdownReason
	env.mu.Unlock()
	if reason == "" {
		reason = "spindown"
	}
	env.telemetry.flush(time.Now().Add(shutdownTimeout / 4))
	env.shutdownExtensions(reason)
	if events, _ := env.collect(); len(events) > 0 {
		env.publish(events)
	}
}

// retireFor notes why env is retired (SHUTDOWN's shutdownReason).
func (env *environment) retireFor(reason string) {
	env.mu.Lock()
	env.shutdownReason = reason
	env.mu.Unlock()
}

func decodeBase64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
