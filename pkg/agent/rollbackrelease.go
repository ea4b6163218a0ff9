package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// A rollback over the API runs in two phases, as a restore starts (S6).
// A rollback stops kube-apiserver first, so the first node to act can cut
// the exec sessions that would start the others: some nodes would end on
// the old data, the others on the restored data, with the API down.
//   - Prepare, on every node: all the checks, and the rollback's static
//     pod written into the journal dir (PreparedRollbackPod), with
//     RollbackFile; nothing acts.
//   - Release, on every node once each has prepared: a copy of that file
//     into the static pod dir, and a start time (NotBefore) a grace later
//     by which every release has returned. The agent waits for it.
//   - Recall, when a release failed: before NotBefore the released
//     agents give up without acting, and the node stays as it is.
const (
	RollbackFile        = "rollback.json"
	PreparedRollbackPod = "rollback-pod.yaml"
)

// RollbackRelease is a two-phase rollback's record on one node.
type RollbackRelease struct {
	Prepared time.Time `json:"prepared"`
	// Claim is the token of the released agent, which it finds here.
	Claim     string     `json:"claim"`
	Released  *time.Time `json:"released,omitempty"`
	NotBefore *time.Time `json:"notBefore,omitempty"`
	Recalled  *time.Time `json:"recalled,omitempty"`
}

// LoadRollbackRelease reads path; nil when no rollback was prepared.
func LoadRollbackRelease(path string) (*RollbackRelease, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var r RollbackRelease
	if err == nil {
		err = json.Unmarshal(raw, &r)
	}
	if err != nil {
		return nil, fmt.Errorf("the rollback's record %s is unreadable (%v): prepare the rollback again", path, err)
	}
	return &r, nil
}

// Save writes the record atomically.
func (r *RollbackRelease) Save(path string) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(raw, '\n'), 0o600)
}
