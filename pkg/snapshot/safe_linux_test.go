package snapshot

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNoReplaceRenameFallback(t *testing.T) {
	snap := snapshotBytes(t)
	for _, errno := range []syscall.Errno{unix.EINVAL, unix.ENOSYS} {
		t.Run(errno.Error(), func(t *testing.T) {
			calls := 0
			renameat2 = func(int, string, int, string, uint) error { calls++; return errno }
			t.Cleanup(func() { renameat2 = unix.Renameat2 })

			path := filepath.Join(t.TempDir(), "etcd.db")
			if _, err := Save(context.Background(), source(snap), &FileSink{Path: path}, Options{}); err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyFile(path); err != nil || calls != 1 {
				t.Errorf("after the fallback: %v, renameat2 called %d times", err, calls)
			}
			if _, err := os.Lstat(path + ".part"); err == nil {
				t.Error("the fallback left the .part")
			}

			// The fallback must not replace a file either.
			other := filepath.Join(t.TempDir(), "etcd.db")
			src := func(context.Context) (io.ReadCloser, error) {
				write(t, other, "someone else's")
				return io.NopCloser(bytes.NewReader(snap)), nil
			}
			if _, err := Save(context.Background(), src, &FileSink{Path: other}, Options{}); err == nil || !strings.Contains(err.Error(), "stays at") {
				t.Errorf("Save() over a new file = %v", err)
			}
			if b, _ := os.ReadFile(other); string(b) != "someone else's" {
				t.Error("the fallback replaced a file")
			}
		})
	}
}

func TestDecryptUsesMemfd(t *testing.T) {
	path, ids := encryptedSnapshot(t)
	p, err := Decrypt(path, ids, "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if target, err := os.Readlink(p.Path); err != nil || !strings.HasPrefix(target, "/memfd:") {
		t.Errorf("%s links to %q, %v; want a memfd", p.Path, target, err)
	}
	// bbolt opens it by that name: flock and mmap work on a memfd.
	if rev, err := Revision(p.Path); err != nil || rev == 0 {
		t.Errorf("Revision(%s) = %d, %v", p.Path, rev, err)
	}
}
