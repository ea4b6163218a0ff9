// Package agentapi is the contract between the plugin and its node agent
// (pkg/agent, run as kubectl-etcd-agent on each control-plane node): what
// the plugin writes for an agent (a RestoreSpec), what an agent writes for
// the plugin and for the other agents (its Journal, a barrier's
// DecisionRecord, a RollbackRelease, a RollbackCheck), and the names both
// sides look for: files in a journal dir, step names, the agent's static
// pod and its labels.
//
// Both sides import it, and it imports only the standard library: the
// plugin reads a node's state without the agent's engine, and the agent
// stays a small static binary.
package agentapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// State is where one step stands.
type State string

// Step states. A step found Running after a crash may or may not have
// acted, which is why steps must be idempotent.
const (
	Pending State = "pending"
	Running State = "running"
	Done    State = "done"
	Failed  State = "failed"
	Undone  State = "undone"
)

// Phase is where the whole operation stands.
type Phase string

// Phases. PhaseFailed is a failure after the point of no return: the node
// stays as it is until a resume or a rollback is asked for.
const (
	PhaseRunning     Phase = "running"
	PhaseDone        Phase = "done"
	PhaseFailed      Phase = "failed"
	PhaseRollingBack Phase = "rolling-back"
	PhaseRolledBack  Phase = "rolled-back"
)

// Move is a path a step moves, recorded so that --status can say where
// things are.
type Move struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// StepRecord is one step in the journal.
type StepRecord struct {
	Name            string     `json:"name"`
	State           State      `json:"state"`
	PointOfNoReturn bool       `json:"pointOfNoReturn,omitempty"`
	Started         *time.Time `json:"started,omitempty"`
	Ended           *time.Time `json:"ended,omitempty"`
	Error           string     `json:"error,omitempty"`
	Moves           []Move     `json:"moves,omitempty"`
}

// Journal is the node's record of one operation. Spec holds the
// operation's input, so that an agent restarted after a crash can rebuild
// the same steps.
type Journal struct {
	ID        string          `json:"id"`
	Operation string          `json:"operation"`
	Node      string          `json:"node"`
	Created   time.Time       `json:"created"`
	Phase     Phase           `json:"phase"`
	Error     string          `json:"error,omitempty"`
	Spec      json.RawMessage `json:"spec,omitempty"`
	Steps     []StepRecord    `json:"steps"`
	// PID is the agent process that last ran the steps: the plugin shows
	// it, a test kills it.
	PID int `json:"pid,omitempty"`
	// Claim is the token the agent that last claimed the journal was
	// started with: whoever started it waits to read it here.
	Claim string `json:"claim,omitempty"`
}

// Terminal reports whether the operation has ended, well or not: no
// agent resumes it by itself.
func (j *Journal) Terminal() bool {
	return j.Phase == PhaseDone || j.Phase == PhaseRolledBack || j.Phase == PhaseFailed
}

// Unfinished reports whether the operation is neither done nor rolled back
// (which is also how a restore that never began is closed): a new one must
// not start on the node beside it. Plugin and agent both ask this.
func (j *Journal) Unfinished() bool {
	return j.Phase != PhaseDone && j.Phase != PhaseRolledBack
}

// UnfinishedError refuses a new restore on a node where j is unfinished.
func UnfinishedError(j *Journal) error {
	if j.Operation == RecoverOperation {
		return fmt.Errorf("recover %s is unfinished on node %s (phase %s): nothing else that moves etcd's manifest starts beside it; follow or resume it by running its script (recover-%s.sh) again, or see `kubectl-etcd-agent recover status` on the node", j.ID, j.Node, j.Phase, j.Node)
	}
	if j.Operation == ReplaceOperation {
		return fmt.Errorf("member replace %s is unfinished on node %s (phase %s): nothing else that moves etcd's manifest starts beside it; see `kubectl etcd member replace %s --status`, and resume it by running `kubectl etcd member replace %s` again", j.ID, j.Node, j.Phase, j.Node, j.Node)
	}
	return fmt.Errorf("restore %s is unfinished here (phase %s): a second restore never starts on top of it; see `kubectl etcd restore --status`, and finish it with `kubectl etcd restore --rollback --id %s`", j.ID, j.Phase, j.ID)
}

// LoadJournal reads a journal written by Save.
func LoadJournal(path string) (*Journal, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the journal: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("journal %s is not valid JSON (%v): inspect it by hand; nothing was changed", path, err)
	}
	return &j, nil
}

// PastPointOfNoReturn reports whether a point-of-no-return step has begun.
// A failed one has not: such a step's Do must be atomic, so failing means
// it changed nothing. A running one, found after a crash, may have acted.
func (j *Journal) PastPointOfNoReturn() bool {
	for _, r := range j.Steps {
		if r.PointOfNoReturn && (r.State == Running || r.State == Done) {
			return true
		}
	}
	return false
}

// RollbackCheck is what one node knows about rolling back one restore:
// where etcd would go back to, and why a rollback would be refused there.
// `restore status` reports it for every journal, so that the plugin can
// refuse on every node before it changes anything on any; `restore
// rollback` checks again before it acts.
type RollbackCheck struct {
	// OldDataDir is the data dir the old manifest points etcd at.
	OldDataDir string `json:"oldDataDir,omitempty"`
	// OldDataWritten is when etcd last wrote the old data (its newest
	// file in member/snap and member/wal); zero when that data is gone.
	OldDataWritten *time.Time `json:"oldDataWritten,omitempty"`
	// Refused says why a rollback would lead somewhere worse than where
	// the node is, and what to do instead; empty when it may go ahead.
	Refused string `json:"refused,omitempty"`
}

// LoadJournals reads every journal under base, one dir per id, sorted by
// id; a dir without a journal (a start that failed early) is skipped.
func LoadJournals(base string) ([]*Journal, error) {
	ents, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the journals: %w", err)
	}
	var out []*Journal
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		j, err := LoadJournal(filepath.Join(base, e.Name(), JournalFile))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", e.Name(), err)
		}
		out = append(out, j)
	}
	return out, nil
}

// Step is the record of the step called name; nil when there is none.
func (j *Journal) Step(name string) *StepRecord {
	for i := range j.Steps {
		if j.Steps[i].Name == name {
			return &j.Steps[i]
		}
	}
	return nil
}

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
	r := j.Step(StepBarrier)
	return r != nil && (j.Phase == PhaseRunning && r.State == Running || j.Phase == PhaseFailed && r.State == Failed)
}

// JournalStatus is one journal as `kubectl-etcd-agent restore status`
// prints it (a JSON list of them).
type JournalStatus struct {
	Journal
	// AgentRunning says an agent holds the journal's lock now.
	AgentRunning bool `json:"agentRunning"`
	// Rollback is the node's own check of a rollback (where it leads, and
	// why it would be refused); nil from an agent older than the check.
	Rollback *RollbackCheck `json:"rollback,omitempty"`
	// Barrier is the decision the node recorded at the barrier
	// (BarrierFile), and BarrierError why it cannot be read: the plugin
	// passes a decision on to a node that holds at the barrier (S5).
	Barrier      *DecisionRecord `json:"barrier,omitempty"`
	BarrierError string          `json:"barrierError,omitempty"`
	// RollbackRelease is a two-phase rollback's record on the node
	// (RollbackFile): prepared, then released or recalled; nil when none
	// was prepared. RollbackReleaseError says why it cannot be read.
	RollbackRelease      *RollbackRelease `json:"rollbackRelease,omitempty"`
	RollbackReleaseError string           `json:"rollbackReleaseError,omitempty"`
}

// Started is what `restore start` and `restore run --detach` print once
// the detached agent has claimed its journal.
type Started struct {
	PID     int    `json:"pid"`
	Journal string `json:"journal"`
	Log     string `json:"log"`
	// NotBefore is when a released rollback's agent begins.
	NotBefore *time.Time `json:"notBefore,omitempty"`
}
