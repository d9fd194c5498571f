//go:build linux && cgo

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lamina-project/lamina/internal/sandbox/hosttest"
)

func TestPickSubnet(t *testing.T) {
	within := netip.MustParsePrefix("10.217.0.0/16")
	routes := []netip.Prefix{
		netip.MustParsePrefix("10.217.0.0/24"),   // touches the first /22
		netip.MustParsePrefix("10.217.4.7/32"),   // and the second
		netip.MustParsePrefix("192.168.0.0/16"),  // elsewhere
		netip.MustParsePrefix("10.217.200.0/21"), // further on
	}
	held := map[netip.Prefix]bool{netip.MustParsePrefix("10.217.8.0/22"): true} // another server's
	var claimed []netip.Prefix
	got, err := pickSubnet(within, 22, routes, func(p netip.Prefix) bool {
		claimed = append(claimed, p)
		return !held[p]
	})
	if err != nil || got != netip.MustParsePrefix("10.217.12.0/22") {
		t.Fatalf("pickSubnet = %v, %v; want 10.217.12.0/22", got, err)
	}
	if fmt.Sprint(claimed) != "[10.217.8.0/22 10.217.12.0/22]" {
		t.Errorf("tried to claim %v; routed blocks must be skipped without a claim", claimed)
	}

	// A route over the whole range leaves nothing.
	if _, err := pickSubnet(within, 22, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, func(netip.Prefix) bool { return true }); err == nil ||
		!strings.Contains(err.Error(), "--function-network-subnet") {
		t.Errorf("a range covered by a route: err = %v, want one that names --function-network-subnet", err)
	}
}

func TestCheckSubnet(t *testing.T) {
	for s, ok := range map[string]bool{
		"10.217.0.0/22": true, "10.0.0.0/16": true, "192.168.77.0/29": true,
		"10.0.0.0/8": false, "10.217.0.0/30": false, "10.217.0.1/22": false, "fd00::/64": false,
	} {
		if err := checkSubnet(netip.MustParsePrefix(s)); (err == nil) != ok {
			t.Errorf("checkSubnet(%s) = %v", s, err)
		}
	}
}

func TestNetworkNames(t *testing.T) {
	subnet := netip.MustParsePrefix("10.217.4.0/22")
	if k := subnetKey(subnet); k != "0ad90400" {
		t.Errorf("subnetKey = %q", k)
	}
	if g := gatewayOf(subnet); g != netip.MustParseAddr("10.217.4.1") {
		t.Errorf("gateway = %v", g)
	}
	name := hostVethName(netip.MustParseAddr("10.217.7.254"))
	if name != "lmnv-0ad907fe" || len(name) > 15 {
		t.Errorf("hostVethName = %q (at most 15 bytes)", name)
	}
}

func TestAddrPool(t *testing.T) {
	stillThere := map[string]bool{}
	p := newAddrPool(netip.MustParsePrefix("10.1.2.0/29"), func(name string) bool { return !stillThere[name] })
	// .0 network, .1 gateway, .7 broadcast: .2 to .6 are the environments'.
	var got []string
	for range 5 {
		a, err := p.take()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	if fmt.Sprint(got) != "[10.1.2.2 10.1.2.3 10.1.2.4 10.1.2.5 10.1.2.6]" {
		t.Errorf("addresses %v", got)
	}
	if _, err := p.take(); err != errNoAddress {
		t.Errorf("take from an empty pool: %v", err)
	}

	// Given back: reused first in, first out, and only once the veth of the
	// last holder has gone.
	p.giveBack(netip.MustParseAddr("10.1.2.4"))
	p.giveBack(netip.MustParseAddr("10.1.2.2"))
	stillThere[hostVethName(netip.MustParseAddr("10.1.2.4"))] = true
	if a, err := p.take(); err != nil || a.String() != "10.1.2.2" {
		t.Errorf("take = %v, %v; want 10.1.2.2 (10.1.2.4's veth is still there)", a, err)
	}
	if _, err := p.take(); err != errNoAddress {
		t.Errorf("take while the only free address's veth remains: %v", err)
	}
	delete(stillThere, hostVethName(netip.MustParseAddr("10.1.2.4")))
	if a, err := p.take(); err != nil || a.String() != "10.1.2.4" {
		t.Errorf("take = %v, %v; want 10.1.2.4 once its veth has gone", a, err)
	}
}

func TestPolicy(t *testing.T) {
	subnet := netip.MustParsePrefix("10.217.0.0/22")
	internet := policy{subnet: subnet, mode: NetworkInternet,
		allow: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("10.217.0.0/16")},
		deny:  []netip.Prefix{netip.MustParsePrefix("10.9.9.0/24"), netip.MustParsePrefix("8.8.4.0/24")}}
	allowlist := internet
	allowlist.mode = NetworkAllowlist
	cases := []struct {
		dst                 string
		internet, allowlist bool
	}{
		{"8.8.8.8", true, false},          // public
		{"8.8.4.4", false, false},         // denied
		{"8.8.3.255", true, false},        // public, beside a denied range
		{"10.9.1.1", true, true},          // allowed private
		{"10.9.9.9", false, false},        // denied wins over allowed
		{"10.217.0.5", false, false},      // another environment: no allow opens it
		{"10.217.0.1", false, false},      // the gateway (the host: refused on input too)
		{"10.217.4.5", true, true},        // allowed, outside the subnet
		{"10.218.0.0", false, false},      // private, beside an allowed range
		{"0.1.2.3", false, false},         // "this network"
		{"10.1.1.1", false, false},        // private
		{"100.64.0.1", false, false},      // shared address space
		{"100.128.0.1", true, false},      // public, beside it
		{"127.0.0.1", false, false},       // loopback
		{"169.254.169.254", false, false}, // cloud metadata (link-local)
		{"172.31.255.255", false, false},  // private
		{"172.32.0.1", true, false},       // public, beside it
		{"192.0.0.9", false, false},       // IETF protocol assignments
		{"192.0.2.1", false, false},       // documentation
		{"192.88.99.1", true, false},      // the former 6to4 relay anycast: public
		{"192.168.1.1", false, false},     // private
		{"192.169.0.0", true, false},      // public, beside it
		{"198.18.0.1", false, false},      // benchmarking
		{"198.51.100.7", false, false},    // documentation
		{"203.0.113.9", false, false},     // documentation
		{"203.0.114.1", true, false},      // public, beside it
		{"224.0.0.251", false, false},     // multicast
		{"223.255.255.255", true, false},  // public, below it
		{"240.0.0.1", false, false},       // reserved
		{"255.255.255.255", false, false}, // broadcast
	}
	for _, c := range cases {
		dst := netip.MustParseAddr(c.dst)
		if got := internet.allows(dst); got != c.internet {
			t.Errorf("internet mode, %s: allowed = %v, want %v", c.dst, got, c.internet)
		}
		if got := allowlist.allows(dst); got != c.allowlist {
			t.Errorf("allowlist mode, %s: allowed = %v, want %v", c.dst, got, c.allowlist)
		}
	}
}

// testNetworkRange is where tests take a subnet of their own: outside
// DefaultNetworkRange, so that no server picks one of its blocks by itself.
var testNetworkRange = netip.MustParsePrefix("10.216.0.0/16")

// newOwnNetwork makes a network with cfg on the first block of /bits of
// testNetworkRange that no route of the host overlaps and no other network
// holds (other test processes on this host may run the same tests). The
// caller closes it.
func newOwnNetwork(t testing.TB, cfg NetworkConfig, bits int) *Network {
	t.Helper()
	var n *Network
	_, err := pickSubnet(testNetworkRange, bits, nil, func(subnet netip.Prefix) bool {
		cfg.Subnet = subnet
		var err error
		if n, err = NewNetwork(cfg); err != nil && !strings.Contains(err.Error(), subnet.String()) {
			t.Fatal(err) // not about the subnet being taken
		}
		return err == nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitVethsGone waits until none of veths, host veths of subnet, is left.
func waitVethsGone(t *testing.T, subnet netip.Prefix, veths []string) {
	t.Helper()
	var left []string
	waitFor(t, fmt.Sprintf("the veths %v go", veths), func() bool {
		left = slices.DeleteFunc(hosttest.Veths(t, subnet), func(v string) bool { return !slices.Contains(veths, v) })
		return len(left) == 0
	})
}

// newNetworkProvider returns a namespace provider whose sandboxes have a
// network made with cfg; both are closed when the test ends.
func newNetworkProvider(t testing.TB, cfg NetworkConfig) (*NamespaceProvider, *Network) {
	t.Helper()
	p := newProvider(t)
	n, err := NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.UseNetwork(nil) // its prepared sandboxes hold namespaces of n
		n.Close()
	})
	p.UseNetwork(n)
	return p, n
}

func TestNamespaceSandboxOutboundNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("namespace sandboxes need root")
	}
	resolver := hosttest.DNS(t, "probe.lamina.test", netip.MustParseAddr("192.0.2.77"))
	p, n := newNetworkProvider(t, NetworkConfig{Mode: NetworkInternet, DNS: []netip.AddrPort{resolver}})
	// A service on every address of the host, the gateway's among them.
	host, err := net.Listen("tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go func() {
		for {
			c, err := host.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	hostPort := host.Addr().(*net.TCPAddr).Port
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(n.Gateway(), uint16(hostPort)).String(), time.Second); err != nil {
		t.Fatalf("the host's own service is not there on the gateway address: %v", err)
	} else {
		c.Close()
	}

	script := fmt.Sprintf(`
import socket, json, urllib.request
r = {}
r["ifaces"] = sorted(n for _, n in socket.if_nameindex())
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("%[1]s", 53))
r["addr"] = s.getsockname()[0]
r["routes"] = [l.split()[:3] for l in open("/proc/net/route").read().splitlines()[1:]]
r["inet6"] = open("/proc/net/if_inet6").read()
r["resolv"] = open("/etc/resolv.conf").read()
r["dns"] = socket.gethostbyname("probe.lamina.test")
try:
    socket.gethostbyname("other.lamina.test")
    r["nxdomain"] = "resolved"
except socket.gaierror as e:
    r["nxdomain"] = e.errno
s = socket.socket(); s.settimeout(5)
r["host_service"] = s.connect_ex(("%[1]s", %[2]d))
s = socket.socket(); s.settimeout(5)
r["host_dns_tcp"] = s.connect_ex(("%[1]s", 53))
r["api"] = urllib.request.urlopen("http://127.0.0.1:9001/hello", timeout=5).read().decode()
print(json.dumps(r))
`, n.Gateway(), hostPort)
	sb := create(t, p, Spec{ID: "outbound-test", TaskDir: taskDir(t, "probe.py", script), MemoryMB: 128})
	ln, _ := sb.RuntimeAPI()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inside") }))
	out := runToExit(t, sb, Process{Argv: []string{python, "/var/task/probe.py"}, Dir: "/var/task"})
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if fmt.Sprint(r["ifaces"]) != "[eth0 lo]" {
		t.Errorf("interfaces %v, want eth0 and lo", r["ifaces"])
	}
	if a, err := netip.ParseAddr(fmt.Sprint(r["addr"])); err != nil || !n.Subnet().Contains(a) || a == n.Gateway() {
		t.Errorf("the environment's address %v is not one of %s", r["addr"], n.Subnet())
	}
	// /proc/net/route: interface, destination, gateway in little-endian hex.
	gw := n.Gateway().As4()
	wantDefault := fmt.Sprintf("[eth0 00000000 %02X%02X%02X%02X]", gw[3], gw[2], gw[1], gw[0])
	if !strings.Contains(fmt.Sprint(r["routes"]), wantDefault) {
		t.Errorf("routes %v lack the default route through the gateway %s", r["routes"], n.Gateway())
	}
	if inet6 := fmt.Sprint(r["inet6"]); strings.Contains(inet6, "eth0") || !strings.Contains(inet6, " lo") {
		t.Errorf("IPv6 addresses:\n%s\nwant loopback's only", inet6)
	}
	if !strings.HasPrefix(fmt.Sprint(r["resolv"]), "nameserver "+n.Gateway().String()+"\n") {
		t.Errorf("resolv.conf:\n%s", r["resolv"])
	}
	if r["dns"] != "192.0.2.77" {
		t.Errorf("probe.lamina.test resolved to %v through the forwarder, want 192.0.2.77", r["dns"])
	}
	if r["nxdomain"] == "resolved" {
		t.Errorf("other.lamina.test resolved")
	}
	const econnrefused = 111
	if r["host_service"] != float64(econnrefused) {
		t.Errorf("connecting to the host's own service on the gateway: errno %v, want ECONNREFUSED (refused by the policy)", r["host_service"])
	}
	if r["host_dns_tcp"] != 0.0 {
		t.Errorf("connecting to the DNS forwarder over TCP: errno %v", r["host_dns_tcp"])
	}
	if r["api"] != "inside" {
		t.Errorf("the runtime API on the environment's loopback: %v", r["api"])
	}
}

func TestNetworkCloseRemovesEverything(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the function network needs root")
	}
	p := newProvider(t)
	n := newOwnNetwork(t, NetworkConfig{Mode: NetworkAllowlist}, DefaultSubnetBits)
	defer n.Close()
	p.UseNetwork(n)
	task := t.TempDir()
	var veths []string
	for i := range 3 {
		sb := create(t, p, Spec{ID: fmt.Sprintf("close-%d", i), TaskDir: task, MemoryMB: 128})
		veths = append(veths, hostVethName(sb.(*namespaceSandbox).net.addr))
	}
	key := n.key
	if _, err := netlink.LinkByName(bridgePrefix + key); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	found := hosttest.Veths(t, n.Subnet())
	for _, v := range veths {
		if !slices.Contains(found, v) {
			t.Fatalf("the host's veths of the subnet, %v, lack the environment's %s", found, v)
		}
	}
	lockPath := filepath.Join(networkStateDir, key+".lock")
	if !slices.Contains(flockHolders(t, lockPath), os.Getpid()) {
		t.Fatalf("/proc/locks does not show this process holding %s", lockPath)
	}
	p.UseNetwork(nil) // the prepared sandboxes let go of n's namespaces
	n.Close()
	pooled := slices.DeleteFunc(hosttest.Veths(t, n.Subnet()), func(v string) bool { return slices.Contains(veths, v) })
	if _, err := netlink.LinkByName(bridgePrefix + key); err == nil {
		t.Errorf("bridge %s%s left after Close", bridgePrefix, key)
	}
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ListTableOfFamily(tablePrefix+key, nftables.TableFamilyINet); err == nil {
		t.Errorf("nftables table %s%s left after Close", tablePrefix, key)
	}
	// (Another network may have taken the subnet since.)
	if slices.Contains(flockHolders(t, lockPath), os.Getpid()) {
		t.Errorf("the subnet is still locked after Close")
	}
	// The pooled namespaces' veths go as soon as the kernel has torn the
	// namespaces down; the environments' when they are destroyed.
	waitVethsGone(t, n.Subnet(), pooled)
}

// flockHolders returns the processes that hold a flock on path, as
// /proc/locks lists them ("1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF").
func flockHolders(t *testing.T, path string) []int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	file := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, line := range strings.Split(string(locks), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && f[5] == file {
			if pid, err := strconv.Atoi(f[4]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func TestNetworkSweepsADeadServersLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the function network needs root")
	}
	// The dead server had a subnet of its own choice, so that the next one
	// does not take the same.
	dead := newOwnNetwork(t, NetworkConfig{Mode: NetworkInternet}, DefaultSubnetBits)
	key := dead.key
	// The server dies: the kernel lets go of its lock; its bridge and table
	// stay.
	close(dead.stop)
	<-dead.fillDone
	<-dead.guarded
	<-dead.reaped
	dead.dns.close()
	dead.lock.Close()
	defer dead.releaseHandles()

	live, err := NewNetwork(NetworkConfig{Mode: NetworkInternet})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := netlink.LinkByName(bridgePrefix + key); err == nil {
		t.Errorf("the dead server's bridge %s%s is still there", bridgePrefix, key)
	}
	conn, _ := nftables.New()
	if _, err := conn.ListTableOfFamily(tablePrefix+key, nftables.TableFamilyINet); err == nil {
		t.Errorf("the dead server's table %s%s is still there", tablePrefix, key)
	}

	// A live server's are never touched.
	other, err := NewNetwork(NetworkConfig{Mode: NetworkInternet})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.subnet == live.subnet {
		t.Fatalf("two live servers got the same subnet %s", live.subnet)
	}
	if _, err := netlink.LinkByName(bridgePrefix + live.key); err != nil {
		t.Errorf("starting a server removed a live one's bridge: %v", err)
	}
	if _, err := conn.ListTableOfFamily(tablePrefix+live.key, nftables.TableFamilyINet); err != nil {
		t.Errorf("starting a server removed a live one's table: %v", err)
	}
}

func TestNetworkPutsBackItsRules(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the function network needs root")
	}
	n, err := NewNetwork(NetworkConfig{Mode: NetworkInternet})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	table := &nftables.Table{Name: tablePrefix + n.key, Family: nftables.TableFamilyINet}
	for _, damage := range []struct {
		what string
		do   func()
	}{
		{"the table deleted", func() { conn.DelTable(table) }},
		{"a chain flushed", func() { conn.FlushChain(&nftables.Chain{Name: chainThrough, Table: table}) }},
	} {
		damage.do()
		if err := conn.Flush(); err != nil {
			t.Fatal(err)
		}
		if n.rulesIntact() {
			t.Fatalf("%s: rulesIntact() = true", damage.what)
		}
		for deadline := time.Now().Add(4 * rulesGuardInterval); !n.rulesIntact(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not put back within %v", damage.what, 4*rulesGuardInterval)
			}
		}
	}
}

// BenchmarkNamespaceSandboxNetwork is BenchmarkNamespaceSandbox with an
// outbound network: create, start /bin/true, destroy, back to back, so that
// the pool of namespaces made ahead is mostly empty.
func BenchmarkNamespaceSandboxNetwork(b *testing.B) {
	p, _ := newNetworkProvider(b, NetworkConfig{Mode: NetworkInternet})
	task := b.TempDir()
	for i := 0; b.Loop(); i++ {
		runTrue(b, p, Spec{ID: fmt.Sprintf("bench-%d", i), TaskDir: task, MemoryMB: 128}).Destroy()
	}
}

// BenchmarkNamespaceSandboxColdStart times only what a cold start waits for
// (create a sandbox, start /bin/true in it, see it exit): from a prepared
// sandbox, without a network and with one; and prepared on the spot (a
// burst that finds no prepared sandbox), without a network, with a network
// namespace from the network's pool, and with one made on the spot. The
// teardown and the pools' refills happen off the clock. Besides the mean
// (ns/op) it reports the median, steadier on a busy machine.
func BenchmarkNamespaceSandboxColdStart(b *testing.B) {
	for _, c := range []struct {
		name     string
		pool     int // namespaces of the network's pool; -1: no network
		prepared int // sandboxes prepared ahead
	}{
		{"prepared/none", -1, preparedSandboxes}, {"prepared/network", netnsPoolSize, preparedSandboxes},
		{"unprepared/none", -1, 0}, {"unprepared/pooled", netnsPoolSize, 0}, {"unprepared/unpooled", 0, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := newProvider(b)
			p.prepared.close()
			p.prepared = newPreparedPool(p, c.prepared, true, func() (*namespaceSandbox, error) { return p.prepare(p.name()) }, slog.Default())
			var n *Network
			if c.pool >= 0 {
				var err error
				if n, err = newNetwork(NetworkConfig{Mode: NetworkInternet}, c.pool); err != nil {
					b.Fatal(err)
				}
				defer func() {
					p.UseNetwork(nil)
					n.Close()
				}()
				p.UseNetwork(n)
			}
			task := b.TempDir()
			b.StopTimer()
			times := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				// Off the clock: the pools refill. Every variant waits as
				// long: how long a machine has been idle changes how fast
				// the next start is.
				time.Sleep(20 * time.Millisecond)
				settle(b, p)
				for n != nil && c.pool > 0 && len(n.ready) < cap(n.ready) {
					time.Sleep(time.Millisecond)
				}
				b.StartTimer()
				start := time.Now()
				sb := runTrue(b, p, Spec{ID: fmt.Sprintf("bench-%d", i), TaskDir: task, MemoryMB: 128})
				b.StopTimer()
				times = append(times, time.Since(start))
				sb.Destroy()
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
		})
	}
}

// TestNetworkTeardownLeaksNothing creates, uses and destroys sandboxes with
// a network in a loop, on a subnet small enough that addresses are reused
// several times, and checks that nothing is left: no veth, file descriptor
// or goroutine. LAMINA_SOAK sets the number of cycles, as for
// TestNamespaceSandboxTeardownLeaksNothing.
func TestNetworkTeardownLeaksNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the function network needs root")
	}
	cycles := 100
	if n, err := strconv.Atoi(os.Getenv("LAMINA_SOAK")); err == nil {
		cycles = n
	}
	p := newProvider(t)
	task := t.TempDir()
	runTrue(t, p, Spec{ID: "netleak-warmup", TaskDir: task, MemoryMB: 128}).Destroy() // the spawner thread
	settle(t, p)
	before := countResources(t, p)
	n := newOwnNetwork(t, NetworkConfig{Mode: NetworkInternet}, 27) // 29 addresses
	p.UseNetwork(n)
	seen := map[netip.Addr]int{}
	for i := range cycles {
		sb := runTrue(t, p, Spec{ID: fmt.Sprintf("netleak-%d", i), TaskDir: task, MemoryMB: 128})
		seen[sb.(*namespaceSandbox).net.addr]++
		if err := sb.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
	p.UseNetwork(nil) // the prepared sandboxes let go of n's namespaces
	n.Close()
	settle(t, p)
	// The subnet is free now; what veths it has are this test's (another
	// network would take a while to make its own).
	veths := hosttest.Veths(t, n.Subnet())
	if cycles >= 100 && len(seen) >= cycles {
		t.Errorf("%d cycles used %d addresses of a /27: none was reused", cycles, len(seen))
	}
	var after resources
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		after = countResources(t, p)
		veths = slices.DeleteFunc(hosttest.Veths(t, n.Subnet()), func(v string) bool { return !slices.Contains(veths, v) })
		if len(veths) == 0 && after.goroutines <= before.goroutines && after.fds <= before.fds || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d cycles on %d addresses; before %+v after %+v", cycles, len(seen), before, after)
	if len(veths) > 0 {
		t.Errorf("veths left: %v", veths)
	}
	if after.fds > before.fds || after.goroutines > before.goroutines || after.processes > before.processes {
		t.Errorf("leak after %d cycles: before %+v, after %+v", cycles, before, after)
	}
}

// TestNetworkCloseLetsGoOfTheFillersLast lets Close find the pool empty
// while the filler is making a namespace: whichever way the filler's last
// namespace goes (into the pool, or given back because the network stops),
// Close lets go of it, and no veth of the subnet outlives the network.
func TestNetworkCloseLetsGoOfTheFillersLast(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the function network needs root")
	}
	for round := range 10 {
		n := newOwnNetwork(t, NetworkConfig{Mode: NetworkInternet}, 27)
		// The pool full, the filler holds one more; taking until the pool is
		// empty leaves the filler making the next.
		waitFor(t, "the pool fills", func() bool { return len(n.ready) == cap(n.ready) })
		var taken []*netLease
		for len(taken) <= cap(n.ready) {
			taken = append(taken, <-n.ready)
		}
		for _, l := range taken {
			n.release(l)
		}
		n.Close()
		// The subnet is free now; what veths it has are this test's
		// (another network would take a while to make its own).
		veths := hosttest.Veths(t, n.Subnet())
		n.mu.Lock()
		retired := len(n.retired)
		n.mu.Unlock()
		if retired > 0 {
			t.Fatalf("round %d: %d namespaces retired and never let go after Close", round, retired)
		}
		waitVethsGone(t, n.Subnet(), veths)
	}
}

// TestNetworkRefusesATakenSubnet: a second network on a live one's subnet
// (routed to its bridge, and locked) is refused with an error that names
// it, and leaves the first one's resources alone.
func TestNetworkRefusesATakenSubnet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the function network needs root")
	}
	first, err := NewNetwork(NetworkConfig{Mode: NetworkInternet})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := NewNetwork(NetworkConfig{Mode: NetworkInternet, Subnet: first.Subnet()})
	if err == nil {
		second.Close()
		t.Fatalf("a second network on %s was made", first.Subnet())
	}
	if !strings.Contains(err.Error(), first.Subnet().String()) {
		t.Errorf("error %q does not name the subnet", err)
	}
	if _, err := netlink.LinkByName(bridgePrefix + first.key); err != nil {
		t.Errorf("the refused network removed the first one's bridge: %v", err)
	}
}

func TestConsistentDump(t *testing.T) {
	calls := 0
	interruptedTwice := func() ([]int, error) {
		if calls++; calls <= 2 {
			return []int{-calls}, netlink.ErrDumpInterrupted
		}
		return []int{calls}, nil
	}
	if got, err := consistentDump(interruptedTwice); err != nil || fmt.Sprint(got) != "[3]" || calls != 3 {
		t.Errorf("a dump interrupted twice: %v, %v after %d tries; want [3] after 3", got, err, calls)
	}
	calls = 0
	alwaysInterrupted := func() ([]int, error) { calls++; return nil, netlink.ErrDumpInterrupted }
	if _, err := consistentDump(alwaysInterrupted); !errors.Is(err, netlink.ErrDumpInterrupted) || calls != dumpRetries+1 {
		t.Errorf("a dump always interrupted: %v after %d tries; want ErrDumpInterrupted after %d", err, calls, dumpRetries+1)
	}
	calls = 0
	failing := func() ([]int, error) { calls++; return nil, errors.New("no") }
	if _, err := consistentDump(failing); err == nil || calls != 1 {
		t.Errorf("a failing dump: %v after %d tries; want its error after 1", err, calls)
	}
}
