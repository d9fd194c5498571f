// Command extension is an external Lambda extension written as the
// go-example-extension of aws-samples/aws-lambda-extensions is: it
// registers under its file name for INVOKE and SHUTDOWN, then loops on
// /event/next, printing each event, until SHUTDOWN. It uses nothing but
// net/http, as that sample's extension client does.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

// nextEventResponse is the event /event/next returns.
type nextEventResponse struct {
	EventType          string `json:"eventType"`
	DeadlineMs         int64  `json:"deadlineMs"`
	RequestID          string `json:"requestId"`
	InvokedFunctionArn string `json:"invokedFunctionArn"`
	ShutdownReason     string `json:"shutdownReason"`
	Tracing            struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"tracing"`
}

func main() {
	name := filepath.Base(os.Args[0])
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2020-01-01/extension"
	prefix := "[" + name + "]"

	body, _ := json.Marshal(map[string]any{"events": []string{"INVOKE", "SHUTDOWN"}})
	req, _ := http.NewRequest(http.MethodPost, base+"/register", bytes.NewReader(body))
	req.Header.Set("Lambda-Extension-Name", name)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(prefix, "register:", err)
		os.Exit(1)
	}
	reg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Println(prefix, "register:", resp.Status, string(reg))
		os.Exit(1)
	}
	id := resp.Header.Get("Lambda-Extension-Identifier")
	fmt.Println(prefix, "registered:", string(reg))

	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/event/next", nil)
		req.Header.Set("Lambda-Extension-Identifier", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(prefix, "next:", err)
			os.Exit(1)
		}
		var ev nextEventResponse
		err = json.NewDecoder(resp.Body).Decode(&ev)
		resp.Body.Close()
		if err != nil {
			fmt.Println(prefix, "next:", resp.Status, err)
			os.Exit(1)
		}
		switch ev.EventType {
		case "INVOKE":
			fmt.Println(prefix, "INVOKE", ev.RequestID, ev.InvokedFunctionArn, ev.DeadlineMs > 0, ev.Tracing.Type)
		case "SHUTDOWN":
			fmt.Println(prefix, "SHUTDOWN", ev.ShutdownReason)
			return
		}
	}
}
