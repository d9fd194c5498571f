package e2e

// Leftover processes (issue 10): a process a handler leaves running lives as
// long as its environment, and no longer. The environments of a deleted
// function, of a deleted version, or of replaced configuration or code stop
// at once, not at the idle timeout (10 minutes here): idle ones when the
// change is stored, busy ones when their invocation ends. Such a process
// cannot take an event from the runtime either, however hard it asks for
// one. Another function keeps answering throughout, and every kind of write
// succeeds after.
//
// Processes are found on the host by a marker in their command line. The
// waits are bounded generously: only a broken server reaches the bound.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// leftoverPy is the handler of the leftover tests (app.handler); the event's
// "action" says what to do.
const leftoverPy = `import os
import subprocess
import sys
import time

# A process that asks the Runtime API for the next event again and again,
# counting the refusals and keeping what it gets.
THIEF = r'''
import os, sys, time, urllib.error, urllib.request
url = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/next"
refused = 0
while True:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            event = r.read()
        with open("/tmp/stolen", "ab") as f:
            f.write(event + b"\n")
    except urllib.error.HTTPError:
        refused += 1
        with open("/tmp/refused.tmp", "w") as f:
            f.write(str(refused))
        os.replace("/tmp/refused.tmp", "/tmp/refused")
    except OSError:
        time.sleep(0.01)
'''


def _spawn(code, marker):
    subprocess.Popen([sys.executable, "-c", code, marker], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def handler(event, context):
    action = event["action"]
    if action == "leave":
        _spawn("import time; time.sleep(600)", event["marker"])
        time.sleep(event.get("holdSeconds", 0))
        return {"left": event["marker"]}
    if action == "thief":
        _spawn(THIEF, event["marker"])
        return {"thief": event["marker"]}
    if action == "report":
        return {"stolen": _read("/tmp/stolen"), "refused": int(_read("/tmp/refused") or 0)}
    return event
`

// leftoverZip is leftoverPy as a deployment package; a different comment
// makes different code.
func leftoverZip(t *testing.T, comment string) []byte {
	t.Helper()
	return zipFiles(t, map[string]string{"app.py": leftoverPy + "# " + comment + "\n"})
}

// markedProcesses returns the host's processes with marker in their
// command line.
func markedProcesses(t *testing.T, marker string) []hostProcess {
	t.Helper()
	var found []hostProcess
	for _, p := range hostProcesses(t) {
		if strings.Contains(p.Cmdline, marker) {
			found = append(found, p)
		}
	}
	return found
}

// waitProcesses waits until the host has n processes with marker.
func waitProcesses(t *testing.T, marker string, n int, why string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		found := markedProcesses(t, marker)
		if len(found) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d processes with marker %s on the host after 60 s, want %d: %+v", why, len(found), marker, n, found)
		}
	}
}

func newMarker() string { return "lamina-e2e-leftover-" + strings.ToLower(rand.Text()[:12]) }

func TestAbuseLeftoverProcesses(t *testing.T) {
	requireSandboxHost(t)
	t.Parallel()
	ts := startServer(t) // the idle timeout is 10 minutes
	b := ts.startBystander(t)
	ctx := context.Background()
	client := ts.Lambda()
	const name = "leaver"
	create := func(t *testing.T) {
		t.Helper()
		ts.createFunction(t, name, leftoverZip(t, "v1"), func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(60) })
	}
	leave := func(t *testing.T, qualifier, marker string) {
		t.Helper()
		ts.invokeOK(t, name+qualifier, jsonOf(t, map[string]any{"action": "leave", "marker": marker}))
		waitProcesses(t, marker, 1, "after the invocation that leaves it")
	}
	create(t)

	t.Run("a process that asks for events gets none", func(t *testing.T) {
		marker := newMarker()
		ts.invokeOK(t, name, jsonOf(t, map[string]any{"action": "thief", "marker": marker}))
		waitProcesses(t, marker, 1, "after the invocation that starts it")
		type thiefReport struct {
			Stolen  string
			Refused int
		}
		// report also checks that the environment with the thief serves.
		report := func() thiefReport {
			t.Helper()
			r := ts.invokeOK(t, name, `{"action":"report"}`)
			if r.cold(t) {
				t.Fatalf("a cold start: the environment with the thief no longer serves:\n%s", r.Log)
			}
			var rep thiefReport
			if err := json.Unmarshal(r.Payload, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Stolen != "" {
				t.Fatalf("the leftover process got events: %q", rep.Stolen)
			}
			return rep
		}
		// Invocations while the thief asks for their events, until it has
		// been refused many times. A generous bound stops a broken test.
		start := report().Refused
		calls := 0
		for deadline := time.Now().Add(60 * time.Second); ; calls++ {
			r := ts.invokeOK(t, name, jsonOf(t, map[string]any{"action": "echo", "n": calls}))
			if n := num(t, r.object(t), "n"); n != float64(calls) {
				t.Fatalf("call %d answered %s, want its own event", calls, r.Payload)
			}
			if calls%10 == 9 {
				if refused := report().Refused; refused >= start+200 {
					t.Logf("%d invocations answered while the leftover process was refused %d events", calls+1, refused)
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %d invocations in 60 s the thief was refused %d times, want 200 more than %d: it does not run", calls, report().Refused, start)
			}
		}

		if _, err := client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		waitProcesses(t, marker, 0, "after DeleteFunction")
	})

	t.Run("UpdateFunctionConfiguration", func(t *testing.T) {
		create(t)
		marker := newMarker()
		leave(t, "", marker)
		_, err := client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(name), Environment: &types.Environment{Variables: map[string]string{"NEW": "config"}}})
		if err != nil {
			t.Fatal(err)
		}
		waitProcesses(t, marker, 0, "after UpdateFunctionConfiguration")
		ts.waitUpdated(t, name)
	})

	t.Run("UpdateFunctionCode", func(t *testing.T) {
		marker := newMarker()
		leave(t, "", marker)
		_, err := client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: leftoverZip(t, "v2")})
		if err != nil {
			t.Fatal(err)
		}
		waitProcesses(t, marker, 0, "after UpdateFunctionCode")
		ts.waitUpdated(t, name)
	})

	t.Run("a deleted version", func(t *testing.T) {
		v, err := client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		ofVersion, ofLatest := newMarker(), newMarker()
		leave(t, ":"+aws.ToString(v.Version), ofVersion)
		leave(t, "", ofLatest)
		_, err = client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name), Qualifier: v.Version})
		if err != nil {
			t.Fatal(err)
		}
		waitProcesses(t, ofVersion, 0, "after deleting the version")
		if n := len(markedProcesses(t, ofLatest)); n != 1 {
			t.Errorf("the $LATEST environment's process: %d on the host, want it still running", n)
		}
	})

	t.Run("a busy environment, when its invocation ends", func(t *testing.T) {
		marker := newMarker()
		finished := make(chan error, 1)
		go func() {
			r, err := ts.tryInvoke(t, name, jsonOf(t, map[string]any{"action": "leave", "marker": marker, "holdSeconds": 3}))
			if err == nil && r.FunctionError != "" {
				err = &types.ServiceException{Message: aws.String(r.FunctionError + ": " + string(r.Payload))}
			}
			finished <- err
		}()
		waitProcesses(t, marker, 1, "during the invocation")
		_, err := client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(name), Description: aws.String("changed during an invocation")})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-finished; err != nil {
			t.Fatalf("the invocation during which its configuration changed: %v", err)
		}
		waitProcesses(t, marker, 0, "after the invocation, its configuration replaced")
		ts.waitUpdated(t, name)
	})

	b.finish(t)
	ts.requireEveryWrite(t)
}
