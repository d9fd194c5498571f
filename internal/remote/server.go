package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lamina-project/lamina/internal/manager"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/semaphore"
)

// Defaults of ServerOptions.
const (
	// DefaultMaxInflight bounds the requests of other nodes a node works
	// on at once.
	DefaultMaxInflight = 1024
	// DefaultMaxInflightBytes bounds the bytes of those requests (their
	// payloads), 256 MB: about 40 of the largest.
	DefaultMaxInflightBytes = 256 << 20
	// DefaultProgress is how often a node tells a caller that an
	// invocation is still running.
	DefaultProgress = time.Second
	// drainPoll is how often Wait looks whether the drain of the requests'
	// subscription has ended.
	drainPoll = 10 * time.Millisecond
)

// Bounds of the requests waiting to be looked at: the subscription hands
// each one over at once, so only a stalled process fills them (NATS then
// drops requests, whose callers give up after their Silence).
const (
	serverPendingMsgs  = 1 << 14
	serverPendingBytes = 512 << 20
)

// ServerOptions tune a Server; the zero value takes the defaults.
type ServerOptions struct {
	// MaxInflight and MaxInflightBytes bound the requests the node works
	// on at once, and their bytes; more are refused (the caller places the
	// invocation elsewhere, or throttles it).
	MaxInflight      int
	MaxInflightBytes int64
	// Progress is how often a running invocation's caller is told that it
	// still runs.
	Progress time.Duration
	// Metrics counts what is served; nil counts nowhere.
	Metrics *Metrics
	Logger  *slog.Logger
}

// Server takes the requests other nodes send to this node's worker.
type Server struct {
	nc     *nats.Conn
	node   string
	worker manager.Worker
	opts   ServerOptions
	log    *slog.Logger
	sub    *nats.Subscription
	bytes  *semaphore.Weighted

	mu       sync.Mutex
	inflight int
	stopping bool
	running  sync.WaitGroup
}

// Serve takes the requests to node's worker on nc and hands them to w.
func Serve(nc *nats.Conn, node string, w manager.Worker, opts ServerOptions) (*Server, error) {
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = DefaultMaxInflight
	}
	if opts.MaxInflightBytes <= 0 {
		opts.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if opts.Progress <= 0 {
		opts.Progress = DefaultProgress
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{nc: nc, node: node, worker: w, opts: opts, log: opts.Logger.With("part", "remote"),
		bytes: semaphore.NewWeighted(opts.MaxInflightBytes)}
	sub, err := nc.Subscribe(subject(node, "*"), s.take)
	if err != nil {
		return nil, fmt.Errorf("remote: subscribe to %s: %w", subject(node, "*"), err)
	}
	if err := sub.SetPendingLimits(serverPendingMsgs, serverPendingBytes); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("remote: %w", err)
	}
	// The subscription must be known to the NATS servers before other
	// nodes learn of this one.
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("remote: %w", err)
	}
	s.sub = sub
	return s, nil
}

// draining reports whether Drain was called.
func (s *Server) draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// take looks at a request as it arrives: it refuses it when the node is
// stopping or has its fill of requests, and otherwise serves it in a
// goroutine of its own. It never blocks.
func (s *Server) take(msg *nats.Msg) {
	if msg.Reply == "" {
		return
	}
	size := int64(len(msg.Data))
	s.mu.Lock()
	switch {
	case s.stopping:
		s.mu.Unlock()
		s.refuse(msg, wireError{Kind: kindUnavailable, Message: "the node is stopping"})
		return
	case s.inflight >= s.opts.MaxInflight || !s.bytes.TryAcquire(size):
		s.mu.Unlock()
		s.refuse(msg, wireError{Kind: kindBusy, Message: fmt.Sprintf("too many requests in flight (at most %d, %d MB)",
			s.opts.MaxInflight, s.opts.MaxInflightBytes>>20)})
		return
	}
	s.inflight++
	s.running.Add(1)
	s.mu.Unlock()
	go func() {
		defer func() {
			s.bytes.Release(size)
			s.mu.Lock()
			s.inflight--
			s.mu.Unlock()
			s.running.Done()
		}()
		s.serve(msg)
	}()
}

// refuse answers a request that is not served.
func (s *Server) refuse(msg *nats.Msg, e wireError) {
	if strings.HasSuffix(msg.Subject, "."+opInvoke) {
		s.opts.Metrics.servedTotal.WithLabelValues("refused").Inc()
	}
	s.replyError(msg, e)
}

// serve answers one request.
func (s *Server) serve(msg *nats.Msg) {
	ctx := context.Background()
	switch op := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]; op {
	case opInvoke:
		s.invoke(ctx, msg)
	case opProvision:
		var p manager.Provision
		if err := json.Unmarshal(msg.Data, &p); err != nil {
			s.replyError(msg, wireError{Kind: kindOther, Message: "unreadable provision: " + err.Error()})
			return
		}
		if err := s.worker.Provision(ctx, p); err != nil {
			s.replyError(msg, errorOf(err))
			return
		}
		s.reply(msg, replyResult, nil)
	case opState:
		st, err := s.worker.State(ctx)
		if err != nil {
			s.replyError(msg, errorOf(err))
			return
		}
		data, _ := json.Marshal(&st)
		s.reply(msg, replyResult, data)
	default:
		s.replyError(msg, wireError{Kind: kindOther, Message: "unknown operation " + op})
	}
}

// invoke runs an invocation on the worker, telling the caller every
// Progress that it still runs, and answers its result.
func (s *Server) invoke(ctx context.Context, msg *nats.Msg) {
	req, err := decodeInvocation(msg.Data)
	if err != nil {
		s.opts.Metrics.servedTotal.WithLabelValues("error").Inc()
		s.replyError(msg, wireError{Kind: kindOther, Message: err.Error()})
		return
	}
	done := make(chan struct{})
	var beats sync.WaitGroup
	beats.Go(func() {
		t := time.NewTicker(s.opts.Progress)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.reply(msg, replyProgress, nil)
			}
		}
	})
	res, err := s.worker.Invoke(ctx, req)
	close(done)
	beats.Wait() // no sign of life after the answer
	if err != nil {
		s.opts.Metrics.servedTotal.WithLabelValues("error").Inc()
		s.replyError(msg, errorOf(err))
		return
	}
	data, err := encodeResult(res)
	if err != nil {
		s.opts.Metrics.servedTotal.WithLabelValues("error").Inc()
		s.replyError(msg, wireError{Kind: kindOther, Message: err.Error()})
		return
	}
	s.opts.Metrics.servedTotal.WithLabelValues("ok").Inc()
	s.reply(msg, replyResult, data)
}

// replyError answers msg with an error.
func (s *Server) replyError(msg *nats.Msg, e wireError) {
	data, _ := json.Marshal(&e)
	s.reply(msg, replyError, data)
}

// reply answers msg with data of a kind.
func (s *Server) reply(msg *nats.Msg, kind string, data []byte) {
	out := &nats.Msg{Subject: msg.Reply, Header: nats.Header{replyHeader: []string{kind}}, Data: data}
	if err := s.nc.PublishMsg(out); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("cannot answer another node", "subject", msg.Subject, "kind", kind, "err", err)
	}
}

// Drain stops taking requests: the ones already delivered to this node are
// refused as unavailable (their callers place them elsewhere), and later
// ones find no responder. Requests being served go on; Wait waits for them.
func (s *Server) Drain() {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	if err := s.sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("cannot stop taking requests of other nodes", "err", err)
	}
}

// Wait waits until the requests being served have been answered, or ctx
// ends. After Drain, it first waits until every request that had reached
// the node was taken (served or refused), so none is left unanswered.
func (s *Server) Wait(ctx context.Context) error {
	for s.draining() && s.sub.IsValid() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(drainPoll):
		}
	}
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
