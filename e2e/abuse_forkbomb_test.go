package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Abuse: fork bombs in several sandboxes at once. Each sandbox may have
// 1,024 processes; the node's cgroup parent bounds all of them together
// (--node-pids-max), so no mix of tenants can exhaust the host's pids.

// forkBombPy is a handler that keeps a shell fork bomb going until the
// function's timeout stops it, restarting it whenever it dies out.
const forkBombPy = `import subprocess
import time


def handler(event, context):
    if event.get("warm"):
        return {"warm": True}
    while True:
        try:
            subprocess.Popen(["/bin/sh", "-c", "b() { b | b & }; b"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            pass
        time.sleep(0.2)
`

// nodeCgroupRE finds the node's cgroup in the server's log.
var nodeCgroupRE = regexp.MustCompile(`node_cgroup=(\S+)`)

// nodeCgroup returns the directory of the server's node cgroup that holds
// pids.max and pids.current, from the line the server logs at start (its
// last start).
func (ts *testServer) nodeCgroup(t *testing.T) string {
	t.Helper()
	m := nodeCgroupRE.FindAllStringSubmatch(ts.Output(), -1)
	if m == nil {
		t.Fatalf("the server logged no node_cgroup:\n%s", ts.Output())
	}
	return m[len(m)-1][1]
}

// cgroupTasks counts the tasks (threads) in the cgroup at dir and below.
func cgroupTasks(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "tasks" && d.Name() != "cgroup.threads" {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		for s := bufio.NewScanner(f); s.Scan(); {
			n++
		}
		return nil
	})
	return n
}

// hostTasks is how many threads the host runs (/proc/loadavg).
func hostTasks(t *testing.T) int {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	_, total, _ := strings.Cut(strings.Fields(string(data))[3], "/")
	n, _ := strconv.Atoi(total)
	return n
}

func readCgroupInt(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// TestAbuseForkBombs: four functions fork-bomb at once, each until its
// timeout. The node's pids.max (1,500 here, below the 4 × 1,024 the
// sandboxes could have alone) holds the tasks of all sandboxes together,
// another function keeps answering, and every kind of write succeeds right
// after.
func TestAbuseForkBombs(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	const nodePids, bombs = 1500, 4
	ts := startServer(t, withArgs("--node-pids-max", strconv.Itoa(nodePids)))
	node := ts.nodeCgroup(t)
	if got := readCgroupInt(t, filepath.Join(node, "pids.max")); got != nodePids {
		t.Fatalf("the node's pids.max is %d, want %d", got, nodePids)
	}
	for i := range bombs {
		ts.createFunction(t, fmt.Sprintf("bomb-%d", i), zipFiles(t, map[string]string{"app.py": forkBombPy}),
			func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app.handler") }, withMemorySize(512), withTimeout(4))
	}
	// Every bomb's environment is up before any bomb starts, so that all
	// four bomb at once.
	for i := range bombs {
		ts.invokeOK(t, fmt.Sprintf("bomb-%d", i), `{"warm":true}`)
	}
	b := ts.startBystander(t)
	hostBefore := hostTasks(t)

	stop := make(chan struct{})
	sampled := make(chan [2]int)
	go func() { // the most tasks seen in the node, and on the host
		most, mostHost := 0, 0
		for {
			most, mostHost = max(most, cgroupTasks(node)), max(mostHost, hostTasks(t))
			select {
			case <-stop:
				sampled <- [2]int{most, mostHost}
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range bombs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := ts.tryInvoke(t, fmt.Sprintf("bomb-%d", i), `{}`)
			if err != nil || !strings.Contains(string(r.Payload), "Task timed out") {
				t.Errorf("bomb-%d ended with %s (%v), want its timeout", i, r.Payload, err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	most := <-sampled
	b.finish(t)

	t.Logf("node tasks: at most %d seen (pids.max %d); host tasks: %d before, at most %d during", most[0], nodePids, hostBefore, most[1])
	if most[0] > nodePids {
		t.Errorf("%d tasks in the node, over its pids.max %d", most[0], nodePids)
	}
	// The bombs together went past what one sandbox may have, up to the
	// node's limit (on a busy machine they may not reach it before their
	// timeout): the node's limit, not the sandboxes' own, is what bounds them.
	if peak := filepath.Join(node, "pids.peak"); fileExists(peak) {
		if got := readCgroupInt(t, peak); got > nodePids || got <= 1024 {
			t.Errorf("the node's pids.peak is %d, want above one sandbox's 1024 and at most its pids.max %d", got, nodePids)
		}
	} else if most[0] <= 1024 {
		t.Errorf("at most %d tasks seen in the node: the bombs never went past one sandbox's limit", most[0])
	}
	ts.requireEveryWrite(t)
	// The bombs' environments are gone, and with them their tasks.
	waitUntil(t, "the node's tasks fall back", func() bool { return cgroupTasks(node) < 200 })
}

// waitUntil polls cond for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
