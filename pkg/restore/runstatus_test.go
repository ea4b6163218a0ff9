package restore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

func TestRollbackPlan(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	created := now.Add(-3 * time.Hour)
	written := created.Add(-time.Minute)
	ok := &agent.RollbackCheck{OldDataDir: "/var/lib/etcd", OldDataWritten: &written}
	journal := func(id string, c *agent.RollbackCheck) JournalStatus {
		return JournalStatus{Journal: agent.Journal{ID: id, Phase: agent.PhaseDone, Created: created}, Rollback: c}
	}
	tests := []struct {
		name    string
		found   []NodeJournals
		want    []string // in the prompt, or in the error when refused
		refused bool
	}{
		{
			name: "every node checked",
			found: []NodeJournals{
				{Node: "cp1", Journals: []JournalStatus{journal("r0", &agent.RollbackCheck{Refused: "rolled back already"}), journal("r1", ok)}},
				{Node: "cp2", Journals: []JournalStatus{journal("r1", ok)}},
			},
			want: []string{
				"Roll back restore r1",
				"Every write since the restore began (2026-12-06T09:00:00Z, 3h0m0s ago) is lost.",
				"node cp1: etcd goes back to /var/lib/etcd, last written 2026-12-06T08:59:00Z (3h1m0s ago)",
				"node cp2: etcd goes back to /var/lib/etcd",
			},
		},
		{
			name:  "an agent older than the check",
			found: []NodeJournals{{Node: "cp1", Journals: []JournalStatus{journal("r1", nil)}}},
			want:  []string{"node cp1: the old etcd manifest goes back in (this node's agent does not check the old data)"},
		},
		{
			name: "one node refuses: none rolls back",
			found: []NodeJournals{
				{Node: "cp1", Journals: []JournalStatus{journal("r1", ok)}},
				{Node: "cp2", Journals: []JournalStatus{journal("r1", &agent.RollbackCheck{OldDataDir: "/var/lib/etcd", Refused: "the old data dir /var/lib/etcd no longer holds etcd's data"})}},
				{Node: "cp3", Journals: []JournalStatus{journal("r1", &agent.RollbackCheck{Refused: "restore r2, done after this one, runs here"})}},
			},
			refused: true,
			want: []string{
				"restore r1 is not rolled back, and nothing was changed on any node",
				"node cp2: the old data dir /var/lib/etcd no longer holds",
				"node cp3: restore r2, done after this one",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rollbackPlan("r1", tt.found, now)
			if tt.refused {
				if err == nil {
					t.Fatalf("not refused; prompt:\n%s", got)
				}
				var h *hint.Error
				if !errors.As(err, &h) || !h.Permanent {
					t.Errorf("the refusal is not a permanent hint error: %#v", err)
				}
				got = err.Error()
			} else if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
		})
	}
}
