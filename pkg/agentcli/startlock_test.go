package agentcli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// A start refuses, with no journal written, while another start holds the
// node's lock or another restore on the node is unfinished (S10).
func TestStartRefusesBesideAnotherRestore(t *testing.T) {
	const other = "20260101T000000Z"
	journalRoot := filepath.Dir(journalDir)
	for _, tt := range []struct {
		name string
		// otherPhase is the phase of another restore's journal; "" for none.
		otherPhase agentapi.Phase
		lockHeld   bool
		wantErr    string
	}{
		{name: "alone"},
		{name: "another start holds the node lock", lockHeld: true, wantErr: "another restore, replace or recovery is starting on this node now"},
		{name: "another running", otherPhase: agentapi.PhaseRunning, wantErr: "restore " + other + " is unfinished here (phase running)"},
		{name: "another held after the barrier", otherPhase: agentapi.PhaseFailed, wantErr: "kubectl etcd restore --rollback --id " + other},
		{name: "another rolling back", otherPhase: agentapi.PhaseRollingBack, wantErr: "see `kubectl etcd restore --status`"},
		{name: "another done", otherPhase: agentapi.PhaseDone},
		{name: "another rolled back or closed", otherPhase: agentapi.PhaseRolledBack},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNode(t)
			base := filepath.Join(n.root, journalRoot)
			if tt.otherPhase != "" {
				j := &agentapi.Journal{ID: other, Operation: agentapi.RestoreOperation, Phase: tt.otherPhase}
				if err := os.MkdirAll(filepath.Join(base, other), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := agent.SaveJournal(j, filepath.Join(base, other, agentapi.JournalFile)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.lockHeld {
				if err := os.MkdirAll(base, 0o700); err != nil {
					t.Fatal(err)
				}
				l, err := agent.TryLock(filepath.Join(base, agentapi.NodeLockFile), 0)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Unlock()
			}
			var out, errOut bytes.Buffer
			o := &options{op: agentapi.RestoreOperation, root: n.root, specFile: n.spec(t, nil), prepare: true, nodeLockWait: 50 * time.Millisecond, stdout: &out, stderr: &errOut}
			err := o.start(context.Background())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("start: %v, want %q", err, tt.wantErr)
			}
			_, jerr := os.Stat(filepath.Join(n.root, journalDir, agentapi.JournalFile))
			if wrote := jerr == nil; wrote != (tt.wantErr == "") {
				t.Errorf("journal written %v, want %v", wrote, tt.wantErr == "")
			}
			if agent.Held(filepath.Join(base, agentapi.NodeLockFile)) != tt.lockHeld {
				t.Error("the start left the node lock held")
			}
		})
	}
}
