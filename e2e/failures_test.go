package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/uuid"
)

// failoverTarget is issue 12's aim: sync invocations through the other
// nodes succeed again within 5 s of a node killed. The test logs when the
// last failed call began, and requires only calls begun after twice the
// target to succeed: new stream leaders come after JetStream's election
// timeout (4 to 9 s, longer on a loaded machine), and a cold start whose
// code a leaderless stream holds fails until then (see docs/cluster.md).
const failoverTarget = 5 * time.Second

// syncCall is one sync invocation of a load.
type syncCall struct {
	via        int // index of the node it went through
	start, end time.Time
	err        error
}

// clusterLoad drives a cluster while it fails: sync invocations of a
// function, one after another through each node that is up, and async
// events with a marker of their own, through the nodes in turn. A node is
// taken out of the load (down) before it is stopped or killed.
type clusterLoad struct {
	t     *testing.T
	nodes []*testServer
	down  []atomic.Bool

	mu       sync.Mutex
	calls    []syncCall
	accepted []string // markers of the events answered 202
	refused  int      // async events not accepted

	stop chan struct{}
	wg   sync.WaitGroup
}

// startLoad starts invoking syncFn (an echo function) through every node and
// sending events to asyncFn (an echo function), until stopped.
func startLoad(t *testing.T, nodes []*testServer, syncFn, asyncFn string) *clusterLoad {
	l := &clusterLoad{t: t, nodes: nodes, down: make([]atomic.Bool, len(nodes)), stop: make(chan struct{})}
	for i, ts := range nodes {
		l.wg.Go(func() {
			for l.running() {
				if l.down[i].Load() {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				c := syncCall{via: i, start: time.Now()}
				var r invokeResult
				r, c.err = ts.tryInvoke(t, syncFn, `{}`)
				if c.err == nil && (r.FunctionError != "" || r.StatusCode != 200) {
					c.err = fmt.Errorf("status %d, function error %q: %s", r.StatusCode, r.FunctionError, r.Payload)
				}
				c.end = time.Now()
				l.mu.Lock()
				l.calls = append(l.calls, c)
				l.mu.Unlock()
			}
		})
	}
	l.wg.Go(func() {
		for n := 0; l.running(); n++ {
			i := n % len(nodes)
			if l.down[i].Load() {
				continue
			}
			marker := uuid.NewString()
			_, err := nodes[i].Lambda().Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(asyncFn),
				InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"marker":"` + marker + `"}`)})
			l.mu.Lock()
			if err == nil {
				l.accepted = append(l.accepted, marker)
			} else {
				l.refused++
			}
			l.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	})
	return l
}

func (l *clusterLoad) running() bool {
	select {
	case <-l.stop:
		return false
	default:
		return true
	}
}

// Stop ends the load and waits for the calls under way.
func (l *clusterLoad) Stop() {
	close(l.stop)
	l.wg.Wait()
}

// takeOut stops sending load through node i; calls under way end.
func (l *clusterLoad) takeOut(i int) { l.down[i].Store(true) }

// putBack sends load through node i again.
func (l *clusterLoad) putBack(i int) { l.down[i].Store(false) }

// failed returns the sync calls that failed.
func (l *clusterLoad) failed() []syncCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []syncCall
	for _, c := range l.calls {
		if c.err != nil {
			out = append(out, c)
		}
	}
	return out
}

// waitAllRan waits until the log of fn shows every event the load had
// accepted, and returns how many of them ran more than once.
func (l *clusterLoad) waitAllRan(t *testing.T, via *testServer, fn string) (duplicates int) {
	t.Helper()
	l.mu.Lock()
	accepted := slices.Clone(l.accepted)
	l.mu.Unlock()
	// A loaded machine may still work through a backlog: wait while the
	// function's queue goes down, and as long as it does.
	depth, since := -1, time.Now()
	for {
		r := via.do(t, "GET", "/_lamina/async/"+fn, nil)
		var st struct{ Depth int }
		if err := json.Unmarshal(r.Body, &st); err != nil || r.Status != http.StatusOK {
			t.Fatalf("the async queue of %s: %d %s", fn, r.Status, r.Body)
		}
		if st.Depth == 0 {
			break
		}
		if depth < 0 || st.Depth < depth {
			depth, since = st.Depth, time.Now()
		}
		if time.Since(since) > clusterWait {
			t.Fatalf("the async queue of %s stays at %d events for %v", fn, depth, clusterWait)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var missing []string
	eventually(t, fmt.Sprintf("the %d accepted events of %s ran", len(accepted), fn), func() error {
		seen := map[string]int{}
		for _, e := range sawEvents(t, via.functionLogEvents(t, via.Logs(), fn)) {
			seen[fmt.Sprint(e["marker"])]++
		}
		missing, duplicates = missing[:0], 0
		for _, m := range accepted {
			switch {
			case seen[m] == 0:
				missing = append(missing, m)
			case seen[m] > 1:
				duplicates++
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d accepted events have not run, such as %s", len(missing), len(accepted), missing[0])
		}
		return nil
	})
	t.Logf("%d events accepted (%d refused), all ran, %d of them more than once", len(accepted), l.refused, duplicates)
	return duplicates
}

// homeOf invokes fn through every node, round after round, and returns the
// index of the node that ran a whole round (a node that has just started
// may not see every member yet, and place elsewhere meanwhile).
func homeOf(t *testing.T, nodes []*testServer, fn string) int {
	t.Helper()
	home := -1
	eventually(t, "one node runs every invocation of "+fn, func() error {
		before := ranOn(t, nodes, fn)
		for i := range 3 * len(nodes) {
			nodes[i%len(nodes)].invokeOK(t, fn, `{}`)
		}
		after := ranOn(t, nodes, fn)
		for i := range nodes {
			if after[i]-before[i] == 3*len(nodes) {
				home = i
				return nil
			}
		}
		return fmt.Errorf("a round ran %v times by node, before %v", after, before)
	})
	return home
}

// TestClusterFailures kills a node of three (SIGKILL) under load — sync
// invocations through every node, async events, a schedule — and then
// restarts the three one after another (SIGTERM) under load. Sync
// invocations through the other nodes succeed again after the kill (when,
// against failoverTarget, is logged), every accepted event runs, ticks go
// on after the kill, the killed node comes back as the home of its
// functions, and the rolling restart fails no call and loses no event.
// LAMINA_SOAK_CLUSTER=N repeats the kill and the rolling restart N times.
func TestClusterFailures(t *testing.T) {
	t.Parallel()
	rounds := 1
	if n, err := fmt.Sscan(os.Getenv("LAMINA_SOAK_CLUSTER"), &rounds); n != 1 || err != nil {
		rounds = 1
	}
	nodes := startCluster(t, 3, nil, withArgs("--schedule-time-scale", scheduleTimeScale, "--async-time-scale", "0.01"))
	a := nodes[0]
	ctx := t.Context()
	for _, ts := range nodes {
		waitNodes(t, ts, "n1", "n2", "n3")
	}
	a.createPy(t, "steady", "echo", withTimeout(30))
	a.createPy(t, "ticked", "echo")
	for _, ts := range nodes {
		eventually(t, ts.Endpoint()+" lists steady", func() error { return listed(ts, "steady") })
	}
	home := homeOf(t, nodes, "steady")
	// The events' function has its home on another node than the one
	// killed: a node killed loses the log lines it has not published yet
	// (up to logs' flush interval), which are the test's evidence that an
	// event ran. Events accepted through the killed node, and those its
	// async dispatcher had taken, must all run.
	queued := ""
	for i := range 8 {
		name := fmt.Sprintf("queued-%d", i)
		a.createPy(t, name, "echo", withTimeout(30))
		eventually(t, "every node lists "+name, func() error { return errors.Join(listed(nodes[1], name), listed(nodes[2], name)) })
		if homeOf(t, nodes, name) != home {
			queued = name
			break
		}
	}
	if queued == "" {
		t.Fatalf("8 functions all have their home on n%d", home+1)
	}
	for _, ts := range nodes {
		eventually(t, ts.Endpoint()+" lists ticked", func() error { return listed(ts, "ticked") })
	}
	ev := a.eventsClient()
	if _, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("tick"), ScheduleExpression: aws.String("rate(1 minute)")}); err != nil {
		t.Fatal(err)
	}
	if out, err := ev.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("tick"), Targets: []ebtypes.Target{
		{Id: aws.String("fn"), Arn: aws.String(functionARN("ticked"))}}}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutTargets: %v %v", out, err)
	}
	allowRule(t, a.Lambda(), "ticked", ruleARN("tick"))

	for round := range rounds {
		killed := t.Run(fmt.Sprintf("kill-%d", round), func(t *testing.T) {
			victim := nodes[home]
			load := startLoad(t, nodes, "steady", queued)
			time.Sleep(2 * time.Second)
			load.takeOut(home)
			victim.Kill()
			killed := time.Now()
			time.Sleep(3 * failoverTarget)
			load.Stop()
			var last time.Time
			for _, c := range load.failed() {
				if c.via == home {
					continue // it went through the node killed
				}
				t.Logf("through n%d at kill%+v: %v", c.via+1, c.start.Sub(killed).Round(time.Millisecond), c.err)
				if c.start.After(last) {
					last = c.start
				}
				if c.start.After(killed.Add(2 * failoverTarget)) {
					t.Errorf("an invocation through n%d begun %v after the kill failed: %v", c.via+1, c.start.Sub(killed).Round(time.Millisecond), c.err)
				}
			}
			if last.IsZero() {
				t.Logf("no invocation through the other nodes failed")
			} else {
				t.Logf("the last failed invocation through the other nodes began %v after the kill (target: before %v)",
					last.Sub(killed).Round(time.Millisecond), failoverTarget)
			}
			survivor := nodes[(home+1)%3]
			if moved := invocationsOn(t, survivor, "steady") + invocationsOn(t, nodes[(home+2)%3], "steady"); moved == 0 {
				t.Errorf("after its home was killed, steady ran on no other node")
			}
			load.waitAllRan(t, survivor, queued)
			// Ticks go on: the lease of a killed scheduler expires.
			ticks := len(sawEvents(t, survivor.functionLogEvents(t, survivor.Logs(), "ticked")))
			survivor.waitSawEvents(t, "ticked", "ticks after the kill", func(s []map[string]any) bool { return len(s) >= ticks+3 })

			// Back, it is a member again and the home of steady.
			victim.Restart()
			for _, ts := range nodes {
				waitNodes(t, ts, "n1", "n2", "n3")
			}
			eventually(t, "the restarted node runs steady again", func() error {
				before := invocationsOn(t, victim, "steady")
				if _, err := survivor.tryInvoke(t, "steady", `{}`); err != nil {
					return err
				}
				if invocationsOn(t, victim, "steady") == before {
					return fmt.Errorf("steady ran elsewhere")
				}
				return nil
			})
			victim.invokeOK(t, "steady", `{}`)
		})

		if !killed {
			t.FailNow()
		}
		t.Run(fmt.Sprintf("rolling-%d", round), func(t *testing.T) {
			load := startLoad(t, nodes, "steady", queued)
			for i, ts := range nodes {
				time.Sleep(time.Second)
				load.takeOut(i)
				ts.Stop()
				ts.Restart()
				for _, other := range nodes {
					waitNodes(t, other, "n1", "n2", "n3")
				}
				load.putBack(i)
			}
			time.Sleep(time.Second)
			load.Stop()
			for _, c := range load.failed() {
				t.Errorf("an invocation through n%d failed during the rolling restart: %v", c.via+1, c.err)
			}
			load.mu.Lock()
			calls := len(load.calls)
			load.mu.Unlock()
			t.Logf("%d sync invocations during the rolling restart", calls)
			load.waitAllRan(t, a, queued)
		})
	}

	if _, err := ev.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("tick"), Force: true}); err != nil {
		t.Fatal(err)
	}
	a.waitScheduleQuiet(t, "ticked")
	ids := map[string]int{}
	for _, e := range sawEvents(t, a.functionLogEvents(t, a.Logs(), "ticked")) {
		ids[fmt.Sprint(e["id"])]++
	}
	// The queue takes each tick's event once: its message ID is the tick's
	// (a tick with two runs in TestCluster/schedule, without failures, is
	// a tick fired twice). Here delivery is at least once: an event whose
	// run or acknowledgement fell in a store's election is delivered again
	// after the acknowledgement wait (2 s at this time scale, shorter than
	// an election), so a tick may run more than once; that is logged.
	again := 0
	for _, n := range ids {
		if n > 1 {
			again++
		}
	}
	t.Logf("%d ticks ran, %d of them more than once (delivered again)", len(ids), again)
}
