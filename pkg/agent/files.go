package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNotDurable marks a file operation that took effect but whose dir
// fsync failed: a crash may still undo it. Such a step neither changed
// nothing nor is done; the engine treats it as one found running after a
// crash (see Engine.runStep).
var ErrNotDurable = errors.New("made, but its dir's fsync failed, so a crash may undo it: check the disk (dmesg)")

// fileOps are the filesystem calls whose failures the tests inject;
// osFiles is what the agent uses.
type fileOps struct {
	rename func(oldpath, newpath string) error
	fsync  func(path string) error
}

var osFiles = fileOps{rename: os.Rename, fsync: fsyncPath}

// MoveAside moves src to dst, never deleting or overwriting anything. It is
// idempotent: src gone and dst present counts as done, so a step re-run
// after a crash succeeds.
//
// A file moves across filesystems by copy, fsync, then unlink of the source
// (a manifest must leave the static pod dir, which may be on another
// filesystem than the journal). A directory does not: copying an etcd data
// dir is slow and a half-done copy is a trap, so that is an error naming
// the fix.
//
// An error wrapping ErrNotDurable means the move was made.
func MoveAside(src, dst string) error { return osFiles.moveAside(src, dst) }

// PutBack reverses MoveAside(orig, aside), with the same guarantees.
func PutBack(orig, aside string) error { return MoveAside(aside, orig) }

func (fo fileOps) moveAside(src, dst string) error {
	srcInfo, serr := os.Lstat(src)
	_, derr := os.Lstat(dst)
	switch {
	case errors.Is(serr, os.ErrNotExist) && derr == nil:
		// Done, perhaps by a run whose fsync failed or was cut off by a
		// crash: sync again, so that done means durable.
		return notDurable("move "+src+" to "+dst, fo.syncDirs(filepath.Dir(src), filepath.Dir(dst)))
	case errors.Is(serr, os.ErrNotExist) && errors.Is(derr, os.ErrNotExist):
		return fmt.Errorf("move %s to %s: neither exists; check the journal and the node by hand", src, dst)
	case serr != nil:
		return fmt.Errorf("move %s: %w", src, serr)
	case derr == nil:
		return fmt.Errorf("move %s to %s: the destination exists and nothing is overwritten; move it away by hand, then retry", src, dst)
	case !errors.Is(derr, os.ErrNotExist):
		return fmt.Errorf("move %s to %s: %w", src, dst, derr)
	}
	if err := fo.mkdirAll(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("move %s: %w", src, err)
	}
	err := fo.rename(src, dst)
	switch {
	case errors.Is(err, syscall.EXDEV) && srcInfo.Mode().IsRegular():
		return fo.copyThenUnlink(src, dst, srcInfo.Mode().Perm())
	case errors.Is(err, syscall.EXDEV):
		return fmt.Errorf("move %s to %s: they are on different filesystems and a directory is only moved by rename: choose paths on one filesystem", src, dst)
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("move %s: it is a mount point, which cannot be moved: choose paths inside it", src)
	case err != nil:
		return fmt.Errorf("move %s to %s: %w", src, dst, err)
	}
	return notDurable("move "+src+" to "+dst, fo.syncDirs(filepath.Dir(src), filepath.Dir(dst)))
}

// mkdirAll makes dir and its missing parents, then fsyncs the parent of
// each dir it made: a new dir's entry lives in its parent, and a crash
// could drop it, with the file about to be moved into it.
func (fo fileOps) mkdirAll(dir string) error {
	var made []string
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			break
		}
		made = append(made, d)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	for _, d := range made {
		if err := fo.fsync(filepath.Dir(d)); err != nil {
			return fmt.Errorf("make %s: %w", dir, err)
		}
	}
	return nil
}

// copyThenUnlink moves a file across filesystems: copy, fsync the copy and
// its dir, unlink the source, fsync the source's dir. Until the unlink, a
// failure removes the copy, so that nothing changed; after it, the move is
// made and only its durability is in question.
func (fo fileOps) copyThenUnlink(src, dst string, perm os.FileMode) error {
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".part")
	err := copyFile(src, tmp, perm)
	placed := false
	if err == nil {
		err = fo.rename(tmp, dst)
		placed = err == nil
	}
	if err == nil {
		err = fo.syncDirs(filepath.Dir(dst))
	}
	if err == nil {
		err = os.Remove(src)
	}
	if err != nil {
		os.Remove(tmp) // our own partial copy; the source is untouched
		if placed {
			os.Remove(dst) // our own copy too
		}
		return fmt.Errorf("move %s to %s across filesystems: %w", src, dst, err)
	}
	return notDurable("move "+src+" to "+dst, fo.syncDirs(filepath.Dir(src)))
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileAtomic writes path through a temp file in the same dir: fsync,
// rename, fsync the dir. The temp name starts with a dot because the
// kubelet ignores hidden files in the static pod dir and starts every
// other one. An error wrapping ErrNotDurable means path was written.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return osFiles.writeFile(path, data, perm, true)
}

// WriteFileNew writes path as WriteFileAtomic does, but never replaces a
// file there: one with other content is refused. The same content counts
// as done, so that a step re-run after a crash succeeds.
func WriteFileNew(path string, data []byte, perm os.FileMode) error {
	return osFiles.writeFile(path, data, perm, false)
}

func (fo fileOps) writeFile(path string, data []byte, perm os.FileMode, replace bool) error {
	dir := filepath.Dir(path)
	if !replace {
		done, err := holds(path, data)
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if done {
			return notDurable("write "+path, fo.syncDirs(dir))
		}
	}
	tmp, err := writeTemp(path, data, perm)
	if err == nil && replace {
		err = fo.rename(tmp, path)
	} else if err == nil {
		err = fo.placeNew(tmp, path)
	}
	if err != nil {
		if tmp != "" {
			os.Remove(tmp)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return notDurable("write "+path, fo.syncDirs(dir))
}

// writeTemp writes data to a new hidden temp file beside path, fsynced.
func writeTemp(path string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// holds reports whether path holds data already; a file with other
// content there is an error, since WriteFileNew never replaces one.
func holds(path string, data []byte) (bool, error) {
	got, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case !bytes.Equal(got, data):
		return false, errExists
	}
	return true, nil
}

// errExists refuses to replace a file that WriteFileNew finds.
var errExists = errors.New("a file with other content is there (put back after it was moved away, by config management or by hand?), and it is never overwritten: move it away by hand, then retry")

// placeNew links tmp to path, which, unlike a rename, fails when path
// exists; then it removes tmp. Where the filesystem has no hard links, a
// check then a rename leaves only an instant for a file to appear.
func (fo fileOps) placeNew(tmp, path string) error {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		os.Remove(tmp) // a leftover hidden temp file is harmless
		return nil
	case errors.Is(err, fs.ErrExist):
		return errExists
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		return errExists
	}
	return fo.rename(tmp, path)
}

// notDurable marks err, a failed fsync after what was made, as ErrNotDurable.
func notDurable(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w (%w)", what, ErrNotDurable, err)
}

func (fo fileOps) syncDirs(dirs ...string) error {
	for _, d := range dirs {
		if err := fo.fsync(d); err != nil {
			return err
		}
	}
	return nil
}

// syncTree fsyncs every file and dir under dir, dir itself, and its
// parent, which holds dir's entry. A file gone meanwhile needs no sync: a
// resumed step may find etcd running there already.
func (fo fileOps) syncTree(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (d.Type().IsRegular() || d.IsDir()) {
			err = fo.fsync(p)
		}
		if p != dir && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	return fo.fsync(filepath.Dir(dir))
}

// fsyncPath fsyncs a file or a dir.
func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}
