package restore

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

var recordedAt = time.Date(2026, 1, 2, 3, 30, 0, 0, time.UTC)

// journalAt is restore id's journal on a node whose barrier step is in
// state, in phase, with decision d recorded (none when "").
func journalAt(id string, phase agentapi.Phase, state agentapi.State, d agentapi.Decision, from string) agentapi.JournalStatus {
	js := agentapi.JournalStatus{Journal: agentapi.Journal{ID: id, Phase: phase, Steps: []agentapi.StepRecord{
		{Name: "stop etcd", State: agentapi.Done}, {Name: agentapi.StepBarrier, State: state, PointOfNoReturn: true}}}}
	if d != "" {
		js.Barrier = &agentapi.DecisionRecord{Decision: d, Coordinator: "cp1", Recorded: recordedAt, From: from}
	}
	return js
}

func held(id string) agentapi.JournalStatus {
	return journalAt(id, agentapi.PhaseFailed, agentapi.Failed, "", "")
}
func swapped(id string, d agentapi.Decision) agentapi.JournalStatus {
	return journalAt(id, agentapi.PhaseDone, agentapi.Done, d, "")
}

// Only a decision that a node recorded is passed on, and none when the
// nodes disagree or a record cannot be read (S5).
func TestHeldNodes(t *testing.T) {
	nodes := func(js ...agentapi.JournalStatus) []NodeJournals {
		var out []NodeJournals
		for i, j := range js {
			out = append(out, NodeJournals{Node: "cp" + string(rune('1'+i)), Journals: []agentapi.JournalStatus{j}})
		}
		return out
	}
	waiting := journalAt("r1", agentapi.PhaseRunning, agentapi.Running, "", "")
	waiting.AgentRunning = true
	unreadable := held("r1")
	unreadable.BarrierError = "the barrier's decision is unreadable"
	tests := []struct {
		name    string
		found   []NodeJournals
		want    []heldNode
		wantErr string
	}{
		{name: "a peer recorded commit", found: nodes(swapped("r1", agentapi.Commit), held("r1"), swapped("r1", agentapi.Commit)),
			want: []heldNode{{ID: "r1", Node: "cp2", Decision: agentapi.Commit, Source: "cp1", Recorded: recordedAt}}},
		{name: "a peer recorded abort", found: nodes(journalAt("r1", agentapi.PhaseRolledBack, agentapi.Undone, agentapi.Abort, ""), held("r1")),
			want: []heldNode{{ID: "r1", Node: "cp2", Decision: agentapi.Abort, Source: "cp1", Recorded: recordedAt}}},
		{name: "the record made at the barrier before one passed on", found: nodes(journalAt("r1", agentapi.PhaseDone, agentapi.Done, agentapi.Commit, "cp3"), swapped("r1", agentapi.Commit), held("r1")),
			want: []heldNode{{ID: "r1", Node: "cp3", Decision: agentapi.Commit, Source: "cp2", Recorded: recordedAt}}},
		{name: "nobody recorded one", found: nodes(held("r1"), held("r1")),
			want: []heldNode{{ID: "r1", Node: "cp1"}, {ID: "r1", Node: "cp2"}}},
		{name: "another restore's decision", found: nodes(swapped("r0", agentapi.Commit), held("r1")),
			want: []heldNode{{ID: "r1", Node: "cp2"}}},
		{name: "an agent still waits", found: nodes(swapped("r1", agentapi.Commit), waiting),
			want: []heldNode{{ID: "r1", Node: "cp2", Decision: agentapi.Commit, Source: "cp1", Recorded: recordedAt, Waiting: true}}},
		{name: "the nodes disagree", found: nodes(swapped("r1", agentapi.Commit), journalAt("r1", agentapi.PhaseRolledBack, agentapi.Undone, agentapi.Abort, ""), held("r1")),
			want: []heldNode{{ID: "r1", Node: "cp3"}}, wantErr: "node cp1 recorded commit at the barrier, node cp2 abort"},
		{name: "a record cannot be read", found: nodes(swapped("r1", agentapi.Commit), unreadable, held("r1")),
			want: []heldNode{{ID: "r1", Node: "cp3"}}, wantErr: "node cp2: the barrier's decision is unreadable"},
		{name: "nobody holds", found: nodes(swapped("r1", agentapi.Commit), swapped("r1", agentapi.Commit))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := heldNodes(tt.found)
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("held %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("held[%d] = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestPassOnsRefuse(t *testing.T) {
	waiting := journalAt("r1", agentapi.PhaseRunning, agentapi.Running, "", "")
	waiting.AgentRunning = true
	for _, tt := range []struct {
		name  string
		found []NodeJournals
		want  string
	}{
		{"nobody holds", []NodeJournals{{Node: "cp1", Journals: []agentapi.JournalStatus{swapped("r1", agentapi.Commit)}}}, "no node holds at a barrier"},
		{"no decision anywhere", []NodeJournals{{Node: "cp1", Journals: []agentapi.JournalStatus{held("r1")}}}, "no node recorded a decision"},
		{"still waiting", []NodeJournals{{Node: "cp1", Journals: []agentapi.JournalStatus{swapped("r1", agentapi.Commit)}}, {Node: "cp2", Journals: []agentapi.JournalStatus{waiting}}}, "still waits at the barrier"},
		{"two restores", []NodeJournals{
			{Node: "cp1", Journals: []agentapi.JournalStatus{swapped("r1", agentapi.Commit), swapped("r2", agentapi.Abort)}},
			{Node: "cp2", Journals: []agentapi.JournalStatus{held("r1"), held("r2")}}}, "name one with --id"},
		{"a node unread", []NodeJournals{{Node: "cp1", Err: context.DeadlineExceeded}}, "node cp1: context deadline exceeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := passOns(tt.found); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("passOns = %+v, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// statusOf makes the fake agents answer `restore status` with js by node.
func statusOf(t *testing.T, js map[string][]agentapi.JournalStatus) func(string) string {
	return func(node string) string {
		b, err := json.Marshal(append([]agentapi.JournalStatus{}, js[node]...))
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
}

// --status prints how a held node learns the decision, and --resume
// passes it on through the held node's pod only, with where it came from.
func TestStatusAndResumePassTheDecisionOn(t *testing.T) {
	f := newFixture(t, 3, "3.7.0")
	f.ex.status = statusOf(t, map[string][]agentapi.JournalStatus{
		"cp1": {swapped("r1", agentapi.Commit)}, "cp2": {held("r1")}, "cp3": {swapped("r1", agentapi.Commit)},
	})
	if _, err := Status(context.Background(), f.deps(), f.cfg); err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	for _, want := range []string{
		"barrier: commit, recorded 2026-01-02T03:30:00Z",
		"Node cp2 holds at the barrier of restore r1; node cp1 recorded commit there at 2026-01-02T03:30:00Z.",
		"kubectl etcd restore --resume --id r1",
		" restore run --id r1 --decision commit --from 'barrier.json of node cp1, recorded 2026-01-02T03:30:00Z' --detach --root /",
	} {
		if !strings.Contains(f.out.String(), want) {
			t.Errorf("--status lacks %q:\n%s", want, f.out)
		}
	}
	f.cfg.ID = "r1"
	if err := Resume(context.Background(), f.deps(), f.cfg); err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	runs := f.ex.find("restore run")
	if len(runs) != 1 || !strings.Contains(runs[0].pod, "-cp2-") {
		t.Fatalf("passed on with %v, want one run on cp2", runs)
	}
	want := "restore run --id r1 --decision commit --from barrier.json of node cp1, recorded 2026-01-02T03:30:00Z --detach --root /host"
	if got := strings.Join(runs[0].cmd, " "); !strings.HasSuffix(got, want) {
		t.Errorf("ran %q, want it to end %q", got, want)
	}
	if !strings.Contains(f.out.String(), "Passed the barrier's decision commit of restore r1 on to node cp2") {
		t.Errorf("output:\n%s", f.out)
	}
	for _, p := range f.pods(t) {
		t.Errorf("pod %s left behind", p.Name)
	}
}

// Nothing is passed on when the nodes disagree: not even the decision
// most of them recorded.
func TestResumeRefusesConflictingDecisions(t *testing.T) {
	f := newFixture(t, 3, "3.7.0")
	f.ex.status = statusOf(t, map[string][]agentapi.JournalStatus{
		"cp1": {swapped("r1", agentapi.Commit)}, "cp2": {held("r1")}, "cp3": {journalAt("r1", agentapi.PhaseRolledBack, agentapi.Undone, agentapi.Abort, "")},
	})
	err := Resume(context.Background(), f.deps(), f.cfg)
	if err == nil || !strings.Contains(err.Error(), "no decision is passed on") {
		t.Fatalf("err = %v", err)
	}
	if runs := f.ex.find("restore run"); len(runs) != 0 {
		t.Errorf("passed a decision on: %v", runs)
	}
	for _, p := range f.pods(t) {
		t.Errorf("pod %s left behind", p.Name)
	}
}
