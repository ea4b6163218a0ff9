package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// Step is one unit of node-side work. Do must be idempotent: after a crash
// the engine runs it again, whether or not it had acted. Do must also act
// atomically and fail having changed nothing, or else fail with an error
// wrapping ErrNotDurable, having acted. Undo reverses Do, is idempotent
// too, and must accept a Do that never ran; nil means there is nothing to
// reverse (a wait, a check).
type Step struct {
	Name            string
	Do              func(ctx context.Context) error
	Undo            func(ctx context.Context) error
	Moves           []agentapi.Move
	PointOfNoReturn bool
	// Detail says, for the plan the user confirms, what the name alone
	// does not; empty when the name and the moves say it all.
	Detail string
}

// ErrPastPointOfNoReturn marks a failure that the node did not roll back by
// itself; the caller decides between a resume and a rollback.
var ErrPastPointOfNoReturn = errors.New("past the point of no return")

// ErrRolledBack marks a failure after which the node rolled itself back.
var ErrRolledBack = errors.New("rolled back")

// ErrHold, wrapped by a step's error, stops the run without a rollback even
// before the point of no return: the step cannot tell whether going on or
// rolling back is safe (a barrier that lost its coordinator), so the node
// waits, as it is, for a resume or a rollback.
var ErrHold = errors.New("holding: neither going on nor rolling back is known to be safe")

// Engine runs a journal's steps, saving the journal before and after each.
type Engine struct {
	journal *agentapi.Journal
	path    string
	steps   []Step
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewEngine pairs a journal (new, or loaded after a crash) with the steps
// it records. The names must match: steps built from another spec or
// another agent version must not be run against this journal.
func NewEngine(path string, j *agentapi.Journal, steps []Step) (*Engine, error) {
	if len(j.Steps) != len(steps) {
		return nil, fmt.Errorf("journal %s has %d steps and this agent builds %d: finish it with the agent that started it", path, len(j.Steps), len(steps))
	}
	for i, s := range steps {
		if j.Steps[i].Name != s.Name {
			return nil, fmt.Errorf("journal %s step %d is %q, this agent's is %q: finish it with the agent that started it", path, i+1, j.Steps[i].Name, s.Name)
		}
	}
	return &Engine{journal: j, path: path, steps: steps, Now: time.Now}, nil
}

// Journal returns the engine's journal, as last saved.
func (e *Engine) Journal() *agentapi.Journal { return e.journal }

func (e *Engine) now() *time.Time {
	t := e.Now().UTC()
	return &t
}

// Run runs every step not done yet, in order. On a failure before the
// point of no return it rolls back and returns an error wrapping
// ErrRolledBack; after it, it stops and returns one wrapping
// ErrPastPointOfNoReturn.
func (e *Engine) Run(ctx context.Context) error {
	switch e.journal.Phase {
	case agentapi.PhaseDone:
		return nil
	case agentapi.PhaseRollingBack, agentapi.PhaseRolledBack:
		return fmt.Errorf("operation %s was rolled back (phase %s): finish the rollback, then start a new one", e.journal.ID, e.journal.Phase)
	}
	e.journal.Phase, e.journal.Error = agentapi.PhaseRunning, ""
	for i := range e.steps {
		if e.journal.Steps[i].State == agentapi.Done {
			continue
		}
		if err := e.runStep(ctx, i); err != nil {
			return e.fail(ctx, i, err)
		}
	}
	e.journal.Phase = agentapi.PhaseDone
	return e.save()
}

func (e *Engine) runStep(ctx context.Context, i int) error {
	rec := &e.journal.Steps[i]
	rec.State, rec.Started, rec.Ended, rec.Error = agentapi.Running, e.now(), nil, ""
	if err := e.save(); err != nil {
		return err
	}
	err := e.steps[i].Do(ctx)
	rec.Ended = e.now()
	if err != nil {
		rec.State, rec.Error = agentapi.Failed, err.Error()
		if errors.Is(err, ErrNotDurable) && e.steps[i].Undo != nil {
			// It acted, but a crash may still undo that: neither "failed,
			// changed nothing" nor done, which is where a step found
			// running after a crash is. So it stays Running: a rollback
			// undoes it (Undo accepts either outcome), and a point-of-no-
			// return step counts as passed. A step without an Undo (the
			// barrier's record) has nothing to put back, and stays Failed.
			rec.State = agentapi.Running
		}
		if serr := e.save(); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}
	rec.State = agentapi.Done
	return e.save()
}

func (e *Engine) fail(ctx context.Context, i int, err error) error {
	err = fmt.Errorf("step %q: %w", e.steps[i].Name, err)
	if e.journal.PastPointOfNoReturn() || errors.Is(err, ErrHold) {
		e.journal.Phase, e.journal.Error = agentapi.PhaseFailed, err.Error()
		if serr := e.save(); serr != nil {
			return errors.Join(err, serr)
		}
		return fmt.Errorf("%w (%w): resume or roll back", err, ErrPastPointOfNoReturn)
	}
	if rerr := e.Rollback(ctx); rerr != nil {
		return fmt.Errorf("%w; the rollback failed too: %w", err, rerr)
	}
	return fmt.Errorf("%w (%w)", err, ErrRolledBack)
}

// Rollback undoes, in reverse order, every step that is done or was found
// running. Failed steps changed nothing (Do is atomic; one that acted but
// could not make it durable stays Running, see runStep). An interrupted
// rollback can be run again.
func (e *Engine) Rollback(ctx context.Context) error {
	e.journal.Phase = agentapi.PhaseRollingBack
	if err := e.save(); err != nil {
		return err
	}
	for i := len(e.steps) - 1; i >= 0; i-- {
		rec := &e.journal.Steps[i]
		if rec.State != agentapi.Done && rec.State != agentapi.Running {
			continue
		}
		if undo := e.steps[i].Undo; undo != nil {
			if err := undo(ctx); err != nil {
				rec.Error = "undo: " + err.Error()
				e.journal.Error = fmt.Sprintf("undo %q: %v", rec.Name, err)
				return errors.Join(fmt.Errorf("undo step %q: %w", rec.Name, err), e.save())
			}
		}
		rec.State, rec.Ended = agentapi.Undone, e.now()
		if err := e.save(); err != nil {
			return err
		}
	}
	e.journal.Phase, e.journal.Error = agentapi.PhaseRolledBack, ""
	return e.save()
}

func (e *Engine) save() error {
	if err := SaveJournal(e.journal, e.path); err != nil {
		return fmt.Errorf("save the journal %s: %w", e.path, err)
	}
	return nil
}
