//go:build linux

package sandbox

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetworkConfig is the outbound network of one server's execution
// environments.
type NetworkConfig struct {
	// Mode is internet or allowlist (none needs no Network).
	Mode NetworkMode
	// Allow are ranges environments may reach even where the mode or the
	// non-public ranges would refuse them.
	Allow []netip.Prefix
	// Deny are ranges environments never reach; they win over Allow.
	Deny []netip.Prefix
	// Subnet is the environments' IPv4 subnet; the zero value picks a free
	// /DefaultSubnetBits block of DefaultNetworkRange.
	Subnet netip.Prefix
	// DNS are the resolvers the environments' DNS forwarder asks; empty means
	// those of the host's /etc/resolv.conf.
	DNS []netip.AddrPort
	// Logger receives the network's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Names and places of a server's host-wide network resources, all named by
// its subnet (see subnetKey), so that several servers on one host never
// share or touch each other's.
const (
	// networkStateDir holds the lock files: one per subnet, held by the
	// server that uses it for as long as it lives (the kernel lets go when
	// it dies), and one that serialises setting up and tearing down.
	networkStateDir = "/run/lamina/network"
	globalLockName  = "network.lock"
	// savedIPForward records the value of net.ipv4.ip_forward before a
	// server first set it, so that the last server to stop can restore it.
	savedIPForward = "ip_forward.saved"
	ipForwardPath  = "/proc/sys/net/ipv4/ip_forward"
	bridgePrefix   = "lmnb-"   // + key: the environments' bridge
	tablePrefix    = "lamina-" // + key: the nftables table (family inet)
	// envInterface is the environment's end of its veth pair.
	envInterface = "eth0"
	// netnsPoolSize is how many ready network namespaces wait for cold
	// starts (one of them in the hand of the goroutine that made it), so
	// that a cold start pays nothing for its network.
	netnsPoolSize = 4
)

// Network gives execution environments outbound network access: each one
// gets a network namespace with a veth pair to the server's bridge, an
// address of the server's subnet, a default route through the host, and a
// DNS forwarder on the gateway; nftables rules on the host enforce the
// policy and masquerade what leaves. Namespaces are prepared ahead, in a
// small pool, so that a cold start only enters one.
type Network struct {
	log        *slog.Logger
	policy     policy
	subnet     netip.Prefix
	gateway    netip.Addr
	key        string
	resolvConf string // the environments' /etc/resolv.conf

	host     *netlink.Handle
	hostNS   *os.File // the host's network namespace, where veth peers go
	bridge   netlink.Link
	lock     *os.File // held for as long as this server uses the subnet
	addrs    *addrPool
	dns      *dnsForwarder
	ready    chan *netLease
	rules    map[string]int // rules per chain of the nftables table
	stop     chan struct{}
	fillDone chan struct{}
	guarded  chan struct{}
	reaped   chan struct{}

	mu       sync.Mutex
	lastTake time.Time   // when a cold start last took a namespace
	retired  []*netLease // destroyed environments' namespaces, not yet let go
	closed   bool        // by Close: namespaces are let go at once
	close    sync.Once
}

// netLease is one environment's network: a namespace with its veth
// configured, and the address it holds.
type netLease struct {
	ns        *os.File // keeps the namespace until it is reaped
	addr      netip.Addr
	retiredAt time.Time
}

// NewNetwork sets up the host side of the environments' network: it sweeps
// what crashed servers left, claims a subnet, creates the bridge and the
// nftables table, enables IPv4 forwarding, and starts the DNS forwarder and
// the namespace pool.
func NewNetwork(cfg NetworkConfig) (*Network, error) { return newNetwork(cfg, netnsPoolSize) }

// newNetwork is NewNetwork with poolSize namespaces made ahead (0: none, each
// environment's is made when it is created).
func newNetwork(cfg NetworkConfig, poolSize int) (_ *Network, err error) {
	if cfg.Mode != NetworkInternet && cfg.Mode != NetworkAllowlist {
		return nil, fmt.Errorf("function network mode %q needs no network", cfg.Mode)
	}
	for _, p := range append(append([]netip.Prefix{}, cfg.Allow...), cfg.Deny...) {
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("function network range %s: environments have IPv4 only", p)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	upstreams := cfg.DNS
	if len(upstreams) == 0 {
		if upstreams, err = hostResolvers(); err != nil {
			log.Warn("function network: environments' DNS will fail", "err", err)
		}
	}
	n := &Network{log: log, ready: make(chan *netLease, max(0, poolSize-1)), stop: make(chan struct{}),
		fillDone: make(chan struct{}), guarded: make(chan struct{}), reaped: make(chan struct{})}
	if n.host, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("function network: %w", err)
	}
	if n.hostNS, err = os.Open("/proc/thread-self/ns/net"); err != nil {
		n.host.Close()
		return nil, fmt.Errorf("function network: %w", err)
	}
	if err := os.MkdirAll(networkStateDir, 0o755); err != nil {
		n.releaseHandles()
		return nil, fmt.Errorf("function network: %w", err)
	}
	global, err := lockFile(filepath.Join(networkStateDir, globalLockName), true)
	if err != nil {
		n.releaseHandles()
		return nil, fmt.Errorf("function network: %w", err)
	}
	defer global.Close()
	defer func() {
		if err != nil { // n, not the nil returned
			n.teardown()
		}
	}()

	n.sweep()
	if err = n.claimSubnet(cfg.Subnet); err != nil {
		return nil, err
	}
	n.gateway = gatewayOf(n.subnet)
	n.key = subnetKey(n.subnet)
	n.policy = policy{subnet: n.subnet, mode: cfg.Mode, allow: cfg.Allow, deny: cfg.Deny}
	n.resolvConf = envResolvConf(n.gateway)
	n.addrs = newAddrPool(n.subnet, func(name string) bool {
		_, err := n.host.LinkByName(name)
		return errors.As(err, new(netlink.LinkNotFoundError))
	})
	if err = n.createBridge(); err != nil {
		return nil, fmt.Errorf("function network: bridge: %w", err)
	}
	if err = n.installRules(); err != nil {
		return nil, fmt.Errorf("function network: nftables: %w", err)
	}
	if err = enableIPForward(log); err != nil {
		return nil, fmt.Errorf("function network: %w", err)
	}
	if n.dns, err = startDNSForwarder(n.gateway, upstreams, log); err != nil {
		return nil, err
	}
	if poolSize > 0 {
		go n.fill()
	} else {
		close(n.fillDone)
	}
	go n.guardRules()
	go n.reap()
	log.Info("function network", "mode", cfg.Mode, "subnet", n.subnet, "gateway", n.gateway,
		"bridge", bridgePrefix+n.key, "nftables_table", "inet "+tablePrefix+n.key, "dns", upstreams, "policy", n.policy.describe())
	return n, nil
}

// Subnet returns the environments' subnet.
func (n *Network) Subnet() netip.Prefix { return n.subnet }

// Gateway returns the host's address on the environments' bridge, where
// their DNS forwarder answers.
func (n *Network) Gateway() netip.Addr { return n.gateway }

// claimSubnet takes the operator's subnet, or a free block of the default
// range, and holds its lock.
func (n *Network) claimSubnet(want netip.Prefix) error {
	routes, err := n.hostRoutes()
	if err != nil {
		return fmt.Errorf("function network: routes: %w", err)
	}
	claim := func(p netip.Prefix) bool {
		f, err := lockFile(filepath.Join(networkStateDir, subnetKey(p)+".lock"), false)
		if err != nil {
			return false
		}
		n.lock, n.subnet = f, p
		return true
	}
	if want.IsValid() {
		if err := checkSubnet(want); err != nil {
			return err
		}
		if overlapsAny(want, routes) {
			return fmt.Errorf("function network subnet %s overlaps a route of this host (ip route show table all)", want)
		}
		if !claim(want) {
			return fmt.Errorf("function network subnet %s is used by another Lamina server", want)
		}
		return nil
	}
	_, err = pickSubnet(DefaultNetworkRange, DefaultSubnetBits, routes, claim)
	return err
}

// hostRoutes returns the destinations of the host's IPv4 routes in every
// table, but default routes.
func (n *Network) hostRoutes() ([]netip.Prefix, error) {
	routes, err := consistentDump(func() ([]netlink.Route, error) {
		return n.host.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, err
	}
	var dsts []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if ok && ones > 0 {
			dsts = append(dsts, netip.PrefixFrom(a, ones).Masked())
		}
	}
	return dsts, nil
}

// dumpRetries is how often a netlink dump is tried again when the kernel
// interrupted it because the table changed meanwhile (other servers and
// programs add and remove links and routes).
const dumpRetries = 10

// consistentDump returns what list (a netlink dump) returns once the kernel
// has not interrupted it, or its last error.
func consistentDump[T any](list func() ([]T, error)) ([]T, error) {
	for tries := 1; ; tries++ {
		result, err := list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || tries > dumpRetries {
			return result, err
		}
	}
}

// sweep removes the bridges and nftables tables of servers that died
// without cleaning up: those whose subnet lock nobody holds. A live
// server's are never touched.
func (n *Network) sweep() {
	stale := map[string]bool{}
	if links, err := consistentDump(n.host.LinkList); err == nil {
		for _, l := range links {
			if key, ok := strings.CutPrefix(l.Attrs().Name, bridgePrefix); ok {
				stale[key] = true
			}
		}
	}
	conn, err := nftables.New()
	if err != nil {
		return
	}
	if tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet); err == nil {
		for _, t := range tables {
			if key, ok := strings.CutPrefix(t.Name, tablePrefix); ok {
				stale[key] = true
			}
		}
	}
	for key := range stale {
		lock, err := lockFile(filepath.Join(networkStateDir, key+".lock"), false)
		if err != nil {
			continue // a live server's
		}
		if l, err := n.host.LinkByName(bridgePrefix + key); err == nil {
			_ = n.host.LinkDel(l)
		}
		conn.DelTable(&nftables.Table{Name: tablePrefix + key, Family: nftables.TableFamilyINet})
		_ = conn.Flush()
		n.log.Info("function network: removed what a stopped server left", "bridge", bridgePrefix+key, "nftables_table", tablePrefix+key)
		lock.Close()
	}
}

// createBridge creates the environments' bridge with the gateway address.
// Its ports are isolated: environments reach the host through it, never
// each other.
func (n *Network) createBridge() error {
	mac := make(net.HardwareAddr, 6)
	_, _ = rand.Read(mac)
	mac[0] = mac[0]&^1 | 2 // unicast, locally administered: a fixed MAC keeps ARP caches valid
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgePrefix + n.key, HardwareAddr: mac}}
	if err := n.host.LinkAdd(br); err != nil {
		return err
	}
	n.bridge = br
	if err := disableIPv6(br.Name); err != nil {
		return err
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: n.gateway.AsSlice(), Mask: net.CIDRMask(n.subnet.Bits(), 32)}}
	if err := n.host.AddrAdd(br, gw); err != nil {
		return err
	}
	return n.host.LinkSetUp(br)
}

// installRules adds the server's nftables table (see policy.install).
func (n *Network) installRules() error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	n.rules = n.policy.install(conn, tablePrefix+n.key, bridgePrefix+n.key, n.gateway)
	return conn.Flush()
}

// rulesGuardInterval is how often the nftables table is checked.
const rulesGuardInterval = 2 * time.Second

// guardRules puts the table back when something else removed or changed it
// (`nft flush ruleset`, a firewall reloading its configuration), until Close:
// without it, environments would reach the host's ports.
func (n *Network) guardRules() {
	defer close(n.guarded)
	t := time.NewTicker(rulesGuardInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if n.rulesIntact() {
			continue
		}
		n.log.Warn("function network: the nftables table was removed or changed by something else; putting it back", "table", "inet "+tablePrefix+n.key)
		if conn, err := nftables.New(); err == nil {
			conn.DelTable(&nftables.Table{Name: tablePrefix + n.key, Family: nftables.TableFamilyINet})
			_ = conn.Flush() // nothing to delete if it was removed
		}
		if err := n.installRules(); err != nil {
			n.log.Error("function network: cannot put the nftables table back", "err", err)
		}
	}
}

// rulesIntact says whether the table has every chain with as many rules as
// installRules gave it.
func (n *Network) rulesIntact() bool {
	conn, err := nftables.New()
	if err != nil {
		return true // cannot tell
	}
	table := &nftables.Table{Name: tablePrefix + n.key, Family: nftables.TableFamilyINet}
	for chain, want := range n.rules {
		rules, err := conn.GetRules(table, &nftables.Chain{Name: chain, Table: table})
		if err != nil || len(rules) != want {
			return false
		}
	}
	return true
}

// take returns a network for a new environment: a ready one from the pool,
// or one made now if the pool is empty.
func (n *Network) take() (*netLease, error) {
	n.mu.Lock()
	n.lastTake = time.Now()
	n.mu.Unlock()
	select {
	case l := <-n.ready:
		return l, nil
	default:
		return n.newLease()
	}
}

// release gives a destroyed environment's network back. Its namespace is
// let go later, by reap.
func (n *Network) release(l *netLease) {
	n.mu.Lock()
	l.retiredAt = time.Now()
	n.retired = append(n.retired, l)
	closed := n.closed
	n.mu.Unlock()
	if closed {
		n.reapNow(true)
	}
}

// When retired namespaces are let go: once no cold start has taken a
// namespace for reapQuiet, or the oldest has waited reapMaxAge, or
// reapMaxBatch wait.
const (
	reapQuiet    = 200 * time.Millisecond
	reapMaxAge   = 2 * time.Second
	reapMaxBatch = 64
	reapInterval = 100 * time.Millisecond
)

// reap lets go of retired namespaces in batches, when cold starts are not
// happening, until Close. Tearing a namespace down (its veth pair leaves the
// bridge, is unregistered, and the kernel waits for RCU grace periods under
// its RTNL lock) costs the machine several milliseconds; done the moment an
// environment is destroyed, it slowed the cold start that replaced it, and
// the kernel tears down a batch of namespaces for about the cost of one.
func (n *Network) reap() {
	defer close(n.reaped)
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			n.reapNow(true)
			return
		case <-t.C:
			n.reapNow(false)
		}
	}
}

// reapNow lets go of the retired namespaces if it is time to, or if all.
func (n *Network) reapNow(all bool) {
	n.mu.Lock()
	batch := n.retired
	due := len(batch) > 0 && (all || time.Since(n.lastTake) >= reapQuiet ||
		time.Since(batch[0].retiredAt) >= reapMaxAge || len(batch) >= reapMaxBatch)
	if due {
		n.retired = nil
	}
	n.mu.Unlock()
	if !due {
		return
	}
	for _, l := range batch {
		if l.ns != nil { // nil if making the namespace failed
			l.ns.Close()
		}
		// The kernel tears the namespace down, and the veth pair with it,
		// once the last process and socket in it have gone; the address is
		// reused after that.
		n.addrs.giveBack(l.addr)
	}
}

// fill keeps the pool of ready namespaces full until Close.
func (n *Network) fill() {
	defer close(n.fillDone)
	backoff := 10 * time.Millisecond
	for {
		l, err := n.newLease()
		if err != nil {
			n.log.Warn("function network: preparing a namespace failed", "err", err)
			select {
			case <-time.After(backoff):
				backoff = min(2*backoff, 5*time.Second)
				continue
			case <-n.stop:
				return
			}
		}
		backoff = 10 * time.Millisecond
		select {
		case n.ready <- l:
		case <-n.stop:
			n.release(l)
			return
		}
	}
}

// newLease makes a network namespace with loopback up, eth0 (one end of a
// veth pair whose other end is a port of the bridge) with an address of the
// subnet and no IPv6, and a default route through the gateway.
func (n *Network) newLease() (*netLease, error) {
	addr, err := n.addrs.take()
	// Every address in use: environments destroyed a moment ago may be
	// giving theirs back as the kernel tears their namespaces down.
	for wait := 10 * time.Millisecond; errors.Is(err, errNoAddress) && wait < time.Second; wait *= 2 {
		time.Sleep(wait)
		addr, err = n.addrs.take()
	}
	if err != nil {
		return nil, err
	}
	l := &netLease{addr: addr}
	peer := hostVethName(addr)
	l.ns, err = newNetns(func() error {
		// Interfaces made from now on in this namespace have no IPv6.
		if err := disableIPv6("default"); err != nil {
			return err
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: envInterface}, PeerName: peer, PeerNamespace: netlink.NsFd(int(n.hostNS.Fd()))}
		err = h.LinkAdd(veth)
		if errors.Is(err, unix.EEXIST) {
			// A veth of a dead server's environment whose namespace the
			// kernel has not torn down yet: the address is ours now.
			if old, lerr := n.host.LinkByName(peer); lerr == nil {
				_ = n.host.LinkDel(old)
			}
			err = h.LinkAdd(veth)
		}
		if err != nil {
			return fmt.Errorf("veth: %w", err)
		}
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(lo); err != nil {
			return err
		}
		eth, err := h.LinkByName(envInterface)
		if err != nil {
			return err
		}
		ip := &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(n.subnet.Bits(), 32)}}
		if err := h.AddrAdd(eth, ip); err != nil {
			return err
		}
		if err := h.LinkSetUp(eth); err != nil {
			return err
		}
		return h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: n.gateway.AsSlice()})
	})
	if err != nil {
		n.release(l)
		return nil, fmt.Errorf("function network namespace: %w", err)
	}
	if err := n.attach(peer); err != nil {
		n.release(l)
		return nil, fmt.Errorf("function network: %s: %w", peer, err)
	}
	return l, nil
}

// attach makes the host's end of a veth pair an isolated port of the bridge.
func (n *Network) attach(name string) error {
	link, err := n.host.LinkByName(name)
	if err != nil {
		return err
	}
	if err := n.host.LinkSetMaster(link, n.bridge); err != nil {
		return err
	}
	if err := n.host.LinkSetIsolated(link, true); err != nil {
		return err
	}
	return n.host.LinkSetUp(link)
}

// Close removes everything the network made on the host: pooled namespaces,
// the DNS forwarder, the nftables table and the bridge; and restores
// net.ipv4.ip_forward if this was the last server on the host. Environments
// still alive lose their network.
func (n *Network) Close() error {
	n.close.Do(func() {
		close(n.stop)
		<-n.fillDone
		<-n.guarded
		<-n.reaped
		// From now on a release lets go of its namespace at once. What was
		// retired after reap's last round (the filler's last namespace,
		// given back when it saw the stop; an environment destroyed
		// meanwhile) and what waits in the pool go now.
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
	drain:
		for {
			select {
			case l := <-n.ready:
				n.release(l)
			default:
				break drain
			}
		}
		n.reapNow(true)
		if n.dns != nil {
			n.dns.close()
		}
		global, err := lockFile(filepath.Join(networkStateDir, globalLockName), true)
		if err != nil {
			n.log.Warn("function network: teardown without the lock", "err", err)
		} else {
			defer global.Close()
		}
		n.teardown()
	})
	return nil
}

// teardown removes the table and the bridge, gives up the subnet and
// restores IP forwarding if no other server is left.
func (n *Network) teardown() {
	if n.key != "" {
		if conn, err := nftables.New(); err == nil {
			conn.DelTable(&nftables.Table{Name: tablePrefix + n.key, Family: nftables.TableFamilyINet})
			if err := conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
				n.log.Warn("function network: removing the nftables table", "err", err)
			}
		}
	}
	if n.bridge != nil {
		if err := n.host.LinkDel(n.bridge); err != nil {
			n.log.Warn("function network: removing the bridge", "err", err)
		}
	}
	if n.lock != nil {
		n.lock.Close()
		restoreIPForward(n.log)
	}
	n.releaseHandles()
}

func (n *Network) releaseHandles() {
	n.host.Close()
	n.hostNS.Close()
}

// lockFile opens path and locks it exclusively, waiting for the lock if
// wait, else failing at once if another process holds it. Closing the file
// unlocks it. Lock files are never removed: removing one could let two
// processes hold "the same" lock on two files.
func lockFile(path string, wait bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// enableIPForward turns IPv4 forwarding on, recording the value it had if it
// was off and no server before recorded it. The caller holds the global
// lock.
func enableIPForward(log *slog.Logger) error {
	cur, err := os.ReadFile(ipForwardPath)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(cur)) == "1" {
		return nil
	}
	saved := filepath.Join(networkStateDir, savedIPForward)
	if _, err := os.Stat(saved); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(saved, cur, 0o644); err != nil {
			return err
		}
	}
	log.Info("function network: enabled IPv4 forwarding (net.ipv4.ip_forward=1); the last Lamina server to stop restores it")
	return os.WriteFile(ipForwardPath, []byte("1"), 0)
}

// restoreIPForward sets net.ipv4.ip_forward back to what it was before a
// server enabled it, once no server holds a subnet lock. The caller holds
// the global lock and no subnet lock.
func restoreIPForward(log *slog.Logger) {
	saved := filepath.Join(networkStateDir, savedIPForward)
	value, err := os.ReadFile(saved)
	if err != nil {
		return
	}
	locks, _ := filepath.Glob(filepath.Join(networkStateDir, "*.lock"))
	for _, path := range locks {
		if filepath.Base(path) == globalLockName {
			continue
		}
		f, err := lockFile(path, false)
		if err != nil {
			return // a live server still needs forwarding
		}
		f.Close()
	}
	if err := os.WriteFile(ipForwardPath, value, 0); err != nil {
		log.Warn("function network: restoring net.ipv4.ip_forward", "err", err)
		return
	}
	os.Remove(saved)
	log.Info("function network: restored net.ipv4.ip_forward", "value", strings.TrimSpace(string(value)))
}

// disableIPv6 turns IPv6 off on interface name ("default": on interfaces
// made from now on) of the calling thread's network namespace; nothing to do
// on a kernel without IPv6.
func disableIPv6(name string) error {
	err := writeSysctl("net/ipv6/conf/"+name+"/disable_ipv6", "1")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// writeSysctl writes a sysctl of the calling thread's network namespace
// (name as under /proc/sys, e.g. "net/ipv4/ip_forward").
func writeSysctl(name, value string) error {
	return os.WriteFile("/proc/sys/"+name, []byte(value), 0)
}
