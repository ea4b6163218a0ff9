// Package agent is the node side of kubectl-etcd's long operations (restore,
// member replace, copy-db, the DR bundle): a journal on the node's disk and
// an engine that runs steps, resumes them after a crash and rolls them back.
//
// It imports only the standard library and pkg/manifest (which adds a YAML
// parser), because it is built into the small static binary that the
// plugin uploads to each node.
package agent

import (
	"encoding/json"
	"fmt"
	"os"
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
	return fmt.Errorf("restore %s is unfinished here (phase %s): a second restore never starts on top of it; see `kubectl etcd restore --status`, and finish it with `kubectl etcd restore --rollback --id %s`", j.ID, j.Phase, j.ID)
}

// NewJournal starts a journal for steps, all pending.
func NewJournal(id, operation, node string, created time.Time, spec any, steps []Step) (*Journal, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode the %s spec: %w", operation, err)
	}
	j := &Journal{ID: id, Operation: operation, Node: node, Created: created.UTC(), Phase: PhaseRunning, Spec: raw}
	for _, s := range steps {
		j.Steps = append(j.Steps, StepRecord{Name: s.Name, State: Pending, PointOfNoReturn: s.PointOfNoReturn, Moves: s.Moves})
	}
	return j, nil
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

// Save writes the journal atomically: a crash leaves the old or the new
// record, never half of one.
func (j *Journal) Save(path string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the journal: %w", err)
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o600)
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
