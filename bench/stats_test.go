package bench

import (
	"encoding/base64"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func decodeBase64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// ---------------------------------------------------------------------------
// Latency percentiles

// percentile returns the p-th percentile (0 < p ≤ 1, nearest rank) of
// sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// latencyMetrics reports the median and 99th percentile of lat as
// "<prefix>p50-µs" and "<prefix>p99-µs", and returns them.
func latencyMetrics(b *testing.B, prefix string, lat []time.Duration) (p50, p99 time.Duration) {
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	p50, p99 = percentile(sorted, 0.50), percentile(sorted, 0.99)
	b.ReportMetric(micros(p50), prefix+"p50-µs")
	b.ReportMetric(micros(p99), prefix+"p99-µs")
	result(b, prefix+"p50-µs", micros(p50))
	result(b, prefix+"p99-µs", micros(p99))
	return p50, p99
}

// report reports a metric to the framework and to the run's summary.
func report(b *testing.B, value float64, unit string) {
	b.ReportMetric(value, unit)
	result(b, unit, value)
}

// ---------------------------------------------------------------------------
// CPU time of the server, the function processes and the client

// procStat is what /proc/PID/stat says about a process.
type procStat struct {
	pid, ppid      int
	state          byte
	utime, stime   int64 // clock ticks
	cutime, cstime int64 // of waited-for children
	start          uint64
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTick = 10 * time.Millisecond

func readStat(pid int) (procStat, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return procStat{}, false
	}
	num := func(k int) int64 { n, _ := strconv.ParseInt(f[k-3], 10, 64); return n }
	start, _ := strconv.ParseUint(f[22-3], 10, 64)
	return procStat{pid: pid, ppid: int(num(4)), state: f[0][0], utime: num(14), stime: num(15),
		cutime: num(16), cstime: num(17), start: start}, true
}

// allProcs returns every process on the host.
func allProcs() []procStat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			out = append(out, st)
		}
	}
	return out
}

// descendantsOf returns the live descendants of root.
func descendantsOf(root int) []procStat {
	procs := allProcs()
	children := map[int][]procStat{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p)
	}
	var out []procStat
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// stillRunning returns those of procs that still run (same pid and start
// time, not a zombie) after waiting up to wait for them to go.
func stillRunning(procs []procStat, wait time.Duration) []procStat {
	deadline := time.Now().Add(wait)
	for {
		var alive []procStat
		for _, p := range procs {
			if st, ok := readStat(p.pid); ok && st.start == p.start && st.state != 'Z' {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuSnapshot is the CPU time used so far by a server process (itself), by
// the processes it started (function runtimes and their sandbox inits: live
// ones and reaped ones), and by this benchmark process (the client).
type cpuSnapshot struct {
	wall     time.Time
	server   time.Duration
	function time.Duration
	client   time.Duration
}

// threadsCPU is the time on CPU of every live thread of process pid, in
// nanoseconds, from /proc/PID/task/*/schedstat: exact, where the clock-tick
// figures of /proc/PID/stat are rounded down per process, which loses most
// of the time of many short-working function processes.
func threadsCPU(pid int) time.Duration {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, e := range entries {
		data, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		field, _, _ := strings.Cut(string(data), " ")
		ns, _ := strconv.ParseInt(field, 10, 64)
		total += time.Duration(ns)
	}
	return total
}

func takeCPU(serverPID int) cpuSnapshot {
	s := cpuSnapshot{wall: time.Now()}
	if root, ok := readStat(serverPID); ok {
		s.server = threadsCPU(serverPID)
		// Children that ended were reaped into the server's cutime and
		// cstime (clock ticks).
		s.function = time.Duration(root.cutime+root.cstime) * clockTick
		for _, d := range descendantsOf(serverPID) {
			s.function += threadsCPU(d.pid) + time.Duration(d.cutime+d.cstime)*clockTick
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// cpuMetrics reports CPU microseconds per invocation of the server, the
// function processes and the client between two snapshots, over ops
// invocations, and the cores each kept busy.
func cpuMetrics(b *testing.B, before, after cpuSnapshot, ops int) {
	if ops == 0 {
		return
	}
	per := func(d time.Duration) float64 { return micros(d) / float64(ops) }
	report(b, per(after.server-before.server), "srv-cpu-µs/op")
	report(b, per(after.function-before.function), "fn-cpu-µs/op")
	report(b, per(after.client-before.client), "cli-cpu-µs/op")
	wall := after.wall.Sub(before.wall)
	if wall > 0 {
		busy := (after.server - before.server) + (after.function - before.function) + (after.client - before.client)
		result(b, "cores-busy", float64(busy)/float64(wall))
	}
}

// ---------------------------------------------------------------------------
// The run's summary, printed by TestMain at the end

var summary struct {
	mu    sync.Mutex
	order []string
	rows  map[string]map[string]float64
}

// result records a metric of the benchmark for the summary. The framework
// runs a benchmark several times with growing b.N; the last run wins, as in
// the framework's own output.
func result(b *testing.B, unit string, value float64) {
	summary.mu.Lock()
	defer summary.mu.Unlock()
	if summary.rows == nil {
		summary.rows = map[string]map[string]float64{}
	}
	name := strings.TrimPrefix(b.Name(), "Benchmark")
	row, ok := summary.rows[name]
	if !ok || row["_n"] != float64(b.N) {
		if !ok {
			summary.order = append(summary.order, name)
		}
		row = map[string]float64{"_n": float64(b.N)}
		summary.rows[name] = row
	}
	row[unit] = value
}

// summaryColumns are the metrics the summary table shows, in order.
var summaryColumns = []struct{ unit, title, format string }{
	{"_n", "n", "%.0f"},
	{"p50-µs", "p50 µs", "%.0f"},
	{"p99-µs", "p99 µs", "%.0f"},
	{"invocations/s", "inv/s", "%.0f"},
	{"init-p50-µs", "Init Duration p50 µs", "%.0f"},
	{"rie-p50-µs", "RIE p50 µs", "%.0f"},
	{"rie-p99-µs", "RIE p99 µs", "%.0f"},
	{"lamina/rie-p50", "Lamina/RIE p50", "%.2f"},
	{"srv-cpu-µs/op", "server CPU µs/inv", "%.0f"},
	{"fn-cpu-µs/op", "function CPU µs/inv", "%.0f"},
	{"cli-cpu-µs/op", "client CPU µs/inv", "%.0f"},
	{"cores-busy", "cores busy", "%.2f"},
}

func printSummary() {
	summary.mu.Lock()
	defer summary.mu.Unlock()
	if len(summary.order) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("\nSummary (Markdown; the last run of each benchmark):\n\n| benchmark |")
	for _, c := range summaryColumns {
		b.WriteString(" " + c.title + " |")
	}
	b.WriteString("\n|---|")
	for range summaryColumns {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, name := range summary.order {
		row := summary.rows[name]
		fmt.Fprintf(&b, "| %s |", name)
		for _, c := range summaryColumns {
			if v, ok := row[c.unit]; ok {
				fmt.Fprintf(&b, " "+c.format+" |", v)
			} else {
				b.WriteString(" |")
			}
		}
		b.WriteString("\n")
	}
	fmt.Print(b.String())
}
