package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Limits every sandbox gets, as on Lambda.
const (
	maxProcesses = 1024 // processes and threads
	maxOpenFiles = 1024
	// memoryPerVCPU is the memory size at which Lambda gives a function one
	// full vCPU.
	memoryPerVCPU = 1769
	cfsPeriod     = 100000 // µs
)

// cgroupRoot is where the cgroup v1 controllers are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// checkCgroups reports whether this host's cgroups can limit sandboxes: the
// memory, pids and cpu controllers on cgroup v1 (legacy or hybrid mode).
func checkCgroups() error {
	switch cgroups.Mode() {
	case cgroups.Legacy, cgroups.Hybrid:
		for _, c := range []string{"memory", "pids", "cpu"} {
			if _, err := os.Stat(filepath.Join(cgroupRoot, c, "cgroup.procs")); err != nil {
				return fmt.Errorf("cgroup v1 controller %s is not mounted at %s", c, filepath.Join(cgroupRoot, c))
			}
		}
		return nil
	case cgroups.Unified:
		return errors.New("this host uses cgroup v2 only, which the namespace sandbox does not support yet")
	}
	return errors.New("no cgroup hierarchy found")
}

// cgroup holds one sandbox's limits and measurements: memory (the
// function's MemorySize), processes, and a CPU share in proportion to
// memory.
type cgroup struct {
	cg       cgroup1.Cgroup
	peak     *os.File // memory.max_usage_in_bytes: read for the peak, written to reset it
	oomState string   // path of memory.oom_control
}

// cgroupHierarchy selects the controllers sandboxes use.
func cgroupHierarchy() ([]cgroup1.Subsystem, error) {
	return []cgroup1.Subsystem{cgroup1.NewMemory(cgroupRoot), cgroup1.NewPids(cgroupRoot), cgroup1.NewCpu(cgroupRoot)}, nil
}

// newCgroup creates the cgroups of sandbox id under the server's own
// cgroups (lamina/<id> in each controller).
func newCgroup(id string, memoryMB int) (*cgroup, error) {
	limit := int64(memoryMB) << 20
	pids := int64(maxProcesses)
	shares := uint64(max(2, 1024*memoryMB/memoryPerVCPU))
	// A share under contention, and a ceiling of as many whole vCPUs as the
	// memory buys (at least one), so that small functions still start fast.
	quota := int64(max(1, (memoryMB+memoryPerVCPU-1)/memoryPerVCPU)) * cfsPeriod
	period := uint64(cfsPeriod)
	path := cgroup1.NestedPath(filepath.Join("lamina", id))
	cg, err := cgroup1.New(path, &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &limit},
		Pids:   &specs.LinuxPids{Limit: &pids},
		CPU:    &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period},
	}, cgroup1.WithHierarchy(cgroupHierarchy))
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	memPath, err := path(cgroup1.Memory)
	if err != nil {
		cg.Delete()
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	dir := filepath.Join(cgroupRoot, "memory", memPath)
	peak, err := os.OpenFile(filepath.Join(dir, "memory.max_usage_in_bytes"), os.O_RDWR, 0)
	if err != nil {
		cg.Delete()
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return &cgroup{cg: cg, peak: peak, oomState: filepath.Join(dir, "memory.oom_control")}, nil
}

// add moves process pid (and its future children) into the cgroups.
func (c *cgroup) add(pid int) error {
	return c.cg.Add(cgroup1.Process{Pid: pid})
}

// memoryPeak returns the highest memory use since creation or the last
// resetMemoryPeak, in bytes.
func (c *cgroup) memoryPeak() int64 {
	var buf [32]byte
	n, _ := c.peak.ReadAt(buf[:], 0)
	v, _ := strconv.ParseInt(string(bytes.TrimSpace(buf[:n])), 10, 64)
	return v
}

func (c *cgroup) resetMemoryPeak() { _, _ = c.peak.WriteAt([]byte("0"), 0) }

// oomKills returns how many processes the memory limit has killed.
func (c *cgroup) oomKills() int {
	data, err := os.ReadFile(c.oomState)
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(data, []byte("oom_kill "))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	n, _ := strconv.Atoi(string(line))
	return n
}

// delete removes the cgroups, waiting for processes that are still exiting.
func (c *cgroup) delete() error {
	c.peak.Close()
	var err error
	for delay := time.Millisecond; delay < 2*time.Second; delay *= 2 {
		if err = c.cg.Delete(); err == nil || errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return nil
		}
		time.Sleep(delay)
	}
	return err
}

// ownCgroupDir returns the directory of this process's own cgroup in
// controller, under which sandboxes' cgroups are created (in "lamina/").
func ownCgroupDir(controller string) (string, error) {
	paths, err := cgroup1.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	return filepath.Join(cgroupRoot, controller, paths[controller]), nil
}

// staleAfter is how old an empty sandbox cgroup must be to be swept: a
// server that crashed left it, not a sandbox being created right now.
const staleAfter = time.Minute

// sweepStaleCgroups removes the empty sandbox cgroups a server killed before
// it could destroy its sandboxes left behind. A cgroup with processes in it
// cannot be removed, so live sandboxes of other servers are never touched.
func sweepStaleCgroups() int {
	removed := 0
	for _, controller := range []string{"memory", "pids", "cpu"} {
		own, err := ownCgroupDir(controller)
		if err != nil {
			continue
		}
		parent := filepath.Join(own, "lamina")
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || !e.IsDir() || time.Since(info.ModTime()) < staleAfter {
				continue
			}
			procs, err := os.ReadFile(filepath.Join(parent, e.Name(), "cgroup.procs"))
			if err == nil && len(bytes.TrimSpace(procs)) == 0 && os.Remove(filepath.Join(parent, e.Name())) == nil {
				removed++
			}
		}
	}
	return removed
}
