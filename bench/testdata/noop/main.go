// Command noop is the no-op Go function of the benchmarks: an aws-lambda-go
// handler that ignores its event and returns null. It is built as a
// provided.al2023 bootstrap (CGO_ENABLED=0, -tags lambda.norpc) by the
// benchmarks themselves.
package main

import "github.com/aws/aws-lambda-go/lambda"

func main() {
	lambda.Start(func() {})
}
