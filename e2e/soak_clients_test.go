package e2e

// Full-scale client floods, the sizes of issue 10: tens of thousands of
// slow connections, twenty 66 MB uploads at once. They take minutes and
// tens of thousands of file descriptors, so they only run with
// LAMINA_SOAK=1:
//
//	LAMINA_SOAK=1 go test -run 'TestSoak' -v -timeout 30m ./e2e/
//
// The servers run with the default limits. BENCHMARKS.md ("Client floods")
// has the figures measured.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func requireSoak(t *testing.T) {
	t.Helper()
	if os.Getenv("LAMINA_SOAK") == "" {
		t.Skip("a soak test: set LAMINA_SOAK=1 to run it")
	}
}

// attackSpec is a flood run by a separate attacker process (a test
// process has the same open-file limit as the server, so one cannot hold
// more connections than the server could).
type attackSpec struct {
	Addrs    []string
	PerAddr  int
	Target   string
	Prefix   []byte
	Interval time.Duration
}

// attackerEnv carries an attackSpec, as JSON, to TestSoakAttacker.
const attackerEnv = "LAMINA_SOAK_ATTACK"

// attack runs spec in a child process of the test binary and returns the
// tally of its outcomes.
func attack(t *testing.T, spec attackSpec) map[string]int {
	t.Helper()
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestSoakAttacker$", "-test.v", "-test.timeout", "20m")
	cmd.Env = append(os.Environ(), attackerEnv+"="+string(data))
	out, err := cmd.CombinedOutput()
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "SOAK-RESULT "); ok {
			var counts map[string]int
			if err := json.Unmarshal([]byte(rest), &counts); err != nil {
				t.Fatal(err)
			}
			return counts
		}
	}
	t.Fatalf("the attacker process gave no result (%v):\n%s", err, out)
	return nil
}

// TestSoakAttacker is the attacker process of attack; it does nothing in
// a test run of its own.
func TestSoakAttacker(t *testing.T) {
	data := os.Getenv(attackerEnv)
	if data == "" {
		t.Skip("runs only as the attacker process of a soak test")
	}
	var spec attackSpec
	if err := json.Unmarshal([]byte(data), &spec); err != nil {
		t.Fatal(err)
	}
	counts, _ := json.Marshal(tally(t, flood(spec.Addrs, spec.PerAddr, spec.Target, spec.Prefix, spec.Interval)))
	fmt.Printf("SOAK-RESULT %s\n", counts)
}

// tally counts outcomes by how they ended.
func tally(t *testing.T, outcomes []slowOutcome) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, o := range outcomes {
		key := "closed without an answer within a second (refused)"
		if o.ended.Sub(o.opened) >= time.Second {
			key = "closed without an answer later (cut)"
		}
		switch {
		case errors.Is(o.err, os.ErrDeadlineExceeded):
			key = fmt.Sprintf("client error: never ended by the server in %v", slowClientTimeout)
		case o.err != nil:
			msg := o.err.Error()
			key = "client error: " + msg[strings.LastIndex(msg, ": ")+1:]
		case o.resp != nil:
			key = fmt.Sprintf("%d %s", o.status(), o.resp.Header.Get("X-Amzn-ErrorType"))
		}
		counts[key]++
	}
	return counts
}

// TestSoakSlowClients opens 21,000 slow connections at once, from 30
// loopback addresses each: 10,500 slow headers to the API and 10,500 slow
// 1 MB bodies to a public function URL, more than either listener holds,
// while a bystander is invoked.
func TestSoakSlowClients(t *testing.T) {
	requireSoak(t)
	ts := startServer(t)
	ts.createPy(t, "public", "echo")
	id := urlID(t, aws.ToString(ts.createURL(t, "public", "", types.FunctionUrlAuthTypeNone, nil).FunctionUrl))
	b := ts.startBystander(t)
	usage := watchUsage(t, ts.Pid())

	const addrs, perAddr = 30, 350
	group := func(first int) []string {
		out := make([]string, addrs)
		for i := range out {
			out[i] = attackerAddr(first + i)
		}
		return out
	}
	slowHeader := []byte("POST /2015-03-31/functions HTTP/1.1\r\nHost: lamina\r\nContent-Type: application/json\r\n")
	urlBody := fmt.Appendf(nil, "POST /%s/ HTTP/1.1\r\nHost: lamina\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", id, 1<<20)

	start := time.Now()
	var wg sync.WaitGroup
	var headers, urls map[string]int
	wg.Go(func() {
		headers = attack(t, attackSpec{Addrs: group(0), PerAddr: perAddr, Target: ts.Addr(), Prefix: slowHeader})
	})
	wg.Go(func() {
		urls = attack(t, attackSpec{Addrs: group(addrs), PerAddr: perAddr, Target: ts.urlAddr, Prefix: urlBody, Interval: time.Second})
	})
	wg.Wait()
	t.Logf("21,000 slow clients ended after %v", time.Since(start).Round(time.Millisecond))
	t.Logf("slow headers to the API: %v", headers)
	t.Logf("slow 1 MB bodies to a function URL: %v", urls)
	for _, counts := range []map[string]int{headers, urls} {
		for outcome := range counts {
			if strings.HasPrefix(outcome, "client error") {
				t.Errorf("slow clients ended in %s", outcome)
			}
		}
	}
	b.finish(t)
	// Bounds: the default body budgets (512 + 256 MB) twice, and 400 MB
	// for 15,000 connections; the connection caps the open-file limit
	// gives, and the refusals being answered.
	usage.finish(t, 2*(512+256)+400, 2*7420+2*64+32)
	ts.requireEveryWrite(t)
}

// TestSoakLargeUploads sends twenty 66 MB CreateFunction bodies at once,
// unsigned and sent slowly, then signed and at full speed.
func TestSoakLargeUploads(t *testing.T) {
	requireSoak(t)
	ts := startServer(t)
	b := ts.startBystander(t)
	const uploads, zipSize = 20, 50<<20 - 4096 // bodies of 66.7 MB

	usage := watchUsage(t, ts.Pid())
	unsigned := fmt.Appendf(nil, "POST /2015-03-31/functions HTTP/1.1\r\nHost: lamina\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", 66<<20)
	start := time.Now()
	outcomes := flood([]string{attackerAddr(0)}, uploads, ts.Addr(), unsigned, 10*time.Millisecond)
	t.Logf("20 unsigned 66 MB bodies sent slowly: %v after %v", tally(t, outcomes), time.Since(start).Round(time.Millisecond))
	usage.finish(t, 64, 2*uploads+32)

	usage = watchUsage(t, ts.Pid())
	client := clientFrom(attackerAddr(1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	start = time.Now()
	for i := range uploads {
		wg.Go(func() {
			resp, err := client.Do(ts.signedCodeUpload(t, fmt.Sprintf("soak-%d", i), uint64(i), zipSize))
			if err != nil {
				t.Errorf("upload %d: %v", i, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
			if resp.StatusCode == http.StatusTooManyRequests {
				requireRetryLater(t, "upload over the body budget", resp, body, http.StatusTooManyRequests, "TooManyRequestsException")
			} else if resp.StatusCode != http.StatusCreated {
				t.Errorf("upload %d: %d %s", i, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	t.Logf("20 signed 66 MB uploads at once: %v after %v", statuses, time.Since(start).Round(time.Millisecond))
	// Bound: twice the default API body budget.
	usage.finish(t, 2*512, 2*uploads+32)
	b.finish(t)
	ts.requireEveryWrite(t)
}
