package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// cgroup v2 (unified hosts): one hierarchy with every controller. The
// nodes live in a delegated subtree, lamina/, under the server's own cgroup
// when the server is alone there (a systemd service of its own), else at
// the root of the hierarchy. v2 lets only leaves hold processes once
// controllers are enabled below a cgroup, so a server alone in its cgroup
// first moves itself to a leaf of its own, lamina/server-<pid>-<start>.
//
//	<own cgroup or root>/lamina/           subtree_control: +cpu +memory +pids
//	    server-<pid>-<start>/              the server process (when it moved)
//	    node-<pid>-<start>/                memory.max, memory.swap.max 0, pids.max
//	        <sandbox>/                     memory.max, memory.swap.max 0, pids.max, cpu.weight, cpu.max

// v2Controllers are the controllers sandboxes need.
var v2Controllers = []string{"cpu", "memory", "pids"}

type v2Node struct {
	host cgroupHost
	dir  string
	swap bool // memory.swap.max exists (the kernel has swap)
}

func newV2Node(host cgroupHost, name string, limits nodeLimits) (*v2Node, error) {
	base, err := v2Base(host)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	sweep(base, killUnified)
	n := &v2Node{host: host, dir: filepath.Join(base, name)}
	if err := host.mkdir(n.dir); err != nil {
		return nil, fmt.Errorf("cgroups: node: %w", err)
	}
	n.swap = fileExists(filepath.Join(n.dir, "memory.swap.max"))
	m, err := cgroup2.Load("/"+n.rel(n.dir), cgroup2.WithMountpoint(host.root))
	if err == nil {
		err = m.Update(cgroup2.ToResources(nodeResources(limits, n.swap)))
	}
	if err == nil {
		err = enableControllers(n.dir)
	}
	if err != nil {
		os.Remove(n.dir)
		return nil, fmt.Errorf("cgroups: node: %w", err)
	}
	return n, nil
}

// v2Base returns the directory that holds the nodes, lamina/ under this
// process's cgroup when it is alone there (moving it to a leaf first), else
// under the root, with the controllers enabled down to it.
func v2Base(host cgroupHost) (string, error) {
	own := filepath.Join(host.root, host.own[""])
	leafName, err := leafName(host.pid)
	if err != nil {
		return "", err
	}
	if filepath.Base(own) == leafName { // moved there by an earlier node of this process
		return filepath.Dir(own), nil
	}
	if own != host.root && aloneIn(own, host.pid) && hasControllers(own) {
		base := filepath.Join(own, laminaDir)
		if err := mkdirCgroup(host, base); err != nil {
			return "", err
		}
		leaf := filepath.Join(base, leafName)
		if err := mkdirCgroup(host, leaf); err != nil {
			return "", err
		}
		if err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(host.pid)); err != nil {
			return "", fmt.Errorf("move this process to a leaf: %w", err)
		}
		if err := enableControllers(own); err != nil {
			return "", err
		}
		return base, enableControllers(base)
	}
	if !hasControllers(host.root) {
		return "", fmt.Errorf("the cgroup v2 hierarchy at %s lacks a controller of %s", host.root, strings.Join(v2Controllers, ", "))
	}
	base := filepath.Join(host.root, laminaDir)
	if err := mkdirCgroup(host, base); err != nil {
		return "", err
	}
	if err := enableControllers(host.root); err != nil {
		return "", err
	}
	return base, enableControllers(base)
}

// aloneIn reports whether process pid is the only one in the cgroup dir.
func aloneIn(dir string, pid int) bool {
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	return err == nil && string(bytes.TrimSpace(procs)) == strconv.Itoa(pid)
}

// hasControllers reports whether the cgroup dir may enable the
// controllers sandboxes need for its children.
func hasControllers(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return false
	}
	have := strings.Fields(string(data))
	for _, c := range v2Controllers {
		if !slices.Contains(have, c) {
			return false
		}
	}
	return true
}

// enableControllers enables the controllers sandboxes need for the
// children of the cgroup dir.
func enableControllers(dir string) error {
	if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+strings.Join(v2Controllers, " +")); err != nil {
		return fmt.Errorf("enable %s in %s: %w", strings.Join(v2Controllers, ", "), dir, err)
	}
	return nil
}

// rel is dir relative to the hierarchy's mount point.
func (n *v2Node) rel(dir string) string {
	rel, _ := filepath.Rel(n.host.root, dir)
	return rel
}

func (n *v2Node) pidsDir() string { return n.dir }

func (n *v2Node) newSandbox(id string, memoryMB int) (sandboxCgroup, error) {
	g, err := newUnifiedGroup(n.host, filepath.Join(n.dir, id))
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := g.m.Update(cgroup2.ToResources(sandboxResources(memoryMB, n.swap))); err != nil {
		g.remove()
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	s := &v2Sandbox{unifiedGroup: g, swap: n.swap}
	// memory.peak (kernel 5.19) is reset by a write to the same open file
	// (kernel 6.12): keep it open. Before 6.12 the write fails and the peak
	// is the sandbox's since it started; before 5.19 there is none, and
	// memoryPeak reads memory.current.
	peak := filepath.Join(g.dir, "memory.peak")
	if s.peak, err = os.OpenFile(peak, os.O_RDWR, 0); err != nil {
		s.peak, _ = os.Open(peak)
	}
	return s, nil
}

func (n *v2Node) remove() error {
	killUnified(n.dir)
	return removeTree(n.dir)
}

// v2Sandbox is a sandbox's cgroup on a v2 host.
type v2Sandbox struct {
	*unifiedGroup
	peak *os.File // memory.peak, or nil
	swap bool     // memory.swap.max exists

	removeOnce sync.Once
	removeErr  error
}

func (s *v2Sandbox) setMemory(memoryMB int) error {
	if err := s.m.Update(cgroup2.ToResources(sandboxResources(memoryMB, s.swap))); err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	return nil
}

func (s *v2Sandbox) oomKills() int {
	return int(keyedValue(filepath.Join(s.dir, "memory.events"), "oom_kill"))
}

func (s *v2Sandbox) memoryPeak() int64 {
	if s.peak == nil {
		return readInt(filepath.Join(s.dir, "memory.current"))
	}
	return readOpenInt(s.peak)
}

func (s *v2Sandbox) resetMemoryPeak() {
	if s.peak != nil {
		_, _ = s.peak.WriteAt([]byte("reset"), 0)
	}
}

func (s *v2Sandbox) remove() error {
	s.removeOnce.Do(func() {
		if s.peak != nil {
			s.peak.Close()
		}
		s.removeErr = s.unifiedGroup.remove()
		if errors.Is(s.removeErr, os.ErrNotExist) {
			s.removeErr = nil
		}
	})
	return s.removeErr
}
