package agentapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Labels of the agent's static pod, which every pod of the plugin's
// carries too (pkg/nodepod uses these): the plugin selects on them.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "kubectl-etcd"
	PurposeLabel   = "kubectl-etcd.io/purpose"
	// AgentPurpose is the purpose label of the agent's static pod.
	AgentPurpose = "restore-agent"
	// AgentPodNamespace holds the agent's mirror pod, beside etcd's.
	AgentPodNamespace = "kube-system"
)

// AgentPodName is the name of the agent's static pod that runs `restore
// sub` of restore id: a rollback's pod never replaces a run's.
func AgentPodName(id, sub string) string {
	return "kubectl-etcd-agent-" + strings.ToLower(id) + "-" + sub
}

// AgentPodFile is the agent's manifest in the static pod dir.
func AgentPodFile(id, sub string) string { return AgentPodName(id, sub) + ".yaml" }

// PodName is the name of the agent's static pod that runs `op sub` of
// this spec's operation; a restore's keeps its older, shorter name.
func (p AgentPodSpec) PodName(sub string) string {
	if p.Operation == RestoreOperation {
		return AgentPodName(p.ID, sub)
	}
	return "kubectl-etcd-agent-" + p.Operation + "-" + strings.ToLower(p.ID) + "-" + sub
}

// PodFile is the agent's manifest in the static pod dir.
func (p AgentPodSpec) PodFile(sub string) string { return p.PodName(sub) + ".yaml" }

// Restore step names that other code looks for.
const (
	StepBarrier = "wait until every member is ready to swap"
	StepSwap    = "start etcd on the restored data"
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
