package snapshot

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameat2 is unix.Renameat2, replaced in tests to exercise the fallback.
var renameat2 = unix.Renameat2

// renameNoReplace moves from to to, failing with fs.ErrExist rather than
// replacing an existing to. Filesystems and kernels without
// RENAME_NOREPLACE (EINVAL, ENOSYS) get link and unlink instead.
func renameNoReplace(from, to string) error {
	err := renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return linkUnlink(from, to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
