//go:build linux

package e2e

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lamina-project/lamina/internal/sandbox/hosttest"
)

// Functions' outbound network (--function-network and friends). Each test
// builds its own "internet": a network namespace with a veth to the host
// that holds a web server on a documentation address (198.51.100.x), a
// private address (10.216.x.2) and the cloud metadata address
// 169.254.169.254, all serving HTTP on port 8080, and a DNS server on the
// host's loopback that knows web.lamina.test. The server's environments
// reach that namespace through policy routing that applies only to traffic
// from the server's subnet and ends in an unreachable default route: nothing
// these tests' functions send can leave this machine, and the host's own
// traffic is not rerouted.

// netApp is the functions of these tests. probe tries each target of its
// event (an HTTP GET for a "url", a TCP connect for a "host" and "port") and
// says "ok …" or "error …" for each; burst asks for n connections at once to
// one host and port and counts those opened within a window of seconds; peer listens on TCP port 7000 of its
// environment and says at which address.
const netApp = `
import errno, socket, threading, urllib.request

def describe(e):
    reason = getattr(e, "reason", e)
    if isinstance(reason, OSError) and reason.errno:
        return errno.errorcode.get(reason.errno, str(reason.errno))
    return repr(reason)

def probe(event, context):
    out = {}
    for name, t in event["targets"].items():
        if "url" in t:
            try:
                out[name] = "ok " + urllib.request.urlopen(t["url"], timeout=5).read().decode()
            except Exception as e:
                out[name] = "error " + describe(e)
        else:
            s = socket.socket()
            s.settimeout(5)
            code = s.connect_ex((t["host"], t["port"]))
            s.close()
            out[name] = "ok" if code == 0 else "error " + errno.errorcode.get(code, str(code))
    out["interfaces"] = " ".join(sorted(n for _, n in socket.if_nameindex()))
    return out

def burst(event, context):
    import select, time
    out = {"ok": 0, "errors": {}}
    socks = {}
    start = time.monotonic()
    for _ in range(event["n"]):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((event["host"], event["port"]))
        socks[s.fileno()] = s
    poller = select.poll()
    for fd in socks:
        poller.register(fd, select.POLLOUT)
    while True:
        left = start + event["window"] - time.monotonic()
        if left <= 0:
            break
        for fd, _ in poller.poll(left * 1000):
            poller.unregister(fd)
            code = socks[fd].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code == 0:
                out["ok"] += 1
            else:
                name = errno.errorcode.get(code, str(code))
                out["errors"][name] = out["errors"].get(name, 0) + 1
    out["seconds"] = time.monotonic() - start
    for s in socks.values():
        s.close()
    return out

listener = None

def serve():
    while True:
        c, _ = listener.accept()
        c.sendall(b"peer")
        c.close()

def peer(event, context):
    global listener
    if listener is None:
        listener = socket.socket()
        listener.bind(("0.0.0.0", 7000))
        listener.listen(16)
        threading.Thread(target=serve, daemon=True).start()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("192.0.2.1", 9))  # sends nothing: picks the source address
    addr = s.getsockname()[0]
    s.close()
    c = socket.socket()
    c.settimeout(5)
    own = c.connect_ex((addr, 7000))
    c.close()
    return {"addr": addr, "self": own}
`

// testInternet is one test's "internet" (see the top of this file).
type testInternet struct {
	hostIf   string     // the host's end of the veth
	hostAddr netip.Addr // the host's address on it: what leaves is masqueraded to it
	web      netip.Addr // the web server's address
	private  netip.Addr // a private address of the namespace
	subnet   netip.Prefix
	gateway  netip.Addr
	resolver netip.AddrPort // the test's DNS server
}

// metadataAddr is the cloud metadata address, which the test namespace also
// holds.
var metadataAddr = netip.MustParseAddr("169.254.169.254")

// testInternetSlots hands out the slot numbers of the tests' internets, so
// that parallel tests never share addresses, subnets or routing tables.
var testInternetSlots struct {
	sync.Mutex
	next int
}

// newTestInternet builds a test's internet and its routing, and removes
// everything when the test ends. Functions of a server started with
// --function-network-subnet ti.subnet reach it.
func newTestInternet(t *testing.T) *testInternet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the function network needs root (and the namespace sandbox)")
	}
	testInternetSlots.Lock()
	if testInternetSlots.next == 0 {
		testInternetSlots.next = rand.IntN(64)
	}
	first := testInternetSlots.next
	testInternetSlots.next++
	testInternetSlots.Unlock()

	ns := newNetns(t)
	// A veth name taken by another test binary means its slot is taken too.
	var k int
	var ti *testInternet
	for attempt := range 64 {
		k = (first + attempt) % 64
		ti = &testInternet{
			hostIf:   fmt.Sprintf("lmte-%02d", k),
			hostAddr: netip.AddrFrom4([4]byte{198, 51, 100, byte(4*k + 1)}),
			web:      netip.AddrFrom4([4]byte{198, 51, 100, byte(4*k + 2)}),
			private:  netip.AddrFrom4([4]byte{10, 216, byte(64 + k), 2}),
			subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 216, byte(k), 0}), 24),
			gateway:  netip.AddrFrom4([4]byte{10, 216, byte(k), 1}),
		}
		err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ti.hostIf}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))})
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || attempt == 63 {
			t.Fatalf("veth %s: %v", ti.hostIf, err)
		}
	}
	host, err := netlink.LinkByName(ti.hostIf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(host) }) // takes the namespace's end along
	must(t, netlink.AddrAdd(host, addr(ti.hostAddr, 30)))
	must(t, netlink.LinkSetUp(host))

	// The namespace: the web server's, the private and the metadata address.
	inside, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer inside.Close()
	lo, _ := inside.LinkByName("lo")
	must(t, inside.LinkSetUp(lo))
	eth, err := inside.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	must(t, inside.AddrAdd(eth, addr(ti.web, 30)))
	must(t, inside.AddrAdd(eth, addr(ti.private, 32)))
	must(t, inside.AddrAdd(eth, addr(metadataAddr, 32)))
	must(t, inside.LinkSetUp(eth))
	must(t, inside.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: ti.hostAddr.AsSlice()}))

	// Routing for what the server's environments send through the host (in
	// from its bridge, from its subnet): to the test's addresses through the
	// veth, to anything else nowhere. The host's own traffic, and what it
	// sends from the gateway's address, keeps the main table.
	table := 0x4c00 + k
	for _, dst := range []netip.Prefix{netip.PrefixFrom(ti.hostAddr, 30).Masked(), netip.PrefixFrom(ti.private, 32), netip.PrefixFrom(metadataAddr, 32)} {
		must(t, netlink.RouteAdd(&netlink.Route{LinkIndex: host.Attrs().Index, Dst: ipNet(dst), Table: table, Scope: netlink.SCOPE_LINK}))
	}
	unreachable := &netlink.Route{Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), Table: table, Type: unix.RTN_UNREACHABLE}
	must(t, netlink.RouteAdd(unreachable))
	t.Cleanup(func() { netlink.RouteDel(unreachable) })
	fromEnvironments := netlink.NewRule()
	fromEnvironments.Src, fromEnvironments.IifName = ipNet(ti.subnet), ti.bridge()
	fromEnvironments.Table, fromEnvironments.Priority = table, 1000+k
	must(t, netlink.RuleAdd(fromEnvironments))
	t.Cleanup(func() { netlink.RuleDel(fromEnvironments) })

	// The web server, on port 8080 of every address of the namespace.
	ln := listenInNetns(t, ns, "tcp4", "0.0.0.0:8080")
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		fmt.Fprintf(w, "%s says hello to %s", local, r.RemoteAddr)
	}), ReadHeaderTimeout: 10 * time.Second}
	go web.Serve(ln)
	t.Cleanup(func() { web.Close() })

	ti.resolver = hosttest.DNS(t, "web.lamina.test", ti.web)
	return ti
}

// bridge is the name of the bridge of a server with the test's subnet
// (docs/sandbox.md: lmnb- and the subnet's address in hex).
func (ti *testInternet) bridge() string {
	network := ti.subnet.Addr().As4()
	return fmt.Sprintf("lmnb-%08x", binary.BigEndian.Uint32(network[:]))
}

// newNetns makes a network namespace, closed when the test ends.
func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	onOtherThread(t, func() (err error) {
		ns, err = netns.New() // moves the thread into it
		return err
	})
	t.Cleanup(func() { ns.Close() })
	return ns
}

// listenInNetns opens a listener in namespace ns.
func listenInNetns(t *testing.T, ns netns.NsHandle, network, address string) net.Listener {
	t.Helper()
	var ln net.Listener
	onOtherThread(t, func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	t.Cleanup(func() { ln.Close() })
	return ln
}

// onOtherThread runs do on a thread of its own, which do may move to
// another network namespace, and moves the thread back afterwards (a thread
// that cannot go back stays locked, and Go discards it). It fails the test
// if do fails.
func onOtherThread(t *testing.T, do func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer home.Close()
		err = do()
		if netns.Set(home) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func addr(a netip.Addr, bits int) *netlink.Addr {
	return &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(a, bits))}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// networkServer starts a server whose functions have the test internet's
// subnet and resolver, with its API, URL and NATS ports open on every
// address of the host (so that an environment's failure to reach them is
// the policy's doing), and returns it with those ports.
func networkServer(t *testing.T, ti *testInternet, args ...string) (ts *testServer, ports map[string]int) {
	t.Helper()
	ports = map[string]int{"api": freePort(t), "urls": freePort(t), "nats": freePort(t)}
	ts = startServer(t, withPort(ports["api"]), withArgs(append([]string{
		"--listen", "0.0.0.0:" + strconv.Itoa(ports["api"]),
		"--url-listen", "0.0.0.0:" + strconv.Itoa(ports["urls"]),
		"--nats-listen", "0.0.0.0:" + strconv.Itoa(ports["nats"]),
		"--function-network-subnet", ti.subnet.String(),
		"--function-network-dns", ti.resolver.String(),
	}, args...)...))
	code := zipFiles(t, map[string]string{"app.py": netApp})
	for _, fn := range []string{"probe", "peer", "burst"} {
		ts.createFunction(t, fn, code, withTimeout(60), func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app." + fn) })
	}
	return ts, ports
}

// probe has the probe function try targets and returns what it saw.
func probe(t *testing.T, ts *testServer, targets map[string]any) map[string]string {
	t.Helper()
	event, _ := json.Marshal(map[string]any{"targets": targets})
	res := ts.invokeOK(t, "probe", string(event))
	var out map[string]string
	if err := json.Unmarshal(res.Payload, &out); err != nil {
		t.Fatalf("probe's answer %s: %v", res.Payload, err)
	}
	for name, result := range out {
		t.Logf("%s: %s", name, result)
	}
	return out
}

// hostTargets are the server's own ports and a listener of the test on every
// address of the host (SSH, say), each on the gateway address and on the
// host's address of another interface.
func hostTargets(t *testing.T, ti *testInternet, ports map[string]int) map[string]any {
	t.Helper()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ports["a host service"] = ln.Addr().(*net.TCPAddr).Port
	targets := map[string]any{}
	for name, port := range ports {
		// They are there for the host, on the gateway's address too.
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(ti.gateway, uint16(port)).String(), 5*time.Second)
		if err != nil {
			t.Fatalf("%s is not open on the gateway address for the host: %v", name, err)
		}
		c.Close()
		targets[name+" on the gateway"] = map[string]any{"host": ti.gateway.String(), "port": port}
		targets[name+" on the host's other address"] = map[string]any{"host": ti.hostAddr.String(), "port": port}
	}
	return targets
}

// peerAddress starts the peer function's listener and returns its
// environment's address.
func peerAddress(t *testing.T, ts *testServer, subnet netip.Prefix) string {
	t.Helper()
	res := ts.invokeOK(t, "peer", "{}")
	var peer struct {
		Addr string `json:"addr"`
		Self int    `json:"self"`
	}
	if err := json.Unmarshal(res.Payload, &peer); err != nil {
		t.Fatal(err)
	}
	if a, err := netip.ParseAddr(peer.Addr); err != nil || !subnet.Contains(a) {
		t.Fatalf("the peer's address %q is not in %s", peer.Addr, subnet)
	}
	if peer.Self != 0 {
		t.Fatalf("the peer cannot reach its own listener: errno %d", peer.Self)
	}
	return peer.Addr
}

func TestFunctionNetworkInternet(t *testing.T) {
	t.Parallel()
	ti := newTestInternet(t)
	ts, ports := networkServer(t, ti, "--function-network", "internet", "--function-network-allow", ti.web.String())
	webURL := fmt.Sprintf("http://%s:8080/", ti.web)
	targets := hostTargets(t, ti, ports)
	targets["web by name"] = map[string]any{"url": "http://web.lamina.test:8080/"}
	targets["web"] = map[string]any{"url": webURL}
	targets["private"] = map[string]any{"url": fmt.Sprintf("http://%s:8080/", ti.private)}
	targets["metadata"] = map[string]any{"url": fmt.Sprintf("http://%s:8080/", metadataAddr)}
	targets["another environment"] = map[string]any{"host": peerAddress(t, ts, ti.subnet), "port": 7000}
	got := probe(t, ts, targets)

	for _, name := range []string{"web", "web by name"} {
		// Masqueraded: the web server sees the host's address.
		want := fmt.Sprintf("ok %s:8080 says hello to %s:", ti.web, ti.hostAddr)
		if !strings.HasPrefix(got[name], want) {
			t.Errorf("%s: %q, want %q…", name, got[name], want)
		}
	}
	for name := range targets {
		if name == "web" || name == "web by name" {
			continue
		}
		if !strings.HasPrefix(got[name], "error") {
			t.Errorf("%s: %q, want it unreachable", name, got[name])
		}
	}
	if got["interfaces"] != "eth0 lo" {
		t.Errorf("interfaces %q, want eth0 and lo", got["interfaces"])
	}

	// An environment opens at most 250 connections a second, 500 at once:
	// within T seconds of asking for 900, at most 500 + 250 T are open, and
	// the rest are refused.
	res := ts.invokeOK(t, "burst", fmt.Sprintf(`{"host": %q, "port": 8080, "n": 900, "window": 0.5}`, ti.web))
	var burst struct {
		OK      int            `json:"ok"`
		Errors  map[string]int `json:"errors"`
		Seconds float64        `json:"seconds"`
	}
	if err := json.Unmarshal(res.Payload, &burst); err != nil {
		t.Fatal(err)
	}
	t.Logf("900 connections asked for at once: %d open and %v failed after %.3f s", burst.OK, burst.Errors, burst.Seconds)
	if limit := 500 + 250*burst.Seconds; float64(burst.OK) > limit {
		t.Errorf("%d connections open after %.3f s, more than the limit allows (%.0f)", burst.OK, burst.Seconds, limit)
	}
	for errno := range burst.Errors {
		if errno != "ECONNREFUSED" {
			t.Errorf("connections failed with %s: %v", errno, burst.Errors)
		}
	}
}

func TestFunctionNetworkAllowlist(t *testing.T) {
	t.Parallel()
	ti := newTestInternet(t)
	// The private and metadata addresses that internet mode refuses are
	// reachable once allowed; the web server's is denied inside an allowed
	// range, and the host stays out of reach whatever is allowed.
	ts, ports := networkServer(t, ti, "--function-network", "allowlist",
		"--function-network-allow", ti.private.String()+"/32,"+metadataAddr.String(),
		"--function-network-allow", "198.51.100.0/24",
		"--function-network-allow", ti.subnet.String(),
		"--function-network-deny", ti.web.String())
	targets := hostTargets(t, ti, ports)
	targets["web"] = map[string]any{"url": fmt.Sprintf("http://%s:8080/", ti.web)}
	targets["private"] = map[string]any{"url": fmt.Sprintf("http://%s:8080/", ti.private)}
	targets["metadata"] = map[string]any{"url": fmt.Sprintf("http://%s:8080/", metadataAddr)}
	targets["another environment"] = map[string]any{"host": peerAddress(t, ts, ti.subnet), "port": 7000}
	got := probe(t, ts, targets)

	reachable := []string{"private", "metadata"}
	for name := range targets {
		switch {
		case slices.Contains(reachable, name) && !strings.HasPrefix(got[name], "ok "):
			t.Errorf("%s: %q, want it reached", name, got[name])
		case !slices.Contains(reachable, name) && !strings.HasPrefix(got[name], "error"):
			t.Errorf("%s: %q, want it unreachable", name, got[name])
		}
	}
}

func TestFunctionNetworkNone(t *testing.T) {
	t.Parallel()
	ti := newTestInternet(t)
	ts, _ := networkServer(t, ti, "--function-network", "none")
	got := probe(t, ts, map[string]any{
		"web":     map[string]any{"url": fmt.Sprintf("http://%s:8080/", ti.web)},
		"gateway": map[string]any{"host": ti.gateway.String(), "port": 53},
	})
	if got["interfaces"] != "lo" {
		t.Errorf("interfaces %q, want only lo", got["interfaces"])
	}
	for _, name := range []string{"web", "gateway"} {
		if got[name] != "error ENETUNREACH" {
			t.Errorf("%s: %q, want error ENETUNREACH", name, got[name])
		}
	}
}

func TestFunctionNetworkCleanupAfterStopAndCrash(t *testing.T) {
	t.Parallel()
	ti := newTestInternet(t)
	ts, _ := networkServer(t, ti, "--function-network-allow", ti.web.String())
	web := map[string]any{"web": map[string]any{"url": fmt.Sprintf("http://%s:8080/", ti.web)}}
	if got := probe(t, ts, web); !strings.HasPrefix(got["web"], "ok ") {
		t.Fatalf("web: %q", got["web"])
	}
	bridge := ti.bridge()
	table := "lamina-" + strings.TrimPrefix(bridge, "lmnb-")

	// A crash leaves the bridge and the table; the next start on the same
	// subnet sweeps them and works. Any server starting meanwhile (those of
	// tests running beside this one) sweeps what nobody holds the subnet's
	// lock for, so the test waits for that lock and holds it while it looks.
	locked := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile("/run/lamina/network/"+strings.TrimPrefix(bridge, "lmnb-")+".lock", os.O_RDWR, 0)
		if err == nil && unix.Flock(int(f.Fd()), unix.LOCK_EX) != nil {
			f.Close()
			f = nil
		}
		locked <- f
	}()
	ts.Kill()
	lock := <-locked
	if lock == nil {
		t.Fatalf("could not wait for the subnet lock of bridge %s", bridge)
	}
	if _, err := netlink.LinkByName(bridge); err != nil {
		t.Errorf("after a crash: bridge %s: %v (expected to be left for the next start to sweep)", bridge, err)
	}
	lock.Close()
	ts.Restart()
	if !strings.Contains(ts.Output(), "removed what a stopped server left") {
		t.Errorf("the restarted server did not say it swept the crashed one's bridge and table")
	}
	if got := probe(t, ts, web); !strings.HasPrefix(got["web"], "ok ") {
		t.Fatalf("web after the restart: %q", got["web"])
	}

	// A clean stop leaves nothing.
	ts.Stop()
	if _, err := netlink.LinkByName(bridge); err == nil {
		t.Errorf("bridge %s left after the server stopped", bridge)
	}
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ListTableOfFamily(table, nftables.TableFamilyINet); err == nil {
		t.Errorf("nftables table %s left after the server stopped", table)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left := hosttest.Veths(t, ti.subnet)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("environments' veths left after the server stopped: %v", left)
			break
		}
	}
}
