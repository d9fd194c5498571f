package lamina

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Trace headers and recursive loop detection.
//
// Every invocation carries an X-Ray trace header (X-Amzn-Trace-Id,
// "Root=…;Parent=…;Sampled=…"), which the runtime puts in _X_AMZN_TRACE_ID
// and the SDKs send with each call the function makes. As Lambda does,
// Lamina adds a Lineage field to the header of an invocation that an event
// source (an SQS mapping, an SNS subscription, an S3 notification) makes:
// "Lineage=<hash>:<count>", the hash naming the function and the count
// how many times in a row the event has come back to it. The services keep
// the header with what the function sends (SQS's AWSTraceHeader, an SNS
// publish, an S3 object), so the next invocation it causes counts one
// more; past MaxRecursion the event is dropped unless the function's
// RecursiveLoop is Allow.

// MaxRecursion is how many times in a row an event may come back to the
// function that sent it before Lamina stops the loop, as Lambda does.
const MaxRecursion = 16

// Values of a function's RecursiveLoop setting.
const (
	RecursiveLoopAllow     = "Allow"
	RecursiveLoopTerminate = "Terminate"
)

// NewTraceID returns an X-Ray trace header for an invocation that came
// without one: "Root=1-<epoch hex>-<24 hex>;Parent=<16 hex>;Sampled=0".
func NewTraceID() string {
	var b [20]byte
	rand.Read(b[:])
	epoch := strconv.FormatInt(time.Now().Unix(), 16)
	return "Root=1-" + epoch + "-" + hex.EncodeToString(b[:12]) + ";Parent=" + hex.EncodeToString(b[12:]) + ";Sampled=0"
}

// LineageHash is the hash that names a function in the Lineage field of
// trace headers.
func LineageHash(functionName string) string {
	sum := sha256.Sum256([]byte(functionName))
	return hex.EncodeToString(sum[:4])
}

// Lineage reads the Lineage field of a trace header: the hash of the
// function and the count; ok is false when there is none or it is not
// well formed.
func Lineage(trace string) (hash string, count int, ok bool) {
	for field := range strings.SplitSeq(trace, ";") {
		value, found := strings.CutPrefix(strings.TrimSpace(field), "Lineage=")
		if !found {
			continue
		}
		hash, n, found := strings.Cut(value, ":")
		count, err := strconv.Atoi(n)
		if !found || hash == "" || err != nil || count < 0 {
			return "", 0, false
		}
		return hash, count, true
	}
	return "", 0, false
}

// Recursion is how many times in a row an event with trace header trace
// has come to the function whose LineageHash is hash, counting the
// invocation it is about to cause.
func Recursion(trace, hash string) int {
	if h, n, ok := Lineage(trace); ok && h == hash {
		return n + 1
	}
	return 1
}

// WithLineage returns trace (a new one when it is empty) with its Lineage
// field set to hash and count.
func WithLineage(trace, hash string, count int) string {
	if trace == "" {
		trace = NewTraceID()
	}
	var fields []string
	for field := range strings.SplitSeq(trace, ";") {
		if field != "" && !strings.HasPrefix(strings.TrimSpace(field), "Lineage=") {
			fields = append(fields, field)
		}
	}
	return strings.Join(append(fields, "Lineage="+hash+":"+strconv.Itoa(count)), ";")
}
