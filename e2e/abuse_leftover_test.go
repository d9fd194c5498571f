package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Abuse: processes a handler leaves running. Between invocations the
// environment is frozen, as on Lambda: what the function left running makes
// no progress while the environment is idle, and goes on during the next
// invocation. A leftover process that asks the Runtime API for the next
// event itself never gets one.

// leftoverPy is the code of the leftover tests' function.
const leftoverPy = `import json
import os
import subprocess
import sys
import time

# Appends its time (CLOCK_MONOTONIC, the same inside and outside) to
# /tmp/ticks every 10 ms.
TICKER = """
import time
while True:
    with open("/tmp/ticks", "a") as f:
        f.write("%.6f\\n" % time.monotonic())
    time.sleep(0.01)
"""

# Asks the Runtime API for the next event again and again, and writes down
# whatever it gets.
THIEF = """
import os, time, urllib.request
url = "http://%s/2018-06-01/runtime/invocation/next" % os.environ["AWS_LAMBDA_RUNTIME_API"]
while True:
    try:
        with urllib.request.urlopen(url, timeout=600) as r:
            with open("/tmp/stolen", "a") as f:
                f.write("%s %s\\n" % (r.headers.get("Lambda-Runtime-Aws-Request-Id"), r.read().decode()))
    except Exception:
        time.sleep(0.02)
"""


def _spawn(code):
    subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ticks():
    try:
        with open("/tmp/ticks") as f:
            return [float(t) for t in f.read().split()]
    except FileNotFoundError:
        return []


def handler(event, context):
    now = time.monotonic()
    if event.get("ticker"):
        _spawn(TICKER)
        while not _ticks():
            time.sleep(0.005)
        return {"now": time.monotonic()}
    if event.get("thief"):
        _spawn(THIEF)
        time.sleep(0.5)  # it asks while the runtime is busy with this event
        return {"thief": "started"}
    if event.get("stolen"):
        try:
            with open("/tmp/stolen") as f:
                return {"stolen": f.read()}
        except FileNotFoundError:
            return {"stolen": ""}
    if event.get("check"):
        before = _ticks()
        time.sleep(0.5)
        return {"now": now, "ticks": before, "during": len(_ticks()) - len(before)}
    return {"marker": event.get("marker")}
`

func (ts *testServer) createLeftover(t *testing.T, name string) {
	t.Helper()
	ts.createFunction(t, name, zipFiles(t, map[string]string{"app.py": leftoverPy}),
		func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app.handler") }, withTimeout(3))
}

// TestAbuseLeftoverProcessIsFrozen: a process the handler left running
// appends to a file every 10 ms. While the environment is idle (1.5 s) it
// makes no progress; during the next invocation it goes on.
func TestAbuseLeftoverProcessIsFrozen(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	ts := startServer(t)
	ts.createLeftover(t, "leaver")
	b := ts.startBystander(t)

	started := num(t, ts.invokeOK(t, "leaver", `{"ticker":true}`).object(t), "now")
	const idle = 1500 * time.Millisecond
	time.Sleep(idle)
	out := ts.invokeOK(t, "leaver", `{"check":true}`).object(t)
	b.finish(t)

	// The ticks between the first invocation's end and the second's start:
	// at most a few before the freeze, then none.
	now := num(t, out, "now")
	points := []float64{started}
	for _, v := range out["ticks"].([]any) {
		if tick := v.(float64); tick > started && tick < now {
			points = append(points, tick)
		}
	}
	points = append(points, now)
	slices.Sort(points)
	var longest float64
	for i := 1; i < len(points); i++ {
		longest = max(longest, points[i]-points[i-1])
	}
	t.Logf("idle for %.2f s between the invocations; the leftover ticked %d times meanwhile; its longest pause %.3f s",
		now-started, len(points)-2, longest)
	if longest < idle.Seconds()/2 {
		t.Errorf("the leftover process's longest pause while the environment was idle for %.2f s was %.3f s: it was not frozen",
			now-started, longest)
	}
	if during := num(t, out, "during"); during == 0 {
		t.Error("the leftover process made no progress during the next invocation (it was not thawed)")
	}
	ts.requireEveryWrite(t)
}

// TestAbuseLeftoverProcessTakesNoEvent: a process the handler left running
// asks GET /next for events itself, again and again, while the runtime
// handles events and while it waits for them. It gets none: each event
// goes to the runtime.
//
// Freezing alone does not ensure this (a /next the leftover sent while the
// runtime was busy would still wait at the server while the environment is
// frozen, and could take the next event once thawed). What ensures it is
// the Runtime API's state machine, which refuses a /next out of turn (403
// InvalidStateTransition) and, between events, a /next on any connection
// but the runtime's (h/runtimeapi). This test checks the two together.
func TestAbuseLeftoverProcessTakesNoEvent(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	ts := startServer(t)
	ts.createLeftover(t, "thief")
	b := ts.startBystander(t)
	ts.invokeOK(t, "thief", `{"thief":true}`)
	for i := range 5 {
		marker := fmt.Sprintf("event-%d", i)
		r := ts.invoke(t, "thief", fmt.Sprintf(`{"marker":%q}`, marker))
		if r.FunctionError != "" || !strings.Contains(string(r.Payload), marker) {
			t.Errorf("invocation %d: %s %s, want the runtime's answer with %s", i, r.FunctionError, r.Payload, marker)
		}
		time.Sleep(100 * time.Millisecond) // idle: frozen
	}
	if stolen := str(t, ts.invokeOK(t, "thief", `{"stolen":true}`).object(t), "stolen"); stolen != "" {
		t.Errorf("the leftover process got events:\n%s", stolen)
	}
	b.finish(t)
	ts.requireEveryWrite(t)
}
