package server

import (
	"context"
	"net"
	"sync"
)

// inProcess is a listener whose connections are in-memory pipes: the node's
// own clients of its API (the deploy engine's) reach the API through it
// without a socket, and so without the API listener's connection limits.
type inProcess struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newInProcess() *inProcess {
	return &inProcess{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Dial returns a new connection to the listener.
func (l *inProcess) Dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Accept waits for the next connection.
func (l *inProcess) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops the listener.
func (l *inProcess) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the listener's address.
func (l *inProcess) Addr() net.Addr { return inProcessAddr{} }

type inProcessAddr struct{}

func (inProcessAddr) Network() string { return "pipe" }
func (inProcessAddr) String() string  { return "in-process" }
