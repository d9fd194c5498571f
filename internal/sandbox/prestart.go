//go:build linux && cgo

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Runtimes started ahead. A managed runtime's interpreter (Python, Node)
// takes longer to start than everything else of a cold start together, and
// what it does until it loads the function's handler is the same for every
// function of that runtime. So, for each runtime in use, a pool keeps
// sandboxes prepared as usual in which the init has also shown the
// runtime's files and interpreter and started the runtime process, exactly
// as Start would (same fork, user namespace, uid, capabilities, limits and
// seccomp filter). The process starts its interpreter, loads Lamina's
// runtime and then blocks reading descriptor 3. A cold start of a function
// of that runtime takes such a sandbox, has the init show the function's
// code, layers and /tmp and make the root read-only, and writes the
// function's environment and working directory to descriptor 3: only then
// does the runtime see anything of a function, and it loads the handler as
// a fresh start would. Every sandbox serves one environment and is
// destroyed with it; nothing outlives it, and no process ever serves two
// functions (docs/sandbox.md says why this is as safe as a fresh start).

// Bounds of the pools of sandboxes with a runtime started ahead.
const (
	// prestartedPerRuntime is how many sandboxes wait per runtime.
	prestartedPerRuntime = 2
	// maxPrestartRuntimes is how many runtimes (distinct Prestarts) have a
	// pool at once; a new one replaces the least recently used.
	maxPrestartRuntimes = 4
)

// prestartPools holds a provider's pools of sandboxes with a runtime
// started ahead, one per Prestart (and its directories).
type prestartPools struct {
	mu    sync.Mutex
	pools map[string]*prestartPool
}

type prestartPool struct {
	*preparedPool
	used time.Time
}

// prestartKey identifies what a prestarted sandbox runs and shows.
func prestartKey(spec Spec) string {
	parts := slices.Concat([]string{spec.RuntimeDir}, spec.ReadOnlyDirs, []string{""}, spec.Prestart.Argv, []string{""},
		spec.Prestart.Env)
	return strings.Join(parts, "\x00")
}

// take returns a sandbox of spec's pool with its runtime started, or nil if
// none is ready; the first take of a runtime creates its pool.
func (pp *prestartPools) take(p *NamespaceProvider, spec Spec) *namespaceSandbox {
	key := prestartKey(spec)
	pp.mu.Lock()
	pool := pp.pools[key]
	if pool == nil {
		if pp.pools == nil {
			pp.pools = map[string]*prestartPool{}
		}
		if len(pp.pools) >= maxPrestartRuntimes {
			pp.evictLocked()
		}
		tmpl := prestartSpec(spec)
		pool = &prestartPool{preparedPool: newPreparedPool(p, prestartedPerRuntime, false,
			func() (*namespaceSandbox, error) { return p.prestart(tmpl) }, p.log)}
		pp.pools[key] = pool
	}
	pool.used = time.Now()
	pp.mu.Unlock()
	s, _ := pool.take() // never an error: the pool does not prepare on demand
	return s
}

// prestartSpec keeps of spec what a runtime started ahead has: its
// runtime's files, interpreter and process, nothing of the function.
func prestartSpec(spec Spec) Spec {
	return Spec{RuntimeDir: spec.RuntimeDir, ReadOnlyDirs: slices.Clone(spec.ReadOnlyDirs),
		Prestart: &Prestart{Argv: slices.Clone(spec.Prestart.Argv), Env: slices.Clone(spec.Prestart.Env)}}
}

// evictLocked closes the least recently used pool.
func (pp *prestartPools) evictLocked() {
	var oldest string
	for key, pool := range pp.pools {
		if oldest == "" || pool.used.Before(pp.pools[oldest].used) {
			oldest = key
		}
	}
	pp.pools[oldest].close()
	delete(pp.pools, oldest)
}

// each runs f on every pool.
func (pp *prestartPools) each(f func(*preparedPool)) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for _, pool := range pp.pools {
		f(pool.preparedPool)
	}
}

// prestart prepares a sandbox, shows tmpl's runtime files and interpreter
// in it and starts tmpl's runtime process, which waits for its function on
// descriptor 3.
func (p *NamespaceProvider) prestart(tmpl Spec) (*namespaceSandbox, error) {
	s, err := p.prepare(p.name())
	if err != nil {
		return nil, err
	}
	if err := s.startAhead(tmpl); err != nil {
		s.Destroy()
		return nil, err
	}
	return s, nil
}

// startAhead shows tmpl's directories and starts its runtime process.
func (s *namespaceSandbox) startAhead(tmpl Spec) error {
	plan := readOnlyDirsPlan(tmpl.ReadOnlyDirs)
	if tmpl.RuntimeDir != "" {
		plan = append(plan, "bind", tmpl.RuntimeDir, "/var/runtime", "ro,nosuid,nodev")
	}
	// The root is made read-only now: the function's mounts are attached
	// on their mount points later all the same.
	if err := s.setup(append(plan, "readonly")); err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer outW.Close()
	assignR, assignW, err := os.Pipe()
	if err != nil {
		outR.Close()
		return err
	}
	defer assignR.Close()
	s.output, s.assign, s.prestarted = outR, assignW, tmpl.Prestart
	env := append(slices.Clip(tmpl.Prestart.Env), assignmentFDVar+"=3")
	proc := Process{Argv: tmpl.Prestart.Argv, Env: env, Dir: "/"}
	if err := s.send([]*os.File{outW, assignR}, s.processFields("start", proc)...); err != nil {
		return err
	}
	_, err = s.expect("started", time.Now().Add(setupTimeout))
	return err
}

// Paths says where every namespace sandbox shows things.
func (p *NamespaceProvider) Paths() Paths { return namespacePaths }

// PrestartedOutput returns the output of a runtime started ahead, or nil.
// The caller owns it from then on.
func (s *namespaceSandbox) PrestartedOutput() *os.File {
	s.outputTaken = true
	return s.output
}

// assignmentFDVar tells a runtime started ahead where its assignment comes.
const assignmentFDVar = "_LAMINA_ASSIGNMENT_FD"

// assignment is what a runtime started ahead reads on descriptor 3.
type assignment struct {
	Env []string `json:"env"`
	Cwd string   `json:"cwd"`
}

// hand gives the runtime started ahead its function: p's environment and
// working directory.
func (s *namespaceSandbox) hand(p Process) error {
	if !slices.Equal(p.Argv, s.prestarted.Argv) {
		return errors.New("sandbox: the runtime started ahead runs another command")
	}
	msg, err := json.Marshal(assignment{Env: p.Env, Cwd: p.Dir})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.reported = make(chan struct{})
	s.mu.Unlock()
	go s.awaitExit()
	_, err = s.assign.Write(msg)
	if cerr := s.assign.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sandbox: hand the function to the runtime: %w", err)
	}
	return nil
}
