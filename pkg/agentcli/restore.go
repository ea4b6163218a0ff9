package agentcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

const lockFile = agentapi.LockFile

// start checks the node against the spec and writes the journal, with the
// cluster untouched, then runs the steps detached: from here on the API
// server goes away, and with it the exec session that started the agent.
// With --prepare it stops after the journal (PrepareRestore checks the
// barrier port too): the plugin prepares every node before it starts any agent
// (`restore run --detach`), so that a node that cannot take part is found
// while nothing has stopped anywhere (S1).
func (o *options) start(ctx context.Context) error {
	spec, err := o.readSpec()
	if err != nil {
		return err
	}
	if path.Base(spec.JournalDir) != spec.ID {
		return fmt.Errorf("journal dir %s must end in the restore id %s, so that `--id` finds it", spec.JournalDir, spec.ID)
	}
	// Checked before the node lock, which is made in the journal dir's
	// parent: never inside the static pod dir.
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("nothing was changed: %w", err)
	}
	dir, err := o.startJournal(spec.ID, spec.JournalDir, func(dir string) error { return o.prepareJournal(dir, spec) })
	if err != nil {
		return err
	}
	if o.prepare {
		return o.printStarted(0)
	}
	return o.handover(dir, "run")
}

// startJournal points o at the journal dir of operation id, and runs
// prepare (the node's checks, the journal written) holding the node's
// lock; it returns the journal dir.
func (o *options) startJournal(id, journalDir string, prepare func(dir string) error) (string, error) {
	o.id, o.journalRoot = id, path.Dir(journalDir)
	dir, err := o.dir()
	if err != nil {
		return "", err
	}
	nodeLock, err := o.lockNode()
	if err != nil {
		return "", err
	}
	defer nodeLock.Unlock()
	return dir, prepare(dir)
}

// lockNode takes the node's lock (agentapi.NodeLockFile, in the restore
// journals' root: a replace takes the same one, since either moves etcd's
// manifest), which a start holds from its checks until its journal is
// written.
func (o *options) lockNode() (*agent.Lock, error) {
	lockRoot := o.journalRoot
	if o.op != agentapi.RestoreOperation && o.op != "" {
		lockRoot = path.Join(path.Dir(o.journalRoot), agentapi.RestoreOperation)
	}
	base := filepath.Join(o.root, filepath.FromSlash(lockRoot))
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, fmt.Errorf("make the journal root: %w", err)
	}
	lock, err := agent.TryLock(filepath.Join(base, agentapi.NodeLockFile), o.nodeLockWait)
	if errors.Is(err, agent.ErrLocked) {
		return nil, fmt.Errorf("nothing was changed: another restore, replace or recovery is starting on this node now (it holds %s): let it finish, see `kubectl etcd restore --status` or `kubectl etcd member replace NODE --status`, then retry", path.Join(lockRoot, agentapi.NodeLockFile))
	}
	return lock, err
}

// prepareJournal checks the node and writes the journal, all steps
// pending; the caller holds the node's lock.
func (o *options) prepareJournal(dir string, spec *agentapi.RestoreSpec) error {
	restored, err := agent.PrepareRestore(o.root, spec)
	if err != nil {
		return fmt.Errorf("nothing was changed: %w", err)
	}
	if spec.StartWithin > 0 {
		by := time.Now().Add(time.Duration(spec.StartWithin)).UTC()
		spec.StartBy = &by
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make the journal dir: %w", err)
	}
	lock, err := agent.TryLock(filepath.Join(dir, lockFile), 0)
	if err != nil {
		return fmt.Errorf("restore %s: %w", spec.ID, err)
	}
	defer lock.Unlock()
	return o.writeJournal(dir, spec, restored)
}

func (o *options) readSpec() (*agentapi.RestoreSpec, error) {
	return readSpecFile[agentapi.RestoreSpec](o, "restore")
}

// readSpecFile reads the spec the plugin wrote (--spec FILE, or - for
// stdin), refusing fields it does not know.
func readSpecFile[T any](o *options, op string) (*T, error) {
	var r io.Reader = o.stdin
	if o.specFile == "" {
		return nil, fmt.Errorf("%w: --spec names the %s spec the plugin wrote", errUsage, op)
	}
	if o.specFile != "-" {
		f, err := os.Open(o.specFile)
		if err != nil {
			return nil, fmt.Errorf("read the spec: %w", err)
		}
		defer f.Close()
		r = f
	}
	var s T
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields() // a newer plugin's field must not be ignored silently
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("the %s spec is not valid (%w): plugin and agent versions differ?", op, err)
	}
	return &s, nil
}

// writeJournal writes the journal, all steps pending, under the lock: two
// starts at once must not both pass PrepareRestore's check for a journal.
func (o *options) writeJournal(dir string, spec *agentapi.RestoreSpec, restored []byte) error {
	jp := filepath.Join(dir, agentapi.JournalFile)
	if _, err := os.Lstat(jp); err == nil {
		return fmt.Errorf("restore %s already has a journal: resume it with `restore run` or roll it back", spec.ID)
	}
	if err := agent.WriteFileAtomic(filepath.Join(dir, agentapi.RestoredManifest), restored, 0o600); err != nil {
		return err
	}
	steps := agent.RestoreSteps(spec, restored, o.env(spec))
	j, err := agent.NewJournal(spec.ID, agentapi.RestoreOperation, spec.Node, time.Now(), spec, steps)
	if err != nil {
		return err
	}
	return agent.SaveJournal(j, jp)
}

// env also keeps the spec's barrier in o.barrier, for run to serve.
func (o *options) env(spec *agentapi.RestoreSpec) agent.RestoreEnv {
	env := agent.RestoreEnv{
		Root:   o.root,
		Dialer: &net.Dialer{Timeout: 2 * time.Second},
		HTTP:   agent.ProbeHTTP(),
	}
	if o.barrier = agent.NewBarrier(o.root, spec); o.barrier != nil {
		env.Barrier = o.barrier
	}
	return env
}

// engine rebuilds the steps of the journal in dir from its own spec.
func (o *options) engine(dir string) (*agent.Engine, *agentapi.RestoreSpec, error) {
	jp := filepath.Join(dir, agentapi.JournalFile)
	j, err := agentapi.LoadJournal(jp)
	if err != nil {
		return nil, nil, fmt.Errorf("restore %s: %w", o.id, err)
	}
	var spec agentapi.RestoreSpec
	if err := json.Unmarshal(j.Spec, &spec); err != nil {
		return nil, nil, fmt.Errorf("journal %s holds no readable spec: %w", jp, err)
	}
	// Checked again on every resume: an edited journal must not point the
	// steps anywhere a fresh spec could not (X5).
	if err := spec.Validate(); err != nil {
		return nil, nil, fmt.Errorf("journal %s: %w; nothing was changed: inspect it by hand", jp, err)
	}
	if spec.ID != o.id {
		return nil, nil, fmt.Errorf("journal %s is of restore %q, not %s: nothing was changed", jp, spec.ID, o.id)
	}
	restored, err := os.ReadFile(filepath.Join(dir, agentapi.RestoredManifest))
	if err != nil {
		return nil, nil, fmt.Errorf("restore %s: %w", o.id, err)
	}
	e, err := agent.NewEngine(jp, j, agent.RestoreSteps(&spec, restored, o.env(&spec)))
	return e, &spec, err
}

// claim locks the journal in dir for this process and records its PID,
// which is the first journal update `start` waits for.
func (o *options) claim(dir string) (*agent.Engine, *agentapi.RestoreSpec, *agent.Lock, error) {
	lock, err := o.lockJournal(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	e, spec, err := o.engine(dir)
	if err == nil {
		e.Journal().PID, e.Journal().Claim = os.Getpid(), o.claimToken
		err = agent.SaveJournal(e.Journal(), filepath.Join(dir, agentapi.JournalFile))
	}
	if err != nil {
		lock.Unlock()
		return nil, nil, nil, err
	}
	return e, spec, lock, nil
}

// lockJournal takes the journal's lock in dir, which an agent holds
// while it runs the journal's steps.
func (o *options) lockJournal(dir string) (*agent.Lock, error) {
	lock, err := agent.TryLock(filepath.Join(dir, lockFile), 2*time.Second)
	if errors.Is(err, agent.ErrLocked) {
		pid := 0
		if j, jerr := agentapi.LoadJournal(filepath.Join(dir, agentapi.JournalFile)); jerr == nil {
			pid = j.PID
		}
		return nil, fmt.Errorf("an agent (pid %d) is running %s %s now: wait until `%s status` shows agentRunning false, or stop it (kill %d), then retry", pid, o.opName(), o.id, o.opName(), pid)
	}
	return lock, err
}

// run is the detached body; run again, it resumes from the journal.
// With --decision it first records a decision given from outside, for a
// node that holds at the barrier (see takeDecision).
func (o *options) run(ctx context.Context) error {
	if o.decision != "" {
		if err := o.takeDecision(); err != nil {
			return err
		}
	} else if o.from != "" {
		return fmt.Errorf("%w: --from goes with --decision", errUsage)
	}
	return o.withJournal("run", func(e *agent.Engine, spec *agentapi.RestoreSpec) error {
		if e.Journal().Phase == agentapi.PhaseRollingBack {
			// A rollback this agent began (a failure before the barrier, or
			// a single member's after the swap) was cut off: the kubelet
			// restarted the agent, which finishes it rather than refuse to
			// run and crash-loop with the node half stopped (S4).
			o.logf("restore %s: resuming the interrupted rollback", o.id)
			if err := e.Rollback(ctx); err != nil {
				return err
			}
			o.logf("restore %s: rolled back", o.id)
			return nil
		}
		if late(e.Journal(), spec, time.Now()) {
			// Nothing began, so the rollback changes nothing; the peers
			// gave up on this node at the barrier long ago.
			o.logf("restore %s: not begun by %s, its deadline: closing it as rolled back", o.id, spec.StartBy.UTC().Format(time.RFC3339))
			if err := e.Rollback(ctx); err != nil {
				return err
			}
			dir, err := o.dir()
			if err != nil {
				return err
			}
			j := e.Journal()
			j.Error = fmt.Sprintf("the agent did not begin by %s, so it changed nothing and closed the restore", spec.StartBy.UTC().Format(time.RFC3339))
			return agent.SaveJournal(j, filepath.Join(dir, agentapi.JournalFile))
		}
		o.logf("restore %s: running from phase %s", o.id, e.Journal().Phase)
		if o.barrier != nil {
			// Without its listener the peers cannot learn of this node:
			// change nothing, and let a resume try again.
			if err := o.barrier.Serve(); err != nil {
				return fmt.Errorf("nothing was changed: %w; then run `restore run --id %s`", err, o.id)
			}
			defer o.closeBarrier(ctx)
		}
		err := e.Run(ctx)
		if errors.Is(err, agent.ErrPastPointOfNoReturn) && spec.AfterSwapFailure == agentapi.AfterSwapRollback {
			o.logf("restore %s: %v; rolling back (afterSwapFailure %s)", o.id, err, spec.AfterSwapFailure)
			if rerr := e.Rollback(ctx); rerr != nil {
				return fmt.Errorf("%w; the rollback failed too: %w", err, rerr)
			}
			return fmt.Errorf("%w; rolled back", err)
		}
		if err != nil {
			return err
		}
		o.logf("restore %s: done", o.id)
		return nil
	})
}

// late reports whether a restore that has not begun any step is past its
// StartBy deadline.
func late(j *agentapi.Journal, spec *agentapi.RestoreSpec, now time.Time) bool {
	if spec.StartBy == nil || !now.After(*spec.StartBy) {
		return false
	}
	for _, s := range j.Steps {
		if s.State != agentapi.Pending {
			return false
		}
	}
	return true
}

// closeBarrier serves on until the peers know the decision; see Close.
func (o *options) closeBarrier(ctx context.Context) {
	o.logf("restore %s: serving the barrier until every peer knows the decision", o.id)
	if err := o.barrier.Close(ctx); err != nil {
		o.logf("restore %s: stop the barrier listener: %v", o.id, err)
	}
}

// takeDecision records, under the journal's lock, the decision given
// with --decision and where it came from (--from), for a node that holds
// at the barrier while no peer serves the decision any more (S5); the run
// then acts on it as on one it learned at the barrier.
func (o *options) takeDecision() error {
	dir, err := o.dir()
	if err != nil {
		return err
	}
	lock, err := o.lockJournal(dir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	e, _, err := o.engine(dir)
	if err != nil {
		return err
	}
	if o.barrier == nil {
		return fmt.Errorf("nothing was changed: restore %s has no peers, so no barrier and no decision to take; resume it with `restore run --id %s`", o.id, o.id)
	}
	if err := o.barrier.Take(e.Journal(), agentapi.Decision(o.decision), o.from); err != nil {
		return fmt.Errorf("nothing was changed: %w", err)
	}
	o.logf("restore %s: recorded the barrier's decision %s, from %s", o.id, o.decision, o.from)
	return nil
}

// rollback refuses, before it hands over or changes anything, a rollback
// that would lead somewhere worse than where the node is (CheckRollback);
// the agent that rolls back checks again, under the journal's lock. With
// --prepare, --release or --recall it is one phase of a rollback over the
// API (see rollback.go).
func (o *options) rollback(ctx context.Context) error {
	if phase, err := o.rollbackPhase(); err != nil || phase != nil {
		if err != nil {
			return err
		}
		return phase()
	}
	if o.detach {
		if err := o.checkRollback(); err != nil {
			return err
		}
	}
	return o.withJournal("rollback", func(e *agent.Engine, _ *agentapi.RestoreSpec) error {
		if err := o.awaitRelease(ctx, e.Journal()); err != nil {
			return err
		}
		if err := o.checkRollback(); err != nil {
			return err
		}
		o.logf("restore %s: rolling back from phase %s", o.id, e.Journal().Phase)
		if err := e.Rollback(ctx); err != nil {
			return err
		}
		o.logf("restore %s: rolled back", o.id)
		return nil
	})
}

func (o *options) checkRollback() error {
	if _, err := o.dir(); err != nil {
		return err
	}
	all, err := o.journals()
	if err != nil {
		return err
	}
	for _, j := range all {
		if j.ID != o.id {
			continue
		}
		if c := agent.CheckRollback(o.root, j, all); c.Refused != "" {
			return fmt.Errorf("restore %s is not rolled back on node %s: %s", o.id, j.Node, c.Refused)
		}
		return nil
	}
	return fmt.Errorf("restore %s: no journal on this node", o.id)
}

// withJournal hands `restore sub` over to an agent that outlives this
// process when asked (--detach), or else runs fn holding the journal's
// lock; as a static pod, see asStaticPod.
func (o *options) withJournal(sub string, fn func(*agent.Engine, *agentapi.RestoreSpec) error) error {
	dir, err := o.dir()
	if err != nil {
		return err
	}
	if o.detach {
		return o.handover(dir, sub)
	}
	body := func() error {
		e, spec, lock, err := o.claim(dir)
		if err != nil {
			return err
		}
		defer lock.Unlock()
		return fn(e, spec)
	}
	if o.staticPod != "" {
		return o.asStaticPod(dir, body)
	}
	return body()
}

func (o *options) logf(format string, args ...any) {
	fmt.Fprintf(o.stderr, "%s "+format+"\n", append([]any{time.Now().UTC().Format(time.RFC3339)}, args...)...)
}
