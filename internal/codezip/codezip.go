// Package codezip validates uploaded deployment packages and layer archives
// (.zip) and unpacks them safely.
//
// Archives are hostile input. Validate decompresses every entry and counts
// the bytes it actually produces instead of trusting the sizes in the zip
// headers, and it rejects any entry whose path, type or symlink target could
// place or reach a file outside the directory the archive is unpacked into.
// Extract unpacks only archives that Validate accepts.
package codezip

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// Limits Linux puts on what Extract creates. Validate enforces them so that
// an accepted archive can be extracted.
const (
	maxPathLen          = 4095 // PATH_MAX without the terminating NUL
	maxNameComponentLen = 255  // NAME_MAX
	maxSymlinkTargetLen = maxPathLen
)

// maxSymlinkNesting is how many symlinks Linux follows while resolving one
// path (MAXSYMLINKS); resolveSymlink nests no deeper.
const maxSymlinkNesting = 40

// maxPaths caps the files, directories and symlinks an archive may unpack
// to, counting directories that are only implied by deeper names. Without
// it a 50 MB archive of deep, distinct names would imply tens of millions of
// directories, costing gigabytes to validate and inodes to extract.
const maxPaths = 1_000_000

// encryptedFlag is bit 0 of an entry's general purpose flags.
const encryptedFlag = 0x1

// Info describes an archive that passed Validate.
type Info struct {
	Files        int   // regular files that Extract creates; a name repeated in the archive counts once
	UnzippedSize int64 // total bytes actually produced by decompressing every regular file (and symlink targets), including entries a later duplicate name replaces
}

// Error is returned for a rejected archive; Kind says why, Entry is the raw
// name of the offending entry ("" when the archive as a whole is unreadable),
// and Detail is a human-readable reason naming the offending entry.
type Error struct {
	Kind   Kind
	Entry  string
	Detail string
}

// Error returns Detail prefixed with the package name and what Kind means.
func (e *Error) Error() string {
	return "codezip: " + e.Kind.description() + ": " + e.Detail
}

// Kind classifies why an archive was rejected.
type Kind int

// The reasons an archive can be rejected.
const (
	// NotZip: not a readable zip archive (garbage, truncated, unsupported
	// compression method, encrypted entry, corrupt data / CRC mismatch, size
	// not matching the header, a directory entry with content).
	NotZip Kind = iota
	// TooLarge: decompressed content exceeds the limit, or the archive
	// unpacks to more than a million files, directories and symlinks.
	TooLarge
	// UnsafePath: absolute path, ".." component, backslash traversal, NUL,
	// a symlink whose target is absolute or leaves the archive root, a
	// symlink loop, a file whose parent path goes through a symlink entry, a
	// name that is both a file and a directory, special files (devices,
	// fifos, sockets), or a name or symlink target too long for Linux.
	UnsafePath
)

func (k Kind) description() string {
	switch k {
	case NotZip:
		return "not a readable zip archive"
	case TooLarge:
		return "archive too large"
	case UnsafePath:
		return "unsafe path in archive"
	}
	return fmt.Sprintf("archive rejected (kind %d)", int(k))
}

// Validate checks an uploaded archive without writing anything and reports
// what it contains. It decompresses every entry in full, verifying each
// CRC-32, and stops with a TooLarge error as soon as the running total of
// decompressed bytes exceeds maxUnzipped, so a zip bomb costs at most about
// maxUnzipped bytes of decompression work; a negative maxUnzipped is treated
// as 0. Names use '/' as separator, but '\' is also treated as one when
// looking for traversal; "./x" and "a//b" are accepted and cleaned. When a
// name repeats, the later entry wins. An archive that unpacks to more than a
// million files, directories and symlinks, counting directories implied by
// deeper names, is TooLarge. Symlinks must have a relative target
// that, resolved from the link's directory as the kernel would (following
// the archive's other symlinks), stays inside the archive; targets that do
// not exist are allowed. A rejection is always an *Error.
func Validate(data []byte, maxUnzipped int64) (Info, error) {
	a, err := inspect(data, maxUnzipped)
	if err != nil {
		return Info{}, err
	}
	return a.info, nil
}

type entryKind int

const (
	directory entryKind = iota
	regularFile
	symlink
)

// node is one path in the tree an archive unpacks to.
type node struct {
	path     string // cleaned, '/'-separated, relative to the archive root
	parent   *node
	kind     entryKind
	file     *zip.File   // the last entry with this path; nil for a directory only implied by deeper entries
	target   string      // for symlinks
	resolved *resolution // for symlinks, once resolveSymlink has walked target
}

// entry is one zip entry together with the node it defines.
type entry struct {
	file *zip.File
	kind entryKind
	node *node
}

// archive is an archive that passed validation.
type archive struct {
	root     node
	nodes    []*node // every node below root, parents before children
	children map[childKey]*node
	info     Info
}

// childKey names a node by its parent and its last path component. One map
// for the whole tree costs far less memory than a map in every directory.
type childKey struct {
	parent *node
	name   string
}

var (
	errOverBudget       = errors.New("decompressed size limit exceeded")
	errTargetTooLong    = errors.New("symlink target too long")
	errDirectoryHasData = errors.New("directory entry has content")
	errSymlinkNesting   = errors.New("too many levels of symlinks")
)

// inspect validates data and returns the tree it unpacks to. Cheap checks
// on names and modes of all entries come first, so that a structurally
// unsafe archive is rejected before any decompression work.
func inspect(data []byte, maxUnzipped int64) (*archive, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	// ErrInsecurePath comes with a usable reader; the names get our own,
	// stricter checks below.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, &Error{Kind: NotZip, Detail: fmt.Sprintf("cannot read the zip directory: %v", err)}
	}
	a := &archive{root: node{kind: directory}, children: make(map[childKey]*node)}
	entries := make([]entry, 0, len(zr.File))
	for _, f := range zr.File {
		e, err := a.add(f)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}

	d := decompressor{budget: budget{limit: max(maxUnzipped, 0)}, buf: make([]byte, 32<<10)}
	for _, e := range entries {
		if err := d.check(e); err != nil {
			return nil, err
		}
	}
	a.info.UnzippedSize = d.budget.used

	for _, e := range entries {
		if e.node.file != e.file {
			continue // replaced by a later entry with the same name
		}
		switch e.kind {
		case regularFile:
			a.info.Files++
		case symlink:
			_, err := a.resolveSymlink(e.node, 0)
			if errors.Is(err, errSymlinkNesting) {
				return nil, reject(UnsafePath, e.file, "is a symlink in a loop or a chain of more than %d symlinks", maxSymlinkNesting)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// reject builds the error for an entry of the archive.
func reject(kind Kind, f *zip.File, format string, args ...any) *Error {
	return &Error{Kind: kind, Entry: f.Name, Detail: fmt.Sprintf("entry %q ", f.Name) + fmt.Sprintf(format, args...)}
}

// add checks the header of f and records the path it creates.
func (a *archive) add(f *zip.File) (entry, error) {
	if f.Flags&encryptedFlag != 0 {
		return entry{}, reject(NotZip, f, "is encrypted")
	}
	kind, err := classify(f)
	if err != nil {
		return entry{}, err
	}
	components, problem := cleanName(f.Name)
	if problem != "" {
		return entry{}, reject(UnsafePath, f, "%s", problem)
	}
	n, err := a.insert(f, components, kind)
	if err != nil {
		return entry{}, err
	}
	return entry{file: f, kind: kind, node: n}, nil
}

// classify tells what kind of filesystem object f unpacks to and rejects
// special files.
func classify(f *zip.File) (entryKind, error) {
	mode := f.Mode()
	switch {
	case mode.Type()&^(fs.ModeDir|fs.ModeSymlink) != 0:
		return 0, reject(UnsafePath, f, "is a special file (mode %v)", mode)
	case mode&fs.ModeSymlink != 0 && mode.IsDir():
		return 0, reject(UnsafePath, f, "is marked as both a symlink and a directory")
	case mode&fs.ModeSymlink != 0:
		return symlink, nil
	case mode.IsDir():
		return directory, nil
	}
	return regularFile, nil
}

// cleanName returns the path components of an entry name, or a description
// of what makes the name unsafe.
func cleanName(name string) ([]string, string) {
	switch {
	case strings.IndexByte(name, 0) >= 0:
		return nil, "contains a NUL byte"
	case isAbsolute(name):
		return nil, "is an absolute path"
	case hasDotDotComponent(name):
		return nil, `has a ".." component`
	}
	components := splitPath(name)
	if len(components) == 0 {
		return nil, "is empty after cleaning"
	}
	cleanLen := len(components) - 1 // the separators
	for _, c := range components {
		if len(c) > maxNameComponentLen {
			return nil, fmt.Sprintf("has a component longer than %d bytes", maxNameComponentLen)
		}
		cleanLen += len(c)
	}
	if cleanLen > maxPathLen {
		return nil, fmt.Sprintf("is longer than %d bytes after cleaning", maxPathLen)
	}
	return components, ""
}

// isAbsolute reports whether p is absolute on Unix or Windows: it starts
// with a separator or a drive letter.
func isAbsolute(p string) bool {
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) {
		return true
	}
	return len(p) >= 2 && p[1] == ':' && ('a' <= p[0] && p[0] <= 'z' || 'A' <= p[0] && p[0] <= 'Z')
}

// hasDotDotComponent reports whether p has a ".." component when both '/'
// and '\' count as separators.
func hasDotDotComponent(p string) bool {
	isSeparator := func(r rune) bool { return r == '/' || r == '\\' }
	for c := range strings.FieldsFuncSeq(p, isSeparator) {
		if c == ".." {
			return true
		}
	}
	return false
}

// splitPath splits a '/'-separated path into components, dropping empty
// and "." ones.
func splitPath(p string) []string {
	return slices.DeleteFunc(strings.Split(p, "/"), func(c string) bool { return c == "" || c == "." })
}

// insert records the path made of components, creating the directories it
// implies, and returns its node. A later entry replaces an earlier one of
// the same path unless one of them is a directory and the other is not.
func (a *archive) insert(f *zip.File, components []string, kind entryKind) (*node, error) {
	path := strings.Join(components, "/")
	parent := &a.root
	end := 0
	for i, name := range components {
		end += len(name)
		prefix := path[:end] // a substring, so deep trees cost no extra memory
		end++
		last := i == len(components)-1
		child := a.children[childKey{parent, name}]
		switch {
		case child == nil:
			if len(a.nodes) == maxPaths {
				return nil, reject(TooLarge, f, "takes the archive past %d files, directories and symlinks", maxPaths)
			}
			child = &node{path: prefix, parent: parent, kind: directory}
			a.children[childKey{parent, name}] = child
			a.nodes = append(a.nodes, child)
			if last {
				child.kind = kind
			}
		case !last && child.kind == symlink:
			return nil, reject(UnsafePath, f, "goes through symlink %q", prefix)
		case !last && child.kind == regularFile:
			return nil, reject(UnsafePath, f, "needs %q to be a directory, but another entry makes it a file", prefix)
		case last && (child.kind == directory) != (kind == directory):
			return nil, reject(UnsafePath, f, "makes %q both a directory and a file", prefix)
		case last:
			child.kind = kind
		}
		if last {
			child.file = f
		}
		parent = child
	}
	return parent, nil
}

// budget is an io.Writer that discards what it is given and counts it,
// failing before the count would exceed limit.
type budget struct {
	used, limit int64
}

func (b *budget) Write(p []byte) (int, error) {
	if int64(len(p)) > b.limit-b.used {
		return 0, errOverBudget
	}
	b.used += int64(len(p))
	return len(p), nil
}

// targetBuffer collects a symlink's target, refusing more than Linux accepts.
type targetBuffer struct {
	target []byte
}

func (t *targetBuffer) Write(p []byte) (int, error) {
	if len(t.target)+len(p) > maxSymlinkTargetLen {
		return 0, errTargetTooLong
	}
	t.target = append(t.target, p...)
	return len(p), nil
}

// emptyDirectory is an io.Writer that fails on any content.
type emptyDirectory struct{}

func (emptyDirectory) Write(p []byte) (int, error) {
	return 0, errDirectoryHasData
}

// decompressor reads entries to EOF, sharing one size budget and one copy
// buffer across the whole archive.
type decompressor struct {
	budget budget
	buf    []byte
}

// check decompresses entry e in full. Reading to EOF makes archive/zip
// compare the produced size with the header and verify the CRC-32.
func (d *decompressor) check(e entry) error {
	var target targetBuffer
	var sink io.Writer
	switch e.kind {
	case regularFile:
		sink = &d.budget
	case directory:
		sink = emptyDirectory{}
	case symlink:
		sink = io.MultiWriter(&d.budget, &target)
	}
	if err := d.readToEOF(e.file, sink); err != nil {
		return err
	}
	if e.kind != symlink {
		return nil
	}
	linkTarget := string(target.target)
	if problem := symlinkTargetProblem(linkTarget); problem != "" {
		return reject(UnsafePath, e.file, "is a symlink whose target %q %s", linkTarget, problem)
	}
	if e.node.file == e.file {
		e.node.target = linkTarget
	}
	return nil
}

// readToEOF decompresses f into sink and turns any failure into an *Error.
func (d *decompressor) readToEOF(f *zip.File, sink io.Writer) error {
	content, err := f.Open()
	if errors.Is(err, zip.ErrAlgorithm) {
		return reject(NotZip, f, "uses unsupported compression method %d", f.Method)
	}
	if err != nil {
		return reject(NotZip, f, "has an unreadable local header: %v", err)
	}
	defer content.Close()
	_, err = io.CopyBuffer(sink, content, d.buf)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errOverBudget):
		return reject(TooLarge, f, "takes the decompressed size past the limit of %d bytes", d.budget.limit)
	case errors.Is(err, errTargetTooLong):
		return reject(UnsafePath, f, "is a symlink whose target is longer than %d bytes", maxSymlinkTargetLen)
	case errors.Is(err, errDirectoryHasData):
		return reject(NotZip, f, "is a directory but has content")
	}
	return reject(NotZip, f, "is corrupt or does not match its header: %v", err)
}

// symlinkTargetProblem returns what makes a symlink target unacceptable on
// its own, or "" if nothing does.
func symlinkTargetProblem(target string) string {
	switch {
	case target == "":
		return "is empty"
	case strings.IndexByte(target, 0) >= 0:
		return "contains a NUL byte"
	case strings.Contains(target, `\`):
		return "contains a backslash"
	case isAbsolute(target):
		return "is absolute"
	}
	return ""
}

// resolution is where a symlink leads: a node of the archive followed by
// missingDepth components that the archive does not contain.
type resolution struct {
	node         *node
	missingDepth int
}

// resolveSymlink follows the target of link the way the kernel does: from
// the link's directory and through any symlinks on the way, ".." going to
// the parent of wherever the walk physically is. It fails if the walk climbs
// above the archive root, or with errSymlinkNesting if it has to nest more
// than maxSymlinkNesting unresolved symlinks, as a loop does (a link already
// resolved is not walked again, so longer chains can pass, but never a
// loop). Components the archive does not
// contain are walked lexically, so "missing/../../x" is still caught.
// nesting is the number of symlinks being resolved around this one. Results
// are memoized, so every symlink is walked once.
func (a *archive) resolveSymlink(link *node, nesting int) (*resolution, error) {
	if link.resolved != nil {
		return link.resolved, nil
	}
	if nesting >= maxSymlinkNesting {
		return nil, errSymlinkNesting
	}
	at := &resolution{node: link.parent}
	for name := range strings.SplitSeq(link.target, "/") {
		switch {
		case name == "" || name == ".":
		case name == ".." && at.missingDepth > 0:
			at.missingDepth--
		case name == "..":
			if at.node == &a.root {
				return nil, reject(UnsafePath, link.file, "is a symlink whose target %q leaves the archive root", link.target)
			}
			at.node = at.node.parent
		case at.missingDepth > 0:
			at.missingDepth++
		default:
			child := a.children[childKey{at.node, name}]
			switch {
			case child == nil:
				at.missingDepth++
			case child.kind == symlink:
				via, err := a.resolveSymlink(child, nesting+1)
				if err != nil {
					return nil, err
				}
				*at = *via
			default:
				at.node = child
			}
		}
	}
	link.resolved = at
	return at, nil
}
