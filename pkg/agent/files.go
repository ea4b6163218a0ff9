package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// MoveAside moves src to dst, never deleting or overwriting anything. It is
// idempotent: src gone and dst present counts as done, so a step re-run
// after a crash succeeds.
//
// A file moves across filesystems by copy, fsync, then unlink of the source
// (a manifest must leave the static pod dir, which may be on another
// filesystem than the journal). A directory does not: copying an etcd data
// dir is slow and a half-done copy is a trap, so that is an error naming
// the fix.
func MoveAside(src, dst string) error {
	srcInfo, serr := os.Lstat(src)
	_, derr := os.Lstat(dst)
	switch {
	case errors.Is(serr, os.ErrNotExist) && derr == nil:
		return nil
	case errors.Is(serr, os.ErrNotExist) && errors.Is(derr, os.ErrNotExist):
		return fmt.Errorf("move %s to %s: neither exists; check the journal and the node by hand", src, dst)
	case serr != nil:
		return fmt.Errorf("move %s: %w", src, serr)
	case derr == nil:
		return fmt.Errorf("move %s to %s: the destination exists and nothing is overwritten; move it away by hand, then retry", src, dst)
	case !errors.Is(derr, os.ErrNotExist):
		return fmt.Errorf("move %s to %s: %w", src, dst, derr)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("move %s: make %s: %w", src, filepath.Dir(dst), err)
	}
	err := os.Rename(src, dst)
	switch {
	case errors.Is(err, syscall.EXDEV) && srcInfo.Mode().IsRegular():
		err = copyThenUnlink(src, dst, srcInfo.Mode().Perm())
	case errors.Is(err, syscall.EXDEV):
		return fmt.Errorf("move %s to %s: they are on different filesystems and a directory is only moved by rename: choose paths on one filesystem", src, dst)
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("move %s: it is a mount point, which cannot be moved: choose paths inside it", src)
	}
	if err != nil {
		return fmt.Errorf("move %s to %s: %w", src, dst, err)
	}
	return syncDirs(filepath.Dir(src), filepath.Dir(dst))
}

// PutBack reverses MoveAside(orig, aside), with the same guarantees.
func PutBack(orig, aside string) error { return MoveAside(aside, orig) }

func copyThenUnlink(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".part")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
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
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp) // our own partial copy; the source is untouched
		return err
	}
	if err := syncDirs(filepath.Dir(dst)); err != nil {
		return err
	}
	return os.Remove(src)
}

// WriteFileAtomic writes path through a temp file in the same dir: fsync,
// rename, fsync the dir. The temp name starts with a dot because the
// kubelet ignores hidden files in the static pod dir and starts every
// other one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
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
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDirs(dir)
}

func syncDirs(dirs ...string) error {
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			return fmt.Errorf("sync %s: %w", d, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", d, err)
		}
	}
	return nil
}
