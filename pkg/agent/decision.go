package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// DecisionRecord is a barrier's decision as BarrierFile holds it.
type DecisionRecord struct {
	Decision    Decision  `json:"decision"`
	Coordinator string    `json:"coordinator"`
	Recorded    time.Time `json:"recorded"`
	// From says where a decision came from that this node did not learn
	// at the barrier itself, but was given (`restore run --decision`):
	// another node's record, which the agents no longer served (S5).
	From string `json:"from,omitempty"`
}

// LoadDecision reads a BarrierFile; nil when no decision is recorded.
func LoadDecision(path string) (*DecisionRecord, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var r DecisionRecord
	if err == nil {
		err = json.Unmarshal(raw, &r)
	}
	if err == nil && r.Decision != Commit && r.Decision != Abort {
		err = fmt.Errorf("unknown decision %q", r.Decision)
	}
	if err != nil {
		return nil, fmt.Errorf("the barrier's decision %s is unreadable (%v): inspect it by hand", path, err)
	}
	return &r, nil
}

// AtBarrier reports whether the operation stopped at the barrier, or
// waits there, without having acted on a decision: its barrier step is
// the one running, or failed holding. Only such a node takes a decision
// from outside.
func (j *Journal) AtBarrier() bool {
	r := stepRecord(j, StepBarrier)
	return r != nil && (j.Phase == PhaseRunning && r.State == Running || j.Phase == PhaseFailed && r.State == Failed)
}

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
func (b *PeerBarrier) Take(j *Journal, d Decision, from string) error {
	if d != Commit && d != Abort {
		return fmt.Errorf("--decision %q: it is %s or %s, as another node's %s records it", d, Commit, Abort, BarrierFile)
	}
	if from == "" {
		return fmt.Errorf("--from is missing: say where the decision comes from (such as \"%s of node cp1\"); it is recorded with it", BarrierFile)
	}
	if !j.AtBarrier() {
		return notAtBarrier(j)
	}
	old, err := LoadDecision(b.decision)
	switch {
	case err != nil:
		return err
	case old != nil && old.Decision != d:
		return fmt.Errorf("this node recorded %s already (%s): a decision never changes, so %s from %s contradicts it; check that node's %s and this restore's id", old.Decision, b.decision, d, from, BarrierFile)
	case old != nil:
		return nil // a resume acts on it
	}
	return b.write(DecisionRecord{Decision: d, Coordinator: b.coordinator, From: from})
}

func notAtBarrier(j *Journal) error {
	r := stepRecord(j, StepBarrier)
	switch {
	case r == nil:
		return fmt.Errorf("restore %s has no barrier step (a single member): there is no decision to take; resume it with `restore run --id %s`", j.ID, j.ID)
	case r.State == Done:
		return fmt.Errorf("restore %s passed the barrier here already (it acted on commit): a decision is not taken twice; resume it with `restore run --id %s`", j.ID, j.ID)
	case j.Phase == PhaseRollingBack || j.Phase == PhaseRolledBack:
		return fmt.Errorf("restore %s is rolled back here (phase %s): a decision no longer applies; `kubectl etcd restore --status` shows the other nodes", j.ID, j.Phase)
	}
	return fmt.Errorf("restore %s has not reached the barrier here (phase %s, barrier step %s): a decision is taken only there; resume it with `restore run --id %s`, which asks the peers", j.ID, j.Phase, r.State, j.ID)
}
