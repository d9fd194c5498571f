package e2e

// Lambda extensions and the Telemetry API (issue 18, item 1): a layer
// brings two external extensions in /opt/extensions, one written as
// aws-samples' go-example-extension (Go, net/http only: testdata/gofn/
// extension) and one in Python that also subscribes to the Telemetry API
// with an HTTP listener on sandbox.localdomain. Both see every invocation's
// INVOKE event; the subscriber gets platform.report and the function's log
// records; both get SHUTDOWN when the idle environment retires.

import (
	"io/fs"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// pyTelemetryExtension registers for INVOKE and SHUTDOWN, subscribes to
// platform and function telemetry, and prints what it gets.
const pyTelemetryExtension = `#!/usr/bin/python3
import json, os, sys, threading, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

NAME = os.path.basename(sys.argv[0])
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"]


def call(method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(API + path, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.headers, r.read()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        for rec in batch:
            if rec["type"] in ("platform.report", "platform.start", "platform.runtimeDone"):
                print(f"[{NAME}] telemetry {rec['type']} {rec['record']['requestId']} {rec['record'].get('status', '')}", flush=True)
            elif rec["type"] == "platform.initStart":
                print(f"[{NAME}] telemetry platform.initStart {rec['record']['phase']}", flush=True)
            elif rec["type"] == "function" and "handler says" in rec["record"]:
                print(f"[{NAME}] telemetry function: {rec['record'].split('handler says ')[1]}", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("sandbox.localdomain", 4243), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
headers, _ = call("POST", "/2020-01-01/extension/register", {"events": ["INVOKE", "SHUTDOWN"]}, {"Lambda-Extension-Name": NAME})
ext_id = headers["Lambda-Extension-Identifier"]
call("PUT", "/2022-07-01/telemetry", {
    "schemaVersion": "2022-12-13", "types": ["platform", "function"],
    "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
    "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/telemetry"}},
    {"Lambda-Extension-Identifier": ext_id})
while True:
    _, body = call("GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ext_id})
    event = json.loads(body)
    if event["eventType"] == "SHUTDOWN":
        print(f"[{NAME}] SHUTDOWN {event['shutdownReason']}", flush=True)
        sys.exit(0)
    print(f"[{NAME}] INVOKE {event['requestId']}", flush=True)
`

const extensionsApp = `def handler(event, context):
    print("handler says " + context.aws_request_id)
    return {"ok": True}
`

func TestExtensions(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--idle-timeout", "3s"))
	layer := ts.publishLayerZip(t, "extensions", zipEntries(t,
		zipEntry{Name: "extensions/", Mode: fs.ModeDir | 0o755},
		zipEntry{Name: "extensions/go-example-extension", Body: string(goBinary(t, "./extension")), Mode: 0o755},
		zipEntry{Name: "extensions/py-telemetry", Body: pyTelemetryExtension, Mode: 0o755},
	))
	const fn = "with-extensions"
	ts.createFunction(t, fn, zipFiles(t, map[string]string{"app.py": extensionsApp}), func(in *lambda.CreateFunctionInput) {
		in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
	})

	var ids []string
	for range 3 {
		r := ts.invokeOK(t, fn, `{}`)
		if string(r.Payload) != `{"ok": true}` {
			t.Fatalf("payload %s", r.Payload)
		}
		ids = append(ids, r.RequestID)
	}
	var want []string
	for _, id := range ids {
		want = append(want,
			"[go-example-extension] INVOKE "+id+" "+functionARN(fn)+" true X-Amzn-Trace-Id",
			"[py-telemetry] INVOKE "+id,
			"[py-telemetry] telemetry function: "+id,
			"[py-telemetry] telemetry platform.start "+id,
			"[py-telemetry] telemetry platform.runtimeDone "+id+" success",
			"[py-telemetry] telemetry platform.report "+id+" success")
	}
	want = append(want,
		`[go-example-extension] registered: {"functionName":"`+fn+`","functionVersion":"$LATEST","handler":"app.handler"}`,
		"[py-telemetry] telemetry platform.initStart init",
		// The idle environment retires after 3 s.
		"[go-example-extension] SHUTDOWN spindown",
		"[py-telemetry] SHUTDOWN spindown")
	ts.waitLogEvents(t, fn, want...)
}

func TestExtensionsAPIRefusals(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	// A function that calls the Extensions API itself (an internal
	// extension registering from the runtime's process) and reports what
	// it was answered.
	const app = `import json, os, threading, urllib.request, urllib.error

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"]


def call(method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(API + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


INIT = {"shutdown": call("POST", "/2020-01-01/extension/register", {"events": ["SHUTDOWN"]}, {"Lambda-Extension-Name": "internal"})[0]}
status, headers, _ = call("POST", "/2020-01-01/extension/register", {"events": []}, {"Lambda-Extension-Name": "internal"})
INIT["register"] = status
INIT["twice"] = call("POST", "/2020-01-01/extension/register", {"events": []}, {"Lambda-Extension-Name": "internal"})[0]
INIT["noid"] = call("GET", "/2020-01-01/extension/event/next")[0]
INIT["badid"] = call("GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": "nope"})[0]
ext_id = headers["Lambda-Extension-Identifier"]
# Registered for no event, it waits in /next for good; init ends once it asks.
threading.Thread(target=call, args=("GET", "/2020-01-01/extension/event/next", None, {"Lambda-Extension-Identifier": ext_id}), daemon=True).start()


def handler(event, context):
    late = call("POST", "/2020-01-01/extension/register", {"events": []}, {"Lambda-Extension-Name": "late"})[0]
    return dict(INIT, late=late)
`
	ts.createFunction(t, "internal-ext", zipFiles(t, map[string]string{"app.py": app}))
	r := ts.invokeOK(t, "internal-ext", `{}`)
	got := r.object(t)
	want := map[string]float64{"shutdown": 403, "register": 200, "twice": 409, "noid": 403, "badid": 403, "late": 403}
	for k, v := range want {
		if num(t, got, k) != v {
			t.Errorf("%s: %v, want %v (all: %s)", k, got[k], v, r.Payload)
		}
	}
}
