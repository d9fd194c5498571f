package codezip

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// testLimit is the maxUnzipped used throughout the tests.
const testLimit = 1 << 20

// testEntry is one entry of an archive built with archive/zip.Writer.
type testEntry struct {
	name string
	mode fs.FileMode
	body string
}

func file(name, body string) testEntry { return testEntry{name, 0o644, body} }

func executable(name, body string) testEntry { return testEntry{name, 0o755, body} }

func dir(name string) testEntry { return testEntry{name, fs.ModeDir | 0o755, ""} }

func link(name, target string) testEntry { return testEntry{name, fs.ModeSymlink | 0o777, target} }

func buildZip(tb testing.TB, entries ...testEntry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		content, err := w.CreateHeader(h)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := content.Write([]byte(e.body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// rawEntry is an entry written with CreateRaw, so every header field can lie.
type rawEntry struct {
	name       string
	mode       fs.FileMode
	method     uint16
	flags      uint16
	compressed []byte
	crc        uint32
	claimSize  uint64 // the uncompressed size the headers declare
}

func buildRawZip(tb testing.TB, entries ...rawEntry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{
			Name:               e.name,
			Method:             e.method,
			Flags:              e.flags,
			CRC32:              e.crc,
			CompressedSize64:   uint64(len(e.compressed)),
			UncompressedSize64: e.claimSize,
		}
		h.SetMode(e.mode)
		content, err := w.CreateRaw(h)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := content.Write(e.compressed); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(tb testing.TB, data []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// zeroBomb is an entry named "bomb" of size deflated zero bytes whose headers
// claim claimSize instead.
func zeroBomb(tb testing.TB, size int, claimSize uint64) rawEntry {
	zeros := make([]byte, size)
	return rawEntry{
		name:       "bomb",
		mode:       0o644,
		method:     zip.Deflate,
		compressed: deflate(tb, zeros),
		crc:        crc32.ChecksumIEEE(zeros),
		claimSize:  claimSize,
	}
}

// packageEntries is a valid package using nested and implied directories,
// an executable, names that need cleaning and symlinks inside the archive.
func packageEntries() []testEntry {
	return []testEntry{
		file("index.js", "exports.handler = async () => 'ok';\n"),
		dir("lib/"),
		file("lib/util/strings.js", "module.exports = {};\n"),
		executable("bin/bootstrap", "#!/bin/sh\nexec node index.js\n"),
		file("./dot/file.txt", "dot"),
		file("double//slash.txt", "slash"),
		file("lib/libfoo.so.1", "ELF"),
		link("lib/libfoo.so", "libfoo.so.1"),
		link("bin/lib", "../lib"),
		link("bin/libfoo", "lib/libfoo.so"), // through the directory link bin/lib to another link
		link("current", "."),
		link("dangling", "not/there"),
	}
}

type validateCase struct {
	name  string
	build func(testing.TB) []byte
	// rejected says whether Validate must fail, with kind and entry.
	rejected bool
	kind     Kind
	entry    string
}

func accepts(name string, entries ...testEntry) validateCase {
	return validateCase{name: name, build: func(tb testing.TB) []byte { return buildZip(tb, entries...) }}
}

func rejects(name string, kind Kind, entry string, entries ...testEntry) validateCase {
	return validateCase{
		name:     name,
		build:    func(tb testing.TB) []byte { return buildZip(tb, entries...) },
		rejected: true,
		kind:     kind,
		entry:    entry,
	}
}

func rejectsRaw(name string, kind Kind, entry string, build func(testing.TB) []byte) validateCase {
	return validateCase{name: name, build: build, rejected: true, kind: kind, entry: entry}
}

func validateCases() []validateCase {
	longName := strings.Repeat("abcdefg/", 512) + "x"
	return []validateCase{
		accepts("package", packageEntries()...),
		accepts("empty archive"),
		accepts("duplicate names", file("a", "first"), file("a", "second")),
		accepts("backslash without traversal", file(`a\b`, "literal name on Linux")),
		accepts("largest component", file(strings.Repeat("n", 255), "")),

		rejects("absolute", UnsafePath, "/etc/passwd", file("/etc/passwd", "x")),
		rejects("absolute backslash", UnsafePath, `\evil`, file(`\evil`, "x")),
		rejects("drive letter backslash", UnsafePath, `C:\evil`, file(`C:\evil`, "x")),
		rejects("drive letter slash", UnsafePath, "c:/evil", file("c:/evil", "x")),
		rejects("drive relative", UnsafePath, "C:evil", file("C:evil", "x")),
		rejects("dotdot", UnsafePath, "../evil", file("../evil", "x")),
		rejects("dotdot deep", UnsafePath, "a/b/../../../evil", file("a/b/../../../evil", "x")),
		rejects("dotdot contained", UnsafePath, "a/../b", file("a/../b", "x")),
		rejects("dotdot directory", UnsafePath, "../", dir("../")),
		rejects("backslash dotdot", UnsafePath, `..\evil`, file(`..\evil`, "x")),
		rejects("backslash dotdot inside", UnsafePath, `a\..\..\evil`, file(`a\..\..\evil`, "x")),
		rejects("NUL", UnsafePath, "a\x00b", file("a\x00b", "x")),
		rejects("empty name", UnsafePath, "", file("", "x")),
		rejects("only dot", UnsafePath, "./", dir("./")),
		rejects("component too long", UnsafePath, strings.Repeat("n", 256), file(strings.Repeat("n", 256), "")),
		rejects("path too long", UnsafePath, longName, file(longName, "")),
		rejects("file then directory", UnsafePath, "a/", file("a", "x"), dir("a/")),
		rejects("directory then file", UnsafePath, "a", dir("a/"), file("a", "x")),
		rejects("file as parent", UnsafePath, "a/b", file("a", "x"), file("a/b", "y")),
		rejects("parent then file", UnsafePath, "a", file("a/b", "y"), file("a", "x")),
		rejects("through symlink", UnsafePath, "l/x", dir("d/"), link("l", "d"), file("l/x", "x")),
		rejects("symlink over directory", UnsafePath, "d", file("d/x", "x"), link("d", "elsewhere")),
		rejects("symlink marked directory", UnsafePath, "l/", link("l/", "")),
		rejects("fifo", UnsafePath, "fifo", testEntry{"fifo", fs.ModeNamedPipe | 0o644, ""}),
		rejects("block device", UnsafePath, "sda", testEntry{"sda", fs.ModeDevice | 0o644, ""}),
		rejects("char device", UnsafePath, "null", testEntry{"null", fs.ModeDevice | fs.ModeCharDevice | 0o644, ""}),
		rejects("socket", UnsafePath, "sock", testEntry{"sock", fs.ModeSocket | 0o644, ""}),

		rejects("symlink dotdot escape", UnsafePath, "x", link("x", "../../etc/passwd")),
		rejects("symlink absolute", UnsafePath, "x", link("x", "/etc/passwd")),
		rejects("symlink drive letter", UnsafePath, "x", link("x", "C:/Windows")),
		rejects("symlink escape from subdirectory", UnsafePath, "a/b/x", link("a/b/x", "../../../y")),
		rejects("symlink escape through missing", UnsafePath, "x", link("x", "missing/../../y")),
		rejects("symlink escape through symlink", UnsafePath, "e", link("d/l", ".."), link("e", "d/l/..")),
		rejects("symlink escape through chain", UnsafePath, "e", link("d/l", "m"), link("d/m", ".."), link("e", "d/l/../x")),
		rejects("symlink loop", UnsafePath, "a", link("a", "b"), link("b", "a")),
		rejects("symlink loop through directory", UnsafePath, "x", link("x", "x/y")),
		rejects("symlink empty", UnsafePath, "x", link("x", "")),
		rejects("symlink NUL", UnsafePath, "x", link("x", "a\x00b")),
		rejects("symlink backslash", UnsafePath, "x", link("x", `..\..\etc`)),
		rejects("symlink too long", UnsafePath, "x", link("x", strings.Repeat("a", 4096))),
		rejects("symlink replaced, but unsafe", UnsafePath, "x", link("x", "/etc"), file("x", "x")),

		rejects("honest bomb", TooLarge, "bomb", file("bomb", strings.Repeat("\x00", 10<<20))),
		rejects("running total", TooLarge, "b",
			file("a", strings.Repeat("\x00", 600<<10)), file("b", strings.Repeat("\x00", 600<<10))),
		rejects("running total of duplicates", TooLarge, "a",
			file("a", strings.Repeat("\x00", 600<<10)), file("a", strings.Repeat("\x00", 600<<10))),
		rejectsRaw("bomb understating its size", TooLarge, "bomb", func(tb testing.TB) []byte {
			return buildRawZip(tb, zeroBomb(tb, 10<<20, 5<<20))
		}),
		// archive/zip refuses to read past the declared size, so this bomb is
		// caught as corrupt after a few KiB, long before the limit.
		rejectsRaw("bomb claiming a tiny size", NotZip, "bomb", func(tb testing.TB) []byte {
			return buildRawZip(tb, zeroBomb(tb, 10<<20, 1000))
		}),
		rejectsRaw("CRC mismatch", NotZip, "x", func(tb testing.TB) []byte {
			body := []byte("hello")
			return buildRawZip(tb, rawEntry{"x", 0o644, zip.Store, 0, body, crc32.ChecksumIEEE(body) + 1, uint64(len(body))})
		}),
		rejectsRaw("corrupt deflate stream", NotZip, "x", func(tb testing.TB) []byte {
			body := []byte(strings.Repeat("hello, world ", 100))
			compressed := deflate(tb, body)
			compressed[len(compressed)/2] ^= 0xff
			return buildRawZip(tb, rawEntry{"x", 0o644, zip.Deflate, 0, compressed, crc32.ChecksumIEEE(body), uint64(len(body))})
		}),
		rejectsRaw("unsupported method", NotZip, "x", func(tb testing.TB) []byte {
			return buildRawZip(tb, rawEntry{"x", 0o644, 99, 0, []byte("xyz"), crc32.ChecksumIEEE([]byte("xyz")), 3})
		}),
		rejectsRaw("encrypted", NotZip, "x", func(tb testing.TB) []byte {
			return buildRawZip(tb, rawEntry{"x", 0o644, zip.Store, 1, []byte("xyz"), crc32.ChecksumIEEE([]byte("xyz")), 3})
		}),
		rejectsRaw("directory with content", NotZip, "d", func(tb testing.TB) []byte {
			return buildRawZip(tb, rawEntry{"d", fs.ModeDir | 0o755, zip.Store, 0, []byte("xyz"), crc32.ChecksumIEEE([]byte("xyz")), 3})
		}),

		{name: "garbage", build: func(testing.TB) []byte { return []byte("this is not a zip file at all") }, rejected: true, kind: NotZip},
		{name: "no bytes", build: func(testing.TB) []byte { return nil }, rejected: true, kind: NotZip},
		{name: "truncated", rejected: true, kind: NotZip, build: func(tb testing.TB) []byte {
			data := buildZip(tb, packageEntries()...)
			return data[:len(data)/2]
		}},
		{name: "truncated end record", rejected: true, kind: NotZip, build: func(tb testing.TB) []byte {
			data := buildZip(tb, packageEntries()...)
			return data[:len(data)-1]
		}},
	}
}

func TestValidate(t *testing.T) {
	for _, c := range validateCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := Validate(c.build(t), testLimit)
			if !c.rejected {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var zerr *Error
			if !errors.As(err, &zerr) {
				t.Fatalf("Validate error = %v, want an *Error", err)
			}
			if zerr.Kind != c.kind || zerr.Entry != c.entry {
				t.Fatalf("Validate error kind %d entry %q (%v), want kind %d entry %q", zerr.Kind, zerr.Entry, err, c.kind, c.entry)
			}
			if zerr.Entry != "" && !strings.Contains(zerr.Detail, strconv.Quote(zerr.Entry)) {
				t.Errorf("Detail %q does not name entry %q", zerr.Detail, zerr.Entry)
			}
		})
	}
}

func TestValidateInfo(t *testing.T) {
	entries := packageEntries()
	var wantFiles int
	var wantSize int64
	for _, e := range entries {
		switch {
		case e.mode.IsRegular():
			wantFiles++
			wantSize += int64(len(e.body))
		case e.mode&fs.ModeSymlink != 0:
			wantSize += int64(len(e.body))
		}
	}
	info, err := Validate(buildZip(t, entries...), testLimit)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Info{Files: wantFiles, UnzippedSize: wantSize}); info != want {
		t.Errorf("Validate = %+v, want %+v", info, want)
	}

	info, err = Validate(buildZip(t, file("a", "first"), file("a", "second")), testLimit)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Info{Files: 1, UnzippedSize: int64(len("first") + len("second"))}); info != want {
		t.Errorf("Validate with a duplicate = %+v, want %+v", info, want)
	}
}

func TestValidateLimitIsInclusive(t *testing.T) {
	data := buildZip(t, file("a", "12345"), file("b", "67890"))
	if _, err := Validate(data, 10); err != nil {
		t.Errorf("Validate with limit 10 for 10 bytes: %v", err)
	}
	if _, err := Validate(data, 9); !isKind(err, TooLarge) {
		t.Errorf("Validate with limit 9 for 10 bytes = %v, want TooLarge", err)
	}
}

func TestValidatePathCount(t *testing.T) {
	// Each name implies about 2000 directories, so 500 of them pass a million.
	deep := strings.Repeat("a/", 2000) + "x"
	var entries []testEntry
	for i := range 500 {
		entries = append(entries, file(strconv.Itoa(i)+"/"+deep, ""))
	}
	if _, err := Validate(buildZip(t, entries...), testLimit); !isKind(err, TooLarge) {
		t.Errorf("Validate of a million implied directories = %v, want TooLarge", err)
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Validate(buildZip(t, file("../evil", "x")), testLimit)
	if want := `codezip: unsafe path in archive: entry "../evil" has a ".." component`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func isKind(err error, kind Kind) bool {
	var zerr *Error
	return errors.As(err, &zerr) && zerr.Kind == kind
}

// extracted describes one path under an extraction directory.
type extracted struct {
	mode    fs.FileMode // type and permission bits
	content string      // file content or symlink target
}

func readTree(t *testing.T, root string) map[string]extracted {
	t.Helper()
	tree := map[string]extracted{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		e := extracted{mode: info.Mode() & (fs.ModeType | fs.ModePerm)}
		switch {
		case info.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			e.content = string(b)
		case info.Mode()&fs.ModeSymlink != 0:
			if e.content, err = os.Readlink(path); err != nil {
				return err
			}
			e.mode = fs.ModeSymlink // symlink permissions mean nothing on Linux
		}
		tree[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestExtract(t *testing.T) {
	out := t.TempDir()
	data := buildZip(t, append(packageEntries(), file("index.js", "replaced"), file(`a\b`, "literal"))...)
	if err := Extract(data, out, testLimit); err != nil {
		t.Fatal(err)
	}
	want := map[string]extracted{
		"index.js":            {0o644, "replaced"},
		"lib":                 {fs.ModeDir | 0o755, ""},
		"lib/util":            {fs.ModeDir | 0o755, ""},
		"lib/util/strings.js": {0o644, "module.exports = {};\n"},
		"bin":                 {fs.ModeDir | 0o755, ""},
		"bin/bootstrap":       {0o755, "#!/bin/sh\nexec node index.js\n"},
		"dot":                 {fs.ModeDir | 0o755, ""},
		"dot/file.txt":        {0o644, "dot"},
		"double":              {fs.ModeDir | 0o755, ""},
		"double/slash.txt":    {0o644, "slash"},
		"lib/libfoo.so.1":     {0o644, "ELF"},
		"lib/libfoo.so":       {fs.ModeSymlink, "libfoo.so.1"},
		"bin/lib":             {fs.ModeSymlink, "../lib"},
		"bin/libfoo":          {fs.ModeSymlink, "lib/libfoo.so"},
		"current":             {fs.ModeSymlink, "."},
		"dangling":            {fs.ModeSymlink, "not/there"},
		`a\b`:                 {0o644, "literal"},
	}
	got := readTree(t, out)
	for path, w := range want {
		if g, ok := got[path]; !ok {
			t.Errorf("%s: missing", path)
		} else if g != w {
			t.Errorf("%s: got mode %v content %q, want mode %v content %q", path, g.mode, g.content, w.mode, w.content)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("%s: unexpected", path)
		}
	}
	if b, err := os.ReadFile(filepath.Join(out, "bin", "libfoo")); err != nil || string(b) != "ELF" {
		t.Errorf("reading through bin/libfoo = %q, %v; want ELF", b, err)
	}
}

func TestExtractRejectedWritesNothing(t *testing.T) {
	for _, c := range validateCases() {
		if !c.rejected {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			if err := Extract(c.build(t), out, testLimit); !isKind(err, c.kind) {
				t.Fatalf("Extract = %v, want kind %d", err, c.kind)
			}
			if names, err := os.ReadDir(out); err != nil || len(names) != 0 {
				t.Fatalf("after a rejection, dir holds %v (%v)", names, err)
			}
		})
	}
}

// A directory that already holds links must not make Extract write through them.
func TestExtractDoesNotFollowExistingSymlinks(t *testing.T) {
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside")
	out := filepath.Join(parent, "out")
	for _, d := range []string{outside, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../outside", filepath.Join(out, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside/f", filepath.Join(out, "f")); err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{
		buildZip(t, file("d/x", "x")),
		buildZip(t, file("f", "x")),
	} {
		if err := Extract(data, out, testLimit); err == nil {
			t.Error("Extract over an existing symlink succeeded")
		}
	}
	if names, err := os.ReadDir(outside); err != nil || len(names) != 0 {
		t.Errorf("outside holds %v (%v)", names, err)
	}
}

func TestExtractMissingDir(t *testing.T) {
	if err := Extract(buildZip(t, file("a", "x")), filepath.Join(t.TempDir(), "missing"), testLimit); err == nil {
		t.Error("Extract into a missing directory succeeded")
	}
}

// fuzzLimit keeps each fuzz input cheap.
const fuzzLimit = 1 << 20

func FuzzValidate(f *testing.F) {
	for _, c := range validateCases() {
		f.Add(c.build(f))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Validate(data, fuzzLimit)
		if err != nil {
			var zerr *Error
			if !errors.As(err, &zerr) {
				t.Fatalf("Validate error %v is not an *Error", err)
			}
			return
		}
		if info.UnzippedSize > fuzzLimit {
			t.Fatalf("accepted UnzippedSize %d over the limit", info.UnzippedSize)
		}
		checkExtraction(t, data, info)
	})
}

// FuzzSymlinks builds archives of short names and symlink targets over a
// tiny alphabet, where collisions, ".." and chains of symlinks are common,
// and checks every accepted one on disk.
func FuzzSymlinks(f *testing.F) {
	f.Add([]byte("\x02\x00\x01\x00\x03\x05\x02\x01\x04\x00\x03\x01\x02\x00\x01\x03\x04"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64 {
			return
		}
		archive := buildZip(t, generatedEntries(data)...)
		if info, err := Validate(archive, fuzzLimit); err == nil {
			checkExtraction(t, archive, info)
		}
	})
}

// generatedEntries turns each group of bytes into a file, a directory or a
// symlink whose name and target are drawn from a tiny alphabet.
func generatedEntries(data []byte) []testEntry {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	path := func(alphabet ...string) string {
		parts := make([]string, 1+next()%4)
		for i := range parts {
			parts[i] = alphabet[next()%len(alphabet)]
		}
		return strings.Join(parts, "/")
	}
	var entries []testEntry
	for len(data) > 0 {
		kind := next()
		name := path("a", "b", "c", ".", "")
		switch {
		case kind%3 == 0 || strings.HasSuffix(name, "/"):
			entries = append(entries, dir(name+"/"))
		case kind%3 == 1:
			entries = append(entries, file(name, "x"))
		default:
			entries = append(entries, link(name, path("a", "b", "c", "..", ".", "")))
		}
	}
	return entries
}

// checkExtraction extracts an archive that Validate accepted and fails t if
// Extract fails, writes beside its directory, creates a different number of
// files than info says, or creates a symlink that leads out of the directory.
func checkExtraction(t *testing.T, data []byte, info Info) {
	t.Helper()
	parent, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(parent, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Extract(data, out, fuzzLimit); err != nil {
		t.Fatalf("Validate accepted but Extract failed: %v", err)
	}
	if names, err := os.ReadDir(parent); err != nil || len(names) != 1 {
		t.Fatalf("Extract wrote beside its directory: %v (%v)", names, err)
	}
	files := 0
	err = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type().IsRegular():
			files++
		case d.Type()&fs.ModeSymlink != 0 && leavesRoot(t, out, path):
			target, _ := os.Readlink(path)
			t.Errorf("symlink %s -> %s leads out of %s", path, target, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != info.Files {
		t.Errorf("Extract created %d files, Validate reported %d", files, info.Files)
	}
}

// leavesRoot resolves the symlink at link on disk the way the kernel does,
// walking components that do not exist lexically, and reports whether the
// walk climbs above root. It is an oracle independent of the package's
// in-memory resolution.
func leavesRoot(t *testing.T, root, link string) bool {
	at := filepath.Dir(link)
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	pending := strings.Split(target, "/")
	missingDepth, followed := 0, 0
	for len(pending) > 0 {
		name := pending[0]
		pending = pending[1:]
		switch {
		case name == "" || name == ".":
		case name == ".." && missingDepth > 0:
			missingDepth--
		case name == "..":
			if at == root {
				return true
			}
			at = filepath.Dir(at)
		case missingDepth > 0:
			missingDepth++
		default:
			next := filepath.Join(at, name)
			info, err := os.Lstat(next)
			switch {
			case err != nil:
				missingDepth++
			case info.Mode()&fs.ModeSymlink == 0:
				at = next
			case followed == maxSymlinkNesting:
				return false // the kernel gives up with ELOOP
			default:
				followed++
				target, err := os.Readlink(next)
				if err != nil {
					t.Fatal(err)
				}
				pending = append(strings.Split(target, "/"), pending...)
			}
		}
	}
	return false
}
