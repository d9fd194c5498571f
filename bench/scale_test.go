package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// pythonHold is a Python handler that holds its environment for a while:
// it returns when its handler started (the host's clock: sandboxes share
// it) and its environment's log stream, then sleeps, so that a burst of
// calls needs one environment per call.
const pythonHold = `import os, time
def handler(event, context):
    started = time.time()
    time.sleep(event.get("hold", 0))
    return {"started": started, "env": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
`

// scaleFunction is the Python function of the scale benchmarks.
const scaleFunction = "scale-python"

var scaleOnce sync.Once

// ensureScaleFunction creates scaleFunction on first use.
func (f *fixture) ensureScaleFunction(b *testing.B) {
	var err error
	scaleOnce.Do(func() {
		var code []byte
		if code, err = zipFiles(map[string]zipFile{"app.py": {pythonHold, 0o644}}); err == nil {
			err = f.createFunction(scaleFunction, runtimeCase{"python", types.RuntimePython312, "app.handler"}, code)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
}

// burst gives scaleFunction a new configuration (so that no environment
// can be reused) and invokes it n times at once, each call holding its
// environment for hold. It returns, per call that succeeded, how long after
// the burst began its handler started, how many environments served the
// calls, and how many calls failed (it fails the benchmark if all did).
func (f *fixture) burst(b *testing.B, n int, hold time.Duration, nonce int64) ([]time.Duration, int, int) {
	_, err := f.sdk.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(scaleFunction),
		Environment:  &types.Environment{Variables: map[string]string{"BENCH_NONCE": strconv.FormatInt(nonce, 10)}},
	})
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(fmt.Sprintf(`{"hold": %g}`, hold.Seconds()))
	starts := make([]time.Duration, n)
	envs := make([]string, n)
	var failed atomic.Pointer[error]
	var failures atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for i := range n {
		wg.Go(func() {
			out, err := f.sdk.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(scaleFunction), Payload: payload})
			if err == nil && out.FunctionError != nil {
				err = fmt.Errorf("function error %s: %s", *out.FunctionError, out.Payload)
			}
			var r struct {
				Started float64 `json:"started"`
				Env     string  `json:"env"`
			}
			if err == nil {
				err = json.Unmarshal(out.Payload, &r)
			}
			if err != nil {
				failed.Store(&err)
				failures.Add(1)
				starts[i] = -1
				return
			}
			starts[i] = time.Unix(0, int64(r.Started*1e9)).Sub(began)
			envs[i] = r.Env
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Logf("%d of %d calls failed; one: %v", failures.Load(), n, *err)
		if failures.Load() == int64(n) {
			b.FailNow()
		}
	}
	starts = slices.DeleteFunc(starts, func(d time.Duration) bool { return d < 0 })
	envs = slices.DeleteFunc(envs, func(e string) bool { return e == "" })
	slices.Sort(envs)
	return starts, len(slices.Compact(envs)), int(failures.Load())
}

// BenchmarkScaleOut measures 0 → 100 environments of a Python function: 100
// calls at once of a function with no environment (a new configuration
// each time), each holding its environment for 3 s. all-started-ms is how
// long after the burst began the last handler started, p50-started-ms the
// median; environments is how many served the burst (100 unless some were
// reused, which the hold prevents unless the burst takes longer than it).
func BenchmarkScaleOut(b *testing.B) {
	f := getFixture(b)
	f.ensureScaleFunction(b)
	const n = 100
	var nonce atomic.Int64
	var last, mid []time.Duration
	envs := 0
	for range b.N {
		starts, e, failed := f.burst(b, n, 3*time.Second, nonce.Add(1))
		if failed > 0 {
			b.Fatalf("%d of %d calls failed", failed, n)
		}
		slices.Sort(starts)
		last, mid = append(last, starts[n-1]), append(mid, starts[n/2])
		envs = e
		time.Sleep(4 * time.Second) // the environments go idle before the next configuration retires them
	}
	slices.Sort(last)
	slices.Sort(mid)
	report(b, float64(percentile(last, 0.5).Milliseconds()), "all-started-ms")
	report(b, float64(percentile(mid, 0.5).Milliseconds()), "p50-started-ms")
	report(b, float64(envs), "environments")
}

// BenchmarkIdleEnvironments brings BENCH_IDLE_ENVS (default 100) Python
// environments up at once, lets them go idle, and reports the memory the
// node's cgroup (every sandbox, prepared ones too) holds before and after,
// and per environment. 1,000 environments need a memory budget of
// 1000 × 128 MB: BENCH_SERVER_ARGS="--memory-budget 140000".
func BenchmarkIdleEnvironments(b *testing.B) {
	f := getFixture(b)
	f.ensureScaleFunction(b)
	n := 100
	if s := os.Getenv("BENCH_IDLE_ENVS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("BENCH_IDLE_ENVS=%q", s)
		}
	}
	// The node's memory cgroup: lamina/<node> somewhere under the v1
	// memory hierarchy (under the server's own cgroup there).
	node := filepath.Base(nodeCgroupOf(f.server.output()))
	var memDir string
	for pattern := "/sys/fs/cgroup/memory/lamina/"; memDir == "" && len(pattern) < 64; pattern = strings.Replace(pattern, "/lamina/", "/*/lamina/", 1) {
		if found, _ := filepath.Glob(pattern + node); len(found) == 1 {
			memDir = found[0]
		}
	}
	usage := func() int64 {
		data, err := os.ReadFile(memDir + "/memory.usage_in_bytes")
		if err != nil {
			b.Skip("no v1 memory cgroup of the node:", err)
		}
		v, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		return v
	}
	var nonce atomic.Int64
	nonce.Store(1 << 20)
	for range b.N {
		before := usage()
		// Held for as long as the function's timeout (30 s) allows.
		_, envs, failed := f.burst(b, n, min(time.Duration(n/20+3)*time.Second, 25*time.Second), nonce.Add(1))
		report(b, float64(failed), "failed")
		time.Sleep(2 * time.Second) // idle (and frozen)
		after := usage()
		report(b, float64(envs), "environments")
		report(b, float64(before)/(1<<20), "before-MB")
		report(b, float64(after)/(1<<20), "idle-MB")
		report(b, float64(after-before)/float64(envs)/(1<<20), "MB/env")
	}
}
