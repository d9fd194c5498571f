package worker

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/sandbox"
)

// The Extensions API (2020-01-01) of an environment, as Lambda documents it.
// External extensions are the executables in /opt/extensions (from the
// function's layers): the worker starts them before the runtime, which
// starts once each has registered. Internal extensions register from the
// runtime's process before its first /next. Init ends when the runtime and
// every registered extension have asked for their next event. Every
// invocation goes to the extensions registered for INVOKE as it goes to the
// runtime; the runtime's answer goes to the caller at once, and the
// environment takes its next invocation only when every one of them has
// asked for its next event again (the invoke phase, which REPORT's Duration
// covers, ends then). When the environment retires, those registered for
// SHUTDOWN get it and have shutdownTimeout to ask again or exit; then
// everything is killed.

// Bounds of the Extensions API.
const (
	// maxExtensions is how many extensions (external and internal) an
	// environment runs, as on Lambda.
	maxExtensions = 10
	// maxExtensionBody bounds the body of a register, error or subscribe
	// request.
	maxExtensionBody = 64 << 10
	// shutdownTimeout is how long extensions have for SHUTDOWN, as on
	// Lambda (2,000 ms with external extensions).
	shutdownTimeout = 2 * time.Second
	// connsPerExtension is how many more Runtime API connections an
	// environment is allowed for each external extension: one for its /next
	// long poll, one for its other calls.
	connsPerExtension = 2
)

// Extension event types.
const (
	eventInvoke   = "INVOKE"
	eventShutdown = "SHUTDOWN"
)

// extension is a registered extension. Its fields are guarded by the
// environment's mu.
type extension struct {
	id, name string
	internal bool
	invoke   bool // registered for INVOKE
	shutdown bool // registered for SHUTDOWN
	events   chan []byte
	polled   bool // it asked for an event at least once: its init is done
	// pending counts events queued for it that it has not finished: it
	// finishes one by asking for the next. holding: its /next took one.
	pending int
	holding bool
	exited  bool // external: its process (and its output) ended
}

// done reports whether ext has finished every event sent to it.
func (ext *extension) done() bool { return ext.pending == 0 || ext.exited }

// externalExtension is an executable of /opt/extensions, and its output.
type externalExtension struct {
	name string
	out  *output
}

// extensionState is what an environment knows of its extensions. Guarded
// by the environment's mu.
type extensionState struct {
	external   []*externalExtension
	byID       map[string]*extension
	order      []*extension  // in order of registration
	registered chan struct{} // closed when every external extension has registered
	closed     bool          // registration is over: the runtime asked for its first event
	runtimeUp  bool          // the runtime asked for its first event
	crashed    string        // the name of an extension that ended after init
	changed    chan struct{} // closed and replaced when an extension asks for an event or ends
}

// discoverExtensions returns the names of the external extensions in the
// layers' extensions directories, as /opt shows them merged (a later layer's
// file replaces an earlier one's), sorted.
func discoverExtensions(layerDirs []string) ([]string, error) {
	seen := map[string]bool{}
	for _, dir := range layerDirs {
		entries, err := os.ReadDir(filepath.Join(dir, "extensions"))
		if err != nil {
			continue // no extensions in this layer
		}
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
				seen[e.Name()] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) > maxExtensions {
		return nil, fmt.Errorf("the layers hold %d extensions; an environment runs at most %d", len(names), maxExtensions)
	}
	return names, nil
}

// launchExtensions starts the external extensions and, once each has
// registered, the runtime. A failure is the init's (Extension.LaunchError,
// Extension.Crash, Runtime.InvalidEntrypoint). The init's time limit
// bounds the wait: waitInit gives up on the environment then.
func (env *environment) launchExtensions(names []string, opt string, vars []string, runtime sandbox.Process) error {
	// All are known before any starts: the runtime waits for all of them.
	external := make([]*externalExtension, len(names))
	for i, name := range names {
		out, err := newOutput()
		if err != nil {
			return err
		}
		external[i] = &externalExtension{name: name, out: out}
	}
	env.mu.Lock()
	env.ext.external = external
	env.mu.Unlock()
	for i, ext := range external {
		path := opt + "/extensions/" + ext.name
		err := env.sb.Spawn(sandbox.Process{Argv: []string{path}, Env: vars, Dir: "/", Output: ext.out.writer()})
		ext.out.close() // the extension holds the write end now: its end is end of file
		if err != nil {
			for _, rest := range external[i+1:] {
				rest.out.close()
			}
			var execErr *sandbox.ExecError
			if errors.As(err, &execErr) {
				env.failInit(answer{errorType: "Extension.LaunchError", payload: errorPayload("Extension.LaunchError", err.Error())})
				return nil
			}
			return fmt.Errorf("start extension %s: %w", ext.name, err)
		}
		go env.watchExtension(ext)
	}
	go func() {
		select {
		case <-env.ext.registered:
		case <-env.destroyed:
			return
		}
		if err := env.sb.Start(runtime); err != nil {
			env.failInit(answer{errorType: lamina.ErrorTypeInvalidEntrypoint, payload: errorPayload(lamina.ErrorTypeInvalidEntrypoint, err.Error())})
		}
	}()
	return nil
}

// failInit reports an init failure, unless one was reported already.
func (env *environment) failInit(a answer) {
	select {
	case env.initFailed <- a:
	default:
	}
}

// watchExtension notes the end of an external extension's process: during
// init it fails the init; later the environment is retired after the
// invocation in flight.
func (env *environment) watchExtension(ext *externalExtension) {
	<-ext.out.eof
	env.mu.Lock()
	var reg *extension
	for _, e := range env.ext.order {
		if !e.internal && e.name == ext.name {
			reg = e
		}
	}
	if reg != nil {
		reg.exited = true
	}
	initDone := env.ext.closed && env.initDoneLocked()
	if initDone && env.ext.crashed == "" {
		env.ext.crashed = ext.name
	}
	env.mu.Unlock()
	env.pokeExtensions()
	select {
	case <-env.destroyed:
		return // killed with the environment
	default:
	}
	if !initDone {
		env.failInit(answer{errorType: "Extension.Crash", payload: errorPayload("Extension.Crash", "Extension "+ext.name+" exited during init")})
	}
}

// pokeExtensions wakes whoever waits for extensions to finish.
func (env *environment) pokeExtensions() {
	env.mu.Lock()
	close(env.ext.changed)
	env.ext.changed = make(chan struct{})
	env.mu.Unlock()
}

// initDoneLocked reports whether init is over: the runtime and every
// registered extension asked for their first event. The caller holds mu.
func (env *environment) initDoneLocked() bool {
	if !env.ext.runtimeUp {
		return false
	}
	for _, ext := range env.ext.order {
		if !ext.polled && !ext.exited {
			return false
		}
	}
	return true
}

// checkInitLocked ends init when it is over. The caller holds mu.
func (env *environment) checkInitLocked() {
	if env.initDoneLocked() {
		select {
		case <-env.ready:
		default:
			close(env.ready)
		}
	}
}

// hasExtensions reports whether extensions run in env, or registered.
func (env *environment) hasExtensions() bool {
	env.mu.Lock()
	defer env.mu.Unlock()
	return len(env.ext.order) > 0 || len(env.ext.external) > 0
}

// sendExtensions queues event (JSON) for every extension registered for
// its type.
func (env *environment) sendExtensions(eventType string, event []byte) {
	env.mu.Lock()
	defer env.mu.Unlock()
	for _, ext := range env.ext.order {
		if ext.exited || (eventType == eventInvoke && !ext.invoke) || (eventType == eventShutdown && !ext.shutdown) {
			continue
		}
		select {
		case ext.events <- event:
			ext.pending++
		default: // it holds an event it has not taken: it cannot take another
		}
	}
}

// invokeEvent is the INVOKE event of an invocation.
func invokeEvent(inv *invocation) []byte {
	return mustJSON(map[string]any{
		"eventType":          eventInvoke,
		"deadlineMs":         inv.deadline.UnixMilli(),
		"requestId":          inv.req.RequestID,
		"invokedFunctionArn": inv.req.InvokedARN,
		"tracing":            map[string]string{"type": "X-Amzn-Trace-Id", "value": inv.req.TraceID},
	})
}

// awaitExtensions waits until every extension has finished its events, or
// until deadline. It reports whether they all did.
func (env *environment) awaitExtensions(deadline time.Time) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		env.mu.Lock()
		done := true
		for _, ext := range env.ext.order {
			done = done && ext.done()
		}
		changed := env.ext.changed
		env.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-changed:
		case <-timer.C:
			return false
		case <-env.destroyed:
			return false
		}
	}
}

// crashedExtension names an extension that ended after init, or "".
func (env *environment) crashedExtension() string {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.ext.crashed
}

// shutdownExtensions sends SHUTDOWN to the extensions registered for it and
// gives them shutdownTimeout to finish. reason is Lambda's shutdownReason.
func (env *environment) shutdownExtensions(reason string) {
	env.mu.Lock()
	wanted := false
	for _, ext := range env.ext.order {
		wanted = wanted || (ext.shutdown && !ext.exited)
	}
	env.mu.Unlock()
	if !wanted {
		return
	}
	if env.thaw() != nil {
		return
	}
	deadline := time.Now().Add(shutdownTimeout)
	env.sendExtensions(eventShutdown, mustJSON(map[string]any{
		"eventType": eventShutdown, "shutdownReason": reason, "deadlineMs": deadline.UnixMilli(),
	}))
	env.awaitExtensions(deadline)
}

// Extensions API handlers.

// extensionOf returns the registered extension the request's
// Lambda-Extension-Identifier names, or answers 403 and returns nil.
func (env *environment) extensionOf(w http.ResponseWriter, r *http.Request) *extension {
	id := r.Header.Get("Lambda-Extension-Identifier")
	if id == "" {
		runtimeAPIError(w, http.StatusForbidden, "Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")
		return nil
	}
	env.mu.Lock()
	ext := env.ext.byID[id]
	env.mu.Unlock()
	if ext == nil {
		runtimeAPIError(w, http.StatusForbidden, "Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier")
		return nil
	}
	return ext
}

func (env *environment) handleRegister(w http.ResponseWriter, r *http.Request) {
	name := r.Header.Get("Lambda-Extension-Name")
	body, err := readBody(r, maxExtensionBody)
	if errors.Is(err, errBodyTooLarge) {
		payloadTooLarge(w, maxExtensionBody)
		return
	}
	var req struct {
		Events []string `json:"events"`
	}
	if err != nil || (len(body) > 0 && json.Unmarshal(body, &req) != nil) {
		runtimeAPIError(w, http.StatusBadRequest, "InvalidRequestFormat", "the register request's body is not {\"events\":[...]}")
		return
	}
	if name == "" || len(name) > 256 || strings.ContainsAny(name, "/\x00") {
		runtimeAPIError(w, http.StatusForbidden, "Extension.InvalidExtensionName", "Invalid Lambda-Extension-Name "+strconv.Quote(name))
		return
	}
	ext := &extension{id: uuid.NewString(), name: name, events: make(chan []byte, 1)}
	for _, e := range req.Events {
		switch e {
		case eventInvoke:
			ext.invoke = true
		case eventShutdown:
			ext.shutdown = true
		default:
			runtimeAPIError(w, http.StatusBadRequest, "InvalidEventType", "Unknown event type "+strconv.Quote(e))
			return
		}
	}
	env.mu.Lock()
	status, errType, msg := env.registerLocked(ext)
	env.mu.Unlock()
	if status != 0 {
		runtimeAPIError(w, status, errType, msg)
		return
	}
	c := &env.fn.Configuration
	resp := map[string]string{"functionName": c.FunctionName, "functionVersion": c.Version, "handler": c.Handler}
	if slices.Contains(r.Header.Values("Lambda-Extension-Accept-Feature"), "accountId") {
		if parts := strings.Split(c.FunctionArn, ":"); len(parts) > 4 {
			resp["accountId"] = parts[4]
		}
	}
	w.Header().Set("Lambda-Extension-Identifier", ext.id)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(mustJSON(resp))
}

// registerLocked registers ext, or returns the status, type and message of
// the refusal. The caller holds mu.
func (env *environment) registerLocked(ext *extension) (int, string, string) {
	st := &env.ext
	if st.closed {
		return http.StatusForbidden, "Extension.InvalidStateTransition", "Extensions register during init only"
	}
	for _, e := range st.order {
		if e.name == ext.name {
			return http.StatusConflict, "Extension.AlreadyRegistered", "Extension " + ext.name + " is registered already"
		}
	}
	if len(st.order) >= maxExtensions {
		return http.StatusForbidden, "Extension.TooManyExtensions", fmt.Sprintf("An environment runs at most %d extensions", maxExtensions)
	}
	ext.internal = !slices.ContainsFunc(st.external, func(e *externalExtension) bool { return e.name == ext.name })
	if ext.internal && ext.shutdown {
		return http.StatusForbidden, "Extension.ShutdownEventNotSupportedForInternalExtension", "Internal extensions cannot register for SHUTDOWN"
	}
	st.byID[ext.id] = ext
	st.order = append(st.order, ext)
	if env.allExternalRegisteredLocked() {
		select {
		case <-st.registered:
		default:
			close(st.registered)
		}
	}
	return 0, "", ""
}

// allExternalRegisteredLocked reports whether every external extension has
// registered. The caller holds mu.
func (env *environment) allExternalRegisteredLocked() bool {
	for _, x := range env.ext.external {
		if !slices.ContainsFunc(env.ext.order, func(e *extension) bool { return !e.internal && e.name == x.name }) {
			return false
		}
	}
	return true
}

// handleExtensionNext hands an extension its next event: it long-polls
// until there is one.
func (env *environment) handleExtensionNext(w http.ResponseWriter, r *http.Request) {
	ext := env.extensionOf(w, r)
	if ext == nil {
		return
	}
	env.mu.Lock()
	if ext.holding {
		ext.holding = false
		ext.pending--
	}
	ext.polled = true
	env.checkInitLocked()
	env.mu.Unlock()
	env.pokeExtensions()
	if r.ContentLength == 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	var event []byte
	select {
	case event = <-ext.events:
	case <-env.destroyed:
		runtimeAPIError(w, http.StatusInternalServerError, "Extension.Shutdown", "the environment is shutting down")
		return
	case <-r.Context().Done():
		return
	}
	env.mu.Lock()
	ext.holding = true
	env.mu.Unlock()
	w.Header().Set("Lambda-Extension-Event-Identifier", rand.Text())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(event)
}

// handleExtensionError takes an extension's report of a failed init or of
// its exit: a failed init fails the environment's init with the reported
// type; an exit retires the environment after the invocation in flight.
func (env *environment) handleExtensionError(phase string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ext := env.extensionOf(w, r)
		if ext == nil {
			return
		}
		typ := r.Header.Get("Lambda-Extension-Function-Error-Type")
		if typ == "" {
			runtimeAPIError(w, http.StatusBadRequest, "Extension.MissingHeader", "Missing Lambda-Extension-Function-Error-Type header")
			return
		}
		if _, err := readBody(r, maxExtensionBody); errors.Is(err, errBodyTooLarge) {
			payloadTooLarge(w, maxExtensionBody)
			return
		}
		accepted(w)
		if phase == "init" {
			env.failInit(answer{errorType: typ, payload: errorPayload(typ, "Extension "+ext.name+" failed to initialize")})
			return
		}
		env.mu.Lock()
		if env.ext.crashed == "" {
			env.ext.crashed = ext.name
		}
		ext.exited = true
		env.mu.Unlock()
		env.pokeExtensions()
	}
}
