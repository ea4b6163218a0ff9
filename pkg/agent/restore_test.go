package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// One answer to "is this restore over?", for the plugin and the agent.
func TestRefuseUnfinished(t *testing.T) {
	for _, tt := range []struct {
		phase   Phase
		refused bool
	}{
		{PhaseRunning, true},
		{PhaseFailed, true},
		{PhaseRollingBack, true},
		{PhaseDone, false},
		{PhaseRolledBack, false}, // closed by the plugin or the agent, too
	} {
		t.Run(string(tt.phase), func(t *testing.T) {
			root := t.TempDir()
			j := &Journal{ID: "20260101T000000Z", Operation: RestoreOperation, Phase: tt.phase}
			if got := j.Unfinished(); got != tt.refused {
				t.Errorf("Unfinished() = %v, want %v", got, tt.refused)
			}
			s := restoreSpec()
			// The node lock's file and a start that failed before its journal
			// are no restores.
			mustWrite(t, filepath.Join(root, "var/lib/kubectl-etcd/restore", NodeLockFile), "")
			mustWrite(t, filepath.Join(root, "var/lib/kubectl-etcd/restore/r0/snapshot.db"), "")
			if err := os.MkdirAll(filepath.Join(root, "var/lib/kubectl-etcd/restore", j.ID), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := j.Save(filepath.Join(root, "var/lib/kubectl-etcd/restore", j.ID, JournalFile)); err != nil {
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
