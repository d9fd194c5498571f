//go:build linux

package sandbox

// A namespace sandbox's /tmp is a file system of its own on disk, of the
// function's EphemeralStorage size, so that what a function writes there is
// not charged to its memory as a tmpfs's pages are (the page cache of a
// disk file system can be written back and reclaimed).
//
// Each environment gets an ext4 image in a file without a name (O_TMPFILE)
// on the data directory's file system, attached to a loop device that
// clears itself when its last user goes (LO_FLAGS_AUTOCLEAR). The host
// mounts its file system ahead of time, detached from any mount namespace
// (fsopen, fsmount: mounting ext4 reads and checks its metadata, 0.7 ms on
// a quiet machine and 6 ms at the median on a busy one), and the sandbox's
// init attaches that mount on /tmp (move_mount, microseconds). The host
// keeps the device and the mount open until Destroy, which closes them
// after the sandbox's last process has exited and the kernel has unmounted
// the file system with the mount namespace. The device then detaches itself
// and the file, having no name, is freed: nothing is left to wipe, and a
// server that crashes leaves nothing either, since the kernel closes its
// descriptors (a detached mount goes with its last one) and kills its
// sandboxes' inits.
//
// Formatting ext4 takes milliseconds (mkfs.ext4 and debugfs), so an image is
// formatted once per size and kept in memory as its few non-zero blocks
// (about 60 KB for 512 MB, 180 KB for 10 GB); a new environment's file gets
// those blocks written and is otherwise sparse: it takes disk space as the
// function writes. A new environment is refused when the data directory's
// file system could not hold its whole /tmp and minFreeDisk more.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	// diskBlockSize is the block size of the images and of their loop
	// devices.
	diskBlockSize = 4096
	// fileSlack is room beyond EphemeralStorage for the metadata of the files
	// a function writes (extent tree blocks), so that a single file of the
	// full size fits.
	fileSlack = 16 * diskBlockSize
	// sizeTolerance is how much more than asked an image may offer.
	sizeTolerance = 1 << 20
	// minFreeDisk is the free space a new environment's full /tmp must
	// leave on the data directory's file system, for the store and the
	// code cache.
	minFreeDisk = 1 << 30
	// maxDiskSizes bounds the EphemeralStorage sizes whose formatted image
	// (in memory) and spare disks (loop devices) are kept.
	maxDiskSizes = 16
	// spareDisks is how many disks of each size are made ahead.
	spareDisks = 2
	// defaultEphemeralMB is the size of /tmp when a spec gives none, as
	// Lambda's default.
	defaultEphemeralMB = 512
)

// ext4Features are the file system's features: no journal (nothing in /tmp
// must survive a crash), no reserved GDT blocks for online resizing.
const ext4Features = "none,ext_attr,dir_index,filetype,extent,64bit,flex_bg,sparse_super,large_file,dir_nlink,extra_isize,metadata_csum"

// tmpDisks makes the /tmp disks of a namespace provider's sandboxes.
type tmpDisks struct {
	dir     string // where the unnamed image files are created
	mkfs    string // mkfs.ext4
	debugfs string

	mu    sync.Mutex
	sizes map[int]*diskSize // by size in MB
}

// diskSize holds the disks of one size: the formatted image, made once, and
// spare disks made ahead.
type diskSize struct {
	mb    int
	once  sync.Once
	image *diskImage
	err   error
	// spares are attached disks ready to be taken; refilling is set while
	// a goroutine makes more; dropped once the size is no longer kept.
	spares             chan *tmpDisk
	refilling, dropped atomic.Bool
}

// newTmpDisks checks that this host can give sandboxes disk-backed /tmp
// (mkfs.ext4 and debugfs, ext4, loop devices, unnamed files in dir) by
// making one of the default size, the first spare, and prepares dir.
func newTmpDisks(dir string) (*tmpDisks, error) {
	d := &tmpDisks{dir: dir, sizes: map[int]*diskSize{}}
	var err error
	if d.mkfs, err = findTool("mkfs.ext4"); err != nil {
		return nil, err
	}
	if d.debugfs, err = findTool("debugfs"); err != nil {
		return nil, err
	}
	if filesystems, err := os.ReadFile("/proc/filesystems"); err != nil || !bytes.Contains(filesystems, []byte("\text4\n")) {
		return nil, errors.New("the kernel has no ext4")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	size, err := d.size(defaultEphemeralMB)
	if err != nil {
		return nil, err
	}
	disk, err := d.attach(size.image)
	if err != nil {
		return nil, err
	}
	size.spares <- disk
	return d, nil
}

// findTool finds an e2fsprogs program on PATH or in the sbin directories,
// which a non-login PATH may lack.
func findTool(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		path := filepath.Join(dir, name)
		if info, err := os.Stat(path); err == nil && info.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s not found (install e2fsprogs)", name)
}

// tmpDisk is one environment's /tmp device, attached to its image, with
// its file system mounted.
type tmpDisk struct {
	mu  sync.Mutex
	dev *os.File // the loop device, open until the sandbox is destroyed
	// mount is the file system's mount, detached until the init attaches
	// it; open until the sandbox is destroyed.
	mount *os.File
	path  string // the device's path
}

// release closes the host's hold on the mount and the device: a mount
// still detached goes at once; once the sandbox's is gone too, the kernel
// detaches the device and frees the image. It is safe to call more than
// once, from any goroutine.
func (t *tmpDisk) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mount != nil {
		t.mount.Close()
		t.mount = nil
	}
	if t.dev != nil {
		t.dev.Close()
		t.dev = nil
	}
}

// mountDetached mounts the ext4 file system of disk, detached from any
// mount namespace, nosuid and nodev. An I/O error makes the file system
// read-only (never panics the host, whatever the image's own setting), and
// there are no cache flushes: /tmp needs no durability.
func mountDetached(disk *tmpDisk) error {
	fs, err := unix.Fsopen("ext4", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen ext4: %w", err)
	}
	defer unix.Close(fs)
	for _, set := range []func() error{
		func() error { return unix.FsconfigSetString(fs, "source", disk.path) },
		func() error { return unix.FsconfigSetString(fs, "errors", "remount-ro") },
		func() error { return unix.FsconfigSetFlag(fs, "nobarrier") },
		func() error { return unix.FsconfigCreate(fs) },
	} {
		if err := set(); err != nil {
			return fmt.Errorf("mount %s: %w", disk.path, err)
		}
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return fmt.Errorf("fsmount %s: %w", disk.path, err)
	}
	disk.mount = os.NewFile(uintptr(mnt), "tmp-mount")
	return nil
}

// take returns a new, empty /tmp disk of mb MB: a spare if there is one
// (attaching a loop device and mounting its file system take milliseconds
// of the kernel's time), and has spares made for the next ones.
func (d *tmpDisks) take(mb int) (*tmpDisk, error) {
	size, err := d.size(mb)
	if err != nil {
		return nil, err
	}
	if err := checkDiskSpace(d.dir, size.image.size); err != nil {
		return nil, err
	}
	var disk *tmpDisk
	select {
	case disk = <-size.spares:
	default:
		if disk, err = d.attach(size.image); err != nil {
			return nil, err
		}
	}
	if !size.refilling.Swap(true) {
		go d.refill(size)
	}
	return disk, nil
}

// refill makes spare disks of size until there are spareDisks, unless the
// size is dropped meanwhile.
func (d *tmpDisks) refill(size *diskSize) {
	defer size.refilling.Store(false)
	for len(size.spares) < cap(size.spares) && !size.dropped.Load() {
		disk, err := d.attach(size.image)
		if err != nil {
			return // the next take tries again, and reports the error
		}
		select {
		case size.spares <- disk:
		default:
			disk.release()
		}
	}
	if size.dropped.Load() {
		size.drain()
	}
}

// drain releases the spare disks.
func (size *diskSize) drain() {
	for {
		select {
		case disk := <-size.spares:
			disk.release()
		default:
			return
		}
	}
}

// attach makes a disk of img: a new unnamed file written with it, attached
// to a loop device, its file system mounted detached.
func (d *tmpDisks) attach(img *diskImage) (*tmpDisk, error) {
	f, err := os.OpenFile(d.dir, os.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("/tmp image: %w", err)
	}
	if err := img.writeTo(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("/tmp image: %w", err)
	}
	disk, err := attachLoop(f)
	f.Close() // the loop device keeps its own reference
	if err != nil {
		return nil, err
	}
	if err := mountDetached(disk); err != nil {
		disk.release()
		return nil, fmt.Errorf("/tmp image: %w", err)
	}
	return disk, nil
}

// checkDiskSpace refuses a /tmp image of size bytes when the file system
// of dir could not hold all of it and minFreeDisk more. Images are sparse:
// reserving their space (fallocate) would guarantee it, but measured 0.4 ms
// more per environment at 512 MB and 5 ms at 10 GB, and as much again to
// free it, several times that on a busy host.
func checkDiskSpace(dir string, size int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("/tmp image: %w", err)
	}
	if free := int64(st.Bavail) * st.Bsize; free-size < minFreeDisk {
		return fmt.Errorf("/tmp image: %d MB of disk space free for %d MB of /tmp, and %d MB must stay free: %w",
			free>>20, size>>20, minFreeDisk>>20, unix.ENOSPC)
	}
	return nil
}

// attachLoop attaches a free loop device to backing, clearing itself on its
// last close. Another process may take the free device first; then it tries
// the next.
func attachLoop(backing *os.File) (*tmpDisk, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("loop devices: %w", err)
	}
	defer ctl.Close()
	flags := uint32(unix.LO_FLAGS_AUTOCLEAR | unix.LO_FLAGS_DIRECT_IO)
	for range 64 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("loop devices: get a free one: %w", err)
		}
		path := "/dev/loop" + strconv.Itoa(n)
		dev, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("loop devices: %w", err)
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Size: diskBlockSize}
		cfg.Info.Flags = flags
		copy(cfg.Info.File_name[:], "lamina /tmp")
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		switch {
		case err == nil:
			return &tmpDisk{dev: dev, path: path}, nil
		case errors.Is(err, unix.EINVAL) && flags&unix.LO_FLAGS_DIRECT_IO != 0:
			// The data directory's file system has no direct I/O: go
			// through its page cache instead.
			flags &^= unix.LO_FLAGS_DIRECT_IO
		case !errors.Is(err, unix.EBUSY):
			dev.Close()
			return nil, fmt.Errorf("loop devices: configure %s: %w", path, err)
		}
		dev.Close()
	}
	return nil, errors.New("loop devices: no free one could be taken")
}

// size returns the disks of mb MB, formatting their image on first use.
// It keeps maxDiskSizes sizes, dropping any other one (and its spares) to
// take a new one.
func (d *tmpDisks) size(mb int) (*diskSize, error) {
	d.mu.Lock()
	size := d.sizes[mb]
	if size == nil {
		if len(d.sizes) >= maxDiskSizes {
			for other, s := range d.sizes {
				delete(d.sizes, other)
				s.dropped.Store(true)
				s.drain()
				break
			}
		}
		size = &diskSize{mb: mb, spares: make(chan *tmpDisk, spareDisks)}
		d.sizes[mb] = size
	}
	d.mu.Unlock()
	size.once.Do(func() {
		size.image, size.err = sizeImage(int64(mb)<<20+fileSlack, d.format)
		if size.err != nil {
			size.err = fmt.Errorf("/tmp image of %d MB: %w", mb, size.err)
		}
	})
	return size, size.err
}

// format makes an empty ext4 image of size bytes whose root directory is
// world-writable and sticky and holds nothing (no lost+found), as /tmp
// should.
func (d *tmpDisks) format(size int64) (*diskImage, error) {
	f, err := os.CreateTemp(d.dir, "format-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return nil, err
	}
	mkfs := exec.Command(d.mkfs, "-q", "-F", "-t", "ext4", "-O", ext4Features, "-b", strconv.Itoa(diskBlockSize),
		"-I", "256", "-i", "16384", "-m", "0", "-E", "lazy_itable_init=0,root_owner=0:0", f.Name())
	if out, err := mkfs.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mkfs.ext4: %w: %s", err, bytes.TrimSpace(out))
	}
	// debugfs exits with 0 whatever happens, and says what went wrong on
	// stderr, where otherwise only its banner goes.
	var stderr bytes.Buffer
	debugfs := exec.Command(d.debugfs, "-w", "-f", "-", f.Name())
	debugfs.Stdin = strings.NewReader("rmdir lost+found\nsif <2> mode 041777\n")
	debugfs.Stderr = &stderr
	err = debugfs.Run()
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if err == nil && line != "" && !strings.HasPrefix(line, "debugfs ") {
			err = errors.New(line)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("debugfs: %w", err)
	}
	return readImage(f, size)
}

// sizeImage formats images until one offers want bytes to files, or at most
// sizeTolerance more: it starts from want and corrects each next size by
// what the last image lacked or had in excess, scaled by the share of it
// the file system spent on itself.
func sizeImage(want int64, format func(size int64) (*diskImage, error)) (*diskImage, error) {
	var best *diskImage // the smallest image seen that offers enough
	size := roundUp(want, diskBlockSize)
	for range 8 {
		img, err := format(size)
		if err != nil {
			return nil, err
		}
		avail, err := img.available()
		if err != nil {
			return nil, err
		}
		if avail >= want && (best == nil || img.size < best.size) {
			best = img
		}
		if avail >= want && avail-want <= sizeTolerance || avail <= 0 {
			break
		}
		kept := float64(avail) / float64(size) // what files get of each byte
		size = roundUp(size+int64(float64(want-avail)/kept), diskBlockSize)
	}
	if best == nil {
		return nil, fmt.Errorf("no image size gives %d bytes of free space", want)
	}
	return best, nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// diskImage is an image file's content: its size and its non-zero blocks;
// everything else reads as zeros.
type diskImage struct {
	size    int64
	extents []diskExtent
}

// diskExtent is a run of non-zero blocks of an image.
type diskExtent struct {
	off  int64
	data []byte
}

// readImage reads the non-zero blocks of an image file of size bytes,
// skipping its holes.
func readImage(f *os.File, size int64) (*diskImage, error) {
	img := &diskImage{size: size}
	block := make([]byte, diskBlockSize)
	for off := int64(0); off < size; {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		} else if err != nil {
			return nil, err
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		for off = data; off < hole; off += diskBlockSize {
			n, err := f.ReadAt(block, off)
			if err != nil && err != io.EOF {
				return nil, err
			}
			img.add(off, block[:n])
		}
	}
	return img, nil
}

// add records the block at off unless it is all zeros, extending the last
// extent when it follows on.
func (img *diskImage) add(off int64, block []byte) {
	if len(block) == 0 || (block[0] == 0 && bytes.Equal(block[1:], block[:len(block)-1])) {
		return
	}
	if n := len(img.extents); n > 0 {
		last := &img.extents[n-1]
		if last.off+int64(len(last.data)) == off {
			last.data = append(last.data, block...)
			return
		}
	}
	img.extents = append(img.extents, diskExtent{off: off, data: bytes.Clone(block)})
}

// writeTo writes the image into an empty file.
func (img *diskImage) writeTo(f *os.File) error {
	if err := f.Truncate(img.size); err != nil {
		return err
	}
	for _, e := range img.extents {
		if _, err := f.WriteAt(e.data, e.off); err != nil {
			return err
		}
	}
	return nil
}

// readAt reads the image's bytes at off into p.
func (img *diskImage) readAt(p []byte, off int64) {
	clear(p)
	for _, e := range img.extents {
		lo, hi := max(off, e.off), min(off+int64(len(p)), e.off+int64(len(e.data)))
		if lo < hi {
			copy(p[lo-off:hi-off], e.data[lo-e.off:hi-e.off])
		}
	}
}

// available returns how many bytes files can take on the image's ext4 file
// system once mounted: its free blocks less the clusters ext4 keeps back
// for delayed allocation (2% of the blocks, at most 4,096), as statfs's
// f_bavail shows it (the images have no root-reserved blocks).
func (img *diskImage) available() (int64, error) {
	var sb [1024]byte
	img.readAt(sb[:], 1024)
	le := binary.LittleEndian
	if le.Uint16(sb[0x38:]) != 0xef53 {
		return 0, errors.New("not an ext4 image")
	}
	blockSize := int64(1024) << le.Uint32(sb[0x18:])
	blocks, free := int64(le.Uint32(sb[0x04:])), int64(le.Uint32(sb[0x0c:]))
	if le.Uint32(sb[0x60:])&0x80 != 0 { // INCOMPAT_64BIT: the high halves
		blocks |= int64(le.Uint32(sb[0x150:])) << 32
		free |= int64(le.Uint32(sb[0x158:])) << 32
	}
	return (free - min(blocks/50, 4096)) * blockSize, nil
}
