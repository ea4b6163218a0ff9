//go:build !unix

package agent

import (
	"errors"
	"time"
)

// Lock is unsupported off Unix: the agent runs only on Linux nodes. This
// file lets the plugin, built for every OS, import the package (its
// restore plan comes from PlanRestore).
type Lock struct{}

// ErrLocked says another agent holds the journal.
var ErrLocked = errors.New("another agent is running this journal")

// TryLock fails off Unix.
func TryLock(string, time.Duration) (*Lock, error) {
	return nil, errors.New("the node agent runs only on Linux")
}

// Unlock does nothing.
func (*Lock) Unlock() error { return nil }

// Held reports false.
func Held(string) bool { return false }
