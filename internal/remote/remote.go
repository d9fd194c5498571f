// Package remote carries the manager.Worker contract between the nodes of a
// cluster over NATS request-reply: a Client gives the manager a Worker for
// every other node, and each node's Server hands the requests that come to
// its subjects (cluster.NodeSubject(node)+".worker.invoke", ".provision",
// ".state") to its own worker.
//
// The wire: an invocation is a frame — the length of a JSON head (the
// lamina.Invocation without its payload), the head, the payload's bytes as
// they are — so that a 6 MB payload and a 6 MB response each fit one NATS
// message (Lamina's NATS servers take 8 MB). Replies say what they are in
// the Lamina-Reply header: a result (the same frame for a
// lamina.InvocationResult), an error (JSON, of the kinds manager.Worker
// names, given back as they were), or a sign of life, which a node sends
// every second while an invocation runs. A caller that hears nothing for
// Silence, or gets no result by the invocation's deadline, gives up with
// manager.ErrWorkerLost: the invocation may have run. A request no node
// listens for (NATS answers "no responders") or that a node refuses before
// starting it (stopping, too many requests in flight) is
// manager.ErrWorkerUnavailable, or manager.ErrNoMemory when the node is
// full: it did not run, and the manager places it elsewhere.
package remote

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/cluster"
	"github.com/lamina-project/lamina/internal/manager"
	"github.com/lamina-project/lamina/internal/store"
)

// Operations, the last token of a request's subject.
const (
	opInvoke    = "invoke"
	opProvision = "provision"
	opState     = "state"
)

// subject is where a node's worker takes op.
func subject(node, op string) string { return cluster.NodeSubject(node) + ".worker." + op }

// replyHeader says what a reply is; its values follow.
const (
	replyHeader   = "Lamina-Reply"
	replyResult   = "result"
	replyError    = "error"
	replyProgress = "progress"
)

// maxHead bounds the JSON head of a frame: a function's configuration,
// with its environment variables and layers, is far smaller.
const maxHead = 1 << 20

// frame encodes head as JSON and appends body: a 4-byte big-endian length
// of the JSON, the JSON, the body.
func frame(head any, body []byte) ([]byte, error) {
	h, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4, 4+len(h)+len(body))
	binary.BigEndian.PutUint32(out, uint32(len(h)))
	out = append(out, h...)
	return append(out, body...), nil
}

// unframe decodes a frame's head into head and returns its body (a slice
// of data).
func unframe(data []byte, head any) ([]byte, error) {
	if len(data) < 4 {
		return nil, errors.New("remote: short frame")
	}
	n := binary.BigEndian.Uint32(data)
	if n > maxHead || int(n) > len(data)-4 {
		return nil, errors.New("remote: malformed frame")
	}
	if err := json.Unmarshal(data[4:4+n], head); err != nil {
		return nil, fmt.Errorf("remote: frame head: %w", err)
	}
	return data[4+n:], nil
}

// encodeInvocation frames an invocation, its payload as the body.
func encodeInvocation(req *lamina.Invocation) ([]byte, error) {
	head := *req
	head.Payload = nil
	return frame(&head, req.Payload)
}

func decodeInvocation(data []byte) (*lamina.Invocation, error) {
	req := new(lamina.Invocation)
	body, err := unframe(data, req)
	if err != nil {
		return nil, err
	}
	if req.Function == nil {
		return nil, errors.New("remote: invocation without a function")
	}
	req.Payload = body
	return req, nil
}

// encodeResult frames a result, its payload as the body.
func encodeResult(res *lamina.InvocationResult) ([]byte, error) {
	head := *res
	head.Payload = nil
	return frame(&head, res.Payload)
}

func decodeResult(data []byte) (*lamina.InvocationResult, error) {
	res := new(lamina.InvocationResult)
	body, err := unframe(data, res)
	if err != nil {
		return nil, err
	}
	res.Payload = body
	return res, nil
}

// Kinds of errors on the wire.
const (
	kindNoMemory    = "no-memory"   // manager.ErrNoMemory
	kindBusy        = "busy"        // too many requests in flight: a node without room
	kindUnavailable = "unavailable" // manager.ErrWorkerUnavailable: the node is stopping
	kindStore       = "store"       // store.ErrUnavailable: the node's store cannot be reached
	kindLamina      = "lamina"      // a *lamina.Error
	kindOther       = "other"       // anything else
)

// wireError is an error as it crosses the wire.
type wireError struct {
	Kind    string
	Message string        `json:",omitempty"`
	Error   *lamina.Error `json:",omitempty"`
}

// errorOf is err on the wire.
func errorOf(err error) wireError {
	var le *lamina.Error
	switch {
	case errors.Is(err, manager.ErrNoMemory):
		return wireError{Kind: kindNoMemory, Message: err.Error()}
	case errors.Is(err, manager.ErrWorkerUnavailable):
		return wireError{Kind: kindUnavailable, Message: err.Error()}
	case errors.As(err, &le):
		return wireError{Kind: kindLamina, Error: le}
	case errors.Is(err, store.ErrUnavailable):
		return wireError{Kind: kindStore, Message: err.Error()}
	}
	return wireError{Kind: kindOther, Message: err.Error()}
}

// err is the error a wire error from node stands for.
func (e wireError) err(node string) error {
	switch e.Kind {
	case kindNoMemory:
		return fmt.Errorf("node %s: %w", node, manager.ErrNoMemory)
	case kindBusy:
		return fmt.Errorf("node %s: %w (%s)", node, manager.ErrNoMemory, e.Message)
	case kindUnavailable:
		return fmt.Errorf("%w: node %s: %s", manager.ErrWorkerUnavailable, node, e.Message)
	case kindStore:
		return fmt.Errorf("node %s: %w: %s", node, store.ErrUnavailable, e.Message)
	case kindLamina:
		if e.Error != nil {
			return e.Error
		}
	}
	return fmt.Errorf("node %s: %s", node, e.Message)
}
