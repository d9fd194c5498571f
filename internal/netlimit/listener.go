// Package netlimit bounds what network clients can make a server hold: open
// connections (overall and per client address), request bodies in memory
// (a byte budget), and the time a slow client may take to send a body (a
// minimum rate). It knows nothing of the APIs behind it; the frontend
// chooses the answers refused clients get.
package netlimit

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits bound the connections of one listener.
type Limits struct {
	// MaxConns bounds the connections open at once; 0 means no bound.
	MaxConns int
	// MaxConnsPerAddr bounds the connections open at once from one client
	// address (for IPv6, one /64 prefix, what one subscriber is given); 0
	// means no bound.
	MaxConnsPerAddr int
}

// Refusal says which limit refused a connection.
type Refusal int

// The limits that refuse connections.
const (
	// PerAddress: the client's address holds MaxConnsPerAddr connections.
	PerAddress Refusal = iota
	// Overall: the listener holds MaxConns connections.
	Overall
)

func (r Refusal) String() string {
	if r == PerAddress {
		return "per_address"
	}
	return "overall"
}

// Bounds of the answers to refused connections: how many are answered at
// once (the rest are closed without an answer), how long each may take,
// and how much of the client's request is read and discarded so that
// closing does not reset the connection under the answer.
const (
	MaxRefusalsAnswering = 64
	refusalLinger        = time.Second
	refusalDrain         = 64 << 10
)

// Listener is a net.Listener that keeps its connections within Limits.
// Accept returns only connections within the limits; it answers the others
// itself, at once, with the response its answer function gives (for HTTP,
// a complete response such as a 503), and closes them.
type Listener struct {
	net.Listener
	limits  Limits
	answer  func(Refusal) []byte
	metrics *ListenerMetrics

	mu     sync.Mutex
	open   int
	byAddr map[netip.Prefix]int

	answering chan struct{} // a slot per refusal being answered
}

// NewListener bounds inner's connections by limits. answer returns the
// bytes sent to a refused client (nil: close without an answer); m counts
// connections (nil: not counted).
func NewListener(inner net.Listener, limits Limits, answer func(Refusal) []byte, m *ListenerMetrics) *Listener {
	return &Listener{
		Listener:  inner,
		limits:    limits,
		answer:    answer,
		metrics:   orUncounted(m),
		byAddr:    map[netip.Prefix]int{},
		answering: make(chan struct{}, MaxRefusalsAnswering),
	}
}

// Accept waits for the next connection within the limits.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		refusal, ok := l.acquire(key)
		if ok {
			l.metrics.open.Inc()
			return &conn{Conn: c, l: l, key: key}, nil
		}
		l.metrics.refused(refusal)
		l.refuse(c, refusal)
	}
}

func (l *Listener) acquire(key netip.Prefix) (Refusal, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits.MaxConns > 0 && l.open >= l.limits.MaxConns {
		return Overall, false
	}
	if l.limits.MaxConnsPerAddr > 0 && key.IsValid() && l.byAddr[key] >= l.limits.MaxConnsPerAddr {
		return PerAddress, false
	}
	l.open++
	if key.IsValid() {
		l.byAddr[key]++
	}
	return 0, true
}

func (l *Listener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key.IsValid() {
		if l.byAddr[key] <= 1 {
			delete(l.byAddr, key)
		} else {
			l.byAddr[key]--
		}
	}
}

// refuse answers a refused connection in the background when a slot is
// free, and closes it at once otherwise.
func (l *Listener) refuse(c net.Conn, why Refusal) {
	if l.answer == nil {
		c.Close()
		return
	}
	select {
	case l.answering <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.answering }()
		answerAndClose(c, l.answer(why))
	}()
}

// answerAndClose waits (briefly) for the start of the client's request,
// sends response, and closes the connection after reading what the client
// sent meanwhile, so that the kernel does not reset the connection before
// the client reads the response.
func answerAndClose(c net.Conn, response []byte) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(refusalLinger))
	buf := make([]byte, 4<<10)
	if _, err := c.Read(buf); err != nil {
		return
	}
	if _, err := c.Write(response); err != nil {
		return
	}
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	_, _ = io.CopyN(io.Discard, c, refusalDrain)
}

// clientKey is the client address a connection counts against: the IP
// address, or for IPv6 its /64 prefix. It is invalid (and not bounded)
// for connections that are not IP.
func clientKey(addr net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// conn gives its slot back when closed.
type conn struct {
	net.Conn
	l    *Listener
	key  netip.Prefix
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.release(c.key)
		c.l.metrics.open.Dec()
	})
	return err
}

// CloseWrite shuts down the writing side, when the connection has one;
// net/http uses it to close a connection without resetting it.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
