package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lamina-project/lamina/internal/cluster"
	"github.com/lamina-project/lamina/internal/credentials"
)

// clusterWait bounds how long a cluster test waits for what must happen
// (a write seen by another node, a node counted in or out); it only bounds a
// broken cluster.
const clusterWait = 30 * time.Second

// startCluster starts n nodes on this machine — separate processes, data
// directories and ports — that form one cluster through their embedded NATS
// servers' routes, and waits until every one serves. opts apply to every
// node; nodeOpts, when set, adds the options of node i (from 0). Node i is
// named n<i+1>.
func startCluster(t *testing.T, n int, nodeOpts func(i int) []serverOption, opts ...serverOption) []*testServer {
	t.Helper()
	name := "e2e-" + uuid.NewString()[:8]
	for attempt := 1; ; attempt++ {
		routes := make([]string, n)
		for i := range routes {
			routes[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		}
		nodes := make([]*testServer, n)
		for i := range nodes {
			o := append(slices.Clone(opts), withArgs("--node-name", fmt.Sprintf("n%d", i+1), "--cluster-name", name,
				"--cluster-listen", routes[i], "--cluster-peers", strings.Join(routes, ",")))
			if nodeOpts != nil {
				o = append(o, nodeOpts(i)...)
			}
			nodes[i] = newTestServer(t, o...)
			nodes[i].pickPorts()
			if err := nodes[i].launch(); err != nil {
				t.Fatal(err)
			}
		}
		var failed []error
		taken := false
		for i, ts := range nodes {
			if err := ts.waitReady(); err != nil {
				failed = append(failed, fmt.Errorf("node n%d: %w", i+1, err))
				taken = taken || ts.portTaken()
			}
		}
		if len(failed) == 0 {
			return nodes
		}
		for _, ts := range nodes {
			ts.abandon()
		}
		if taken && attempt < 3 {
			t.Logf("a port was taken, starting the cluster again: %v", errors.Join(failed...))
			continue
		}
		var out strings.Builder
		for i, ts := range nodes {
			fmt.Fprintf(&out, "--- node n%d:\n%s\n", i+1, ts.Output())
		}
		t.Fatalf("the cluster did not start: %v\n%s", errors.Join(failed...), out.String())
	}
}

// abandon kills the server's process group, if it runs.
func (ts *testServer) abandon() {
	if p := ts.current(); p != nil && !p.exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// nodesOf asks ts which nodes are live, through `lamina nodes -o json`.
func nodesOf(t *testing.T, ts *testServer) (self string, replicas int, nodes []cluster.Node) {
	t.Helper()
	stdout, stderr, code := ts.Run("nodes", "-o", "json")
	if code != 0 {
		t.Fatalf("lamina nodes: exit %d: %s", code, stderr)
	}
	var out struct {
		Self     string
		Replicas int
		Nodes    []cluster.Node
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("lamina nodes -o json: %v\n%s", err, stdout)
	}
	return out.Self, out.Replicas, out.Nodes
}

// waitNodes waits until ts counts exactly the nodes named want.
func waitNodes(t *testing.T, ts *testServer, want ...string) []cluster.Node {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		_, _, nodes := nodesOf(t, ts)
		var got []string
		for _, n := range nodes {
			got = append(got, n.ID)
		}
		if slices.Equal(got, want) {
			return nodes
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s counts nodes %v after %v, want %v", ts.Endpoint(), got, clusterWait, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// eventually retries check until it returns nil, and fails the test with
// its last error after clusterWait.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after %v", what, err, clusterWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// listed reports whether ts lists the function name.
func listed(ts *testServer, name string) error {
	out, err := ts.Lambda().ListFunctions(context.Background(), &lambda.ListFunctionsInput{})
	if err != nil {
		return err
	}
	for _, f := range out.Functions {
		if aws.ToString(f.FunctionName) == name {
			return nil
		}
	}
	return fmt.Errorf("%s does not list %s", ts.Endpoint(), name)
}

// codeThrough invokes the pyApp echo function name through ts and returns
// the CODE_MARK its code has.
func codeThrough(t *testing.T, ts *testServer, name string) (string, error) {
	r, err := ts.tryInvoke(t, name, `{}`)
	if err != nil {
		return "", err
	}
	if r.FunctionError != "" {
		return "", fmt.Errorf("function error %s: %s", r.FunctionError, r.Payload)
	}
	return codeMark(t, r), nil
}

// awsCLI runs the AWS CLI v2 (/usr/bin/aws) against ts with its admin pair
// and returns what it printed. It skips the test when the CLI is missing
// (.ci/run installs it).
func awsCLI(t *testing.T, ts *testServer, args ...string) string {
	t.Helper()
	const bin = "/usr/bin/aws"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("the AWS CLI v2 is not installed at %s (apt-get install awscli)", bin)
	}
	id, secret := ts.Credentials()
	home := t.TempDir()
	cmd := exec.Command(bin, append(args, "--endpoint-url", ts.Endpoint(), "--region", testRegion, "--output", "json")...)
	cmd.Env = append(hermeticEnv(), "HOME="+home, "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_CONFIG_FILE="+filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"),
		"AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1")
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("aws %s against %s: %v\n%s%s", strings.Join(args, " "), ts.Endpoint(), err, out, exitErr.Stderr)
		}
		t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// functionURLID is the URL ID in a FunctionUrl of Lamina
// (http://<id>.lambda-url.<region>.localhost:<port>/).
func functionURLID(t *testing.T, functionURL string) string {
	t.Helper()
	u, err := url.Parse(functionURL)
	if err != nil {
		t.Fatal(err)
	}
	id, _, ok := strings.Cut(u.Hostname(), ".")
	if !ok {
		t.Fatalf("FunctionUrl %s has no URL ID", functionURL)
	}
	return id
}

// invocationsOn returns how many invocations of function ran on ts, by its
// metrics.
func invocationsOn(t *testing.T, ts *testServer, function string) float64 {
	t.Helper()
	r := ts.do(t, "GET", "/metrics", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.Status)
	}
	return max(0, metricValue(string(r.Body), `lamina_invocations_total{function="`+function+`"}`))
}

// TestCluster runs three nodes on this machine that form one cluster through
// the embedded NATS servers' routes, and drives them through different
// nodes with the AWS SDK, the AWS CLI and the lamina CLI.
func TestCluster(t *testing.T) {
	t.Parallel()
	natsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	nodes := startCluster(t, 3, func(i int) []serverOption {
		if i == 0 {
			// Open one node's NATS server, to look at the streams.
			return []serverOption{withArgs("--nats-listen", natsAddr)}
		}
		return nil
	}, withoutAdminEnv(), withEnv("LAMINA_CLUSTER_SECRET=e2e-route-secret"),
		withArgs("--schedule-time-scale", scheduleTimeScale, "--async-time-scale", "0.01", "--async-concurrency", "1"))
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := t.Context()

	t.Run("credentials", func(t *testing.T) {
		// No node was given a pair: the first made one, and every node
		// accepts it and keeps it in its data directory.
		first, err := credentials.Load(a.DataDir())
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range nodes[1:] {
			if got, err := credentials.Load(ts.DataDir()); err != nil || got != first {
				t.Errorf("%s keeps the pair %s, want the cluster's %s (%v)", ts.DataDir(), got.AccessKeyID, first.AccessKeyID, err)
			}
		}
	})

	t.Run("sdk", func(t *testing.T) {
		a.createPy(t, "hello", "echo")
		// A read on another node finds what was just written, even before
		// that node's watch brought it.
		if _, err := b.Lambda().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")}); err != nil {
			t.Fatalf("GetFunction on n2 right after CreateFunction on n1: %v", err)
		}
		eventually(t, "n3 lists hello", func() error { return listed(c, "hello") })
		// A node reads its own writes and the others' at once: created on
		// one node, updated on the same at once, read on the next.
		for i := range 9 {
			name := fmt.Sprintf("raw-%d", i)
			writer, reader := nodes[i%3], nodes[(i+1)%3]
			writer.createPy(t, name, "echo")
			if _, err := writer.Lambda().UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
				FunctionName: aws.String(name), Description: aws.String("updated")}); err != nil {
				t.Fatalf("UpdateFunctionConfiguration on %s right after CreateFunction there: %v", writer.Endpoint(), err)
			}
			got, err := reader.Lambda().GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
			if err != nil {
				t.Fatalf("GetFunctionConfiguration on %s right after the update on %s: %v", reader.Endpoint(), writer.Endpoint(), err)
			}
			if aws.ToString(got.Description) != "updated" {
				// The reader had the function from its watch, which may not
				// have brought the update yet.
				eventually(t, reader.Endpoint()+" shows the update", func() error {
					got, err := reader.Lambda().GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
					if err == nil && aws.ToString(got.Description) != "updated" {
						err = fmt.Errorf("description %q", aws.ToString(got.Description))
					}
					return err
				})
			}
		}
		for _, ts := range []*testServer{b, c} {
			if got := ts.invokeOK(t, "hello", `{"via":"`+ts.Endpoint()+`"}`).object(t); jsonOf(t, got["echo"]) != `{"via":"`+ts.Endpoint()+`"}` {
				t.Errorf("invoke through %s answered %s", ts.Endpoint(), jsonOf(t, got))
			}
		}
		// Code updated through n3 runs on every node, warm environments
		// of the old code retired.
		if _, err := c.Lambda().UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("hello"), ZipFile: markedPyZip(t, "v2")}); err != nil {
			t.Fatal(err)
		}
		for _, ts := range []*testServer{a, b, c} {
			eventually(t, "the new code runs through "+ts.Endpoint(), func() error {
				mark, err := codeThrough(t, ts, "hello")
				if err == nil && mark != "code-v2" {
					err = fmt.Errorf("code %q", mark)
				}
				return err
			})
		}
	})

	t.Run("aws-cli", func(t *testing.T) {
		var list struct {
			Functions []struct{ FunctionName string }
		}
		if err := json.Unmarshal([]byte(awsCLI(t, b, "lambda", "list-functions")), &list); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(list.Functions, func(f struct{ FunctionName string }) bool { return f.FunctionName == "hello" }) {
			t.Errorf("aws lambda list-functions on n2: %+v, want hello", list.Functions)
		}
		out := filepath.Join(t.TempDir(), "out.json")
		awsCLI(t, c, "lambda", "invoke", "--function-name", "hello", "--cli-binary-format", "raw-in-base64-out", "--payload", `{"cli":1}`, out)
		if data, err := os.ReadFile(out); err != nil || !strings.Contains(string(data), `"echo": {"cli": 1}`) {
			t.Errorf("aws lambda invoke on n3 wrote %s (%v)", data, err)
		}
		awsCLI(t, b, "lambda", "update-function-configuration", "--function-name", "hello", "--environment", "Variables={MARK=from-cli}")
		eventually(t, "n1 shows the configuration set through n2", func() error {
			var cfg struct {
				Environment struct{ Variables map[string]string }
			}
			if err := json.Unmarshal([]byte(awsCLI(t, a, "lambda", "get-function-configuration", "--function-name", "hello")), &cfg); err != nil {
				return err
			}
			if cfg.Environment.Variables["MARK"] != "from-cli" {
				return fmt.Errorf("environment %v", cfg.Environment.Variables)
			}
			return nil
		})
	})

	t.Run("function-url", func(t *testing.T) {
		a.createPy(t, "urled", "echo")
		cfg, err := a.Lambda().CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("urled"), AuthType: types.FunctionUrlAuthTypeNone})
		if err != nil {
			t.Fatal(err)
		}
		allowPublicURL(t, a.Lambda(), "urled", "")
		target := c.URLEndpoint() + "/" + functionURLID(t, aws.ToString(cfg.FunctionUrl)) + "/hi?x=1"
		eventually(t, "the URL made on n1 answers on n3's URL listener", func() error {
			resp, err := http.Get(target)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var body struct {
				Echo struct{ RawPath string }
				Code string
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d, %v", resp.StatusCode, err)
			}
			if body.Echo.RawPath != "/hi" || body.Code != "code-v1" {
				return fmt.Errorf("answer %+v", body)
			}
			return nil
		})
	})

	t.Run("async-once", func(t *testing.T) {
		a.createPy(t, "queued", "echo")
		marker := uuid.NewString()
		if _, err := b.Lambda().Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("queued"), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(`{"marker":"` + marker + `"}`)}); err != nil {
			t.Fatal(err)
		}
		c.waitSawEvents(t, "queued", "the event accepted on n2", func(s []map[string]any) bool { return len(s) >= 1 })
		// It ran once in the whole cluster: the queue is empty on every
		// node's view, and the nodes' invocations add up to one.
		eventually(t, "the async queue of queued is empty", func() error {
			for _, ts := range nodes {
				r := ts.do(t, "GET", "/_lamina/async/queued", nil)
				var st struct{ Depth int }
				if err := json.Unmarshal(r.Body, &st); err != nil || r.Status != http.StatusOK || st.Depth != 0 {
					return fmt.Errorf("%s: %d %s", ts.Endpoint(), r.Status, r.Body)
				}
			}
			return nil
		})
		var runs float64
		for _, ts := range nodes {
			runs += invocationsOn(t, ts, "queued")
		}
		saw := sawEvents(t, a.functionLogEvents(t, a.Logs(), "queued"))
		if runs != 1 || len(saw) != 1 || saw[0]["marker"] != marker {
			t.Errorf("the event ran %v times by the nodes' metrics; the log shows %s; want once", runs, jsonOf(t, saw))
		}
	})

	t.Run("async-spread", func(t *testing.T) {
		// Events accepted on one node, more than it runs soon (one at a
		// time, half a second each): the other nodes find them waiting
		// and run some.
		a.createPy(t, "backlog", "sleep")
		const events = 16
		for range events {
			if _, err := b.Lambda().Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("backlog"), InvocationType: types.InvocationTypeEvent,
				Payload: []byte(`{"seconds":0.5}`)}); err != nil {
				t.Fatal(err)
			}
		}
		var runs []float64
		eventually(t, "the backlog ran", func() error {
			runs = runs[:0]
			total := 0.0
			for _, ts := range nodes {
				n := invocationsOn(t, ts, "backlog")
				runs = append(runs, n)
				total += n
			}
			if total < events {
				return fmt.Errorf("%v of %d events ran (by node: %v)", total, events, runs)
			}
			return nil
		})
		helpers := 0
		for i, n := range runs {
			if i != 1 && n > 0 {
				helpers++
			}
		}
		if runs[0]+runs[1]+runs[2] != events || helpers == 0 {
			t.Errorf("the events accepted on n2 ran %v times by node; want %d in all, some on n1 or n3", runs, events)
		}
	})

	t.Run("schedule", func(t *testing.T) {
		a.createPy(t, "ticked", "echo")
		ev := b.eventsClient()
		rule, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("tick"), ScheduleExpression: aws.String("rate(1 minute)")})
		if err != nil {
			t.Fatal(err)
		}
		allowRule(t, a.Lambda(), "ticked", aws.ToString(rule.RuleArn))
		if out, err := ev.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("tick"), Targets: []ebtypes.Target{
			{Id: aws.String("fn"), Arn: aws.String(functionARN("ticked"))}}}); err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutTargets: %v %v", out, err)
		}
		c.waitSawEvents(t, "ticked", "five ticks", func(s []map[string]any) bool { return len(s) >= 5 })
		if _, err := ev.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("tick"), Force: true}); err != nil {
			t.Fatal(err)
		}
		c.waitScheduleQuiet(t, "ticked")
		// Each tick has an ID of its own, derived from its time: a tick
		// fired by two nodes would show twice.
		saw := sawEvents(t, c.functionLogEvents(t, c.Logs(), "ticked"))
		ids := map[string]int{}
		for _, e := range saw {
			ids[fmt.Sprint(e["id"])]++
		}
		var runs float64
		for _, ts := range nodes {
			runs += invocationsOn(t, ts, "ticked")
		}
		for id, n := range ids {
			if n != 1 {
				t.Errorf("tick %s fired %d times", id, n)
			}
		}
		if int(runs) != len(saw) {
			t.Errorf("the nodes ran ticked %v times, the log shows %d ticks", runs, len(saw))
		}
	})

	t.Run("replicated", func(t *testing.T) {
		nc, err := nats.Connect("nats://" + natsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		// The store's buckets are read from their streams' leaders.
		leaderReads := map[string]bool{"KV_lamina_functions": true, "KV_lamina_system": true, "OBJ_lamina_code": true}
		for _, name := range []string{"KV_lamina_functions", "KV_lamina_system", "OBJ_lamina_code", "lamina_async", "lamina_logs", "KV_" + cluster.Bucket} {
			stream, err := js.Stream(ctx, name)
			if err != nil {
				t.Errorf("stream %s: %v", name, err)
				continue
			}
			info := stream.CachedInfo()
			if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
				t.Errorf("stream %s: %d replicas, cluster %+v; want 3 replicas, a leader and two followers", name, info.Config.Replicas, info.Cluster)
			}
			if leaderReads[name] && info.Config.AllowDirect {
				t.Errorf("stream %s answers reads from any replica (direct gets), which may be behind", name)
			}
		}
		if _, replicas, _ := nodesOf(t, b); replicas != 3 {
			t.Errorf("lamina nodes says the store keeps %d replicas, want 3", replicas)
		}
	})

	t.Run("membership", func(t *testing.T) {
		got := waitNodes(t, a, "n1", "n2", "n3")
		for i, n := range got {
			if n.APIEndpoint != nodes[i].Endpoint() || n.URLEndpoint != nodes[i].URLEndpoint() || n.MemoryBudgetMB <= 0 || n.Heartbeat.IsZero() {
				t.Errorf("node %s is shown as %+v, want its endpoints %s %s", n.ID, n, nodes[i].Endpoint(), nodes[i].URLEndpoint())
			}
		}
		if self, _, _ := nodesOf(t, c); self != "n3" {
			t.Errorf("n3 says it is %q", self)
		}

		// Stopped: it leaves at once. Restarted: it joins again.
		c.Stop()
		waitNodes(t, a, "n1", "n2")
		c.Restart()
		waitNodes(t, a, "n1", "n2", "n3")
		waitNodes(t, b, "n1", "n2", "n3")

		// Killed: it drops out when its heartbeats expire, and the other
		// two keep serving what is written meanwhile.
		c.Kill()
		killed := time.Now()
		waitNodes(t, b, "n1", "n2")
		// Writes wait until JetStream has elected new leaders for the
		// streams n3 led.
		eventually(t, "n1 takes a write with n3 down", func() error {
			_, err := a.Lambda().CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("while-n3-down"),
				Runtime: types.RuntimePython312, Handler: aws.String("app.echo"), Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: pyAppZip(t)}})
			if _, exists := errors.AsType[*types.ResourceConflictException](err); exists {
				return nil // an earlier attempt stored it, and its answer was lost
			}
			return err
		})
		t.Logf("n1 took a write %v after n3 was killed", time.Since(killed).Round(100*time.Millisecond))
		eventually(t, "n2 lists a function made while n3 is down", func() error { return listed(b, "while-n3-down") })
		b.invokeOK(t, "while-n3-down", `{}`)
		c.Restart()
		waitNodes(t, a, "n1", "n2", "n3")
		eventually(t, "the restarted n3 lists what was made while it was down", func() error { return listed(c, "while-n3-down") })
		c.invokeOK(t, "while-n3-down", `{}`)
	})
}

// startNATSCluster runs a cluster of n NATS servers with JetStream in the
// test process, taking clients on loopback with user and password, and
// returns their client URLs. They stop when the test ends.
func startNATSCluster(t *testing.T, n int, user, password string) []string {
	t.Helper()
	routes := make([]*url.URL, n)
	ports := make([]int, n)
	for i := range routes {
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))}
		ports[i] = freePort(t)
	}
	servers := make([]*natsserver.Server, n)
	urls := make([]string, n)
	name := "external-" + uuid.NewString()[:8]
	for i := range servers {
		_, routePort, _ := net.SplitHostPort(routes[i].Host)
		rp, _ := strconv.Atoi(routePort)
		opts := &natsserver.Options{
			ServerName: fmt.Sprintf("ext%d", i+1),
			Host:       "127.0.0.1",
			Port:       ports[i],
			Username:   user,
			Password:   password,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			MaxPayload: 8 << 20,
			NoSigs:     true,
			NoLog:      true,
			Routes:     routes,
		}
		opts.Cluster.Name = name
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", rp
		s, err := natsserver.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = s
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[i])
		go s.Start()
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Go(func() { s.Shutdown(); s.WaitForShutdown() })
		}
		wg.Wait()
	})
	for _, s := range servers {
		if !s.ReadyForConnections(clusterWait) {
			t.Fatal("a NATS server of the external cluster did not start")
		}
	}
	return urls
}

// TestClusterExternalNATS points two nodes at an external NATS cluster of
// three servers (run in the test process) instead of embedded servers.
func TestClusterExternalNATS(t *testing.T) {
	t.Parallel()
	const user, password = "lamina", "external-nats-password"
	urls := startNATSCluster(t, 3, user, password)
	external := func(serverURLs ...string) serverOption {
		return func(c *serverConfig) {
			withArgs("--nats-url", strings.Join(serverURLs, ","), "--nats-user", user)(c)
			withEnv("LAMINA_NATS_PASSWORD=" + password)(c)
		}
	}
	x := startServer(t, external(urls[0]), withArgs("--node-name", "x"))
	y := startServer(t, external(urls[1], urls[2]), withArgs("--node-name", "y"))
	ctx := t.Context()

	x.createPy(t, "shared", "echo")
	if got := y.invokeOK(t, "shared", `{"through":"y"}`).object(t); jsonOf(t, got["echo"]) != `{"through":"y"}` {
		t.Errorf("invoke through y answered %s", jsonOf(t, got))
	}
	eventually(t, "y lists shared", func() error { return listed(y, "shared") })
	nodes := waitNodes(t, y, "x", "y")
	if nodes[0].APIEndpoint != x.Endpoint() {
		t.Errorf("y shows x at %s, want %s", nodes[0].APIEndpoint, x.Endpoint())
	}
	// Nothing of Lamina is in the nodes' data directories' NATS store: the
	// external cluster keeps it, three times.
	if _, err := os.Stat(filepath.Join(x.DataDir(), "nats")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("x made %s/nats with an external NATS (%v)", x.DataDir(), err)
	}
	nc, err := nats.Connect(urls[2], nats.UserInfo(user, password))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "KV_lamina_functions")
	if err != nil {
		t.Fatal(err)
	}
	if r := stream.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("KV_lamina_functions has %d replicas on the external cluster, want 3", r)
	}

	// A node whose environment sets another admin pair than the cluster's
	// does not start.
	dir := t.TempDir()
	env := append(hermeticEnv(), credentials.EnvAccessKeyID+"=LKIAOTHERKEY00000001", credentials.EnvSecretAccessKey+"=another-secret-another-secret-another-s",
		"LAMINA_NATS_PASSWORD="+password)
	stdout, stderr, code := runLamina(t, env, "server", "--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))),
		"--url-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), "--data", dir, "--sandbox", "process",
		"--nats-url", urls[0], "--nats-user", user)
	l := lines(stderr)
	if code == 0 || strings.Contains(stdout, readyBanner) || len(l) == 0 ||
		!strings.Contains(l[len(l)-1], "another admin pair than the cluster's") || !strings.Contains(l[len(l)-1], testAccessKeyID) {
		t.Errorf("a node with another admin pair: exit %d, stderr:\n%s\nwant a refusal naming the cluster's key ID", code, stderr)
	}
}

// TestClusterRefusesSingleNodeStore checks that a single node's data
// directory does not join a cluster (the NATS cluster would drop its
// streams), with one line saying so, and still starts alone.
func TestClusterRefusesSingleNodeStore(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createPy(t, "kept", "echo")
	ts.Stop()
	route := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	msg := serverFailure(t, defaultServerEnv(), "--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))),
		"--data", ts.DataDir(), "--cluster-listen", route, "--cluster-peers", route)
	if !strings.Contains(msg, "single node's") || !strings.Contains(msg, "new data directory") {
		t.Errorf("a single node's data directory joining a cluster: %q, want a refusal that says to start on a new data directory", msg)
	}
	ts.Restart()
	if _, err := ts.Lambda().GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String("kept")}); err != nil {
		t.Errorf("the refused node's store lost its function: %v", err)
	}
}
