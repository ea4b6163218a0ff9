package agent

import (
	"fmt"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// Take records d, learned from outside the barrier (from says where), for
// a node that holds at the barrier: its coordinator died, or it came too
// late, and no peer serves the decision any more, though their
// BarrierFile holds it. A resume then acts on it as on one it learned
// itself. j is the node's journal; the caller holds its lock.
//
// The caller must have read d where a node recorded it: guessing is what
// splits a cluster. Take refuses what contradicts this node's own
// journal: a node that has not reached the barrier, or has acted on a
// decision, or recorded another one.
func (b *PeerBarrier) Take(j *agentapi.Journal, d agentapi.Decision, from string) error {
	if d != agentapi.Commit && d != agentapi.Abort {
		return fmt.Errorf("--decision %q: it is %s or %s, as another node's %s records it", d, agentapi.Commit, agentapi.Abort, agentapi.BarrierFile)
	}
	if from == "" {
		return fmt.Errorf("--from is missing: say where the decision comes from (such as \"%s of node cp1\"); it is recorded with it", agentapi.BarrierFile)
	}
	if !j.AtBarrier() {
		return notAtBarrier(j)
	}
	old, err := agentapi.LoadDecision(b.decision)
	switch {
	case err != nil:
		return err
	case old != nil && old.Decision != d:
		return fmt.Errorf("this node recorded %s already (%s): a decision never changes, so %s from %s contradicts it; check that node's %s and this restore's id", old.Decision, b.decision, d, from, agentapi.BarrierFile)
	case old != nil:
		return nil // a resume acts on it
	}
	return b.write(agentapi.DecisionRecord{Decision: d, Coordinator: b.coordinator, From: from})
}

func notAtBarrier(j *agentapi.Journal) error {
	r := j.Step(agentapi.StepBarrier)
	switch {
	case r == nil:
		return fmt.Errorf("restore %s has no barrier step (a single member): there is no decision to take; resume it with `restore run --id %s`", j.ID, j.ID)
	case r.State == agentapi.Done:
		return fmt.Errorf("restore %s passed the barrier here already (it acted on commit): a decision is not taken twice; resume it with `restore run --id %s`", j.ID, j.ID)
	case j.Phase == agentapi.PhaseRollingBack || j.Phase == agentapi.PhaseRolledBack:
		return fmt.Errorf("restore %s is rolled back here (phase %s): a decision no longer applies; `kubectl etcd restore --status` shows the other nodes", j.ID, j.Phase)
	}
	return fmt.Errorf("restore %s has not reached the barrier here (phase %s, barrier step %s): a decision is taken only there; resume it with `restore run --id %s`, which asks the peers", j.ID, j.Phase, r.State, j.ID)
}
