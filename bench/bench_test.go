package bench

// The benchmarks. Each one reports, besides ns/op (a mean), the median and
// 99th percentile of its invocations (p50-µs, p99-µs), invocations/s, and
// where it can the CPU time per invocation of the server (srv-cpu-µs/op), of
// the function processes (fn-cpu-µs/op) and of this process, the client
// (cli-cpu-µs/op). Counts follow -benchtime (a duration, or Nx); the
// concurrency levels of BenchmarkThroughput follow BENCH_CONCURRENCY
// (default "1,8,32,64"). Nothing here asserts a time.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
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

// warmUpCalls is how many untimed calls precede a serial measurement.
const warmUpCalls = 20

// BenchmarkWarmInvoke measures warm invoke latency at concurrency 1 through
// the full HTTP API, SigV4 signed by aws-sdk-go-v2's Lambda client, for a
// no-op function of each runtime.
func BenchmarkWarmInvoke(b *testing.B) {
	f := getFixture(b)
	for _, rt := range runtimeCases {
		b.Run(rt.name, func(b *testing.B) {
			name := warmFunction(rt.name)
			measureSerial(b, f.server.pid(), "", func() error {
				_, err := f.invokeSDK(name, false)
				return err
			})
		})
	}
}

// BenchmarkVsRIE serves the same no-op Go bootstrap with AWS's Runtime
// Interface Emulator and with Lamina, at concurrency 1, in this order:
// Lamina with a plain net/http client replaying a pre-signed request, RIE
// with the same plain client (RIE has no SigV4), Lamina the plain way again,
// Lamina through the SDK client, and then both interleaved call by call
// (the fairest comparison on a noisy machine). The Lamina runs after RIE's
// report lamina/rie-p50, the ratio of the medians.
func BenchmarkVsRIE(b *testing.B) {
	f := getFixture(b)
	endpoint := "http://" + f.addr
	var rieP50 time.Duration
	ratio := func(b *testing.B, p50 time.Duration) {
		if rieP50 > 0 {
			report(b, float64(p50)/float64(rieP50), "lamina/rie-p50")
		}
	}
	laminaPlain := func(b *testing.B) {
		c, err := newSignedPlainClient(endpoint, warmFunction("go"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.close()
		p50 := measureSerial(b, f.server.pid(), "", c.invoke)
		ratio(b, p50)
	}
	b.Run("lamina-plain-before", laminaPlain)
	b.Run("rie-plain", func(b *testing.B) {
		addr := rieAddr(b, f)
		c, err := newRIEClient(addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.close()
		rieP50 = measureSerial(b, theRIE.pid(), "", c.invoke)
	})
	b.Run("lamina-plain-after", laminaPlain)
	b.Run("lamina-sdk", func(b *testing.B) {
		name := warmFunction("go")
		p50 := measureSerial(b, f.server.pid(), "", func() error {
			_, err := f.invokeSDK(name, false)
			return err
		})
		ratio(b, p50)
	})
	b.Run("interleaved", func(b *testing.B) {
		lc, err := newSignedPlainClient(endpoint, warmFunction("go"))
		if err != nil {
			b.Fatal(err)
		}
		defer lc.close()
		rc, err := newRIEClient(rieAddr(b, f))
		if err != nil {
			b.Fatal(err)
		}
		defer rc.close()
		for range warmUpCalls {
			if err := lc.invoke(); err != nil {
				b.Fatal(err)
			}
			if err := rc.invoke(); err != nil {
				b.Fatal(err)
			}
		}
		lamina, rie := make([]time.Duration, b.N), make([]time.Duration, b.N)
		timed := func(invoke func() error, into *time.Duration) {
			t0 := time.Now()
			if err := invoke(); err != nil {
				b.Fatal(err)
			}
			*into = time.Since(t0)
		}
		b.ResetTimer()
		for i := range b.N {
			if i%2 == 0 {
				timed(lc.invoke, &lamina[i])
				timed(rc.invoke, &rie[i])
			} else {
				timed(rc.invoke, &rie[i])
				timed(lc.invoke, &lamina[i])
			}
		}
		b.StopTimer()
		lp50, _ := latencyMetrics(b, "", lamina)
		rp50, _ := latencyMetrics(b, "rie-", rie)
		report(b, float64(lp50)/float64(rp50), "lamina/rie-p50")
	})
}

// BenchmarkThroughput measures invocations/s of the no-op Go function at
// several concurrency levels, each level with as many client goroutines
// each calling in a loop: with the raw client (one keep-alive connection
// per goroutine replaying a pre-signed request: next to no client CPU) and
// with the SDK client (which signs every call).
func BenchmarkThroughput(b *testing.B) {
	f := getFixture(b)
	levels, err := concurrencyLevels()
	if err != nil {
		b.Fatal(err)
	}
	signer, err := newPresigner("http://"+f.addr, warmFunction("go"), emptyEvent)
	if err != nil {
		b.Fatal(err)
	}
	name := warmFunction("go")
	clients := []struct {
		name      string
		newWorker func() (invoke func() error, done func())
	}{
		{"raw", func() (func() error, func()) {
			c := newRawConn(f.addr, signer)
			return c.invoke, c.close
		}},
		{"sdk", func() (func() error, func()) {
			return func() error { _, err := f.invokeSDK(name, false); return err }, func() {}
		}},
	}
	for _, client := range clients {
		for _, c := range levels {
			b.Run(fmt.Sprintf("%s/c%d", client.name, c), func(b *testing.B) {
				measureConcurrent(b, f.server.pid(), c, client.newWorker)
			})
		}
	}
}

// BenchmarkColdStartPaced measures cold starts as BenchmarkColdStart does,
// with the machine left alone for 100 ms (untimed) before each: a cold
// start that does not come right after another, so that what the server
// prepares ahead between cold starts (sandboxes, runtimes started ahead)
// is ready, as it is for cold starts that are not part of a burst.
func BenchmarkColdStartPaced(b *testing.B) {
	f := getFixture(b)
	var nonce atomic.Int64
	for _, rt := range runtimeCases {
		b.Run(rt.name, func(b *testing.B) {
			name := coldFunction(rt.name)
			lat, inits := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				time.Sleep(100 * time.Millisecond)
				d, init, err := f.coldStart(b, name, nonce.Add(1))
				if err != nil {
					b.Fatal(err)
				}
				lat, inits = append(lat, d), append(inits, init)
			}
			latencyMetrics(b, "", lat)
			slices.Sort(inits)
			report(b, micros(percentile(inits, 0.5)), "init-p50-µs")
		})
	}
}

// BenchmarkInterpreterStart measures what the cold start targets of issue
// 17 are ratios of, on the same machine in the same run: `python3 -c pass`
// (python3 as PATH finds it), the interpreter that runs it (its
// sys.executable; for pyenv, PATH's python3 is a shim), and `node -e 0`.
// Each run is a process started and waited for, on the host, outside any
// sandbox.
func BenchmarkInterpreterStart(b *testing.B) {
	real, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		b.Skip("no python3 on PATH:", err)
	}
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"python3-c-pass", []string{"python3", "-c", "pass"}},
		{"python3-real-c-pass", []string{strings.TrimSpace(string(real)), "-c", "pass"}},
		{"node-e-0", []string{"node", "-e", "0"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			if _, err := exec.LookPath(c.argv[0]); err != nil {
				b.Skip(err)
			}
			lat := make([]time.Duration, 0, b.N)
			for range b.N {
				t0 := time.Now()
				if err := exec.Command(c.argv[0], c.argv[1:]...).Run(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			latencyMetrics(b, "", lat)
		})
	}
}

// BenchmarkColdStart measures cold starts, request in to response out,
// through the SDK client. Before each call (untimed) the function's
// configuration changes (a new environment variable value, so a new
// RevisionId), so no environment can be reused; each call asks for the log
// tail and must show Init Duration in its REPORT line, or the benchmark
// fails. init-p50-µs is the median of those Init Durations, Lamina's own
// measure of the environment's start and init.
func BenchmarkColdStart(b *testing.B) {
	f := getFixture(b)
	var nonce atomic.Int64
	for _, rt := range runtimeCases {
		b.Run(rt.name, func(b *testing.B) {
			name := coldFunction(rt.name)
			lat, inits := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				d, init, err := f.coldStart(b, name, nonce.Add(1))
				if err != nil {
					b.Fatal(err)
				}
				lat, inits = append(lat, d), append(inits, init)
			}
			latencyMetrics(b, "", lat)
			slices.Sort(inits)
			report(b, micros(percentile(inits, 0.5)), "init-p50-µs")
		})
	}
}

// coldStart gives function name a new configuration (nonce as an
// environment variable), so that no environment can be reused, and invokes
// it with the clock running only during the invocation. It returns the
// invocation's latency and its Init Duration, and fails unless the REPORT
// line shows one.
func (f *fixture) coldStart(b *testing.B, name string, nonce int64) (latency, init time.Duration, err error) {
	_, err = f.sdk.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(name),
		Environment:  &types.Environment{Variables: map[string]string{"BENCH_NONCE": strconv.FormatInt(nonce, 10)}},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("UpdateFunctionConfiguration: %w", err)
	}
	b.StartTimer()
	t0 := time.Now()
	log, err := f.invokeSDK(name, true)
	latency = time.Since(t0)
	b.StopTimer()
	if err != nil {
		return 0, 0, err
	}
	init, ok := initDuration(log)
	if !ok {
		return 0, 0, fmt.Errorf("the call of %s was not a cold start: its REPORT has no Init Duration:\n%s", name, log)
	}
	return latency, init, nil
}

var initDurationRE = regexp.MustCompile(`(?m)^REPORT .*\tInit Duration: ([0-9.]+) ms`)

// initDuration finds the Init Duration of a REPORT line in an invocation's
// log.
func initDuration(log string) (time.Duration, bool) {
	m := initDurationRE.FindStringSubmatch(log)
	if m == nil {
		return 0, false
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond)), err == nil
}

// concurrencyLevels reads BENCH_CONCURRENCY, default 1,8,32,64.
func concurrencyLevels() ([]int, error) {
	spec := os.Getenv("BENCH_CONCURRENCY")
	if spec == "" {
		spec = "1,8,32,64"
	}
	var levels []int
	for _, s := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("BENCH_CONCURRENCY: bad level %q", s)
		}
		levels = append(levels, n)
	}
	return levels, nil
}

// measureSerial calls invoke b.N times one after the other, after a few
// untimed calls, and reports latency percentiles, invocations/s and the CPU
// time per call of the server process serverPID, of its children and of
// this process. It returns the median.
func measureSerial(b *testing.B, serverPID int, prefix string, invoke func() error) time.Duration {
	for range warmUpCalls {
		if err := invoke(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	before := takeCPU(serverPID)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := invoke(); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	after := takeCPU(serverPID)
	p50, _ := latencyMetrics(b, prefix, lat)
	report(b, float64(b.N)/after.wall.Sub(before.wall).Seconds(), "invocations/s")
	cpuMetrics(b, before, after, b.N)
	return p50
}

// measureConcurrent runs b.N calls spread over c goroutines, each with its
// own worker (client) calling in a loop, and reports invocations/s, latency
// percentiles and CPU time per call. Before the timed calls, every worker
// makes a few calls at once, so that c environments are warm.
func measureConcurrent(b *testing.B, serverPID int, c int, newWorker func() (func() error, func())) {
	invokes := make([]func() error, c)
	for i := range invokes {
		invoke, done := newWorker()
		defer done()
		invokes[i] = invoke
	}
	var (
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	run := func(ops int, lat []time.Duration) {
		var next atomic.Int64
		for _, invoke := range invokes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= ops || firstErr.Load() != nil {
						return
					}
					t0 := time.Now()
					if err := invoke(); err != nil {
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					if lat != nil {
						lat[i] = time.Since(t0)
					}
				}
			}()
		}
		wg.Wait()
		if err := firstErr.Load(); err != nil {
			b.Fatalf("concurrency %d: %v", c, *err)
		}
	}
	run(4*c, nil) // warm-up
	lat := make([]time.Duration, b.N)
	before := takeCPU(serverPID)
	b.ResetTimer()
	run(b.N, lat)
	b.StopTimer()
	after := takeCPU(serverPID)
	report(b, float64(b.N)/after.wall.Sub(before.wall).Seconds(), "invocations/s")
	latencyMetrics(b, "", lat)
	cpuMetrics(b, before, after, b.N)
}
