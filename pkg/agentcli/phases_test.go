package agentcli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// holdAtBarrier starts a restore whose coordinator (hc-cp0, which sorts
// before this node's hc-cp1) never answers: the node holds at the barrier,
// its etcd stopped, and its agent exits. The node needs its peer
// certificate (issuePeerCert).
func (n *fakeNode) holdAtBarrier(t *testing.T) {
	t.Helper()
	spec := n.spec(t, func(s *agentapi.RestoreSpec) {
		s.Barrier = &agentapi.BarrierSpec{Addr: freeAddr(t), Peers: []agentapi.Peer{{Member: "hc-cp0", Addr: "127.0.0.1:1"}},
			Timeout: agentapi.Duration(150 * time.Millisecond), Linger: agentapi.Duration(100 * time.Millisecond)}
	})
	if _, err := n.agent(t, "restore", "start", "--spec", spec); err != nil {
		t.Fatal(err)
	}
	if j := n.waitPhase(t, agentapi.PhaseFailed); !j.AtBarrier() {
		t.Fatalf("the node did not hold at the barrier: %+v", j.Steps)
	}
}

// A node that holds at the barrier, with no peer serving the decision any
// more, takes the one another node recorded and acts on it (S5); a
// decision its own journal contradicts is refused with nothing changed.
func TestHeldNodeTakesADecision(t *testing.T) {
	for _, tt := range []struct {
		name     string
		args     []string
		want     agentapi.Phase
		wantErr  string
		restored bool
	}{
		{name: "commit", args: []string{"--decision", "commit", "--from", "barrier.json of node cp0"}, want: agentapi.PhaseDone, restored: true},
		{name: "abort", args: []string{"--decision", "abort", "--from", "barrier.json of node cp0"}, want: agentapi.PhaseRolledBack},
		{name: "no source", args: []string{"--decision", "commit"}, want: agentapi.PhaseFailed, wantErr: "--from is missing"},
		{name: "a source without a decision", args: []string{"--from", "cp0"}, want: agentapi.PhaseFailed, wantErr: "--from goes with --decision"},
		{name: "neither", args: []string{"--decision", "maybe", "--from", "cp0"}, want: agentapi.PhaseFailed, wantErr: `--decision "maybe"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNode(t)
			n.issuePeerCert(t, newPKI(t))
			orig := n.tree(t)
			n.holdAtBarrier(t)
			_, err := n.agent(t, append([]string{"restore", "run", "--id", restoreID}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run: %v, want %q", err, tt.wantErr)
				}
			} else if err != nil && tt.want != agentapi.PhaseRolledBack {
				t.Fatal(err)
			}
			n.waitPhase(t, tt.want)
			switch {
			case tt.restored:
				if got := n.read(t, "etc/kubernetes/manifests/etcd.yaml"); !strings.Contains(got, newDataDir) {
					t.Error("the node did not swap on the commit it was given")
				}
			case tt.want == agentapi.PhaseRolledBack:
				if d := cmp.Diff(orig, n.tree(t)); d != "" {
					t.Errorf("tree after the abort it was given (-before +after):\n%s", d)
				}
			}
			d, err := agentapi.LoadDecision(filepath.Join(n.root, journalDir, agentapi.BarrierFile))
			if tt.wantErr != "" {
				if d != nil || err != nil {
					t.Errorf("a refused decision recorded %+v (%v)", d, err)
				}
				return
			}
			if err != nil || d == nil || d.From != "barrier.json of node cp0" || d.Coordinator != "hc-cp0" {
				t.Errorf("recorded %+v (%v), want the decision with where it came from", d, err)
			}
			out, err := n.agent(t, "restore", "status")
			var st []agentapi.JournalStatus
			if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 || st[0].Barrier == nil || st[0].Barrier.From == "" {
				t.Errorf("status does not show the recorded decision (%v):\n%s", err, out)
			}
		})
	}
}

// A node that never reached the barrier takes no decision from outside.
func TestDecisionRefusedBeforeTheBarrier(t *testing.T) {
	n := newFakeNode(t)
	n.startThenKill(t)
	n.apiStuck.Store(false)
	before := n.tree(t)
	_, err := n.agent(t, "restore", "run", "--id", restoreID, "--decision", "commit", "--from", "cp0")
	if err == nil || !strings.Contains(err.Error(), "no peers") {
		t.Fatalf("run --decision on a single member: %v", err)
	}
	if d := cmp.Diff(before, n.tree(t)); d != "" {
		t.Errorf("a refused decision changed the node:\n%s", d)
	}
}

// The phases of a rollback over the API (S6): a prepare changes nothing
// but the journal dir; a release acts only after its grace; a recall in
// time leaves the node as it is; a release without a prepare, or beside
// an agent's static pod, is refused.
func TestRollbackInPhases(t *testing.T) {
	for _, tt := range []struct {
		name    string
		setup   func(t *testing.T, n *fakeNode)
		phases  [][]string
		wantErr string
		want    agentapi.Phase
	}{
		{name: "prepare, then release", phases: [][]string{{"--prepare"}, {"--release", "--grace", "300ms"}}, want: agentapi.PhaseRolledBack},
		// The recall must come a recallMargin before the start: the grace
		// leaves a loaded machine seconds to run the next agent.
		{name: "recalled in time", phases: [][]string{{"--prepare"}, {"--release", "--grace", "10s"}, {"--recall"}}, want: agentapi.PhaseDone},
		{name: "recalled too late", phases: [][]string{{"--prepare"}, {"--release", "--grace", "10ms"}, {"--recall"}}, wantErr: "too late to recall", want: agentapi.PhaseRolledBack},
		{name: "released without a prepare", phases: [][]string{{"--release"}}, wantErr: "is not prepared on this node", want: agentapi.PhaseDone},
		{name: "released twice", phases: [][]string{{"--prepare"}, {"--release", "--grace", "100ms"}, {"--release"}}, wantErr: "released at", want: agentapi.PhaseRolledBack},
		{name: "an agent's static pod is there", setup: func(t *testing.T, n *fakeNode) {
			mustWrite(t, filepath.Join(n.root, "etc/kubernetes/manifests", agentapi.AgentPodFile(restoreID, "run")), "kind: Pod\n")
		}, phases: [][]string{{"--prepare"}}, wantErr: "is in the static pod dir", want: agentapi.PhaseDone},
		{name: "two phases at once", phases: [][]string{{"--prepare", "--release"}}, wantErr: "exclude each other", want: agentapi.PhaseDone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNode(t)
			if _, err := n.agent(t, "restore", "start", "--spec", n.spec(t, nil)); err != nil {
				t.Fatal(err)
			}
			n.waitPhase(t, agentapi.PhaseDone)
			if tt.setup != nil {
				tt.setup(t, n)
			}
			restored := n.tree(t)
			var err error
			for i, p := range tt.phases {
				var out string
				out, err = n.agent(t, append([]string{"restore", "rollback", "--id", restoreID}, p...)...)
				if err != nil {
					break
				}
				if i == 0 && p[0] == "--prepare" {
					if d := cmp.Diff(restored, n.tree(t)); d != "" {
						t.Errorf("the prepare changed the node:\n%s", d)
					}
				}
				var st agentapi.Started
				if p[0] == "--release" && (json.Unmarshal([]byte(out), &st) != nil || st.NotBefore == nil) {
					t.Errorf("the release printed %q, not when it begins", out)
				}
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			j := n.waitPhase(t, tt.want)
			r, _ := agentapi.LoadRollbackRelease(filepath.Join(n.root, journalDir, agentapi.RollbackFile))
			if tt.want == agentapi.PhaseRolledBack {
				if undone := j.Steps[len(j.Steps)-1].Ended; r == nil || r.NotBefore == nil || undone == nil || undone.Before(*r.NotBefore) {
					t.Errorf("the rollback acted at %v, before its release's start %+v", undone, r)
				}
				return
			}
			if r != nil && r.NotBefore != nil {
				time.Sleep(time.Until(*r.NotBefore) + 300*time.Millisecond) // past a recalled release's start
				n.waitPhase(t, tt.want)                                     // and its agent has ended, however slowly
			}
			if d := cmp.Diff(restored, n.tree(t)); d != "" {
				t.Errorf("the node changed (-restored +after):\n%s", d)
			}
		})
	}
}

// `restore status` shows a rollback prepared and not released, then
// released, so that an operator sees where a two-phase rollback stopped.
func TestStatusShowsTheRollbackRelease(t *testing.T) {
	n := newFakeNode(t)
	if _, err := n.agent(t, "restore", "start", "--spec", n.spec(t, nil)); err != nil {
		t.Fatal(err)
	}
	n.waitPhase(t, agentapi.PhaseDone)
	status := func() agentapi.JournalStatus {
		t.Helper()
		out, err := n.agent(t, "restore", "status")
		var st []agentapi.JournalStatus
		if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 {
			t.Fatalf("status (%v):\n%s", err, out)
		}
		return st[0]
	}
	if r := status().RollbackRelease; r != nil {
		t.Fatalf("a rollback release before any prepare: %+v", r)
	}
	if _, err := n.agent(t, "restore", "rollback", "--id", restoreID, "--prepare"); err != nil {
		t.Fatal(err)
	}
	if r := status().RollbackRelease; r == nil || r.Prepared.IsZero() || r.Released != nil {
		t.Fatalf("after the prepare: %+v, want prepared and not released", r)
	}
	if _, err := n.agent(t, "restore", "rollback", "--id", restoreID, "--release", "--grace", "100ms"); err != nil {
		t.Fatal(err)
	}
	n.waitPhase(t, agentapi.PhaseRolledBack)
	if r := status().RollbackRelease; r == nil || r.Released == nil || r.NotBefore == nil {
		t.Fatalf("after the release: %+v, want released with its start", r)
	}
}

// With an agent image, the prepare writes the rollback's static pod into
// the journal dir only; the release puts it where the kubelet runs it,
// and the agent it runs waits for the release's start.
func TestStaticPodRollbackInPhases(t *testing.T) {
	n := newFakeNode(t)
	k := n.runStaticPods(t)
	bin := n.installAgent(t)
	orig := n.tree(t)
	if _, err := n.run(t, bin, "restore", "start", "--spec", n.spec(t, func(s *agentapi.RestoreSpec) { s.AgentImage = "etcd" })); err != nil {
		t.Fatal(err)
	}
	n.waitPhase(t, agentapi.PhaseDone)
	runPod, rollbackPod := agentapi.AgentPodFile(restoreID, "run"), agentapi.AgentPodFile(restoreID, "rollback")
	waitGone(t, filepath.Join(n.root, "etc/kubernetes/manifests", runPod))
	if _, err := n.run(t, bin, "restore", "rollback", "--id", restoreID, "--prepare"); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(n.root, "etc/kubernetes/manifests", rollbackPod)) || !exists(filepath.Join(n.root, journalDir, agentapi.PreparedRollbackPod)) {
		t.Fatal("the prepare did not write the rollback's static pod aside, and only there")
	}
	if _, err := n.run(t, bin, "restore", "rollback", "--id", restoreID, "--release", "--grace", "300ms"); err != nil {
		t.Fatal(err)
	}
	n.waitPhase(t, agentapi.PhaseRolledBack)
	waitGone(t, filepath.Join(n.root, "etc/kubernetes/manifests", rollbackPod))
	if d := cmp.Diff(orig, n.tree(t)); d != "" {
		t.Errorf("tree after the rollback (-before +after):\n%s", d)
	}
	if !strings.Contains(k.manifest[rollbackPod], "--claim") || k.started(rollbackPod) != 1 {
		t.Errorf("the kubelet started the rollback pod %d times:\n%s", k.started(rollbackPod), k.manifest[rollbackPod])
	}
}
