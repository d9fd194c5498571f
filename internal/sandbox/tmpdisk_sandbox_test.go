//go:build linux && cgo

package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newDiskProvider is newProvider on a host that must give sandboxes a disk
// for /tmp (root, loop devices and e2fsprogs, as CI has).
func newDiskProvider(t testing.TB) *NamespaceProvider {
	t.Helper()
	p := newProvider(t)
	if p.disks == nil {
		t.Fatalf("sandboxes get a tmpfs for /tmp on this host: %s", p.TmpfsReason())
	}
	return p
}

// tmpLoopDevices returns the loop devices attached to p's /tmp images, and
// which of them are mounted in a sandbox (the others are spares, whose file
// systems are mounted detached).
func tmpLoopDevices(t testing.TB, p *NamespaceProvider) (all, mounted []string) {
	t.Helper()
	files, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		t.Fatal(err)
	}
	inUse := mountedDevices()
	for _, f := range files {
		backing, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(backing), p.disks.dir+"/") {
			continue
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

// spares counts p's spare /tmp disks.
func spares(p *NamespaceProvider) int {
	p.disks.mu.Lock()
	defer p.disks.mu.Unlock()
	n := 0
	for _, size := range p.disks.sizes {
		n += len(size.spares)
	}
	return n
}

// TestNamespaceSandboxTmpIsADisk: /tmp is an empty ext4 file system of
// EphemeralStorage's size, sticky and world-writable, nosuid and nodev;
// a 128 MB function writes 400 MB there and reads it back without being
// killed for memory, and gets ENOSPC once it has written the size.
func TestNamespaceSandboxTmpIsADisk(t *testing.T) {
	p := newDiskProvider(t)
	out, sb := runSpec(t, p, Spec{MemoryMB: 128, EphemeralMB: 512}, `
import json, os, zlib
r = {}
st = os.statvfs("/tmp")
r["avail"] = st.f_bavail * st.f_frsize
r["nosuid"] = bool(st.f_flag & os.ST_NOSUID)
r["nodev"] = bool(st.f_flag & os.ST_NODEV)
mount = [l.split() for l in open("/proc/self/mountinfo") if l.split()[4] == "/tmp"][0]
r["fstype"] = mount[mount.index("-") + 1]
r["mode"] = oct(os.stat("/tmp").st_mode)
r["entries"] = os.listdir("/tmp")

block = os.urandom(1 << 20)
crc = 0
with open("/tmp/big", "wb") as f:
    for i in range(400):
        chunk = i.to_bytes(4, "little") + block[4:]
        f.write(chunk)
        crc = zlib.crc32(chunk, crc)
back = 0
with open("/tmp/big", "rb") as f:
    while chunk := f.read(1 << 20):
        back = zlib.crc32(chunk, back)
r["readBack"] = back == crc

written = 0
fd = os.open("/tmp/fill", os.O_WRONLY | os.O_CREAT, 0o600)
try:
    while True:
        written += os.write(fd, block)
except OSError as e:
    r["fillErrno"] = e.errno
r["written"] = (400 << 20) + written
print(json.dumps(r))
`)
	if err := sb.ExitError(); err != nil || sb.OutOfMemory() {
		t.Fatalf("the probe ended with %v (out of memory: %v):\n%s", err, sb.OutOfMemory(), out)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("probe output: %v\n%s", err, out)
	}
	want := float64(512<<20 + fileSlack)
	if avail := r["avail"].(float64); avail < want || avail > want+sizeTolerance {
		t.Errorf("/tmp offers %v bytes, want %v to %v", avail, want, want+sizeTolerance)
	}
	for k, v := range map[string]any{"nosuid": true, "nodev": true, "fstype": "ext4", "mode": "0o41777", "entries": []any{},
		"readBack": true, "fillErrno": 28.0} {
		if fmt.Sprint(r[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, r[k], v)
		}
	}
	if written := r["written"].(float64); written < 512<<20 || written > r["avail"].(float64) {
		t.Errorf("%v bytes written to /tmp before ENOSPC, want 512 MB to what statfs offered (%v)", written, r["avail"])
	}
}

// TestNamespaceSandboxTmpDiskGoesWithSandbox: a sandbox's /tmp is a loop
// device mounted while it lives, and neither device nor image outlives it;
// the provider keeps only spare disks, unmounted.
func TestNamespaceSandboxTmpDiskGoesWithSandbox(t *testing.T) {
	p := newDiskProvider(t)
	sb, err := p.Create(context.Background(), Spec{ID: "tmp-goes", TaskDir: t.TempDir(), MemoryMB: 128, EphemeralMB: 16})
	if err != nil {
		t.Fatal(err)
	}
	if _, mounted := tmpLoopDevices(t, p); len(mounted) != 1 {
		t.Errorf("mounted loop devices of /tmp disks with one sandbox: %v, want one", mounted)
	}
	sb.Destroy()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		all, mounted := tmpLoopDevices(t, p)
		if len(mounted) == 0 && len(all) == spares(p) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after Destroy, /tmp's loop devices are %v, mounted %v; want only the %d spares", all, mounted, spares(p))
		}
	}
	if spares(p) > 2*spareDisks {
		t.Errorf("%d spare disks for two sizes, want at most %d", spares(p), 2*spareDisks)
	}
	if images, _ := os.ReadDir(p.disks.dir); len(images) != 0 {
		t.Errorf("%d named files in the images directory", len(images))
	}
}

// BenchmarkTmpDisk measures taking a /tmp disk and letting it go, without
// mounting it, by size: from the spares, as a sandbox does, and made on the
// spot.
func BenchmarkTmpDisk(b *testing.B) {
	p := newDiskProvider(b)
	for _, mb := range []int{512, 10240} {
		size, err := p.disks.size(mb)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("spare/%dMB", mb), func(b *testing.B) {
			for b.Loop() {
				for size.refilling.Load() { // as if cold starts were rarer than spares are made
					time.Sleep(100 * time.Microsecond)
				}
				disk, err := p.disks.take(mb)
				if err != nil {
					b.Fatal(err)
				}
				disk.release()
			}
		})
		b.Run(fmt.Sprintf("new/%dMB", mb), func(b *testing.B) {
			for b.Loop() {
				disk, err := p.disks.attach(size.image)
				if err != nil {
					b.Fatal(err)
				}
				disk.release()
			}
		})
	}
}
