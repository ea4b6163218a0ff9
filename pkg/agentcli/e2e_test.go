package agentcli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/manifest"
)

// agentBin is the agent binary, built once as the plugin ships it.
var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agent-bin-")
	if err != nil {
		panic(err)
	}
	agentBin = filepath.Join(dir, "kubectl-etcd-agent")
	build := exec.Command("go", "build", "-trimpath", "-o", agentBin, "../../cmd/kubectl-etcd-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the agent: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	restoreID  = "20260102T030405Z"
	newDataDir = "/var/lib/etcd-restore-" + restoreID
	journalDir = "/var/lib/kubectl-etcd/restore/" + restoreID
)

// fakeNode is a temp dir laid out as a kubeadm control-plane node, and a
// fake kubelet: while a manifest is in the static pod dir, its component's
// ports accept connections on loopback; once it leaves, they refuse.
type fakeNode struct {
	t        *testing.T
	root     string
	apiAddr  string
	etcdAddr map[string]string // client, peer, metrics
	// apiStuck and etcdStuck keep a component running after its manifest
	// has gone, as a kubelet that never stops it.
	apiStuck, etcdStuck atomic.Bool
	mu                  sync.Mutex
	running             map[string][]func()
}

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	n := &fakeNode{t: t, root: t.TempDir(), apiAddr: freeAddr(t), running: map[string][]func(){}}
	n.etcdAddr = map[string]string{"client": freeAddr(t), "peer": freeAddr(t), "metrics": freeAddr(t)}
	src, err := os.ReadFile("../manifest/testdata/kubeadm-v1.37.1-etcd-3.7.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	etcd := strings.NewReplacer(
		"--listen-client-urls=https://127.0.0.1:2379,https://10.250.1.11:2379", "--listen-client-urls=https://"+n.etcdAddr["client"],
		"--listen-peer-urls=https://10.250.1.11:2380", "--listen-peer-urls=https://"+n.etcdAddr["peer"],
		"--listen-metrics-urls=http://127.0.0.1:2381", "--listen-metrics-urls=http://"+n.etcdAddr["metrics"],
	).Replace(string(src))
	pod := func(cmd ...string) string {
		return "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - command:\n    - " + strings.Join(cmd, "\n    - ") + "\n    name: c\n"
	}
	_, port, _ := net.SplitHostPort(n.apiAddr)
	for p, body := range map[string]string{
		"etc/kubernetes/manifests/etcd.yaml":                            etcd,
		"etc/kubernetes/manifests/kube-apiserver.yaml":                  pod("kube-apiserver", "--secure-port="+port),
		"etc/kubernetes/manifests/kube-controller-manager.yaml":         pod("kube-controller-manager"),
		"etc/kubernetes/manifests/kube-scheduler.yaml":                  pod("kube-scheduler"),
		"var/lib/etcd/member/snap/db":                                   "old db",
		"var/lib/etcd/member/wal/0000000000000000-0000000000000000.wal": "old wal",
		"var/lib/etcd-restore-" + restoreID + "/member/snap/db":         "restored db",
	} {
		mustWrite(t, filepath.Join(n.root, p), body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go n.kubelet(ctx, done)
	t.Cleanup(func() { cancel(); <-done; n.stopAll() })
	return n
}

func mustWrite(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (n *fakeNode) kubelet(ctx context.Context, done chan struct{}) {
	defer close(done)
	for ctx.Err() == nil {
		n.sync("kube-apiserver", &n.apiStuck, n.apiAddr)
		n.sync("etcd", &n.etcdStuck, n.etcdAddr["client"], n.etcdAddr["peer"], n.etcdAddr["metrics"])
		time.Sleep(5 * time.Millisecond)
	}
}

// sync starts or stops a component to match its manifest.
func (n *fakeNode) sync(name string, stuck *atomic.Bool, addrs ...string) {
	_, err := os.Stat(filepath.Join(n.root, "etc/kubernetes/manifests", name+".yaml"))
	n.mu.Lock()
	defer n.mu.Unlock()
	up := n.running[name] != nil
	switch {
	case err == nil && !up:
		for _, a := range addrs {
			if stop, ok := listen(a); ok {
				n.running[name] = append(n.running[name], stop)
			}
		}
	case err != nil && up && !stuck.Load():
		for _, stop := range n.running[name] {
			stop()
		}
		delete(n.running, name)
	}
}

func (n *fakeNode) stopAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, stops := range n.running {
		for _, stop := range stops {
			stop()
		}
	}
}

// listen serves etcd's /health on addr (every fake port answers it).
func listen(addr string) (func(), bool) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, false
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"health":"true","reason":""}`))
	})}
	go srv.Serve(l)
	return func() { srv.Close() }, true
}

func (n *fakeNode) spec(t *testing.T, edit func(*agentapi.RestoreSpec)) string {
	t.Helper()
	s := agentapi.RestoreSpec{
		ID: restoreID, Node: "cp1", Member: "hc-cp1", StaticPodDir: "/etc/kubernetes/manifests",
		JournalDir: journalDir, OldDataDir: "/var/lib/etcd", NewDataDir: newDataDir,
		StopTimeout: agentapi.Duration(10 * time.Second), HealthyTimeout: agentapi.Duration(10 * time.Second), PollInterval: agentapi.Duration(10 * time.Millisecond),
	}
	if edit != nil {
		edit(&s)
	}
	b, _ := json.Marshal(s)
	p := filepath.Join(t.TempDir(), "spec.json")
	mustWrite(t, p, string(b))
	return p
}

func (n *fakeNode) agent(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := exec.Command(agentBin, append(args, "--root", n.root)...)
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	if err != nil {
		err = fmt.Errorf("%v: %w\n%s", args, err, errOut.String())
	}
	return out.String(), err
}

func (n *fakeNode) journal(t *testing.T) *agentapi.Journal {
	t.Helper()
	j, err := agentapi.LoadJournal(filepath.Join(n.root, journalDir, agentapi.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// waitDeadline bounds the waits for an agent, a process of its own, to
// get somewhere: far longer than it takes, even on a loaded machine.
const waitDeadline = 2 * time.Minute

// waitPhase waits until the journal is in phase and no agent holds it.
func (n *fakeNode) waitPhase(t *testing.T, want agentapi.Phase) *agentapi.Journal {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for {
		j := n.journal(t)
		if j.Phase == want && !agent.Held(filepath.Join(n.root, journalDir, agentapi.LockFile)) {
			return j
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(n.root, journalDir, agentapi.LogFile))
			t.Fatalf("phase %s, want %s; journal error %q; log:\n%s", j.Phase, want, j.Error, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tree maps every path under root to its mode and content, leaving out
// the journal dir.
func (n *fakeNode) tree(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(n.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(n.root, p)
		if rel == "var/lib/kubectl-etcd" {
			return fs.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[rel] = info.Mode().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			out[rel] += " " + string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (n *fakeNode) read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRestoreEndToEndThenRollback(t *testing.T) {
	n := newFakeNode(t)
	orig := n.tree(t)
	origEtcd := n.read(t, "etc/kubernetes/manifests/etcd.yaml")
	out, err := n.agent(t, "restore", "start", "--spec", n.spec(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	var st agentapi.Started
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.PID == 0 || st.Journal != journalDir+"/journal.json" {
		t.Fatalf("start printed %q (%v)", out, err)
	}
	j := n.waitPhase(t, agentapi.PhaseDone)
	if j.PID != st.PID {
		t.Errorf("journal pid %d, start printed %d", j.PID, st.PID)
	}

	want, _, err := manifest.SetDataDir([]byte(origEtcd), newDataDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.read(t, "etc/kubernetes/manifests/etcd.yaml"); got != string(want) {
		t.Errorf("etcd.yaml is not the rewritten manifest:\n%s", cmp.Diff(string(want), got))
	}
	for _, f := range agentapi.ControlPlaneManifests {
		p := "etc/kubernetes/manifests/" + f
		if got := n.read(t, p); orig[p] != "-rw-r--r-- "+got {
			t.Errorf("%s changed: %q", f, got)
		}
	}
	if got := n.read(t, journalDir+"/manifests/etcd.yaml"); got != origEtcd {
		t.Error("the old etcd.yaml is not kept byte for byte in the journal dir")
	}
	if got := n.read(t, "var/lib/etcd/member/snap/db"); got != "old db" {
		t.Errorf("old data dir not kept in place: %q", got)
	}
	assertStatus(t, n, agentapi.PhaseDone)

	if _, err := n.agent(t, "restore", "rollback", "--id", restoreID); err != nil {
		t.Fatal(err)
	}
	n.waitPhase(t, agentapi.PhaseRolledBack)
	if d := cmp.Diff(orig, n.tree(t)); d != "" {
		t.Errorf("tree after rollback (-before the restore +after):\n%s", d)
	}
}

func assertStatus(t *testing.T, n *fakeNode, want agentapi.Phase) {
	t.Helper()
	out, err := n.agent(t, "restore", "status")
	if err != nil {
		t.Fatal(err)
	}
	var st []agentapi.JournalStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, out)
	}
	if len(st) != 1 || st[0].ID != restoreID || st[0].Phase != want || st[0].AgentRunning {
		t.Errorf("status = %s, want one journal in phase %s and no agent running", out, want)
	}
}

// stuckStopTimeout is the StopTimeout of the tests whose component never
// stops: its wait runs out, while the wait for the one that does stop must
// not. One spec field bounds both, so it is as short as a loaded machine
// allows.
const stuckStopTimeout = 3 * time.Second

func TestRestoreRollsBackWhenEtcdNeverStops(t *testing.T) {
	n := newFakeNode(t)
	n.etcdStuck.Store(true)
	orig := n.tree(t)
	if _, err := n.agent(t, "restore", "start", "--spec", n.spec(t, func(s *agentapi.RestoreSpec) { s.StopTimeout = agentapi.Duration(stuckStopTimeout) })); err != nil {
		t.Fatal(err)
	}
	j := n.waitPhase(t, agentapi.PhaseRolledBack)
	if !strings.Contains(j.Steps[5].Error, "still accepts connections") {
		t.Errorf("step %q error %q, want etcd's port named", j.Steps[5].Name, j.Steps[5].Error)
	}
	if d := cmp.Diff(orig, n.tree(t)); d != "" {
		t.Errorf("tree after the automatic rollback (-before +after):\n%s", d)
	}
}

// startThenKill starts a restore whose API server never stops, kills its
// agent in that wait (step 4), and returns once the lock is free.
func (n *fakeNode) startThenKill(t *testing.T) agentapi.Started {
	t.Helper()
	n.apiStuck.Store(true)
	out, err := n.agent(t, "restore", "start", "--spec", n.spec(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	var st agentapi.Started
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.PID <= 0 {
		t.Fatalf("start printed %q (%v)", out, err)
	}
	for n.journal(t).Steps[3].State != agentapi.Running {
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for agent.Held(filepath.Join(n.root, journalDir, agentapi.LockFile)) {
		time.Sleep(10 * time.Millisecond)
	}
	return st
}

func TestRestoreResumesAfterKill(t *testing.T) {
	n := newFakeNode(t)
	st := n.startThenKill(t)
	if j := n.journal(t); j.Phase != agentapi.PhaseRunning || j.Steps[3].State != agentapi.Running {
		t.Fatalf("after the kill: phase %s, step %q %s", j.Phase, j.Steps[3].Name, j.Steps[3].State)
	}
	n.apiStuck.Store(false)
	if _, err := n.agent(t, "restore", "run", "--id", restoreID); err != nil {
		t.Fatal(err)
	}
	if j := n.waitPhase(t, agentapi.PhaseDone); j.PID == st.PID {
		t.Error("the journal still names the killed agent")
	}
}

func TestRestoreStartRefuses(t *testing.T) {
	n := newFakeNode(t)
	orig := n.tree(t)
	for name, edit := range map[string]func(*agentapi.RestoreSpec){
		"another member":       func(s *agentapi.RestoreSpec) { s.Member = "cp9" },
		"no restored data dir": func(s *agentapi.RestoreSpec) { s.NewDataDir = "/var/lib/etcd-restore-none" },
		"journal in static":    func(s *agentapi.RestoreSpec) { s.JournalDir = "/etc/kubernetes/manifests/" + restoreID },
		"rollback with peers": func(s *agentapi.RestoreSpec) {
			s.AfterSwapFailure = agentapi.AfterSwapRollback
			s.Barrier = &agentapi.BarrierSpec{Peers: []agentapi.Peer{{Member: "cp2", Addr: "10.0.0.2:2390"}}}
		},
	} {
		if _, err := n.agent(t, "restore", "start", "--spec", n.spec(t, edit)); err == nil {
			t.Errorf("%s: start succeeded", name)
		}
	}
	if _, err := os.Stat(filepath.Join(n.root, journalDir, agentapi.JournalFile)); err == nil {
		t.Error("a refused start wrote a journal")
	}
	if d := cmp.Diff(orig, n.tree(t)); d != "" {
		t.Errorf("a refused start changed the node:\n%s", d)
	}

	n.apiStuck.Store(true)
	if _, err := n.agent(t, "restore", "start", "--spec", n.spec(t, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.agent(t, "restore", "start", "--spec", n.spec(t, nil)); err == nil || !strings.Contains(err.Error(), "never starts on top") {
		t.Errorf("second start: %v", err)
	}
	if _, err := n.agent(t, "restore", "rollback", "--id", restoreID); err == nil || !strings.Contains(err.Error(), "is running restore") {
		t.Errorf("rollback while the agent runs: %v", err)
	}
	n.apiStuck.Store(false)
	n.waitPhase(t, agentapi.PhaseDone)
}

// issuePeerCert lays out the node's etcd peer TLS files as kubeadm does,
// signed by pki's CA.
func (n *fakeNode) issuePeerCert(t *testing.T, pki *etcdtest.PKI) {
	t.Helper()
	dir := filepath.Join(n.root, "etc/kubernetes/pki/etcd")
	if err := pki.Issue(filepath.Join(dir, "peer.crt"), filepath.Join(dir, "peer.key"), []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "ca.crt"), string(ca))
}

func newPKI(t *testing.T) *etcdtest.PKI {
	t.Helper()
	pki, err := etcdtest.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return pki
}

// A member whose peer never answers rolls back at the barrier, as every
// other member does: none swaps alone.
func TestRestoreWithPeersRollsBackAtTheBarrier(t *testing.T) {
	n := newFakeNode(t)
	n.issuePeerCert(t, newPKI(t))
	orig := n.tree(t)
	spec := n.spec(t, func(s *agentapi.RestoreSpec) {
		s.Barrier = &agentapi.BarrierSpec{Addr: freeAddr(t), Peers: []agentapi.Peer{{Member: "hc-cp2", Addr: "127.0.0.1:1"}},
			Timeout: agentapi.Duration(300 * time.Millisecond), Linger: agentapi.Duration(300 * time.Millisecond)}
	})
	if _, err := n.agent(t, "restore", "start", "--spec", spec); err != nil {
		t.Fatal(err)
	}
	j := n.waitPhase(t, agentapi.PhaseRolledBack)
	if j.Steps[6].Name != agentapi.StepBarrier || j.Steps[6].State != agentapi.Failed {
		t.Errorf("step 7 is %q %s, want the barrier failed", j.Steps[6].Name, j.Steps[6].State)
	}
	if got := n.read(t, journalDir+"/"+agentapi.BarrierFile); !strings.Contains(got, `"abort"`) {
		t.Errorf("the coordinator recorded %s, want abort", got)
	}
	if d := cmp.Diff(orig, n.tree(t)); d != "" {
		t.Errorf("tree after the rollback (-before +after):\n%s", d)
	}
}

// Three agents, one fake node each, signed by one etcd CA, meet at the
// barrier, commit and finish.
func TestRestoreWithPeersCommitsAtTheBarrier(t *testing.T) {
	pki := newPKI(t)
	names := []string{"hc-cp1", "hc-cp2", "hc-cp3"}
	nodes := make([]*fakeNode, len(names))
	addrs := make([]string, len(names))
	for i := range names {
		nodes[i] = newFakeNode(t)
		nodes[i].issuePeerCert(t, pki)
		addrs[i] = freeAddr(t)
	}
	for i, n := range nodes {
		var peers []agentapi.Peer
		for k := range names {
			if k != i {
				peers = append(peers, agentapi.Peer{Member: names[k], Addr: addrs[k]})
			}
		}
		spec := n.spec(t, func(s *agentapi.RestoreSpec) {
			s.Node, s.Member = "cp"+names[i][len(names[i])-1:], names[i]
			// Neither runs out here, however slowly a loaded machine starts
			// the three agents: the coordinator waits for every member,
			// and each serves the decision until its peers have it.
			s.Barrier = &agentapi.BarrierSpec{Addr: addrs[i], Peers: peers, Timeout: agentapi.Duration(time.Minute), Linger: agentapi.Duration(time.Minute)}
		})
		// The fake manifest runs hc-cp1: name this node's member.
		p := filepath.Join(n.root, "etc/kubernetes/manifests/etcd.yaml")
		mustWrite(t, p, strings.ReplaceAll(n.read(t, "etc/kubernetes/manifests/etcd.yaml"), "--name=hc-cp1", "--name="+names[i]))
		if _, err := n.agent(t, "restore", "start", "--spec", spec); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range nodes {
		j := n.waitPhase(t, agentapi.PhaseDone)
		if j.Steps[6].Name != agentapi.StepBarrier || j.Steps[6].State != agentapi.Done {
			t.Errorf("%s: step 7 is %q %s", names[i], j.Steps[6].Name, j.Steps[6].State)
		}
		if got := n.read(t, journalDir+"/"+agentapi.BarrierFile); !strings.Contains(got, `"commit"`) {
			t.Errorf("%s recorded %s, want commit", names[i], got)
		}
		if got := n.read(t, "etc/kubernetes/manifests/etcd.yaml"); !strings.Contains(got, newDataDir) {
			t.Errorf("%s did not swap in the restored manifest", names[i])
		}
	}
}

// The summary's clean-up done before a rollback (D1), or the manifest
// edited since the restore (D2): the agent refuses and changes nothing,
// and `restore status` says why.
func TestRollbackRefusals(t *testing.T) {
	for _, tt := range []struct {
		name, refuse string
		change       func(t *testing.T, n *fakeNode)
	}{
		{"old data removed", "no longer holds etcd's data", func(t *testing.T, n *fakeNode) {
			if err := os.RemoveAll(filepath.Join(n.root, "var/lib/etcd/member")); err != nil {
				t.Fatal(err)
			}
		}},
		{"manifest edited since", "no longer the manifest this restore wrote", func(t *testing.T, n *fakeNode) {
			p := filepath.Join(n.root, "etc/kubernetes/manifests/etcd.yaml")
			b, _ := os.ReadFile(p)
			mustWrite(t, p, string(b)+"# edited\n")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNode(t)
			if _, err := n.agent(t, "restore", "start", "--spec", n.spec(t, nil)); err != nil {
				t.Fatal(err)
			}
			n.waitPhase(t, agentapi.PhaseDone)
			tt.change(t, n)
			before := n.tree(t)
			_, err := n.agent(t, "restore", "rollback", "--id", restoreID)
			if err == nil || !strings.Contains(err.Error(), tt.refuse) {
				t.Fatalf("rollback: %v, want it refused: %s", err, tt.refuse)
			}
			if d := cmp.Diff(before, n.tree(t)); d != "" {
				t.Errorf("the refused rollback changed the node:\n%s", d)
			}
			if j := n.journal(t); j.Phase != agentapi.PhaseDone {
				t.Errorf("phase %s after a refused rollback, want done", j.Phase)
			}
			out, err := n.agent(t, "restore", "status")
			if err != nil {
				t.Fatal(err)
			}
			var st []agentapi.JournalStatus
			if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 || st[0].Rollback == nil || !strings.Contains(st[0].Rollback.Refused, tt.refuse) {
				t.Errorf("status does not report the refusal (%v):\n%s", err, out)
			}
		})
	}
}

// An interrupted rollback is finished by the next `restore run`, which
// the kubelet starts when it restarts the agent's static pod (S4), rather
// than refused with the node half stopped.
func TestInterruptedRollbackResumes(t *testing.T) {
	n := newFakeNode(t)
	orig := n.tree(t)
	if _, err := n.agent(t, "restore", "start", "--spec", n.spec(t, func(s *agentapi.RestoreSpec) { s.StopTimeout = agentapi.Duration(stuckStopTimeout) })); err != nil {
		t.Fatal(err)
	}
	n.waitPhase(t, agentapi.PhaseDone)
	// The rollback stops the API server first; one that never goes cuts
	// the rollback off there.
	n.apiStuck.Store(true)
	if _, err := n.agent(t, "restore", "rollback", "--id", restoreID); err == nil {
		t.Fatal("the rollback went through with the API server stuck")
	}
	if j := n.journal(t); j.Phase != agentapi.PhaseRollingBack {
		t.Fatalf("phase %s after the cut-off rollback, want %s", j.Phase, agentapi.PhaseRollingBack)
	}
	n.apiStuck.Store(false)
	if _, err := n.agent(t, "restore", "run", "--id", restoreID); err != nil {
		t.Fatal(err)
	}
	n.waitPhase(t, agentapi.PhaseRolledBack)
	if d := cmp.Diff(orig, n.tree(t)); d != "" {
		t.Errorf("tree after the resumed rollback (-before the restore +after):\n%s", d)
	}
}

// A journal edited on the node is checked again on resume: it cannot
// point the steps anywhere a fresh spec could not (X5).
func TestResumeValidatesTheJournalSpec(t *testing.T) {
	n := newFakeNode(t)
	n.startThenKill(t)
	n.apiStuck.Store(false)
	j := n.journal(t)
	var spec map[string]any
	if err := json.Unmarshal(j.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	spec["staticPodDir"] = "etc/../../tmp"
	j.Spec, _ = json.Marshal(spec)
	if err := agent.SaveJournal(j, filepath.Join(n.root, journalDir, agentapi.JournalFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.agent(t, "restore", "run", "--id", restoreID); err == nil || !strings.Contains(err.Error(), "clean absolute node path") {
		t.Fatalf("resume of an edited journal: %v", err)
	}
}

// `restore start --prepare` checks the node and writes the journal with
// nothing moved; `restore run --detach` then starts it. A barrier port that
// is taken is refused at the prepare, with nothing written (S1).
func TestPrepareThenStart(t *testing.T) {
	n := newFakeNode(t)
	orig := n.tree(t)
	out, err := n.agent(t, "restore", "start", "--prepare", "--spec", n.spec(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	var st agentapi.Started
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Journal != journalDir+"/journal.json" || st.PID != 0 {
		t.Fatalf("prepare printed %q (%v)", out, err)
	}
	j := n.journal(t)
	for _, s := range j.Steps {
		if s.State != agentapi.Pending {
			t.Errorf("step %q %s after a prepare, want pending", s.Name, s.State)
		}
	}
	after := n.tree(t)
	for p := range after {
		if !strings.HasPrefix(p, strings.TrimPrefix(journalDir, "/")) {
			if after[p] != orig[p] {
				t.Errorf("the prepare changed %s", p)
			}
		}
	}
	if _, err := n.agent(t, "restore", "run", "--id", restoreID, "--detach"); err != nil {
		t.Fatal(err)
	}
	n.waitPhase(t, agentapi.PhaseDone)

	m := newFakeNode(t)
	m.issuePeerCert(t, newPKI(t))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	spec := m.spec(t, func(s *agentapi.RestoreSpec) {
		s.Barrier = &agentapi.BarrierSpec{Addr: l.Addr().String(), Peers: []agentapi.Peer{{Member: "hc-cp2", Addr: "127.0.0.1:1"}}}
	})
	if _, err := m.agent(t, "restore", "start", "--prepare", "--spec", spec); err == nil || !strings.Contains(err.Error(), "the barrier cannot listen") {
		t.Fatalf("prepare with the barrier port taken: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.root, journalDir, agentapi.JournalFile)); err == nil {
		t.Error("a refused prepare wrote a journal")
	}
}

// What would make the restored member fail on every node after the point
// of no return is refused at the start, with nothing changed (S3).
func TestRestoreStartRefusesWhatCannotStart(t *testing.T) {
	for _, tt := range []struct{ name, edit, want string }{
		{"a separate WAL dir", "    - --wal-dir=/var/lib/etcd-wal\n", "a WAL dir of its own (/var/lib/etcd-wal, by --wal-dir or ETCD_WAL_DIR)"},
		{"etcd not root", "", "etcd runs as uid 2000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNode(t)
			p := filepath.Join(n.root, "etc/kubernetes/manifests/etcd.yaml")
			src := n.read(t, "etc/kubernetes/manifests/etcd.yaml")
			if tt.edit != "" {
				src = strings.Replace(src, "    - --data-dir=", tt.edit+"    - --data-dir=", 1)
			} else {
				src = strings.Replace(src, "spec:\n", "spec:\n  securityContext:\n    runAsUser: 2000\n", 1)
			}
			mustWrite(t, p, src)
			orig := n.tree(t)
			if _, err := n.agent(t, "restore", "start", "--prepare", "--spec", n.spec(t, nil)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start: %v, want %q", err, tt.want)
			}
			if d := cmp.Diff(orig, n.tree(t)); d != "" {
				t.Errorf("a refused start changed the node:\n%s", d)
			}
		})
	}
}

// An agent that begins after its deadline (StartWithin from its start)
// changes nothing and closes the restore as rolled back (S7).
func TestLateAgentClosesTheRestore(t *testing.T) {
	n := newFakeNode(t)
	orig := n.tree(t)
	if _, err := n.agent(t, "restore", "start", "--prepare", "--spec", n.spec(t, func(s *agentapi.RestoreSpec) { s.StartWithin = agentapi.Duration(time.Millisecond) })); err != nil {
		t.Fatal(err)
	}
	if j := n.journal(t); j.Phase != agentapi.PhaseRunning {
		t.Fatalf("phase %s after the prepare", j.Phase)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := n.agent(t, "restore", "run", "--id", restoreID); err != nil {
		t.Fatal(err)
	}
	j := n.journal(t)
	if j.Phase != agentapi.PhaseRolledBack || !strings.Contains(j.Error, "did not begin by") {
		t.Errorf("phase %s, error %q; want rolled back for the deadline", j.Phase, j.Error)
	}
	after := n.tree(t)
	for p := range orig {
		if after[p] != orig[p] {
			t.Errorf("the late agent changed %s", p)
		}
	}
}
