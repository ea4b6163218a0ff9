package agent

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// MoveStep moves from to to; its undo moves it back.
func MoveStep(name, from, to string) Step {
	return Step{
		Name:  name,
		Moves: []agentapi.Move{{From: from, To: to}},
		Do:    func(context.Context) error { return MoveAside(from, to) },
		Undo:  func(context.Context) error { return undoMove(from, to) },
	}
}

// PutBackStep moves a file that an earlier step moved aside back to orig;
// its undo moves it aside again.
func PutBackStep(name, orig, aside string) Step {
	return Step{
		Name:  name,
		Moves: []agentapi.Move{{From: aside, To: orig}},
		Do:    func(context.Context) error { return PutBack(orig, aside) },
		Undo:  func(context.Context) error { return undoMove(aside, orig) },
	}
}

// undoMove reverses MoveAside(from, to), accepting that it never ran.
func undoMove(from, to string) error {
	if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Lstat(from); err == nil {
			return nil
		}
	}
	return MoveAside(to, from)
}

// WriteStep writes data to path, which must not exist yet (its old
// content was moved aside by an earlier step): a file that reappeared
// there is refused, not overwritten (WriteFileNew). Its undo moves the
// written file to aside rather than deleting it.
func WriteStep(name, path, aside string, data []byte, pointOfNoReturn bool) Step {
	return Step{
		Name:            name,
		PointOfNoReturn: pointOfNoReturn,
		Moves:           []agentapi.Move{{To: path}},
		Do:              func(context.Context) error { return WriteFileNew(path, data, 0o600) },
		Undo: func(context.Context) error {
			if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return MoveAside(path, aside)
		},
	}
}

// WaitStep waits for cond. Waiting changes nothing, so it has no undo.
func WaitStep(name, what string, cond Condition, timeout, interval time.Duration) Step {
	return Step{
		Name: name,
		Do: func(ctx context.Context) error {
			return WaitFor(ctx, what, cond, timeout, interval)
		},
	}
}
