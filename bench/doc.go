// Package bench measures Lamina end to end: warm invoke latency, throughput
// by concurrency, cold starts, and AWS's Runtime Interface Emulator (RIE)
// serving the same Go function, side by side in the same run.
//
// Everything is in the package's benchmarks (bench_test.go) and their
// harness (harness_test.go, clients_test.go, stats_test.go). They build the
// lamina binary and the no-op Go function (testdata/noop) themselves, start a
// real `lamina server` on a free loopback port and a temporary data
// directory, and talk to it over HTTP with SigV4: with aws-sdk-go-v2's Lambda
// client, and with lean clients that replay one pre-signed request. They only
// report (p50, p99, invocations/s, CPU time per invocation of server,
// function and client); nothing asserts a time.
//
// Run them with the command at the top of BENCHMARKS.md (about 95 s):
//
//	go test -run '^$' -bench . -benchtime=3s -timeout 20m ./bench/
//
// Counts follow -benchtime (a duration, or Nx for N calls). Environment:
//
//   - BENCH_LAMINA_BINARY: run this lamina binary instead of building
//     ./cmd/lamina from the tree;
//   - BENCH_SERVER_ARGS: extra `lamina server` arguments, e.g.
//     "--sandbox process" to run environments as plain child processes;
//   - BENCH_CONCURRENCY: the levels of BenchmarkThroughput (default
//     "1,8,32,64");
//   - BENCH_RIE: the aws-lambda-rie binary (default: PATH, then GOBIN or
//     GOPATH/bin).
//
// At the end the run prints a Markdown summary of every benchmark's last
// run, and warns about processes or cgroups that outlived the server and
// about errors the server logged.
//
// This file exists so that the package has a non-test file; it holds no
// code.
package bench
