//go:build linux

package sandbox

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// NetworkMode says what execution environments reach on the network.
type NetworkMode string

// The function network modes.
const (
	// NetworkNone gives environments nothing but their own loopback.
	NetworkNone NetworkMode = "none"
	// NetworkInternet lets environments reach public addresses, the allowed
	// ranges, and nothing denied.
	NetworkInternet NetworkMode = "internet"
	// NetworkAllowlist lets environments reach the allowed ranges only.
	NetworkAllowlist NetworkMode = "allowlist"
)

// ParseNetworkMode checks a --function-network value.
func ParseNetworkMode(s string) (NetworkMode, error) {
	switch m := NetworkMode(s); m {
	case NetworkNone, NetworkInternet, NetworkAllowlist:
		return m, nil
	}
	return "", fmt.Errorf("function network mode must be none, internet or allowlist, not %q", s)
}

// NonPublicRanges are the IPv4 ranges that IANA's special-purpose address
// registry marks as not globally reachable: private networks, shared address
// space, loopback, link-local (the cloud metadata address 169.254.169.254),
// benchmarking, documentation, multicast and reserved addresses. Environments
// reach them only where the operator allows them.
var NonPublicRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// policy is the outbound policy of one server's environments. Traffic an
// environment sends to the host itself (any of its addresses, any port) is
// refused whatever the policy says, but for DNS to the gateway; what it sends
// through the host goes by the first rule whose range holds the destination:
//
//  1. the server's own subnet: refused (environments never reach each other);
//  2. each denied range: refused;
//  3. each allowed range: accepted;
//  4. each non-public range (NonPublicRanges): refused;
//  5. anything else: accepted in internet mode, refused in allowlist mode.
type policy struct {
	subnet netip.Prefix
	mode   NetworkMode
	allow  []netip.Prefix
	deny   []netip.Prefix
}

// policyRule sends traffic to dst to a verdict.
type policyRule struct {
	dst    netip.Prefix
	accept bool
}

// rules returns the policy's rules in order, and the verdict for what none
// of them matches.
func (p policy) rules() (rules []policyRule, otherwise bool) {
	rules = append(rules, policyRule{dst: p.subnet})
	for _, d := range p.deny {
		rules = append(rules, policyRule{dst: d})
	}
	for _, a := range p.allow {
		rules = append(rules, policyRule{dst: a, accept: true})
	}
	for _, n := range NonPublicRanges {
		rules = append(rules, policyRule{dst: n})
	}
	return rules, p.mode == NetworkInternet
}

// allows says whether an environment may open a connection through the host
// to dst.
func (p policy) allows(dst netip.Addr) bool {
	rules, otherwise := p.rules()
	for _, r := range rules {
		if r.dst.Contains(dst) {
			return r.accept
		}
	}
	return otherwise
}

// Each environment opens at most newConnRate connections through the host
// per second (newConnBurst at once), so that one cannot fill the host's
// connection tracking table (net.netfilter.nf_conntrack_max) on its own; the
// kernel tracks a closed TCP connection for two more minutes.
const (
	newConnRate  = 250
	newConnBurst = 500
	// newConnMeter is the set that meters them, by source address.
	newConnMeter = "new-connections"
)

// The chains of a server's nftables table.
const (
	chainInput       = "input"        // hook input: traffic to the host itself
	chainForward     = "forward"      // hook forward: traffic through the host
	chainPostrouting = "postrouting"  // hook postrouting: masquerade
	chainToHost      = "from-env-in"  // environments' traffic to the host
	chainThrough     = "from-env-out" // environments' traffic through the host
	chainRefuse      = "refuse"       // what is refused goes here
)

// install adds the server's table, named table, to conn's batch: the policy
// for traffic from bridge (the environments' bridge, whose own address is
// gateway), masquerade of what leaves, and DNS to the gateway. Nothing in it
// touches traffic of other interfaces. It returns how many rules each chain
// gets.
func (p policy) install(conn *nftables.Conn, table, bridge string, gateway netip.Addr) (rulesPerChain map[string]int) {
	rulesPerChain = map[string]int{}
	t := conn.AddTable(&nftables.Table{Name: table, Family: nftables.TableFamilyINet})
	accept := nftables.ChainPolicyAccept
	base := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority, typ nftables.ChainType) *nftables.Chain {
		return conn.AddChain(&nftables.Chain{Name: name, Table: t, Hooknum: hook, Priority: prio, Type: typ, Policy: &accept})
	}
	input := base(chainInput, nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	forward := base(chainForward, nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	post := base(chainPostrouting, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, nftables.ChainTypeNAT)
	toHost := conn.AddChain(&nftables.Chain{Name: chainToHost, Table: t})
	through := conn.AddChain(&nftables.Chain{Name: chainThrough, Table: t})
	refuse := conn.AddChain(&nftables.Chain{Name: chainRefuse, Table: t})
	rule := func(c *nftables.Chain, exprs ...[]expr.Any) {
		var all []expr.Any
		for _, e := range exprs {
			all = append(all, e...)
		}
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: all})
		rulesPerChain[c.Name]++
	}

	// Refused at once: a TCP connect with a reset ("connection refused"),
	// anything else with ICMP administratively prohibited ("no route to
	// host"; the kernel sends only a few of those a second to one address,
	// which is why TCP gets resets).
	rule(refuse, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
	})
	rule(refuse, []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}})

	// To the host: DNS to the gateway, nothing else.
	rule(input, ifname(expr.MetaKeyIIFNAME, bridge), jump(chainToHost))
	rule(toHost, onlyIPv4(), drop())
	rule(toHost, ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept))
	for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		rule(toHost, ipAddr(false, netip.PrefixFrom(gateway, 32)), dstPort(proto, 53), verdict(expr.VerdictAccept))
	}
	rule(toHost, reject())

	// Into environments: only what answers their own connections.
	rule(forward, ifname(expr.MetaKeyOIFNAME, bridge), ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept))
	rule(forward, ifname(expr.MetaKeyOIFNAME, bridge), drop())
	// Out of environments: the policy's rules in order.
	rule(forward, ifname(expr.MetaKeyIIFNAME, bridge), jump(chainThrough))
	rule(through, onlyIPv4(), drop())
	rule(through, notFrom(p.subnet), drop()) // nothing but the environments' own addresses
	rule(through, ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept))
	meter := &nftables.Set{Table: t, Name: newConnMeter, KeyType: nftables.TypeIPAddr, Dynamic: true,
		HasTimeout: true, Timeout: time.Minute, Size: 1 << 16}
	_ = conn.AddSet(meter, nil) // only fails for elements, and there are none
	rule(through, []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}, // ip saddr
		&expr.Dynset{SrcRegKey: 1, SetName: meter.Name, SetID: meter.ID, Operation: unix.NFT_DYNSET_OP_UPDATE,
			Exprs: []expr.Any{&expr.Limit{Type: expr.LimitTypePkts, Rate: newConnRate, Over: true, Unit: expr.LimitTimeSecond, Burst: newConnBurst}}},
	}, reject())
	rules, otherwise := p.rules()
	for _, r := range rules {
		if r.accept {
			rule(through, ipAddr(false, r.dst), verdict(expr.VerdictAccept))
		} else {
			rule(through, ipAddr(false, r.dst), reject())
		}
	}
	if otherwise {
		rule(through, verdict(expr.VerdictAccept))
	} else {
		rule(through, reject())
	}

	// Out to the host's routes under the host's address.
	rule(post, ipAddr(true, p.subnet), ifnameNot(expr.MetaKeyOIFNAME, bridge), []expr.Any{&expr.Masq{}})
	return rulesPerChain
}

// ifname matches the input or output interface's name.
func ifname(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(name)},
	}
}

// ifnameNot matches any interface but name.
func ifnameNot(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifnameData(name)},
	}
}

// ifnameData is an interface name as the kernel compares it: NUL-padded to
// IFNAMSIZ.
func ifnameData(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// onlyIPv4 matches what is not IPv4 (environments have no IPv6).
func onlyIPv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// ipAddr matches the IPv4 source (source true) or destination address
// against p.
func ipAddr(source bool, p netip.Prefix) []expr.Any {
	return ipAddrCmp(source, p, expr.CmpOpEq)
}

// notFrom matches IPv4 source addresses outside p.
func notFrom(p netip.Prefix) []expr.Any { return ipAddrCmp(true, p, expr.CmpOpNeq) }

func ipAddrCmp(source bool, p netip.Prefix, op expr.CmpOp) []expr.Any {
	offset := uint32(16) // destination address in the IPv4 header
	if source {
		offset = 12
	}
	var mask [4]byte
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	network := p.Masked().Addr().As4()
	return []expr.Any{
		// IPv4 only (this is an inet table), which also lets nft show the
		// rule as "ip daddr …".
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask[:], Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: network[:]},
	}
}

// dstPort matches the transport protocol proto and destination port.
func dstPort(proto byte, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// ctState matches connections in any of the given conntrack states.
func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func verdict(kind expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: kind}} }

func drop() []expr.Any { return verdict(expr.VerdictDrop) }

func jump(chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}
}

// reject refuses at once (see the refuse chain), so that a function's
// connect fails rather than hangs until its timeout.
func reject() []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictGoto, Chain: chainRefuse}}
}

// describe renders the policy for logs: "deny 10.217.0.0/22, ...".
func (p policy) describe() string {
	rules, otherwise := p.rules()
	var b strings.Builder
	for _, r := range rules[:1+len(p.deny)+len(p.allow)] {
		if r.accept {
			fmt.Fprintf(&b, "allow %s, ", r.dst)
		} else {
			fmt.Fprintf(&b, "deny %s, ", r.dst)
		}
	}
	b.WriteString("deny non-public ranges, ")
	if otherwise {
		b.WriteString("allow the rest")
	} else {
		b.WriteString("deny the rest")
	}
	return b.String()
}
