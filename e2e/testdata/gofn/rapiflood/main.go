// Command rapiflood is a test function for the abuse tests: a
// provided.al2023 bootstrap that speaks the Runtime API (2018-06-01) itself
// and, when an event asks, floods its own environment's Runtime API from
// inside the sandbox for a while before it answers.
//
// The event says what to do:
//
//	{"action":"ready"}                 answer {"ready":true} after holding the environment for "holdMs"
//	{"action":"flood","seconds":S,     flood for S seconds with connections that
//	 "idle":N,                         - connect and send nothing
//	 "slowHeaders":N,                  - send half a request's headers
//	 "initErrors":N,                   - POST /init/error announcing 6 MB and sending all but a byte of it
//	 "errors":N,                       - POST this invocation's /error the same way
//	 "streamMB":M}                     and answer with a response streamed on a connection of its own:
//	                                   M MB of JSON whitespace at once, the rest (the flood's figures) at the end
//
// Each flooding connection that the server closes is opened again after a
// short pause, and a connection attempt that times out is retried, until the
// time is up. The answer of a flood reports how many connections were
// attempted, completed and closed by the server, and how many bytes went out.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	address = os.Getenv("AWS_LAMBDA_RUNTIME_API")
	base    = "http://" + address + "/2018-06-01/runtime"
)

type event struct {
	Action      string `json:"action"`
	HoldMs      int    `json:"holdMs"`
	Seconds     int    `json:"seconds"`
	Idle        int    `json:"idle"`
	SlowHeaders int    `json:"slowHeaders"`
	InitErrors  int    `json:"initErrors"`
	Errors      int    `json:"errors"`
	StreamMB    int    `json:"streamMB"`
}

// figures are what a flood did.
type figures struct {
	Attempts     int64 `json:"attempts"`     // connections tried
	Connected    int64 `json:"connected"`    // completed by the kernel
	ClosedByPeer int64 `json:"closedByPeer"` // then closed by the server
	Failed       int64 `json:"failed"`       // attempts that failed (timeout, refused, no file)
	BytesSent    int64 `json:"bytesSent"`
}

const sixMB = 6*1024*1024 + 100

var bigBody = bytes.Repeat([]byte("x"), sixMB-1)

func main() {
	client := &http.Client{Transport: &http.Transport{}}
	for {
		resp, err := client.Get(base + "/invocation/next")
		if err != nil {
			fail("GET /next: " + err.Error())
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fail(fmt.Sprintf("GET /next answered %d: %s", resp.StatusCode, data))
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		var ev event
		_ = json.Unmarshal(data, &ev)
		switch ev.Action {
		case "flood":
			flood(id, ev)
		default:
			time.Sleep(time.Duration(ev.HoldMs) * time.Millisecond)
			post(client, id, strings.NewReader(`{"ready":true}`))
		}
	}
}

func fail(msg string) {
	os.Stderr.WriteString("rapiflood: " + msg + "\n")
	os.Exit(1)
}

func post(client *http.Client, id string, body io.Reader) {
	resp, err := client.Post(base+"/invocation/"+id+"/response", "application/json", body)
	if err != nil {
		fail("POST /response: " + err.Error())
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		fail(fmt.Sprintf("POST /response answered %d", resp.StatusCode))
	}
}

func flood(id string, ev event) {
	// The answer first, on a connection of its own: the server takes this
	// body while the flood runs.
	pr, pw := io.Pipe()
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		post(&http.Client{Transport: &http.Transport{}}, id, pr)
	}()
	pw.Write(bytes.Repeat([]byte(" "), ev.StreamMB<<20))

	var f figures
	stop := time.Now().Add(time.Duration(ev.Seconds) * time.Second)
	var wg sync.WaitGroup
	start := func(n int, prelude func() []byte, body []byte) {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				floodOne(&f, stop, prelude(), body)
			}()
		}
	}
	postHead := func(path string) func() []byte {
		return func() []byte {
			return []byte("POST /2018-06-01/runtime" + path + " HTTP/1.1\r\nHost: " + address +
				"\r\nContent-Type: application/json\r\nLambda-Runtime-Function-Error-Type: Runtime.Flood\r\nContent-Length: " +
				fmt.Sprint(sixMB) + "\r\n\r\n")
		}
	}
	start(ev.Idle, func() []byte { return nil }, nil)
	start(ev.SlowHeaders, func() []byte {
		return []byte("POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: " + address + "\r\nContent-Le")
	}, nil)
	start(ev.InitErrors, postHead("/init/error"), bigBody)
	start(ev.Errors, postHead("/invocation/"+id+"/error"), bigBody)
	wg.Wait()

	data, _ := json.Marshal(map[string]any{
		"attempts": f.Attempts, "connected": f.Connected, "closedByPeer": f.ClosedByPeer,
		"failed": f.Failed, "bytesSent": f.BytesSent,
	})
	pw.Write(data)
	pw.Close()
	<-answered
}

// floodOne keeps one flooding connection open until stop: it connects,
// sends head and body, and holds the connection; when the server closes it
// (or the attempt fails) it starts over after a pause.
func floodOne(f *figures, stop time.Time, head, body []byte) {
	for time.Now().Before(stop) {
		atomic.AddInt64(&f.Attempts, 1)
		c, err := net.DialTimeout("tcp", address, min(3*time.Second, time.Until(stop)))
		if err != nil {
			atomic.AddInt64(&f.Failed, 1)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		atomic.AddInt64(&f.Connected, 1)
		c.SetDeadline(stop)
		for _, part := range [][]byte{head, body} {
			if len(part) > 0 {
				n, _ := c.Write(part)
				atomic.AddInt64(&f.BytesSent, int64(n))
			}
		}
		// Hold it until the server closes it or the time is up.
		_, err = io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			atomic.AddInt64(&f.ClosedByPeer, 1)
		}
		c.Close()
		time.Sleep(200 * time.Millisecond)
	}
}
