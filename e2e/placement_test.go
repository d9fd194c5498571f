package e2e

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// ranOn returns how many invocations of function each node ran, by their
// metrics, in the order of nodes.
func ranOn(t *testing.T, nodes []*testServer, function string) []int {
	t.Helper()
	out := make([]int, len(nodes))
	for i, ts := range nodes {
		if ts.Running() {
			out[i] = int(invocationsOn(t, ts, function))
		}
	}
	return out
}

// sum adds counts up.
func sum(counts []int) int {
	total := 0
	for _, n := range counts {
		total += n
	}
	return total
}

// invokeThrough invokes function with payload through each node of via at
// once, n times through each, and returns the results and errors, node by
// node.
func invokeThrough(t *testing.T, via []*testServer, n int, function, payload string) ([]invokeResult, []error) {
	t.Helper()
	results := make([]invokeResult, n*len(via))
	errs := make([]error, n*len(via))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, ts := range via {
		for j := range n {
			wg.Go(func() {
				<-start
				results[i*n+j], errs[i*n+j] = ts.tryInvoke(t, function, payload, withTail)
			})
		}
	}
	close(start)
	wg.Wait()
	return results, errs
}

// throttleCounts splits the outcomes of invocations into those that ran
// and those throttled with reason, failing the test on anything else.
func throttleCounts(t *testing.T, results []invokeResult, errs []error, reason types.ThrottleReason) (ran, throttled int) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			if e := requireThrottled(t, err); e.Reason != reason {
				t.Errorf("call %d throttled with Reason %q, want %s", i, e.Reason, reason)
			}
			throttled++
			continue
		}
		if results[i].FunctionError != "" {
			t.Errorf("call %d: function error %s", i, results[i].Payload)
		}
		ran++
	}
	return ran, throttled
}

// TestClusterPlacement runs three nodes of 1 GB of function memory each and
// checks where invocations run: a function's invocations, made through any
// node, run on its home node's warm environment; past three quarters of the home's
// memory they spill to the others; provisioned environments are spread over
// the nodes and used; reserved concurrency holds across the nodes; a node
// stopped is routed around, finishing first what it ran for the others.
func TestClusterPlacement(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil, withArgs("--memory-budget", "1024"))
	ctx := t.Context()
	a := nodes[0]
	// A node places among the members it sees: all three, once they count
	// each other in.
	for _, ts := range nodes {
		waitNodes(t, ts, "n1", "n2", "n3")
	}

	var home int // of "homed", found by the first subtest
	t.Run("home", func(t *testing.T) {
		a.createPy(t, "homed", "echo")
		envs := map[string]bool{}
		for i := range 9 {
			ts := nodes[i%3]
			envs[str(t, ts.invokeOK(t, "homed", `{}`).object(t), "env")] = true
		}
		ran := ranOn(t, nodes, "homed")
		home = -1
		for i, n := range ran {
			if n == 9 {
				home = i
			}
		}
		if home < 0 || sum(ran) != 9 || len(envs) != 1 {
			t.Fatalf("9 invocations through the three nodes ran %v times by node in %d environments; want all 9 on one node, in one", ran, len(envs))
		}
		t.Logf("the home of homed is n%d", home+1)
	})

	t.Run("spill", func(t *testing.T) {
		a.createPy(t, "spilled", "sleep") // 128 MB: 8 fit a node
		results, errs := invokeThrough(t, nodes[:1], 12, "spilled", `{"seconds":2}`)
		if ran, _ := throttleCounts(t, results, errs, ""); ran != 12 {
			t.Fatalf("%d of 12 invocations at once ran", ran)
		}
		ran := ranOn(t, nodes, "spilled")
		busiest, used := 0, 0
		for _, n := range ran {
			busiest = max(busiest, n)
			if n > 0 {
				used++
			}
		}
		// The home takes three quarters of its memory (6 environments), then the next
		// nodes take their part; none more than its 8.
		if sum(ran) != 12 || used < 2 || busiest > 8 {
			t.Errorf("12 invocations at once of a 128 MB function on nodes of 1 GB ran %v by node; want them spread, at most 8 on one", ran)
		}
		t.Logf("12 invocations at once ran %v by node", ran)
	})

	t.Run("provisioned", func(t *testing.T) {
		a.createPy(t, "prov", "sleep")
		if _, err := a.Lambda().PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("prov")}); err != nil {
			t.Fatal(err)
		}
		if _, err := nodes[1].Lambda().PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("prov"), Qualifier: aws.String("1"), ProvisionedConcurrentExecutions: aws.Int32(3)}); err != nil {
			t.Fatal(err)
		}
		out := nodes[2].waitProvisionedReady(t, "prov", "1")
		if aws.ToInt32(out.AllocatedProvisionedConcurrentExecutions) != 3 {
			t.Errorf("3 provisioned: %s", jsonOf(t, out))
		}
		// Three at once run in the three nodes' provisioned environments,
		// one each, none cold.
		results, errs := invokeThrough(t, nodes[1:2], 3, "prov:1", `{"seconds":1}`)
		if ran, _ := throttleCounts(t, results, errs, ""); ran != 3 {
			t.Fatalf("%d of 3 ran", ran)
		}
		for _, r := range results {
			if r.cold(t) {
				t.Errorf("an invocation of a version with provisioned environments free was a cold start:\n%s", r.Log)
			}
		}
		if ran := ranOn(t, nodes, "prov"); ran[0] != 1 || ran[1] != 1 || ran[2] != 1 {
			t.Errorf("3 invocations at once of 3 provisioned environments ran %v by node, want one on each", ran)
		}
	})

	t.Run("reserved", func(t *testing.T) {
		a.createPy(t, "limited", "sleep", withTimeout(10))
		a.putReserved(t, "limited", 2)
		// A node applies a reservation once it has seen it (the store's
		// watch brings it in milliseconds).
		for _, ts := range nodes {
			eventually(t, ts.Endpoint()+" sees the reservation", func() error {
				out, err := ts.Lambda().GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("limited")})
				if err == nil && aws.ToInt32(out.ReservedConcurrentExecutions) != 2 {
					err = fmt.Errorf("reserved %v", out.ReservedConcurrentExecutions)
				}
				return err
			})
		}
		// Twelve at once, four through each node: two run, across the
		// nodes, the others are throttled.
		results, errs := invokeThrough(t, nodes, 4, "limited", `{"seconds":3}`)
		ran, throttled := throttleCounts(t, results, errs, types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded)
		if ran > 2 || ran == 0 || ran+throttled != 12 {
			t.Errorf("reserved concurrency 2, 12 invocations at once through three nodes: %d ran, %d throttled; want at most 2 to run", ran, throttled)
		}
		t.Logf("reserved 2: %d ran, %d throttled (by node %v)", ran, throttled, ranOn(t, nodes, "limited"))
		// When they have ended, two at once through two other nodes both
		// run: the shares went back to the pool.
		time.Sleep(2 * time.Second) // two of the nodes' windows for giving back unused shares
		via := []*testServer{nodes[1], nodes[2]}
		results, errs = make([]invokeResult, len(via)), make([]error, len(via))
		var wg sync.WaitGroup
		for i, ts := range via {
			wg.Go(func() { results[i], errs[i] = ts.tryInvoke(t, "limited", `{"seconds":1}`, withTail) })
		}
		wg.Wait()
		if ran, _ := throttleCounts(t, results, errs, types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded); ran != 2 {
			t.Errorf("reserved concurrency 2, two at once through two nodes: %d ran, want 2", ran)
		}
	})

	t.Run("stopped", func(t *testing.T) {
		if home < 0 {
			t.Skip("no home found")
		}
		var others []*testServer
		for i, ts := range nodes {
			if i != home {
				others = append(others, ts)
			}
		}
		// The home stopped (SIGTERM): the others route around it at once,
		// and run its functions.
		stopped := nodes[home]
		stopped.Stop()
		for i := range 6 {
			ts := others[i%2]
			if r, err := ts.tryInvoke(t, "homed", `{}`); err != nil || r.FunctionError != "" {
				t.Errorf("invoke through %s right after the home stopped: %v %s", ts.Endpoint(), err, r.Payload)
			}
		}
		if moved := sum(ranOn(t, others, "homed")); moved < 6 {
			t.Errorf("after the home stopped, the others ran homed %d times, want the 6 invocations", moved)
		}
		// Back, it is the home again.
		stopped.Restart()
		waitNodes(t, a, "n1", "n2", "n3")
		eventually(t, "the restarted home runs homed again", func() error {
			if _, err := others[0].tryInvoke(t, "homed", `{}`); err != nil {
				return err
			}
			if invocationsOn(t, stopped, "homed") == 0 {
				return errors.New("it ran elsewhere")
			}
			return nil
		})
	})

	t.Run("drain", func(t *testing.T) {
		// A long invocation placed on another node ends well when that node
		// is stopped (SIGTERM) meanwhile: it finishes what it runs for the
		// others before it exits.
		for i := range 20 {
			name := fmt.Sprintf("long%d", i)
			a.createPy(t, name, "sleep", withTimeout(10))
			a.invokeOK(t, name, `{"seconds":0}`)
			ran := ranOn(t, nodes, name)
			if ran[0] > 0 {
				continue
			}
			for j, n := range ran {
				if n > 0 {
					runDrained(t, a, nodes[j], name)
					return
				}
			}
		}
		t.Fatal("none of 20 functions has a home other than n1")
	})
}

// runDrained invokes name (homed on target) through via for 3 s, stops
// target 1 s into it, and requires the invocation to succeed.
func runDrained(t *testing.T, via, target *testServer, name string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		r, err := via.tryInvoke(t, name, `{"seconds":3}`)
		if err == nil && r.FunctionError != "" {
			err = fmt.Errorf("function error: %s", r.Payload)
		}
		done <- err
	}()
	time.Sleep(time.Second)
	target.Stop()
	if err := <-done; err != nil {
		t.Errorf("an invocation running on a node stopped during it: %v, want it to end well", err)
	}
	target.Restart()
}

// TestClusterAccountLimit: the account's concurrency limit holds across
// three nodes: of nine invocations at once through them, at most four
// (--concurrency-limit 4) run, and the others are throttled with
// ConcurrentInvocationLimitExceeded.
func TestClusterAccountLimit(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil, withArgs("--concurrency-limit", "4"))
	nodes[0].createPy(t, "busy", "sleep", withTimeout(10))
	nodes[0].createPy(t, "other", "sleep", withTimeout(10))
	for _, ts := range nodes {
		eventually(t, ts.Endpoint()+" lists other", func() error { return listed(ts, "other") })
	}
	var wg sync.WaitGroup
	var r1, r2 []invokeResult
	var e1, e2 []error
	wg.Go(func() { r1, e1 = invokeThrough(t, nodes, 2, "busy", `{"seconds":3}`) })
	wg.Go(func() { r2, e2 = invokeThrough(t, nodes, 1, "other", `{"seconds":3}`) })
	wg.Wait()
	ran1, throttled1 := throttleCounts(t, r1, e1, types.ThrottleReasonConcurrentInvocationLimitExceeded)
	ran2, throttled2 := throttleCounts(t, r2, e2, types.ThrottleReasonConcurrentInvocationLimitExceeded)
	if ran := ran1 + ran2; ran > 4 || ran == 0 || throttled1+throttled2 != 9-ran {
		t.Errorf("account limit 4, nine invocations of two functions at once through three nodes: %d ran, %d throttled; want at most 4 to run",
			ran, throttled1+throttled2)
	}
	t.Logf("account limit 4: %d+%d ran, %d+%d throttled", ran1, ran2, throttled1, throttled2)
}
