package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// switchDialer finds the etcd ports (all but the API server's) open, or
// every port refusing.
type switchDialer struct{ etcdOpen atomic.Bool }

func (d *switchDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.etcdOpen.Load() && addr != "127.0.0.1:6443" {
		return fakeDialer{}.DialContext(ctx, network, addr)
	}
	return nil, &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

type healthy struct{}

func (healthy) Do(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Status: "200 OK", Body: io.NopCloser(strings.NewReader(`{"health":"true"}`))}, nil
}

type passBarrier struct{}

func (passBarrier) Await(context.Context) error { return nil }

func restoreSpec() *agentapi.RestoreSpec {
	s := &agentapi.RestoreSpec{ID: "r1", Member: "cp1", StaticPodDir: "/etc/kubernetes/manifests", JournalDir: "/var/lib/kubectl-etcd/restore/r1",
		OldDataDir: "/var/lib/etcd", NewDataDir: "/var/lib/etcd-restore-x", APIServerAddr: "127.0.0.1:6443",
		EtcdAddrs: []string{"127.0.0.1:2379", "10.0.0.1:2380", "127.0.0.1:2381"}, MetricsURL: "http://127.0.0.1:2381",
		StopTimeout: agentapi.Duration(50 * time.Millisecond), PollInterval: agentapi.Duration(time.Millisecond)}
	if err := s.Validate(); err != nil {
		panic(err)
	}
	return s
}

func TestRestoreStepsOrder(t *testing.T) {
	for _, barrier := range []Barrier{nil, passBarrier{}} {
		steps := RestoreSteps(restoreSpec(), nil, RestoreEnv{Root: "/host", Barrier: barrier})
		var names []string
		var pnr []string
		for _, s := range steps {
			names = append(names, s.Name)
			if s.PointOfNoReturn {
				pnr = append(pnr, s.Name)
			}
			for _, m := range s.Moves {
				if strings.HasPrefix(m.From, "/host") || strings.HasPrefix(m.To, "/host") {
					t.Errorf("step %q records %+v, want node paths", s.Name, m)
				}
			}
		}
		want := []string{"stop kube-apiserver", "stop kube-controller-manager", "stop kube-scheduler", "wait until kube-apiserver is gone",
			"stop etcd", "wait until etcd is gone", agentapi.StepSwap, "wait until the member is healthy",
			"start kube-apiserver", "start kube-controller-manager", "start kube-scheduler"}
		wantPNR := []string{agentapi.StepSwap}
		if barrier != nil {
			want = append(want[:6], append([]string{agentapi.StepBarrier}, want[6:]...)...)
			wantPNR = []string{agentapi.StepBarrier, agentapi.StepSwap}
		}
		if d := cmp.Diff(want, names); d != "" {
			t.Errorf("barrier=%v (-want +got):\n%s", barrier != nil, d)
		}
		if d := cmp.Diff(wantPNR, pnr); d != "" {
			t.Errorf("point of no return (-want +got):\n%s", d)
		}
	}
}

// The plan the user confirms lists the steps a journal records, in order,
// with the same moves and point of no return: with peers the barrier too,
// without them none.
func TestPlanRestoreIsTheJournal(t *testing.T) {
	single := restoreSpec()
	peers := restoreSpec()
	peers.Barrier = &agentapi.BarrierSpec{Addr: "10.0.0.1:2382", Peers: []agentapi.Peer{{Member: "cp2", Addr: "10.0.0.2:2382"}}}
	for _, tc := range []struct {
		name    string
		spec    *agentapi.RestoreSpec
		barrier Barrier
	}{{"single", single, nil}, {"peers", peers, passBarrier{}}} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := NewJournal("r1", agentapi.RestoreOperation, "n1", time.Unix(0, 0), tc.spec, RestoreSteps(tc.spec, nil, RestoreEnv{Root: "/host", Barrier: tc.barrier}))
			if err != nil {
				t.Fatal(err)
			}
			var want, got []PlannedStep
			for _, r := range j.Steps {
				want = append(want, PlannedStep{Name: r.Name, Moves: r.Moves, PointOfNoReturn: r.PointOfNoReturn})
			}
			for _, st := range PlanRestore(tc.spec) {
				if st.Name == "" {
					t.Errorf("a planned step without a name: %+v", st)
				}
				st.Detail = ""
				got = append(got, st)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("plan against journal (-journal +plan):\n%s", d)
			}
			if hasBarrier := j.Step(agentapi.StepBarrier) != nil; hasBarrier != (tc.barrier != nil) {
				t.Errorf("barrier step in the journal: %t, want %t", hasBarrier, tc.barrier != nil)
			}
		})
	}
}

// The old etcd must never start beside the new one: a rollback whose wait
// for the new etcd to go fails must stop before the old manifest and data
// come back, and finish once the new etcd has gone.
func TestRestoreRollbackWaitsForTheNewEtcd(t *testing.T) {
	n := newNode(t)
	orig := tree(t, n.root, true)
	d := &switchDialer{}
	steps := func() []Step {
		return RestoreSteps(restoreSpec(), []byte("etcd new\n"), RestoreEnv{Root: n.root, Dialer: d, HTTP: healthy{}, Barrier: passBarrier{}})
	}
	if err := start(t, n, steps()).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.etcdOpen.Store(true) // the new etcd still runs
	err := resumeWith(t, n, steps()).Rollback(context.Background())
	if err == nil || !strings.Contains(err.Error(), agentapi.StepSwap) {
		t.Fatalf("err = %v, want the undo of %q to wait for etcd", err, agentapi.StepSwap)
	}
	if b, _ := os.ReadFile(filepath.Join(n.static, "kube-apiserver.yaml")); len(b) != 0 {
		t.Error("kube-apiserver came back before etcd was rolled back")
	}
	if b, _ := os.ReadFile(filepath.Join(n.static, "etcd.yaml")); string(b) == "etcd old\n" {
		t.Error("the old etcd manifest came back while the new etcd ran")
	}
	d.etcdOpen.Store(false)
	if err := resumeWith(t, n, steps()).Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(orig, tree(t, n.root, true)); diff != "" {
		t.Errorf("tree after the rollback (-want +got):\n%s", diff)
	}
}

func resumeWith(t *testing.T, n *node, steps []Step) *Engine {
	t.Helper()
	j, err := agentapi.LoadJournal(n.journal)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(n.journal, j, steps)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The swap re-checks the restored data and refuses an etcd.yaml that
// reappeared, writing nothing (D4.4, D4.5).
func TestSwapChecksBeforeItWrites(t *testing.T) {
	const db = "var/lib/etcd-restore-x/member/snap/db"
	for _, tt := range []struct {
		name string
		// edit changes the node once etcd is gone, right before the swap.
		edit      func(t *testing.T, n *node)
		barrier   Barrier
		wantErr   string // "" for done
		wantEtcd  string // etcd.yaml afterwards
		wantPhase agentapi.Phase
	}{
		{name: "restored data there", edit: func(*testing.T, *node) {}, wantEtcd: "etcd new\n", wantPhase: agentapi.PhaseDone},
		{name: "restored data gone", edit: func(t *testing.T, n *node) { os.Remove(filepath.Join(n.root, db)) },
			wantErr: "no longer holds member/snap/db", wantEtcd: "etcd old\n", wantPhase: agentapi.PhaseRolledBack},
		{name: "restored db empty", edit: func(t *testing.T, n *node) { mustWrite(t, filepath.Join(n.root, db), "") },
			wantErr: "not a database file", wantEtcd: "etcd old\n", wantPhase: agentapi.PhaseRolledBack},
		{name: "etcd.yaml reappeared after the barrier", barrier: passBarrier{},
			edit:    func(t *testing.T, n *node) { mustWrite(t, filepath.Join(n.static, "etcd.yaml"), "config management\n") },
			wantErr: "never overwritten", wantEtcd: "config management\n", wantPhase: agentapi.PhaseFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t)
			steps := RestoreSteps(restoreSpec(), []byte("etcd new\n"), RestoreEnv{Root: n.root, Dialer: &switchDialer{}, HTTP: healthy{}, Barrier: tt.barrier})
			for i := range steps {
				if steps[i].Name == "wait until etcd is gone" {
					do := steps[i].Do
					steps[i].Do = func(ctx context.Context) error { tt.edit(t, n); return do(ctx) }
				}
			}
			err := start(t, n, steps).Run(context.Background())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if b, _ := os.ReadFile(filepath.Join(n.static, "etcd.yaml")); string(b) != tt.wantEtcd {
				t.Errorf("etcd.yaml = %q, want %q", b, tt.wantEtcd)
			}
			assertPhase(t, n, tt.wantPhase)
		})
	}
}

// Before the swap, the restored data is fsynced, its parent dir too.
func TestSyncRestoredData(t *testing.T) {
	for _, tt := range []struct {
		name    string
		fail    string // synced path that fails, under the root
		wantErr string
	}{
		{name: "synced"},
		{name: "fsync fails", fail: "var/lib/etcd-restore-x/member/snap/db", wantErr: "nothing was swapped: check the disk"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t)
			l := &syncLog{watch: n.root}
			if tt.fail != "" {
				l.fail = map[string]bool{filepath.Join(n.root, tt.fail): true}
			}
			err := syncRestoredData(l.ops(nil), n.root, "/var/lib/etcd-restore-x")
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr != "" {
				return
			}
			var got []string
			for _, p := range l.synced {
				rel, _ := filepath.Rel(n.root, p)
				got = append(got, rel)
			}
			want := []string{"var/lib/etcd-restore-x", "var/lib/etcd-restore-x/member", "var/lib/etcd-restore-x/member/snap", "var/lib/etcd-restore-x/member/snap/db", "var/lib"}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("synced (-want +got):\n%s", d)
			}
		})
	}
}

// TestEncryptionConfigStep puts a bundle's encryption config in place on
// a node that had another, none, or the same, and takes it back: every
// file is kept, a resumed Do changes nothing more, and a staged file that
// is not the planned one is refused with nothing changed.
func TestEncryptionConfigStep(t *testing.T) {
	bundle := []byte("kind: EncryptionConfiguration # the bundle's\n")
	sum := sha256Hex(bundle)
	for _, tt := range []struct {
		name string
		own  []byte // the node's config; nil: none
	}{
		{"another config", []byte("kind: EncryptionConfiguration # rotated\n")},
		{"none", nil},
		{"the same", bundle},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			s := restoreSpec()
			s.EncryptionConfig = &agentapi.EncryptionConfigSwap{Path: "/etc/kubernetes/enc/enc.yaml", Staged: s.JournalDir + "/encryption-config", SHA256: sum}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			live, staged := filepath.Join(root, s.EncryptionConfig.Path), filepath.Join(root, s.EncryptionConfig.Staged)
			os.MkdirAll(filepath.Dir(live), 0o700)
			os.MkdirAll(filepath.Dir(staged), 0o700)
			os.WriteFile(staged, bundle, 0o600)
			if tt.own != nil {
				os.WriteFile(live, tt.own, 0o600)
			}
			st := encryptionConfigStep(s, RestoreEnv{Root: root})
			for i := 0; i < 2; i++ { // a resumed Do changes nothing more
				if err := st.Do(context.Background()); err != nil {
					t.Fatalf("do %d: %v", i, err)
				}
			}
			if got, _ := os.ReadFile(live); string(got) != string(bundle) {
				t.Errorf("in place: %q", got)
			}
			if _, err := os.Stat(staged); err == nil {
				t.Error("the staged copy of the keys is left in the journal dir")
			}
			if tt.own != nil && string(tt.own) != string(bundle) {
				if got, _ := os.ReadFile(filepath.Join(root, s.EncryptionConfigAside())); string(got) != string(tt.own) {
					t.Errorf("the node's own config was not kept: %q", got)
				}
			}
			if err := st.Undo(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(live)
			switch {
			case tt.own == nil && !os.IsNotExist(err):
				t.Errorf("after the undo, a node that had none has %q (%v)", got, err)
			case tt.own != nil && string(got) != string(tt.own):
				t.Errorf("after the undo: %q, want the node's own", got)
			}
		})
	}
	t.Run("a staged file that is not the planned one", func(t *testing.T) {
		root := t.TempDir()
		s := restoreSpec()
		s.EncryptionConfig = &agentapi.EncryptionConfigSwap{Path: "/etc/kubernetes/enc.yaml", Staged: s.JournalDir + "/encryption-config", SHA256: sum}
		live, staged := filepath.Join(root, s.EncryptionConfig.Path), filepath.Join(root, s.EncryptionConfig.Staged)
		os.MkdirAll(filepath.Dir(staged), 0o700)
		os.MkdirAll(filepath.Dir(live), 0o700)
		os.WriteFile(staged, []byte("other"), 0o600)
		os.WriteFile(live, []byte("own"), 0o600)
		if err := encryptionConfigStep(s, RestoreEnv{Root: root}).Do(context.Background()); err == nil || !strings.Contains(err.Error(), "not the one planned") {
			t.Errorf("err %v", err)
		}
		if got, _ := os.ReadFile(live); string(got) != "own" {
			t.Errorf("the node's config changed: %q", got)
		}
	})
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
