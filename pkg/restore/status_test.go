package restore

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
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

// --status reads through pods that cannot change the node (X3): no
// privilege, no host namespaces, every host mount read-only, the agent
// run from where it is or from the pod's own scratch dir; nothing is
// written under the host's root.
func TestStatusReadsWithoutPrivilege(t *testing.T) {
	f := newFixture(t, 3, "3.7.0")
	var mu sync.Mutex
	var pods []*corev1.Pod
	f.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		pods = append(pods, a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy())
		mu.Unlock()
		return false, nil, nil
	})
	f.ex.status = statusOf(t, map[string][]agentapi.JournalStatus{"cp1": {swapped("r1", agentapi.Commit)}})
	if _, err := Status(context.Background(), f.deps(), f.cfg); err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	if len(pods) != 3 {
		t.Fatalf("%d pods, want one per node", len(pods))
	}
	for _, p := range pods {
		s, c := p.Spec, p.Spec.Containers[0]
		if s.HostPID || s.HostNetwork || s.HostIPC {
			t.Errorf("pod %s shares a host namespace", p.Name)
		}
		if sc := c.SecurityContext; sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || len(sc.Capabilities.Add) > 0 {
			t.Errorf("pod %s: security context %+v", p.Name, c.SecurityContext)
		}
		var hostMounts []string
		for _, vm := range c.VolumeMounts {
			if strings.HasPrefix(vm.MountPath, nodepod.HostPrefix) {
				hostMounts = append(hostMounts, vm.MountPath)
				if !vm.ReadOnly {
					t.Errorf("pod %s mounts %s read-write", p.Name, vm.MountPath)
				}
			}
		}
		want := []string{"/host/var/lib/kubectl-etcd", "/host/etc/kubernetes/manifests", "/host/var/lib"}
		if !slices.Equal(hostMounts, want) {
			t.Errorf("pod %s mounts %v, want %v", p.Name, hostMounts, want)
		}
		if p.Labels[nodepod.ManagedByLabel] != nodepod.ManagedByValue {
			t.Errorf("pod %s lacks the managed-by label", p.Name)
		}
	}
	for _, c := range f.ex.calls {
		line := strings.Join(c.cmd, " ")
		if strings.Contains(line, "cat > /host") || strings.Contains(line, "mkdir") || strings.Contains(line, "mv ") {
			t.Errorf("--status wrote on the node: %s", line)
		}
	}
	if !strings.Contains(f.out.String(), "node cp1: restore r1") {
		t.Errorf("status did not print the journal:\n%s", f.out)
	}
}

func TestStatusUnchecked(t *testing.T) {
	spec := func(old, static string) json.RawMessage {
		b, _ := json.Marshal(agentapi.RestoreSpec{OldDataDir: old, StaticPodDir: static})
		return b
	}
	r := readerFor(Config{}, "cp1", "/var/lib/etcd/data-restore-r1", "")
	for _, tt := range []struct {
		name  string
		j     agentapi.JournalStatus
		wants string
	}{
		{"sibling, default static dir", agentapi.JournalStatus{Journal: agentapi.Journal{ID: "r1", Phase: agentapi.PhaseDone, Spec: spec("/var/lib/etcd/data", "/etc/kubernetes/manifests")}, Rollback: &agentapi.RollbackCheck{}}, ""},
		{"old data elsewhere", agentapi.JournalStatus{Journal: agentapi.Journal{ID: "r1", Phase: agentapi.PhaseDone, Spec: spec("/data/etcd", "/etc/kubernetes/manifests")}, Rollback: &agentapi.RollbackCheck{}}, "its old data dir /data/etcd is outside the dir --status reads (/var/lib/etcd)"},
		{"a prefix is not a parent", agentapi.JournalStatus{Journal: agentapi.Journal{ID: "r1", Phase: agentapi.PhaseDone, Spec: spec("/var/lib/etcd2/data", "/etc/kubernetes/manifests")}, Rollback: &agentapi.RollbackCheck{}}, "outside"},
		{"another static dir", agentapi.JournalStatus{Journal: agentapi.Journal{ID: "r1", Phase: agentapi.PhaseDone, Spec: spec("/var/lib/etcd/data", "/srv/manifests")}, Rollback: &agentapi.RollbackCheck{}}, "its static pod dir /srv/manifests is not the kubelet's /etc/kubernetes/manifests"},
		{"rolled back: nothing to check", agentapi.JournalStatus{Journal: agentapi.Journal{ID: "r1", Phase: agentapi.PhaseRolledBack, Spec: spec("/data/etcd", "/srv")}, Rollback: &agentapi.RollbackCheck{}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := r.unchecked([]agentapi.JournalStatus{tt.j})["r1"]
			if tt.wants == "" && got != "" || !strings.Contains(got, tt.wants) {
				t.Errorf("unchecked = %q, want %q", got, tt.wants)
			}
		})
	}
	// A data dir right under / shows only itself, never the host's root.
	if r := readerFor(Config{}, "cp1", "/etcd", ""); r.data != "/etcd" {
		t.Errorf("data dir /etcd mounts %s", r.data)
	}
}

// A rollback waits for the cluster serving now to go only when some node
// swapped to the restored data; a restore that held before the swap
// leaves the old cluster serving, and the wait is for health alone (C4).
func TestLeavesCluster(t *testing.T) {
	swap := func(id string, st agentapi.State) agentapi.JournalStatus {
		return agentapi.JournalStatus{Journal: agentapi.Journal{ID: id, Steps: []agentapi.StepRecord{
			{Name: agentapi.StepBarrier, State: agentapi.Done}, {Name: agentapi.StepSwap, State: st}}}}
	}
	for _, tt := range []struct {
		name string
		ns   []NodeJournals
		want string
	}{
		{"held everywhere", []NodeJournals{{Node: "cp1", Journals: []agentapi.JournalStatus{held("r1")}}, {Node: "cp2", Journals: []agentapi.JournalStatus{held("r1")}}}, ""},
		{"swapped on one", []NodeJournals{{Node: "cp1", Journals: []agentapi.JournalStatus{held("r1")}}, {Node: "cp2", Journals: []agentapi.JournalStatus{swap("r1", agentapi.Done)}}}, "abc"},
		{"swap under way", []NodeJournals{{Node: "cp1", Journals: []agentapi.JournalStatus{swap("r1", agentapi.Running)}}}, "abc"},
		{"another restore swapped", []NodeJournals{{Node: "cp1", Journals: []agentapi.JournalStatus{held("r1"), swap("r0", agentapi.Done)}}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := leavesCluster(tt.ns, "r1", "abc"); got != tt.want {
				t.Errorf("leavesCluster = %q, want %q", got, tt.want)
			}
		})
	}
}
