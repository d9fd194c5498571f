package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// DefaultNetworkRange is where a server picks its environments' subnet when
// the operator names none: the first block of DefaultSubnetBits in it that
// no route of the host touches and no other server holds.
var DefaultNetworkRange = netip.MustParsePrefix("10.217.0.0/16")

// DefaultSubnetBits is the prefix length of a picked subnet: a /22 holds
// 1,021 environments (the gateway, network and broadcast addresses aside).
const DefaultSubnetBits = 22

// Bounds of an operator's subnet: at least 5 environments, at most 65,533.
const (
	minSubnetBits = 16
	maxSubnetBits = 29
)

// checkSubnet says whether p can be a server's environments' subnet.
func checkSubnet(p netip.Prefix) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("function network subnet %s: only IPv4 subnets are supported", p)
	}
	if p.Bits() < minSubnetBits || p.Bits() > maxSubnetBits {
		return fmt.Errorf("function network subnet %s: the prefix length must be between /%d and /%d", p, minSubnetBits, maxSubnetBits)
	}
	if p != p.Masked() {
		return fmt.Errorf("function network subnet %s: not a network address (did you mean %s?)", p, p.Masked())
	}
	return nil
}

// pickSubnet returns the first block of the given prefix length in within
// that overlaps none of routes and that claim takes (claim holds it for this
// server, or says another server holds it).
func pickSubnet(within netip.Prefix, bits int, routes []netip.Prefix, claim func(netip.Prefix) bool) (netip.Prefix, error) {
	if bits < within.Bits() || bits > 32 {
		return netip.Prefix{}, fmt.Errorf("cannot cut /%d blocks from %s", bits, within)
	}
	start := addrUint(within.Masked().Addr())
	step := uint32(1) << (32 - bits)
	blocks := uint64(1) << (bits - within.Bits())
	for i := range blocks {
		block := netip.PrefixFrom(uintAddr(start+uint32(i)*step), bits)
		if overlapsAny(block, routes) {
			continue
		}
		if claim(block) {
			return block, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d block in %s: every one is routed on this host or held by another Lamina server; choose one with --function-network-subnet", bits, within)
}

// overlapsAny says whether p overlaps one of routes.
func overlapsAny(p netip.Prefix, routes []netip.Prefix) bool {
	for _, r := range routes {
		if r.Overlaps(p) {
			return true
		}
	}
	return false
}

// gatewayOf is a subnet's first host address: the host's own address on the
// environments' bridge.
func gatewayOf(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

// subnetKey names a server's host-wide network resources (bridge, nftables
// table, lock file) after its subnet's network address: 10.217.0.0 is
// "0ad90000".
func subnetKey(subnet netip.Prefix) string {
	return fmt.Sprintf("%08x", addrUint(subnet.Masked().Addr()))
}

// hostVethName is the host's end of the veth pair of the environment with
// address addr: "lmnv-" and the address in hex, unique on the host because
// every server's subnet is.
func hostVethName(addr netip.Addr) string { return fmt.Sprintf("lmnv-%08x", addrUint(addr)) }

func addrUint(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func uintAddr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// errNoAddress is returned when every address of the subnet is in use.
var errNoAddress = errors.New("function network: every address of the subnet is in use")

// addrPool hands out a subnet's environment addresses. Addresses come back
// in the order they were given up (first in, first out), so that an address
// is reused as late as possible, and only once the interface of its last
// holder has gone: a destroyed environment's veth lives on until the kernel
// has torn its network namespace down.
type addrPool struct {
	gone func(ifname string) bool // whether a former holder's interface has gone

	mu      sync.Mutex
	free    []netip.Addr        // in the order to hand out
	retired map[netip.Addr]bool // given up, interface maybe still there
}

// newAddrPool returns the pool of subnet's addresses, without the network,
// gateway and broadcast addresses.
func newAddrPool(subnet netip.Prefix, gone func(ifname string) bool) *addrPool {
	p := &addrPool{gone: gone, retired: map[netip.Addr]bool{}}
	first := addrUint(gatewayOf(subnet)) + 1
	last := addrUint(subnet.Masked().Addr()) | (1<<(32-subnet.Bits()) - 1) - 1
	for v := first; v <= last; v++ {
		p.free = append(p.free, uintAddr(v))
	}
	return p
}

// take returns a free address.
func (p *addrPool) take() (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range len(p.free) {
		a := p.free[0]
		p.free = p.free[1:]
		if !p.retired[a] {
			return a, nil
		}
		if p.gone(hostVethName(a)) {
			delete(p.retired, a)
			return a, nil
		}
		p.free = append(p.free, a) // its last holder's veth is still there
	}
	return netip.Addr{}, errNoAddress
}

// giveBack returns an address whose holder may still have its veth.
func (p *addrPool) giveBack(a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retired[a] = true
	p.free = append(p.free, a)
}
