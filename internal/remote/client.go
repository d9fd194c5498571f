package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/manager"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of ClientOptions.
const (
	DefaultSilence        = 5 * time.Second
	DefaultInitTimeout    = 10 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	// deadlineMargin is added to an invocation's own bounds for what
	// precedes its init: fetching and unpacking code, making a sandbox.
	deadlineMargin = time.Minute
)

// Bounds of the replies waiting for the callers: replies are handed over
// at once, so only a stalled process fills them.
const (
	inboxPendingMsgs  = 1 << 16
	inboxPendingBytes = 512 << 20
)

// ClientOptions tune a Client; the zero value takes the defaults.
type ClientOptions struct {
	// Silence is how long a request may go without a sign of life from its
	// node before it is given up (manager.ErrWorkerLost).
	Silence time.Duration
	// InitTimeout is the workers' init limit: an invocation's deadline is
	// twice its function's timeout (an init retried within it, and the
	// invoke) plus InitTimeout and a margin.
	InitTimeout time.Duration
	// RequestTimeout bounds Provision and State.
	RequestTimeout time.Duration
	// Metrics counts what is sent; nil counts nowhere.
	Metrics *Metrics
}

// Client sends the requests of this node's manager to other nodes' workers
// over one NATS connection. It is safe for concurrent use.
type Client struct {
	nc    *nats.Conn
	opts  ClientOptions
	inbox string // replies come to inbox.<token>
	sub   *nats.Subscription

	mu    sync.Mutex
	calls map[string]*call
	next  uint64
}

// call is one request waiting for its reply.
type call struct {
	reply chan *nats.Msg // the final reply
	heard atomic.Int64   // unix nanoseconds of the last sign of life
}

// NewClient subscribes to its own inbox on nc. Close undoes it.
func NewClient(nc *nats.Conn, opts ClientOptions) (*Client, error) {
	if opts.Silence <= 0 {
		opts.Silence = DefaultSilence
	}
	if opts.InitTimeout <= 0 {
		opts.InitTimeout = DefaultInitTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	c := &Client{nc: nc, opts: opts, inbox: nc.NewInbox(), calls: map[string]*call{}}
	sub, err := nc.Subscribe(c.inbox+".*", c.replied)
	if err != nil {
		return nil, fmt.Errorf("remote: subscribe to replies: %w", err)
	}
	if err := sub.SetPendingLimits(inboxPendingMsgs, inboxPendingBytes); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("remote: %w", err)
	}
	c.sub = sub
	return c, nil
}

// Close stops taking replies; requests still waiting end when their
// contexts or deadlines do.
func (c *Client) Close() { _ = c.sub.Unsubscribe() }

// replied hands a reply to its call: a sign of life is noted, the final
// reply passed on.
func (c *Client) replied(msg *nats.Msg) {
	token := msg.Subject[len(c.inbox)+1:]
	c.mu.Lock()
	cl := c.calls[token]
	c.mu.Unlock()
	if cl == nil {
		return // its caller gave up
	}
	cl.heard.Store(time.Now().UnixNano())
	if msg.Header.Get(replyHeader) == replyProgress {
		return
	}
	select {
	case cl.reply <- msg:
	default: // a second final reply cannot be; ignore it
	}
}

// request sends data to node's subject and waits for the final reply: until
// ctx ends, the node has given no sign of life for Silence, or limit has
// passed.
func (c *Client) request(ctx context.Context, node, subject string, data []byte, limit time.Duration) (*nats.Msg, error) {
	cl := &call{reply: make(chan *nats.Msg, 1)}
	start := time.Now()
	cl.heard.Store(start.UnixNano())
	c.mu.Lock()
	c.next++
	token := strconv.FormatUint(c.next, 36)
	c.calls[token] = cl
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.calls, token)
		c.mu.Unlock()
	}()
	if err := c.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: c.inbox + "." + token, Data: data}); err != nil {
		return nil, fmt.Errorf("%w: node %s: %v", manager.ErrWorkerUnavailable, node, err)
	}
	check := time.NewTicker(min(c.opts.Silence/5, limit))
	defer check.Stop()
	deadline := start.Add(limit)
	for {
		select {
		case msg := <-cl.reply:
			if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
				return nil, fmt.Errorf("%w: node %s does not answer (no responders)", manager.ErrWorkerUnavailable, node)
			}
			return msg, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case now := <-check.C:
			if quiet := now.Sub(time.Unix(0, cl.heard.Load())); quiet > c.opts.Silence {
				return nil, fmt.Errorf("%w: node %s gave no sign of life for %v", manager.ErrWorkerLost, node, quiet.Round(time.Millisecond))
			}
			if now.After(deadline) {
				return nil, fmt.Errorf("%w: node %s did not answer within %v", manager.ErrWorkerLost, node, limit)
			}
		}
	}
}

// Worker returns the worker of node.
func (c *Client) Worker(node string) manager.Worker { return &worker{c: c, node: node} }

// worker is another node's worker, through the client.
type worker struct {
	c    *Client
	node string
}

// Invoke sends the invocation to the node and returns its result, as
// manager.Worker promises, or an error of the node's or of the way there
// (see the package's doc).
func (w *worker) Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error) {
	data, err := encodeInvocation(req)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(req.Function.Configuration.Timeout) * time.Second
	msg, err := w.c.request(ctx, w.node, subject(w.node, opInvoke), data, 2*timeout+w.c.opts.InitTimeout+deadlineMargin)
	if err != nil {
		w.c.opts.Metrics.sent(w.node, err)
		return nil, err
	}
	if msg.Header.Get(replyHeader) != replyResult {
		err = replyErr(w.node, msg)
		w.c.opts.Metrics.sent(w.node, err)
		return nil, err
	}
	res, err := decodeResult(msg.Data)
	w.c.opts.Metrics.sent(w.node, err)
	return res, err
}

// Provision sends p to the node.
func (w *worker) Provision(ctx context.Context, p manager.Provision) error {
	data, err := json.Marshal(&p)
	if err != nil {
		return err
	}
	msg, err := w.c.request(ctx, w.node, subject(w.node, opProvision), data, w.c.opts.RequestTimeout)
	if err != nil {
		return err
	}
	if msg.Header.Get(replyHeader) != replyResult {
		return replyErr(w.node, msg)
	}
	return nil
}

// State asks the node for its worker's state.
func (w *worker) State(ctx context.Context) (manager.WorkerState, error) {
	var st manager.WorkerState
	msg, err := w.c.request(ctx, w.node, subject(w.node, opState), nil, w.c.opts.RequestTimeout)
	if err != nil {
		return st, err
	}
	if msg.Header.Get(replyHeader) != replyResult {
		return st, replyErr(w.node, msg)
	}
	if err := json.Unmarshal(msg.Data, &st); err != nil {
		return st, fmt.Errorf("remote: state of node %s: %w", w.node, err)
	}
	return st, nil
}

// replyErr is the error a reply that is not a result carries.
func replyErr(node string, msg *nats.Msg) error {
	if msg.Header.Get(replyHeader) != replyError {
		return fmt.Errorf("remote: node %s answered %q", node, msg.Header.Get(replyHeader))
	}
	var e wireError
	if err := json.Unmarshal(msg.Data, &e); err != nil {
		return fmt.Errorf("remote: unreadable error from node %s: %w", node, err)
	}
	return e.err(node)
}

// Metrics count the requests of the remote workers.
type Metrics struct {
	sentTotal   *prometheus.CounterVec
	servedTotal *prometheus.CounterVec
}

// NewMetrics creates the counters and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sentTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_remote_invocations_sent_total",
			Help: "Invocations this node's manager placed on another node, by that node (target) and outcome (ok, no-room, unavailable, lost, error).",
		}, []string{"target", "outcome"}),
		servedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_remote_invocations_served_total",
			Help: "Invocations other nodes placed on this node's worker, by outcome (ok, refused, error).",
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.sentTotal, m.servedTotal)
	}
	return m
}

// sent counts an invocation sent to node that ended with err.
func (m *Metrics) sent(node string, err error) {
	m.sentTotal.WithLabelValues(node, outcomeOf(err)).Inc()
}

// outcomeOf names how a remote invocation ended.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, manager.ErrNoMemory):
		return "no-room"
	case errors.Is(err, manager.ErrWorkerUnavailable):
		return "unavailable"
	case errors.Is(err, manager.ErrWorkerLost):
		return "lost"
	}
	return "error"
}
