package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// A node held at the barrier takes, from outside, a decision that
// another node recorded (S5), and only when its own journal agrees.
func TestTakeDecision(t *testing.T) {
	for _, tt := range []struct {
		name     string
		phase    agentapi.Phase
		barrier  agentapi.State
		recorded agentapi.Decision
		take     agentapi.Decision
		from     string
		wantErr  string
	}{
		{name: "held, commit", phase: agentapi.PhaseFailed, barrier: agentapi.Failed, take: agentapi.Commit, from: "barrier.json of node cp1"},
		{name: "held, abort", phase: agentapi.PhaseFailed, barrier: agentapi.Failed, take: agentapi.Abort, from: "barrier.json of node cp1"},
		{name: "an agent that died waiting", phase: agentapi.PhaseRunning, barrier: agentapi.Running, take: agentapi.Commit, from: "barrier.json of node cp1"},
		{name: "the same decision again", phase: agentapi.PhaseFailed, barrier: agentapi.Failed, recorded: agentapi.Commit, take: agentapi.Commit, from: "cp1"},
		{name: "another decision than recorded", phase: agentapi.PhaseFailed, barrier: agentapi.Failed, recorded: agentapi.Abort, take: agentapi.Commit, from: "cp1", wantErr: "a decision never changes"},
		{name: "not at the barrier yet", phase: agentapi.PhaseRunning, barrier: agentapi.Pending, take: agentapi.Abort, from: "cp1", wantErr: "has not reached the barrier"},
		{name: "swapped already", phase: agentapi.PhaseFailed, barrier: agentapi.Done, take: agentapi.Abort, from: "cp1", wantErr: "passed the barrier here already"},
		{name: "rolled back", phase: agentapi.PhaseRolledBack, barrier: agentapi.Undone, take: agentapi.Commit, from: "cp1", wantErr: "is rolled back here"},
		{name: "no such decision", phase: agentapi.PhaseFailed, barrier: agentapi.Failed, take: "maybe", from: "cp1", wantErr: `--decision "maybe"`},
		{name: "from nowhere", phase: agentapi.PhaseFailed, barrier: agentapi.Failed, take: agentapi.Commit, wantErr: "--from is missing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMembers(t, "cp1", "cp2")[1]
			m.setJournal(t, tt.phase, tt.barrier)
			if tt.recorded != "" {
				if err := m.b.record(tt.recorded); err != nil {
					t.Fatal(err)
				}
			}
			j, err := agentapi.LoadJournal(m.b.journal)
			if err != nil {
				t.Fatal(err)
			}
			err = m.b.Take(j, tt.take, tt.from)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Take = %v, want %q", err, tt.wantErr)
				}
				if d := m.recorded(t); d != tt.recorded {
					t.Errorf("a refused decision left %q recorded, want %q", d, tt.recorded)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r, err := agentapi.LoadDecision(m.b.decision)
			if err != nil || r == nil || r.Decision != tt.take || r.Coordinator != "cp1" {
				t.Fatalf("recorded %+v (%v), want %s", r, err, tt.take)
			}
			if tt.recorded == "" && r.From != tt.from {
				t.Errorf("recorded from %q, want %q", r.From, tt.from)
			}
		})
	}
}

// A decision taken from outside is what the barrier acts on when the
// node resumes, with no peer listening.
func TestTakenDecisionIsActedOn(t *testing.T) {
	for _, d := range []agentapi.Decision{agentapi.Commit, agentapi.Abort} {
		t.Run(string(d), func(t *testing.T) {
			m := newMembers(t, "cp1", "cp2")[1]
			m.setJournal(t, agentapi.PhaseFailed, agentapi.Failed)
			j, _ := agentapi.LoadJournal(m.b.journal)
			if err := m.b.Take(j, d, "barrier.json of node cp1"); err != nil {
				t.Fatal(err)
			}
			m.serve(t)
			err := m.b.Await(context.Background())
			if errors.Is(err, ErrHold) || (err == nil) != (d == agentapi.Commit) {
				t.Errorf("Await after taking %s: %v", d, err)
			}
		})
	}
}
