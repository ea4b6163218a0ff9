package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// PartPath is where a file is written before it is complete.
func PartPath(path string) string { return path + ".part" }

// CheckTargets refuses, before any work starts, to write any of paths:
// each must not exist, nor its .part. A backup calls it with the snapshot
// and its companions (FILE.json) before it touches the cluster.
func CheckTargets(paths ...string) error {
	for _, p := range paths {
		if err := checkTarget(p); err != nil {
			return err
		}
	}
	return nil
}

func checkTarget(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return existsError(path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if _, err := os.Lstat(PartPath(path)); err == nil {
		return partExistsError(path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking %s: %w", PartPath(path), err)
	}
	return nil
}

func existsError(path string) error {
	return hint.Permanent(fmt.Errorf("%s already exists", path), "choose another name, or move it away")
}

func partExistsError(path string) error {
	return hint.Permanent(fmt.Errorf("%s exists: another backup may be writing it, or an earlier one was killed", PartPath(path)),
		"if no backup to %s is running, remove %s and try again", path, PartPath(path))
}

// partFile is a file written under NAME.part and moved to NAME only when
// complete. The .part is created exclusively, never through a symlink,
// and kept open from creation to the end, so that no other process can
// take the name in between; the move never replaces an existing NAME.
type partFile struct {
	path string
	f    *os.File
	// ours is the .part as created, to tell it from a file that took its
	// name since.
	ours os.FileInfo
	// kept is set once a message told the user the .part stays.
	kept bool
}

func createPart(path string) (*partFile, error) {
	if err := checkTarget(path); err != nil {
		return nil, err
	}
	part := PartPath(path)
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, partExistsError(path)
	}
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", part, err)
	}
	p := &partFile{path: path, f: f}
	// The umask may have taken bits off 0600; set exactly 0600.
	if err := f.Chmod(0o600); err != nil {
		p.discard()
		return nil, fmt.Errorf("chmod %s: %w", part, err)
	}
	if p.ours, err = f.Stat(); err != nil {
		p.discard()
		return nil, fmt.Errorf("stat %s: %w", part, err)
	}
	return p, nil
}

// reset empties the file for another attempt, through the same
// descriptor: removing and creating it again would free the name.
func (p *partFile) reset() error {
	if err := p.f.Truncate(0); err != nil {
		return fmt.Errorf("truncating %s: %w", PartPath(p.path), err)
	}
	if _, err := p.f.Seek(0, 0); err != nil {
		return fmt.Errorf("rewinding %s: %w", PartPath(p.path), err)
	}
	return nil
}

// commit fsyncs the file and moves it to its final name, which it never
// replaces. Should that name have appeared meanwhile, the .part stays,
// and the error says so.
func (p *partFile) commit() error {
	part := PartPath(p.path)
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", part, err)
	}
	err := renameNoReplace(part, p.path)
	if errors.Is(err, fs.ErrExist) {
		p.kept = true
		p.close()
		return hint.Permanent(fmt.Errorf("%s appeared while it was written; the complete file stays at %s", p.path, part),
			"move %s away and rename %s to it, or keep both under other names", p.path, part)
	}
	if err != nil {
		return fmt.Errorf("renaming %s to %s: %w", part, p.path, err)
	}
	p.kept = true // it is no longer ours to remove
	if err := p.close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p.path))
}

// discard closes the file and removes the .part, unless a message said it
// stays or another file has taken its name since.
func (p *partFile) discard() {
	_ = p.close()
	if p.kept || p.ours == nil {
		return
	}
	part := PartPath(p.path)
	if now, err := os.Lstat(part); err == nil && os.SameFile(now, p.ours) {
		_ = os.Remove(part)
	}
}

func (p *partFile) close() error {
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}

// linkUnlink is a rename that cannot replace: a hard link fails on an
// existing name. Should the old name not go, the new one goes instead, so
// that a failure leaves nothing under to.
func linkUnlink(from, to string) error {
	if err := os.Link(from, to); err != nil {
		return err
	}
	if err := os.Remove(from); err != nil {
		_ = os.Remove(to)
		return err
	}
	return nil
}

// syncDir makes a rename in dir durable. Windows cannot fsync a
// directory (FlushFileBuffers on a read-only directory handle is denied)
// and NTFS journals the rename itself, so there it does nothing: a backup
// must not fail after its rename (R2).
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
