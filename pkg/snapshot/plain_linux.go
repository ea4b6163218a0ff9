package snapshot

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// memFile is an anonymous file in memory: no name on any filesystem.
func memFile(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, hint.With(fmt.Errorf("memfd_create: %w", err), "pass --decrypt-dir DIR to decrypt into a private file there, removed after")
	}
	return os.NewFile(uintptr(fd), name), nil
}

// memPath names f for an open by path, as bbolt wants.
func memPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }
