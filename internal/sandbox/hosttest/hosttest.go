// Package hosttest holds what the sandbox package's tests and the
// end-to-end tests both need: finding what a server's sandboxes leave on
// the host (the loop devices of their /tmp disks, the host's ends of their
// veth pairs), for tests that check that nothing outlives them; and a DNS
// server for the environments' DNS forwarder to ask.
package hosttest

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
)

// LoopDevices returns the loop devices whose backing files are below dir
// (a server's /tmp disk images), and which of them are mounted in a mount
// namespace: a live sandbox's. The others are spares made ahead, whose file
// systems are mounted detached.
func LoopDevices(t testing.TB, dir string) (all, mounted []string) {
	t.Helper()
	files, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		t.Fatal(err)
	}
	inUse := mountedDevices()
	for _, f := range files {
		backing, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(backing), dir+"/") {
			continue // detached meanwhile, or another's
		}
		dev := strings.Split(f, "/")[3]
		all = append(all, dev)
		if number, err := os.ReadFile("/sys/block/" + dev + "/dev"); err == nil && inUse[strings.TrimSpace(string(number))] {
			mounted = append(mounted, dev)
		}
	}
	return all, mounted
}

// mountedDevices returns the devices ("major:minor") of the file systems
// mounted in the mount namespace of any process of this host.
func mountedDevices() map[string]bool {
	devices := map[string]bool{}
	procs, _ := filepath.Glob("/proc/[0-9]*/mountinfo")
	seen := map[string]bool{} // mount namespaces already read
	for _, mountinfo := range procs {
		ns, err := os.Readlink(filepath.Join(filepath.Dir(mountinfo), "ns", "mnt"))
		if err != nil || seen[ns] {
			continue
		}
		seen[ns] = true
		data, err := os.ReadFile(mountinfo)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if fields := strings.Fields(line); len(fields) > 2 {
				devices[fields[2]] = true
			}
		}
	}
	return devices
}

// vethPrefix starts the name of the host's end of an environment's veth
// pair, followed by the environment's IPv4 address in hex (docs/sandbox.md).
const vethPrefix = "lmnv-"

// Veths returns the host's ends of the veth pairs of environments with an
// address in subnet.
func Veths(t testing.TB, subnet netip.Prefix) []string {
	t.Helper()
	links, err := netlink.LinkList()
	// Links come and go on a busy host: the kernel interrupts the dump.
	for tries := 1; errors.Is(err, netlink.ErrDumpInterrupted) && tries < 100; tries++ {
		links, err = netlink.LinkList()
	}
	if err != nil {
		t.Fatal(err)
	}
	var veths []string
	for _, l := range links {
		name := l.Attrs().Name
		if addr, ok := vethAddr(name); ok && subnet.Contains(addr) {
			veths = append(veths, name)
		}
	}
	return veths
}

// vethAddr is the environment's address that a host veth's name encodes.
func vethAddr(name string) (netip.Addr, bool) {
	hex, ok := strings.CutPrefix(name, vethPrefix)
	if !ok || len(hex) != 8 {
		return netip.Addr{}, false
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return netip.Addr{}, false
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], uint32(v))
	return netip.AddrFrom4(a), true
}

// DNS serves DNS on a loopback port of the host until the test ends, and
// returns its address: name has the A record a, and no other name exists.
func DNS(t testing.TB, name string, a netip.Addr) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		switch {
		case len(q.Question) != 1 || q.Question[0].Name != dns.Fqdn(name):
			m.Rcode = dns.RcodeNameError
		case q.Question[0].Qtype == dns.TypeA:
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: a.AsSlice()}}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}
