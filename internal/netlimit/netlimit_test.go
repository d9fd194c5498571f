package netlimit

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// listen starts a Listener on 127.0.0.1 that accepts into the returned
// channel.
func listen(t *testing.T, limits Limits, answer func(Refusal) []byte, m *ListenerMetrics) (*Listener, <-chan net.Conn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, limits, answer, m)
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return l, accepted
}

// dialFrom connects to l from the loopback address from (127.0.0.0/8 is
// all on lo on Linux).
func dialFrom(t *testing.T, l net.Listener, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answered sends a request line and returns what the server answers
// before closing the connection.
func answered(t *testing.T, c net.Conn) string {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the refusal: %v (got %q)", err, data)
	}
	return string(data)
}

func receiveConn(t *testing.T, accepted <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func TestListenerLimits(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg).Listener("api")
	answer := func(why Refusal) []byte { return []byte("refused " + why.String()) }
	l, accepted := listen(t, Limits{MaxConns: 3, MaxConnsPerAddr: 2}, answer, m)

	a1 := dialFrom(t, l, "127.0.0.1")
	first := receiveConn(t, accepted)
	dialFrom(t, l, "127.0.0.1")
	receiveConn(t, accepted)
	if got := answered(t, dialFrom(t, l, "127.0.0.1")); got != "refused per_address" {
		t.Errorf("third connection from 127.0.0.1 got %q, want the per-address refusal", got)
	}
	dialFrom(t, l, "127.0.0.2")
	receiveConn(t, accepted)
	if got := answered(t, dialFrom(t, l, "127.0.0.3")); got != "refused overall" {
		t.Errorf("fourth connection got %q, want the overall refusal", got)
	}
	if got := value(t, m.open); got != 3 {
		t.Errorf("open connections shown %v, want 3", got)
	}

	// Closing (by the server) frees the slot, of the address as well.
	first.Close()
	a1.Close()
	dialFrom(t, l, "127.0.0.1")
	receiveConn(t, accepted)

	if got := value(t, m.perAddress); got != 1 {
		t.Errorf("per-address refusals counted %v, want 1", got)
	}
	if got := value(t, m.overall); got != 1 {
		t.Errorf("overall refusals counted %v, want 1", got)
	}
	if got := value(t, m.open); got != 3 {
		t.Errorf("open connections shown %v, want 3", got)
	}
}

// TestSilentRefusedClients checks that refused clients that send nothing
// get no answer and are closed: more of them than MaxRefusalsAnswering,
// whose answers wait for a request for at most refusalLinger.
func TestSilentRefusedClients(t *testing.T) {
	l, accepted := listen(t, Limits{MaxConns: 1}, func(Refusal) []byte { return []byte("no") }, nil)
	dialFrom(t, l, "127.0.0.1")
	receiveConn(t, accepted)
	silent := make([]net.Conn, 2*MaxRefusalsAnswering)
	for i := range silent {
		silent[i] = dialFrom(t, l, "127.0.0.1")
	}
	for i, c := range silent {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		data, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("silent connection %d was not closed: %v", i, err)
		}
		if len(data) > 0 {
			t.Fatalf("silent connection %d got %q before sending anything", i, data)
		}
	}
}

func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.2:5000":           "127.0.0.2/32",
		"[::ffff:10.0.0.1]:80":     "10.0.0.1/32",
		"[2001:db8:1:2:3::4]:9000": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::]:1":  "2001:db8:1:2::/64",
	} {
		tcp, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := clientKey(tcp).String(); got != want {
			t.Errorf("clientKey(%s) = %s, want %s", addr, got, want)
		}
	}
	if key := clientKey(&net.UnixAddr{Name: "@x", Net: "unix"}); key.IsValid() {
		t.Errorf("a unix socket address gave key %s", key)
	}
}

func TestBodiesBudget(t *testing.T) {
	m := NewMetrics(nil).Listener("api")
	b := NewBodies(100, MinRate{}, m)
	if !b.Reserve(60) || !b.Reserve(40) {
		t.Fatal("reservations within the budget refused")
	}
	if b.Reserve(1) {
		t.Fatal("a reservation over the budget granted")
	}
	b.Release(40)
	if b.Reserve(41) {
		t.Fatal("a reservation over what is left granted")
	}
	if got := value(t, m.bodyBytes); got != 60 {
		t.Errorf("bytes shown %v, want 60", got)
	}
	if got := value(t, m.throttled); got != 2 {
		t.Errorf("throttles counted %v, want 2", got)
	}
	b.Release(60)
	if !b.Reserve(500) {
		t.Fatal("a body larger than the budget refused on an idle budget")
	}
	if b.Reserve(1) {
		t.Fatal("a reservation granted beside one larger than the budget")
	}
	b.Release(500)
	if b.Used() != 0 {
		t.Fatalf("Used() = %d after every release", b.Used())
	}
	var none *Bodies
	if !none.Reserve(1 << 40) {
		t.Fatal("nil Bodies refused a reservation")
	}
}

func TestMinRateDeadlines(t *testing.T) {
	rate := MinRate{Grace: 10 * time.Second, BytesPerSecond: 100}
	var deadlines []time.Time
	r := NewBodies(0, rate, nil).Reader(strings.NewReader(strings.Repeat("x", 250)), func(d time.Time) error {
		deadlines = append(deadlines, d)
		return nil
	})
	buf := make([]byte, 100)
	for {
		if _, err := r.Read(buf); err == io.EOF {
			break
		}
	}
	start := deadlines[0].Add(-rate.Grace)
	for i, d := range deadlines {
		want := start.Add(rate.Grace + time.Duration(min(i*100, 250))*10*time.Millisecond)
		if !d.Equal(want) {
			t.Errorf("deadline %d is %v after the start, want %v", i, d.Sub(start), want.Sub(start))
		}
	}
	if len(deadlines) != 4 {
		t.Errorf("%d deadlines set for 4 reads", len(deadlines))
	}
	body := strings.NewReader("x")
	if got := NewBodies(0, MinRate{}, nil).Reader(body, nil); got != body {
		t.Error("a zero MinRate wrapped the body")
	}
}

// TestMinRateCutsSlowBody checks on a real connection that a client that
// stops sending is cut.
func TestMinRateCutsSlowBody(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	go func() {
		_, _ = client.Write([]byte("a few bytes, then nothing"))
	}()
	m := NewMetrics(nil).Listener("url")
	r := NewBodies(0, MinRate{Grace: 50 * time.Millisecond, BytesPerSecond: 1000}, m).Reader(server, server.SetReadDeadline)
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(r)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read ended with %v, want a deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a stalled body was never cut")
	}
	if got := value(t, m.slowBodies); got != 1 {
		t.Errorf("slow bodies counted %v, want 1", got)
	}
}

// value reads a gauge or counter.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Gauge != nil {
		return out.Gauge.GetValue()
	}
	return out.Counter.GetValue()
}
