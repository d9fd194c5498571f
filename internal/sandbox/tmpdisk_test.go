//go:build linux

package sandbox

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fakeExt4 is an image with nothing but an ext4 superblock saying blocks
// and free blocks.
func fakeExt4(size, free int64) *diskImage {
	sb := make([]byte, 1024)
	le := binary.LittleEndian
	le.PutUint16(sb[0x38:], 0xef53)
	le.PutUint32(sb[0x18:], 2) // 4096-byte blocks
	le.PutUint32(sb[0x60:], 0x80)
	blocks := size / diskBlockSize
	le.PutUint32(sb[0x04:], uint32(blocks))
	le.PutUint32(sb[0x150:], uint32(blocks>>32))
	le.PutUint32(sb[0x0c:], uint32(free))
	le.PutUint32(sb[0x158:], uint32(free>>32))
	img := &diskImage{size: size}
	img.add(0, make([]byte, 1024)) // zeros: not kept
	img.add(1024, sb)
	return img
}

func TestDiskImageAvailable(t *testing.T) {
	for _, tc := range []struct {
		size, free, want int64
	}{
		{size: 512 << 20, free: 129009, want: (129009 - 131072/50) * 4096}, // 2% held back
		{size: 10 << 30, free: 2580288, want: (2580288 - 4096) * 4096},     // at most 4,096 blocks
		{size: 64 << 40, free: 1 << 33, want: (1<<33 - 4096) * 4096},       // the high halves count
	} {
		got, err := fakeExt4(tc.size, tc.free).available()
		if err != nil || got != tc.want {
			t.Errorf("available() of %d bytes with %d free blocks = %d, %v; want %d", tc.size, tc.free, got, err, tc.want)
		}
	}
	if _, err := (&diskImage{size: 1 << 20}).available(); err == nil {
		t.Error("available() of an image without a superblock succeeded")
	}
}

func TestSizeImage(t *testing.T) {
	// A file system that spends 1.5% of its size on inode tables, and holds
	// back 2% as ext4 does.
	format := func(size int64) (*diskImage, error) {
		blocks := size / diskBlockSize
		return fakeExt4(size, blocks-blocks*15/1000), nil
	}
	for _, mb := range []int64{16, 512, 1000, 10240} {
		want := mb<<20 + fileSlack
		img, err := sizeImage(want, format)
		if err != nil {
			t.Fatal(err)
		}
		avail, _ := img.available()
		if avail < want || avail > want+sizeTolerance {
			t.Errorf("%d MB: image of %d bytes offers %d, want %d to %d", mb, img.size, avail, want, want+sizeTolerance)
		}
	}
	// A file system that never offers enough.
	if _, err := sizeImage(1<<20, func(size int64) (*diskImage, error) { return fakeExt4(size, 0), nil }); err == nil {
		t.Error("sizeImage succeeded with a file system that offers nothing")
	}
}

func TestReadImageSkipsHolesAndZeros(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "image"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := int64(1 << 20)
	f.Truncate(size)
	block := func(b byte) []byte { return bytes.Repeat([]byte{b}, diskBlockSize) }
	f.WriteAt(block(1), 0)
	f.WriteAt(block(2), diskBlockSize)
	f.WriteAt(block(0), 2*diskBlockSize) // written zeros: not kept
	f.WriteAt(block(3), 3*diskBlockSize)
	f.WriteAt(block(4), 100*diskBlockSize) // after a hole
	img, err := readImage(f, size)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, e := range img.extents {
		got = append(got, e.off/diskBlockSize, int64(len(e.data))/diskBlockSize)
	}
	if want := []int64{0, 2, 3, 1, 100, 1}; !slices.Equal(got, want) {
		t.Errorf("extents (first block, blocks) = %v, want %v", got, want)
	}
	// Written into a new file, the image reads as the original.
	copyPath := filepath.Join(t.TempDir(), "copy")
	c, err := os.Create(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := img.writeTo(c); err != nil {
		t.Fatal(err)
	}
	c.Close()
	orig, _ := os.ReadFile(f.Name())
	copied, _ := os.ReadFile(copyPath)
	if !bytes.Equal(orig, copied) {
		t.Error("the written image differs from the original")
	}
}

// TestFormatImage formats real images (mkfs.ext4 needs no root on a file)
// and checks that what they offer is EphemeralStorage, in a few non-zero
// blocks.
func TestFormatImage(t *testing.T) {
	d := &tmpDisks{dir: t.TempDir(), sizes: map[int]*diskSize{}}
	var err error
	if d.mkfs, err = findTool("mkfs.ext4"); err != nil {
		t.Skip(err)
	}
	if d.debugfs, err = findTool("debugfs"); err != nil {
		t.Skip(err)
	}
	for _, mb := range []int{16, 512, 10240} {
		size, err := d.size(mb)
		if err != nil {
			t.Fatal(err)
		}
		img := size.image
		avail, _ := img.available()
		want := int64(mb)<<20 + fileSlack
		if avail < want || avail > want+sizeTolerance {
			t.Errorf("%d MB: the image offers %d bytes, want %d to %d", mb, avail, want, want+sizeTolerance)
		}
		stored := 0
		for _, e := range img.extents {
			stored += len(e.data)
		}
		t.Logf("%d MB: image of %d bytes, %d of them stored in %d extents; %d bytes free for files",
			mb, img.size, stored, len(img.extents), avail)
		if stored > 1<<20 {
			t.Errorf("%d MB: %d bytes of the image are not zeros, want a few blocks", mb, stored)
		}
	}
	if entries, _ := os.ReadDir(d.dir); len(entries) != 0 {
		t.Errorf("formatting left %d files behind", len(entries))
	}
}
