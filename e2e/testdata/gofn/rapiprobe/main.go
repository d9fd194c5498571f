// Command rapiprobe is a test function for the e2e tests: a provided.al2023
// bootstrap that speaks the Runtime API (2018-06-01) itself, with no runtime
// client library, and answers each invocation with what it observed: the
// status, headers and body of GET /next, and Lamina's answers to its POSTs.
// What it can only observe after answering (the answer to its response
// POST, to a second POST for the same request) comes in the next
// invocation's result, under "previous".
//
// The event says what to do:
//
//	{}                                          report (default)
//	{"action":"error","errorType":T,"body":B}   POST B to /error with the error type header T
//	{"action":"big","size":N}                   POST N bytes to /response
package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

type posted struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

var base = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"

func post(path, body string, header map[string]string) posted {
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		return posted{Status: -1, Body: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return posted{Status: -1, Body: err.Error()}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return posted{Status: resp.StatusCode, Body: string(data)}
}

func main() {
	var previous map[string]posted
	for {
		resp, err := http.Get(base + "/invocation/next")
		if err != nil {
			os.Stderr.WriteString("rapiprobe: " + err.Error() + "\n")
			os.Exit(1)
		}
		event, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		headers := map[string]string{}
		for k := range resp.Header {
			if strings.HasPrefix(k, "Lambda-Runtime-") || k == "Content-Type" {
				headers[k] = resp.Header.Get(k)
			}
		}
		os.Stdout.WriteString("rapiprobe got " + id + "\n")
		report := map[string]any{
			"nextStatus": resp.StatusCode,
			"headers":    headers,
			"event":      string(event),
			"nowMs":      time.Now().UnixMilli(),
			"previous":   previous,
			// A response for a request that is not in flight.
			"unknownIdPost": post("/invocation/00000000-0000-4000-8000-000000000000/response", "{}", nil),
		}
		var ev struct {
			Action    string `json:"action"`
			ErrorType string `json:"errorType"`
			Body      string `json:"body"`
			Size      int    `json:"size"`
		}
		_ = json.Unmarshal(event, &ev)
		switch ev.Action {
		case "error":
			previous = map[string]posted{"error": post("/invocation/"+id+"/error", ev.Body, map[string]string{"Lambda-Runtime-Function-Error-Type": ev.ErrorType})}
		case "big":
			previous = map[string]posted{"big": post("/invocation/"+id+"/response", strings.Repeat("x", ev.Size), nil)}
		default:
			data, _ := json.Marshal(report)
			first := post("/invocation/"+id+"/response", string(data), nil)
			again := post("/invocation/"+id+"/response", "{}", nil)
			previous = map[string]posted{"response": first, "responseAgain": again}
		}
	}
}
