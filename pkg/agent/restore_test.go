package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// One answer to "is this restore over?", for the plugin and the agent.
func TestRefuseUnfinished(t *testing.T) {
	for _, tt := range []struct {
		phase   agentapi.Phase
		refused bool
	}{
		{agentapi.PhaseRunning, true},
		{agentapi.PhaseFailed, true},
		{agentapi.PhaseRollingBack, true},
		{agentapi.PhaseDone, false},
		{agentapi.PhaseRolledBack, false}, // closed by the plugin or the agent, too
	} {
		t.Run(string(tt.phase), func(t *testing.T) {
			root := t.TempDir()
			j := &agentapi.Journal{ID: "20260101T000000Z", Operation: agentapi.RestoreOperation, Phase: tt.phase}
			if got := j.Unfinished(); got != tt.refused {
				t.Errorf("Unfinished() = %v, want %v", got, tt.refused)
			}
			s := restoreSpec()
			// The node lock's file and a start that failed before its journal
			// are no restores.
			mustWrite(t, filepath.Join(root, "var/lib/kubectl-etcd/restore", agentapi.NodeLockFile), "")
			mustWrite(t, filepath.Join(root, "var/lib/kubectl-etcd/restore/r0/snapshot.db"), "")
			if err := os.MkdirAll(filepath.Join(root, "var/lib/kubectl-etcd/restore", j.ID), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := SaveJournal(j, filepath.Join(root, "var/lib/kubectl-etcd/restore", j.ID, agentapi.JournalFile)); err != nil {
				t.Fatal(err)
			}
			err := refuseUnfinished(root, s)
			if (err != nil) != tt.refused {
				t.Fatalf("err = %v, want refused %v", err, tt.refused)
			}
			if err != nil && (!strings.Contains(err.Error(), "restore 20260101T000000Z is unfinished here (phase "+string(tt.phase)+")") ||
				!strings.Contains(err.Error(), "kubectl etcd restore --rollback --id 20260101T000000Z")) {
				t.Errorf("err = %v, want the restore named, with how to finish it", err)
			}
		})
	}
}
