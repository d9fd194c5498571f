// Package sandboxtest finds what a server's sandboxes leave on the host,
// for tests that check that nothing outlives them: the loop devices of
// their /tmp disks and the host's ends of their veth pairs. The sandbox
// package's tests and the end-to-end tests share it.
package sandboxtest

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// LoopDevices returns the loop devices whose backing files are below dir
// (a server's /tmp disk images), and which of them have a file system
// mounted: a live sandbox's; the others are spares made ahead.
func LoopDevices(t testing.TB, dir string) (all, mounted []string) {
	t.Helper()
	files, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		backing, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(backing), dir+"/") {
			continue // detached meanwhile, or another's
		}
		dev := strings.Split(f, "/")[3]
		all = append(all, dev)
		if _, err := os.Stat("/sys/fs/ext4/" + dev); err == nil {
			mounted = append(mounted, dev)
		}
	}
	return all, mounted
}

// vethPrefix starts the name of the host's end of an environment's veth
// pair, followed by the environment's IPv4 address in hex (docs/sandbox.md).
const vethPrefix = "lmnv-"

// Veths returns the host's ends of the veth pairs of environments with an
// address in subnet.
func Veths(t testing.TB, subnet netip.Prefix) []string {
	t.Helper()
	links, err := netlink.LinkList()
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
