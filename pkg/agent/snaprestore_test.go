package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// The staged snapshot is the backup's plaintext: gone once the data is
// restored from it, or that failed (the engine then rolls back: the
// scripts stage it again), and after an undo of a step found running.
func TestSnapshotRestoreStepRemovesThePlaintext(t *testing.T) {
	for _, tt := range []struct {
		name    string
		toolErr error
		undo    bool
		wantErr string
	}{
		{name: "restored"},
		{name: "the tool failed", toolErr: errors.New("exit status 1"), wantErr: "snapshot restore"},
		{name: "undone", undo: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			s := restoreSpec()
			s.SnapshotRestore = &agentapi.SnapshotRestore{Snapshot: s.JournalDir + "/snapshot.db"}
			staged := under(root, s.SnapshotRestore.Snapshot)
			must(t, os.MkdirAll(filepath.Dir(staged), 0o700))
			must(t, os.WriteFile(staged, []byte("plaintext"), 0o600))
			var ran []string
			env := RestoreEnv{Root: root,
				LookPath: func(name string) (string, error) { return "/usr/local/bin/" + name, nil },
				Run: func(_ context.Context, _ []string, argv ...string) ([]byte, error) {
					ran = append(ran, strings.Join(argv, " "))
					return nil, tt.toolErr
				}}
			step := snapshotRestoreStep(s, env)
			err := step.Do(context.Background())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Do: %v, want %q", err, tt.wantErr)
			}
			if len(ran) != 1 || !strings.Contains(ran[0], "snapshot restore "+staged) {
				t.Fatalf("ran %q", ran)
			}
			if tt.undo {
				must(t, step.Undo(context.Background()))
				must(t, step.Undo(context.Background())) // again: a resumed rollback
			}
			if _, err := os.Stat(staged); err == nil {
				t.Errorf("the staged snapshot is still there")
			}
			if err := step.Do(context.Background()); err == nil || !strings.Contains(err.Error(), "staged snapshot is not there") {
				t.Errorf("a redo without the snapshot: %v", err)
			}
		})
	}
}
