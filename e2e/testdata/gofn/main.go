// Command gofn is a test function for the e2e tests: a provided.al2023
// function built with github.com/aws/aws-lambda-go, run by Lamina as the
// zip's `bootstrap`. Its event says what to do:
//
//	{"action": "echo", "message": "..."}   return what it saw (default)
//	{"action": "error", "message": "..."}  return an error
//	{"action": "panic", "message": "..."}  panic (the runtime then exits)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// count counts the invocations this process has served.
var count int

// envID identifies this process (execution environment).
var envID = func() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

type event struct {
	Action  string `json:"action"`
	Message string `json:"message"`
}

type result struct {
	Message      string `json:"message"`
	Count        int    `json:"count"`
	Env          string `json:"env"`
	RequestID    string `json:"requestId"`
	InvokedARN   string `json:"invokedArn"`
	FunctionName string `json:"functionName"`
	MemoryMB     int    `json:"memoryMB"`
	Version      string `json:"version"`
	LogStream    string `json:"logStream"`
	RemainingMs  int64  `json:"remainingMs"`
	Handler      string `json:"handler"`
}

func handle(ctx context.Context, ev event) (*result, error) {
	count++
	fmt.Printf("gofn got action=%q message=%q\n", ev.Action, ev.Message)
	switch ev.Action {
	case "panic":
		panic("gofn panic: " + ev.Message)
	case "error":
		return nil, errors.New("gofn error: " + ev.Message)
	}
	res := &result{
		Message:      ev.Message,
		Count:        count,
		Env:          envID,
		FunctionName: lambdacontext.FunctionName,
		MemoryMB:     lambdacontext.MemoryLimitInMB,
		Version:      lambdacontext.FunctionVersion,
		LogStream:    lambdacontext.LogStreamName,
		Handler:      os.Getenv("_HANDLER"),
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		res.RequestID = lc.AwsRequestID
		res.InvokedARN = lc.InvokedFunctionArn
	}
	if deadline, ok := ctx.Deadline(); ok {
		res.RemainingMs = time.Until(deadline).Milliseconds()
	}
	return res, nil
}

func main() { lambda.Start(handle) }
