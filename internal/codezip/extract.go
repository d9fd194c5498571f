package codezip

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// Extract validates data exactly as Validate does, with the same
// maxUnzipped, and only if it is accepted unpacks it into dir, which must
// exist and should be empty. A rejection is the *Error Validate returns and
// nothing is written. Directories are created 0755, regular files 0644, or
// 0755 if the entry's mode has any execute bit, regardless of the umask;
// symlinks are recreated as symlinks. Extract never writes outside dir and
// never follows a symlink while writing: every file, directory and link is
// created by a single-component operation, through os.Root (which opens with
// O_NOFOLLOW), on an already open directory, either dir or one Extract has
// just made; files are created with O_EXCL; and each directory's symlinks
// are created after everything else in it. If extraction fails midway the error is
// returned and dir is left partially filled; the caller removes it.
func Extract(data []byte, dir string, maxUnzipped int64) error {
	a, err := inspect(data, maxUnzipped)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("codezip: %w", err)
	}
	defer root.Close()
	x := extractor{children: make(map[*node][]*node)}
	for _, n := range a.nodes {
		x.children[n.parent] = append(x.children[n.parent], n)
	}
	return x.extractChildren(root, &a.root)
}

// extractor unpacks a validated tree.
type extractor struct {
	children map[*node][]*node // in archive order
}

// extractChildren creates the children of n in d, the open directory for n.
func (x *extractor) extractChildren(d *os.Root, n *node) error {
	for _, child := range x.children[n] {
		switch child.kind {
		case directory:
			if err := x.extractDirectory(d, child); err != nil {
				return err
			}
		case regularFile:
			if err := writeFile(d, child); err != nil {
				return fmt.Errorf("codezip: extract %s: %w", child.path, err)
			}
		}
	}
	for _, child := range x.children[n] {
		if child.kind == symlink {
			if err := d.Symlink(child.target, path.Base(child.path)); err != nil {
				return fmt.Errorf("codezip: extract %s: %w", child.path, err)
			}
		}
	}
	return nil
}

// extractDirectory creates directory n in parent, then its contents.
func (x *extractor) extractDirectory(parent *os.Root, n *node) error {
	name := path.Base(n.path)
	if err := parent.Mkdir(name, 0o755); err != nil {
		return fmt.Errorf("codezip: extract %s: %w", n.path, err)
	}
	if err := parent.Chmod(name, 0o755); err != nil { // undo the umask
		return fmt.Errorf("codezip: extract %s: %w", n.path, err)
	}
	d, err := parent.OpenRoot(name)
	if err != nil {
		return fmt.Errorf("codezip: extract %s: %w", n.path, err)
	}
	defer d.Close()
	return x.extractChildren(d, n)
}

// writeFile creates regular file n in d and fills it.
func writeFile(d *os.Root, n *node) error {
	perm := fs.FileMode(0o644)
	if n.file.Mode()&0o111 != 0 {
		perm = 0o755
	}
	content, err := n.file.Open()
	if err != nil {
		return err
	}
	defer content.Close()
	out, err := d.OpenFile(path.Base(n.path), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if err := out.Chmod(perm); err != nil { // undo the umask
		out.Close()
		return err
	}
	// Validate read this entry to EOF, so archive/zip has proven that it
	// produces exactly its declared size and stops there.
	_, err = io.Copy(out, content)
	if closeErr := out.Close(); err == nil {
		err = closeErr
	}
	return err
}
