//go:build unix

package agent

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Lock is an exclusive flock on a journal dir's lock file. The kernel
// drops it when its holder dies, even by SIGKILL, so a lock that is held
// means an agent is running that journal now.
type Lock struct{ f *os.File }

// ErrLocked says another agent holds the journal.
var ErrLocked = errors.New("another agent is running this journal")

// TryLock takes the lock, retrying for wait (a status probe may hold it
// for an instant).
func TryLock(path string, wait time.Duration) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, ErrLocked
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock() error { return l.f.Close() }

// Held reports whether an agent holds the lock at path now.
func Held(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}
