package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// rollbackNode lays out, under a temp root, a node after restore r1 is
// done: the old data dir as the old etcd left it, the restored manifest in
// the static pod dir and its copy in the journal dir.
func rollbackNode(t *testing.T, swapStarted time.Time) (string, *agentapi.Journal) {
	t.Helper()
	root := t.TempDir()
	s := restoreSpec()
	at := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	for _, d := range []string{s.OldDataDir + "/member/snap", s.OldDataDir + "/member/wal", s.StaticPodDir, s.JournalDir} {
		if err := os.MkdirAll(at(d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := swapStarted.Add(-time.Minute)
	for f, data := range map[string]string{
		s.OldDataDir + "/member/snap/db":                  "bolt",
		s.OldDataDir + "/member/wal/0000000000000000.wal": "wal",
		s.StaticPodDir + "/" + agentapi.EtcdManifest:      "restored manifest",
		s.JournalDir + "/" + agentapi.RestoredManifest:    "restored manifest",
	} {
		if err := os.WriteFile(at(f), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(at(f), old, old); err != nil {
			t.Fatal(err)
		}
	}
	spec, _ := json.Marshal(s)
	ended := swapStarted.Add(time.Second)
	j := &agentapi.Journal{ID: s.ID, Operation: agentapi.RestoreOperation, Node: "cp1", Created: swapStarted.Add(-2 * time.Minute), Phase: agentapi.PhaseDone, Spec: spec,
		Steps: []agentapi.StepRecord{
			{Name: "stop etcd", State: agentapi.Done},
			{Name: agentapi.StepSwap, State: agentapi.Done, Started: &swapStarted, Ended: &ended},
		}}
	return root, j
}

func TestCheckRollback(t *testing.T) {
	swap := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	s := restoreSpec()
	tests := []struct {
		name   string
		change func(t *testing.T, root string, j *agentapi.Journal) []*agentapi.Journal
		refuse string // "" allows
	}{
		{name: "the node as the restore left it"},
		{
			name: "old data dir removed (D1)",
			change: func(t *testing.T, root string, _ *agentapi.Journal) []*agentapi.Journal {
				must(t, os.RemoveAll(filepath.Join(root, s.OldDataDir)))
				return nil
			},
			refuse: "no longer holds etcd's data",
		},
		{
			name: "old data dir recreated empty by the kubelet",
			change: func(t *testing.T, root string, _ *agentapi.Journal) []*agentapi.Journal {
				must(t, os.RemoveAll(filepath.Join(root, s.OldDataDir)))
				must(t, os.MkdirAll(filepath.Join(root, s.OldDataDir), 0o700))
				return nil
			},
			refuse: "member/snap/db",
		},
		{
			name: "WAL removed",
			change: func(t *testing.T, root string, _ *agentapi.Journal) []*agentapi.Journal {
				must(t, os.RemoveAll(filepath.Join(root, s.OldDataDir, "member", "wal")))
				return nil
			},
			refuse: "member/wal",
		},
		{
			name: "old data written after the swap",
			change: func(t *testing.T, root string, _ *agentapi.Journal) []*agentapi.Journal {
				later := swap.Add(time.Hour)
				must(t, os.Chtimes(filepath.Join(root, s.OldDataDir, "member", "snap", "db"), later, later))
				return nil
			},
			refuse: "after this restore stopped etcd on it",
		},
		{
			name: "old etcd's last write just after the swap began",
			change: func(t *testing.T, root string, _ *agentapi.Journal) []*agentapi.Journal {
				soon := swap.Add(2 * time.Second)
				must(t, os.Chtimes(filepath.Join(root, s.OldDataDir, "member", "wal", "0000000000000000.wal"), soon, soon))
				return nil
			},
		},
		{
			name: "manifest edited since the restore (D2)",
			change: func(t *testing.T, root string, _ *agentapi.Journal) []*agentapi.Journal {
				must(t, os.WriteFile(filepath.Join(root, s.StaticPodDir, agentapi.EtcdManifest), []byte("edited"), 0o600))
				return nil
			},
			refuse: "no longer the manifest this restore wrote",
		},
		{
			name: "manifest gone",
			change: func(t *testing.T, root string, _ *agentapi.Journal) []*agentapi.Journal {
				must(t, os.Remove(filepath.Join(root, s.StaticPodDir, agentapi.EtcdManifest)))
				return nil
			},
			refuse: "is gone",
		},
		{
			name: "a later restore is done (D2)",
			change: func(_ *testing.T, _ string, j *agentapi.Journal) []*agentapi.Journal {
				return []*agentapi.Journal{j, {ID: "r2", Operation: agentapi.RestoreOperation, Phase: agentapi.PhaseDone, Created: j.Created.Add(time.Hour)}}
			},
			refuse: "restore r2, done after this one",
		},
		{
			name: "a later restore was rolled back",
			change: func(_ *testing.T, _ string, j *agentapi.Journal) []*agentapi.Journal {
				return []*agentapi.Journal{j, {ID: "r2", Operation: agentapi.RestoreOperation, Phase: agentapi.PhaseRolledBack, Created: j.Created.Add(time.Hour)}}
			},
		},
		{
			name: "an earlier restore is done",
			change: func(_ *testing.T, _ string, j *agentapi.Journal) []*agentapi.Journal {
				return []*agentapi.Journal{{ID: "r0", Operation: agentapi.RestoreOperation, Phase: agentapi.PhaseDone, Created: j.Created.Add(-time.Hour)}, j}
			},
		},
		{
			name: "rolled back already",
			change: func(_ *testing.T, _ string, j *agentapi.Journal) []*agentapi.Journal {
				j.Phase = agentapi.PhaseRolledBack
				return nil
			},
			refuse: "rolled back already",
		},
		{
			name: "an interrupted rollback resumes over old data that etcd runs on again",
			change: func(t *testing.T, root string, j *agentapi.Journal) []*agentapi.Journal {
				j.Phase = agentapi.PhaseRollingBack
				j.Steps[1].State = agentapi.Undone
				later := swap.Add(time.Hour)
				must(t, os.Chtimes(filepath.Join(root, s.OldDataDir, "member", "snap", "db"), later, later))
				must(t, os.WriteFile(filepath.Join(root, s.StaticPodDir, agentapi.EtcdManifest), []byte("old manifest"), 0o600))
				return nil
			},
		},
		{
			name: "an interrupted rollback over removed old data",
			change: func(t *testing.T, root string, j *agentapi.Journal) []*agentapi.Journal {
				j.Phase = agentapi.PhaseRollingBack
				must(t, os.RemoveAll(filepath.Join(root, s.OldDataDir)))
				return nil
			},
			refuse: "no longer holds etcd's data",
		},
		{
			name: "crashed before the swap: etcd's manifest is out, the old data as it was",
			change: func(t *testing.T, root string, j *agentapi.Journal) []*agentapi.Journal {
				j.Phase = agentapi.PhaseRunning
				j.Steps[1] = agentapi.StepRecord{Name: agentapi.StepSwap, State: agentapi.Pending}
				must(t, os.Remove(filepath.Join(root, s.StaticPodDir, agentapi.EtcdManifest)))
				return nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, j := rollbackNode(t, swap)
			others := []*agentapi.Journal{j}
			if tt.change != nil {
				if o := tt.change(t, root, j); o != nil {
					others = o
				}
			}
			c := CheckRollback(root, j, others)
			if tt.refuse == "" && c.Refused != "" {
				t.Fatalf("refused: %s", c.Refused)
			}
			if tt.refuse != "" && !strings.Contains(c.Refused, tt.refuse) {
				t.Fatalf("Refused = %q, want it to say %q", c.Refused, tt.refuse)
			}
			if c.OldDataDir != s.OldDataDir {
				t.Errorf("OldDataDir = %q, want %q", c.OldDataDir, s.OldDataDir)
			}
			if c.Refused == "" && c.OldDataWritten == nil {
				t.Errorf("an allowed rollback names no time for the old data")
			}
		})
	}
}

func TestLoadJournals(t *testing.T) {
	base := t.TempDir()
	for _, id := range []string{"b", "a"} {
		must(t, os.MkdirAll(filepath.Join(base, id), 0o700))
		must(t, SaveJournal(&agentapi.Journal{ID: id, Operation: agentapi.RestoreOperation, Phase: agentapi.PhaseDone}, filepath.Join(base, id, agentapi.JournalFile)))
	}
	must(t, os.MkdirAll(filepath.Join(base, "started-no-journal"), 0o700))
	js, err := agentapi.LoadJournals(base)
	must(t, err)
	if len(js) != 2 || js[0].ID != "a" || js[1].ID != "b" {
		t.Fatalf("journals %v, want a and b in order", js)
	}
	if js, err := agentapi.LoadJournals(filepath.Join(base, "none")); err != nil || js != nil {
		t.Fatalf("a missing base: %v, %v", js, err)
	}
	must(t, os.WriteFile(filepath.Join(base, "a", agentapi.JournalFile), []byte("{"), 0o600))
	if _, err := agentapi.LoadJournals(base); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("a torn journal: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
