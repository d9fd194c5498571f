package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Abuse: processes a handler leaves running. Between invocations the
// environment is frozen, as on Lambda: what the function left running makes
// no progress while the environment is idle, and goes on during the next
// invocation. (abuse_leftover_test.go checks that such a process takes no
// event and ends with its environment.)

// frozenPy is the code of the test's function.
const frozenPy = `import subprocess
import sys
import time

# Appends the time to /tmp/ticks every 10 ms.
TICKER = """
import time
while True:
    with open("/tmp/ticks", "a") as f:
        f.write("%.6f\\n" % time.monotonic())
    time.sleep(0.01)
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
    before = _ticks()
    time.sleep(0.5)
    return {"now": now, "ticks": before, "during": len(_ticks()) - len(before)}
`

// TestAbuseLeftoverProcessIsFrozen: a process the handler left running
// appends to a file every 10 ms. While the environment is idle (1.5 s) it
// makes no progress; during the next invocation it goes on.
func TestAbuseLeftoverProcessIsFrozen(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	ts := startServer(t)
	ts.createFunction(t, "leaver", zipFiles(t, map[string]string{"app.py": frozenPy}),
		func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app.handler") })
	b := ts.startBystander(t)

	started := num(t, ts.invokeOK(t, "leaver", `{"ticker":true}`).object(t), "now")
	const idle = 1500 * time.Millisecond
	time.Sleep(idle)
	out := ts.invokeOK(t, "leaver", `{}`).object(t)
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
