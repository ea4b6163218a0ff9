package agentcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// The phases of a rollback over the API (agentapi.RollbackFile says why).

// defaultReleaseGrace is how long a released rollback's agent waits
// before it acts: the plugin releases every node at once, each release
// a file write, so every release has returned by then, and a failed one
// can still be recalled everywhere.
const defaultReleaseGrace = 10 * time.Second

// recallMargin: a recall closer than this to the start is refused, as
// the agent may already be reading whether it was recalled.
const recallMargin = time.Second

func (o *options) rollbackFlags(fs *flag.FlagSet) {
	o.handoverFlags(fs)
	fs.BoolVar(&o.prepare, "prepare", false, "check the node and write the rollback's static pod into the journal dir; nothing acts until --release")
	fs.BoolVar(&o.release, "release", false, "start the prepared rollback; its agent acts after --grace")
	fs.BoolVar(&o.recall, "recall", false, "stop a released rollback before its agent acts")
	fs.DurationVar(&o.grace, "grace", defaultReleaseGrace, "with --release: how long the agent waits before it acts, so that every node is released first")
}

// rollbackPhase is the phase asked for, nil for a rollback in one go.
func (o *options) rollbackPhase() (func() error, error) {
	var phase func() error
	n := 0
	for _, p := range []struct {
		on bool
		f  func() error
	}{{o.prepare, o.prepareRollback}, {o.release, o.releaseRollback}, {o.recall, o.recallRollback}, {o.detach, nil}} {
		if p.on {
			n, phase = n+1, p.f
		}
	}
	if n > 1 {
		return nil, fmt.Errorf("%w: --prepare, --release, --recall and --detach exclude each other", errUsage)
	}
	return phase, nil
}

// prepareRollback checks the node as a rollback would, and writes what
// the release needs: the rollback's static pod into the journal dir, and
// agentapi.RollbackFile. Nothing acts; a prepare that is never released
// changes nothing, and the next one replaces it.
func (o *options) prepareRollback() error {
	dir, err := o.dir()
	if err != nil {
		return err
	}
	spec, lock, err := o.lockIdle(dir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := o.checkRollback(); err != nil {
		return err
	}
	token, err := newClaim()
	if err != nil {
		return err
	}
	pod := filepath.Join(dir, agentapi.PreparedRollbackPod)
	if err := os.Remove(pod); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if spec.AgentImage != "" {
		b, err := o.agentPod(spec.Pod(), "rollback", token)
		if err != nil {
			return err
		}
		if err := agent.WriteFileAtomic(pod, b, 0o600); err != nil {
			return err
		}
	}
	r := agentapi.RollbackRelease{Prepared: time.Now().UTC(), Claim: token}
	if err := agent.SaveRollbackRelease(&r, filepath.Join(dir, agentapi.RollbackFile)); err != nil {
		return err
	}
	return o.printStarted(0)
}

// lockIdle takes the journal's lock for a phase of a rollback, refusing
// while an agent runs the restore or is about to: it holds the lock, or
// its static pod is in the static pod dir (an agent that crash-loops
// holds no lock between its restarts, S6).
func (o *options) lockIdle(dir string) (*agentapi.RestoreSpec, *agent.Lock, error) {
	lock, err := o.lockJournal(dir)
	if err != nil {
		return nil, nil, err
	}
	_, spec, err := o.journalSpec(dir)
	if err == nil {
		for _, sub := range []string{"run", "rollback"} {
			if f := o.staticPodFile(spec.Pod(), sub); exists(f) {
				err = fmt.Errorf("nothing was changed: the agent's static pod %s is in the static pod dir, so an agent runs restore %s, or the kubelet is about to restart one: wait until it has ended (`restore status`), then retry", f, o.id)
				break
			}
		}
	}
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	return spec, lock, nil
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// releaseRollback starts the prepared rollback: it records when it may
// begin (now plus --grace), then puts the prepared static pod into the
// static pod dir, or runs the agent detached without an agent image. It
// returns at once; the agent waits in awaitRelease.
func (o *options) releaseRollback() error {
	dir, err := o.dir()
	if err != nil {
		return err
	}
	spec, r, pod, err := o.markReleased(dir)
	if err != nil {
		return err
	}
	o.notBefore = r.NotBefore
	if spec.AgentImage == "" {
		o.claimToken = r.Claim
		return o.spawn(dir, "rollback")
	}
	if err := agent.WriteFileAtomic(o.staticPodFile(spec.Pod(), "rollback"), pod, 0o600); err != nil {
		return fmt.Errorf("start the rollback's static pod: %w; recall the other nodes' rollbacks (`restore rollback --id %s --recall`) before %s", err, o.id, r.NotBefore.Format(time.RFC3339))
	}
	return o.printStarted(0)
}

// markReleased checks the node again, as a rollback would, and records
// the release in agentapi.RollbackFile; it returns the prepared static pod.
func (o *options) markReleased(dir string) (*agentapi.RestoreSpec, *agentapi.RollbackRelease, []byte, error) {
	spec, lock, err := o.lockIdle(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	defer lock.Unlock()
	rp := filepath.Join(dir, agentapi.RollbackFile)
	r, err := agentapi.LoadRollbackRelease(rp)
	switch {
	case err != nil:
		return nil, nil, nil, err
	case r == nil:
		err = fmt.Errorf("the rollback of restore %s is not prepared on this node: run `restore rollback --id %s --prepare` on every node first", o.id, o.id)
	case r.Recalled != nil:
		err = fmt.Errorf("the rollback of restore %s was recalled at %s: prepare it again on every node, then release it", o.id, r.Recalled.Format(time.RFC3339))
	case r.Released != nil:
		err = fmt.Errorf("the rollback of restore %s was released at %s already: `restore status` shows where it is", o.id, r.Released.Format(time.RFC3339))
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("nothing was changed: %w", err)
	}
	if err := o.checkRollback(); err != nil {
		return nil, nil, nil, err
	}
	var pod []byte
	if spec.AgentImage != "" {
		if pod, err = os.ReadFile(filepath.Join(dir, agentapi.PreparedRollbackPod)); err != nil {
			return nil, nil, nil, fmt.Errorf("nothing was changed: the prepared rollback's static pod: %w; prepare it again on every node", err)
		}
	}
	now := time.Now().UTC()
	at := now.Add(o.grace)
	r.Released, r.NotBefore = &now, &at
	if err := agent.SaveRollbackRelease(r, rp); err != nil {
		return nil, nil, nil, fmt.Errorf("nothing was changed: record the release: %w", err)
	}
	return spec, r, pod, nil
}

// recallRollback stops a released rollback before its agent acts: the
// record says recalled, which the agent reads at its start, and the
// static pod leaves. Too close to the start it refuses, as the agent may
// be acting; with nothing released it has nothing to do.
func (o *options) recallRollback() error {
	dir, err := o.dir()
	if err != nil {
		return err
	}
	_, spec, err := o.journalSpec(dir)
	if err != nil {
		return err
	}
	rp := filepath.Join(dir, agentapi.RollbackFile)
	r, err := agentapi.LoadRollbackRelease(rp)
	if err != nil || r == nil || r.Released == nil || r.Recalled != nil {
		return err
	}
	now := time.Now().UTC()
	if !now.Add(recallMargin).Before(*r.NotBefore) {
		return fmt.Errorf("too late to recall the rollback of restore %s: its agent begins at %s; see `restore status`: once it has rolled back, roll the other nodes back too", o.id, r.NotBefore.Format(time.RFC3339))
	}
	r.Recalled = &now
	if err := agent.SaveRollbackRelease(r, rp); err != nil {
		return fmt.Errorf("the rollback of restore %s was not recalled (%w): it begins at %s", o.id, err, r.NotBefore.Format(time.RFC3339))
	}
	if !time.Now().Before(*r.NotBefore) {
		return fmt.Errorf("the recall of restore %s's rollback was recorded only after its start %s: its agent may have begun; see `restore status`", o.id, r.NotBefore.Format(time.RFC3339))
	}
	if err := os.Remove(o.staticPodFile(spec.Pod(), "rollback")); err != nil && !errors.Is(err, os.ErrNotExist) {
		o.logf("restore %s: the recalled rollback's static pod stays (%v); its agent gives up at its start", o.id, err)
	}
	o.logf("restore %s: recalled the rollback released at %s; nothing was changed", o.id, r.Released.Format(time.RFC3339))
	return nil
}

// awaitRelease holds the agent of a released rollback (its claim token is
// the release's) until the release's start, so that no node acts before
// every node is released, then stops it if the release was recalled
// meanwhile. Any other rollback (by hand, a resumed one) goes at once.
func (o *options) awaitRelease(ctx context.Context, j *agentapi.Journal) error {
	if o.claimToken == "" || j.Phase == agentapi.PhaseRollingBack {
		return nil
	}
	dir, err := o.dir()
	if err != nil {
		return err
	}
	rp := filepath.Join(dir, agentapi.RollbackFile)
	r, err := agentapi.LoadRollbackRelease(rp)
	if err != nil || r == nil || r.Claim != o.claimToken {
		return err
	}
	if r.NotBefore == nil {
		return fmt.Errorf("nothing was changed: the rollback of restore %s was prepared, not released: `restore rollback --id %s --release` starts it", o.id, o.id)
	}
	if wait := time.Until(*r.NotBefore); wait > 0 {
		o.logf("restore %s: rollback released; it begins at %s, once every node is released", o.id, r.NotBefore.Format(time.RFC3339))
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing was changed: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
	if r, err = agentapi.LoadRollbackRelease(rp); err != nil {
		return fmt.Errorf("nothing was changed: %w", err)
	}
	if r == nil || r.Recalled != nil {
		return fmt.Errorf("nothing was changed: the rollback of restore %s was recalled before it began", o.id)
	}
	return nil
}
