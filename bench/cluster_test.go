package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// clusterNode is one node of the benchmark's cluster.
type clusterNode struct {
	proc     *process
	endpoint string
	sdk      *lambda.Client
}

// startBenchCluster starts three lamina servers that form a cluster through
// their embedded NATS servers' routes, in f.dir, and stops them when b ends.
func startBenchCluster(b *testing.B, f *fixture) []*clusterNode {
	b.Helper()
	const n = 3
	routes := make([]string, n)
	apis := make([]string, n)
	for i := range n {
		rp, err := freePort()
		if err != nil {
			b.Fatal(err)
		}
		ap, err := freePort()
		if err != nil {
			b.Fatal(err)
		}
		routes[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(rp))
		apis[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ap))
	}
	nodes := make([]*clusterNode, n)
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		argv := []string{f.laminaBin, "server", "--listen", apis[i], "--url-listen", "127.0.0.1:0", "--data", filepath.Join(f.dir, "cluster-"+name),
			"--memory-budget", strconv.Itoa(memoryBudgetMB), "--concurrency-limit", strconv.Itoa(concurrencyLimit), "--idle-timeout", "30m",
			"--node-name", name, "--cluster-name", "bench", "--cluster-listen", routes[i], "--cluster-peers", strings.Join(routes, ",")}
		p, err := startProcess(filepath.Join(f.dir, "cluster-"+name+".log"), hermeticEnv(
			"LAMINA_ACCESS_KEY_ID="+accessKeyID, "LAMINA_SECRET_ACCESS_KEY="+secretAccessKey), argv...)
		if err != nil {
			b.Fatal(err)
		}
		nodes[i] = &clusterNode{proc: p, endpoint: "http://" + apis[i], sdk: newSDKClient("http://" + apis[i])}
	}
	b.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() { _ = n.proc.stop(30 * time.Second) })
		}
		wg.Wait()
	})
	for i, n := range nodes {
		if err := n.proc.waitForOutput(readyBanner, 120*time.Second); err != nil {
			b.Fatalf("cluster node n%d: %v\n%s", i+1, err, n.proc.output())
		}
	}
	fmt.Fprintf(b.Output(), "bench: three-node cluster ready at %s, %s, %s\n", nodes[0].endpoint, nodes[1].endpoint, nodes[2].endpoint)
	return nodes
}

// invocationsOn reads how many invocations of function node ran from its
// metrics (the API's GET /metrics, signed).
func invocationsOn(b *testing.B, n *clusterNode, function string) float64 {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, n.endpoint+"/metrics", nil)
	if err != nil {
		b.Fatal(err)
	}
	empty := sha256.Sum256(nil)
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(empty[:]), "lambda", region, time.Now()); err != nil {
		b.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET /metrics on %s: %s", n.endpoint, resp.Status)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	prefix := `lamina_invocations_total{function="` + function + `"} `
	for line := range strings.Lines(string(body)) {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// BenchmarkCluster measures the cost of placement on another node: warm
// invokes of the no-op Go function at concurrency 1 through its home node
// (the manager places it on its own worker: local) and through another node
// (placed on the home over NATS request-reply: remote), and throughput with
// callers spread over the three nodes. The interleaved run reports the hop's
// cost, remote minus local, at the median and the 99th percentile. The cluster runs on this one machine,
// so a remote hop here costs NATS's loopback round trips and the work of two
// processes, not a network.
func BenchmarkCluster(b *testing.B) {
	f := getFixture(b)
	nodes := startBenchCluster(b, f)
	const function = "hop"
	ctx := context.Background()
	var err error
	for range 100 { // the cluster's store takes writes once it has leaders
		if _, err = nodes[0].sdk.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(function),
			Runtime: runtimeCases[0].runtime, Handler: aws.String(runtimeCases[0].handler), Role: aws.String(role),
			MemorySize: aws.Int32(functionMemoryMB), Timeout: aws.Int32(30), Code: &types.FunctionCode{ZipFile: f.goZip}}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		b.Fatal(err)
	}
	invoke := func(n *clusterNode) func() error {
		return func() error {
			out, err := n.sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(function), Payload: emptyEvent})
			if err == nil && out.FunctionError != nil {
				err = fmt.Errorf("function error %s: %s", *out.FunctionError, out.Payload)
			}
			return err
		}
	}
	// The home: the node that runs a round of invocations made through
	// every node (once the nodes see each other, all of them).
	home := -1
	for attempt := 0; home < 0; attempt++ {
		if attempt == 50 {
			b.Fatalf("rounds of invocations of %s through the three nodes never ran on one node alone", function)
		}
		before := make([]float64, len(nodes))
		for i, n := range nodes {
			before[i] = invocationsOn(b, n, function)
		}
		for _, n := range nodes {
			for range 3 {
				if err := invoke(n)(); err != nil {
					b.Fatal(err)
				}
			}
		}
		for i, n := range nodes {
			if invocationsOn(b, n, function)-before[i] == 9 {
				home = i
			}
		}
		if home < 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	other := nodes[(home+1)%len(nodes)]
	b.Run("local", func(b *testing.B) {
		measureSerial(b, nodes[home].proc.pid(), "", invoke(nodes[home]))
	})
	b.Run("remote", func(b *testing.B) {
		measureSerial(b, nodes[home].proc.pid(), "", invoke(other))
	})
	// Local and remote call by call, the fairest comparison on a noisy
	// machine.
	b.Run("interleaved", func(b *testing.B) {
		local, remote := invoke(nodes[home]), invoke(other)
		for range warmUpCalls {
			if err := errors.Join(local(), remote()); err != nil {
				b.Fatal(err)
			}
		}
		lat := [2][]time.Duration{make([]time.Duration, b.N), make([]time.Duration, b.N)}
		b.ResetTimer()
		for i := range b.N {
			for j, call := range []func() error{local, remote} {
				t0 := time.Now()
				if err := call(); err != nil {
					b.Fatal(err)
				}
				lat[j][i] = time.Since(t0)
			}
		}
		b.StopTimer()
		localP50, localP99 := latencyMetrics(b, "local-", lat[0])
		remoteP50, remoteP99 := latencyMetrics(b, "remote-", lat[1])
		report(b, micros(remoteP50-localP50), "hop-p50-µs")
		report(b, micros(remoteP99-localP99), "hop-p99-µs")
	})
	b.Run("spread-c8", func(b *testing.B) {
		next := 0
		measureConcurrent(b, nodes[home].proc.pid(), 8, func() (func() error, func()) {
			n := nodes[next%len(nodes)]
			next++
			return invoke(n), func() {}
		})
	})
}
