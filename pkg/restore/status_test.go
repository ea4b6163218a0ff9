package restore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

func TestRollbackPlan(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	created := now.Add(-3 * time.Hour)
	written := created.Add(-time.Minute)
	ok := &agentapi.RollbackCheck{OldDataDir: "/var/lib/etcd", OldDataWritten: &written}
	journal := func(id string, c *agentapi.RollbackCheck) agentapi.JournalStatus {
		return agentapi.JournalStatus{Journal: agentapi.Journal{ID: id, Phase: agentapi.PhaseDone, Created: created}, Rollback: c}
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
				{Node: "cp1", Journals: []agentapi.JournalStatus{journal("r0", &agentapi.RollbackCheck{Refused: "rolled back already"}), journal("r1", ok)}},
				{Node: "cp2", Journals: []agentapi.JournalStatus{journal("r1", ok)}},
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
			found: []NodeJournals{{Node: "cp1", Journals: []agentapi.JournalStatus{journal("r1", nil)}}},
			want:  []string{"node cp1: the old etcd manifest goes back in (this node's agent does not check the old data)"},
		},
		{
			name: "one node refuses: none rolls back",
			found: []NodeJournals{
				{Node: "cp1", Journals: []agentapi.JournalStatus{journal("r1", ok)}},
				{Node: "cp2", Journals: []agentapi.JournalStatus{journal("r1", &agentapi.RollbackCheck{OldDataDir: "/var/lib/etcd", Refused: "the old data dir /var/lib/etcd no longer holds etcd's data"})}},
				{Node: "cp3", Journals: []agentapi.JournalStatus{journal("r1", &agentapi.RollbackCheck{Refused: "restore r2, done after this one, runs here"})}},
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

// A rollback over the API prepares every node before it releases any, and
// a release that fails recalls the others before they act (S6).
func TestRollbackInPhases(t *testing.T) {
	done := agentapi.JournalStatus{Journal: agentapi.Journal{ID: "r1", Phase: agentapi.PhaseDone, Created: when}, Rollback: &agentapi.RollbackCheck{OldDataDir: "/var/lib/etcd"}}
	on := func(node, phase string) func(string, string) bool {
		return func(n, line string) bool {
			return n == node && strings.Contains(line, "restore rollback") && strings.Contains(line, phase)
		}
	}
	for _, tt := range []struct {
		name              string
		fails             []func(string, string) bool
		want              string
		ok                bool
		releases, recalls int
	}{
		{name: "every node", want: "Rolled back restore r1", ok: true, releases: 3},
		{name: "a prepare fails", fails: []func(string, string) bool{on("cp3", "--prepare")}, want: "nothing was rolled back on any node"},
		{name: "a release fails", fails: []func(string, string) bool{on("cp2", "--release")}, want: "recalled before they began, so nothing was rolled back", releases: 3, recalls: 3},
		{name: "a recall fails too", fails: []func(string, string) bool{on("cp2", "--release"), on("cp1", "--recall")}, want: "the recall failed on some nodes", releases: 3, recalls: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 3, "3.7.0")
			f.cfg.ID = "r1"
			f.ex.status = statusOf(t, map[string][]agentapi.JournalStatus{"cp1": {done}, "cp2": {done}, "cp3": {done}})
			f.ex.fails = func(node, line string) bool {
				for _, fail := range tt.fails {
					if fail(node, line) {
						return true
					}
				}
				return false
			}
			err := Rollback(context.Background(), f.deps(), f.cfg)
			got := f.out.String()
			if err != nil {
				got = err.Error()
			}
			if (err == nil) != tt.ok || !strings.Contains(got, tt.want) {
				t.Fatalf("err = %v, want %q; output:\n%s", err, tt.want, f.out)
			}
			lastPrepare, firstRelease := -1, len(f.ex.calls)
			for i, c := range f.ex.calls {
				switch line := strings.Join(c.cmd, " "); {
				case strings.Contains(line, "--detach"):
					t.Errorf("a rollback in one go: %q", line)
				case strings.Contains(line, "rollback --id r1 --prepare"):
					lastPrepare = i
				case strings.Contains(line, "rollback --id r1 --release"):
					firstRelease = min(firstRelease, i)
				}
			}
			if lastPrepare > firstRelease {
				t.Errorf("a node was released (call %d) before every node had prepared (call %d)", firstRelease, lastPrepare)
			}
			if n := len(f.ex.find("--release")); n != tt.releases {
				t.Errorf("%d releases, want %d", n, tt.releases)
			}
			if n := len(f.ex.find("--recall")); n != tt.recalls {
				t.Errorf("%d recalls, want %d", n, tt.recalls)
			}
			for _, p := range f.pods(t) {
				t.Errorf("pod %s left behind", p.Name)
			}
		})
	}
}

// The commands over ssh do what the plugin does: a held node takes the
// decision another node recorded, and a rollback prepares every node
// before it releases any.
func TestRecoveryCommands(t *testing.T) {
	p := &Plan{ID: "r1", Members: []MemberPlan{{Node: "cp1", JournalDir: "/var/lib/kubectl-etcd/restore/r1"}, {Node: "cp2", JournalDir: "/var/lib/kubectl-etcd/restore/r1"}}}
	a := agentclient.Binary{SHA256: "abc"}
	r := &run{pre: &preflighted{plan: p}, nodes: map[string]*node{"cp1": {m: p.Members[0], agent: a, started: true}, "cp2": {m: p.Members[1], agent: a}}}
	got := r.recoveryCommands()
	for _, want := range []string{
		"  cp1: /var/lib/kubectl-etcd/bin/abc restore run --id r1 --detach --root /\n  cp2: /var/lib/kubectl-etcd/bin/abc restore run --id r1 --detach --root /\n",
		"recorded in /var/lib/kubectl-etcd/restore/r1/barrier.json:\nadd --decision commit|abort",
		"first on every node:\n  cp1: /var/lib/kubectl-etcd/bin/abc restore rollback --id r1 --prepare --root /\n  cp2:",
		"then, once every node has prepared, on every node:\n  cp1: /var/lib/kubectl-etcd/bin/abc restore rollback --id r1 --release --root /\n  cp2:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if got := r.nodeCommandsOn(func(n *node) bool { return n.started }, "rollback", "--prepare"); strings.Contains(got, "cp2") {
		t.Errorf("a node whose agent did not start is named:\n%s", got)
	}
}

// Where a two-phase rollback stands on a node, as --status says it.
func TestReleaseState(t *testing.T) {
	at := func(d time.Duration) *time.Time { v := when.Add(d); return &v }
	for _, tt := range []struct {
		name string
		j    agentapi.JournalStatus
		want string
	}{
		{"none prepared", agentapi.JournalStatus{}, ""},
		{"prepared", agentapi.JournalStatus{RollbackRelease: &agentapi.RollbackRelease{Prepared: when}}, "prepared 2026-01-02T03:04:05Z, not released: nothing acts on it"},
		{"released", agentapi.JournalStatus{RollbackRelease: &agentapi.RollbackRelease{Prepared: when, Released: at(time.Second), NotBefore: at(6 * time.Second)}},
			"prepared 2026-01-02T03:04:05Z, released 2026-01-02T03:04:06Z, begins 2026-01-02T03:04:11Z"},
		{"recalled", agentapi.JournalStatus{RollbackRelease: &agentapi.RollbackRelease{Prepared: when, Released: at(time.Second), NotBefore: at(6 * time.Second), Recalled: at(2 * time.Second)}},
			"recalled 2026-01-02T03:04:07Z: its agent gives up without acting"},
		{"unreadable", agentapi.JournalStatus{RollbackReleaseError: "bad json"}, "its record is unreadable: bad json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := releaseState(tt.j)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("releaseState = %q, want %q in it", got, tt.want)
			}
		})
	}
}
