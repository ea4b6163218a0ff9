package agent

import (
	"context"
	"errors"
	"fmt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/manifest"
)

// fakeKubelet runs member m of c from the etcd manifest in dir, as the
// kubelet runs a static pod: it stops the member when the file goes and
// starts it from the file's flags (a new member joining) when it comes.
type fakeKubelet struct {
	t    *testing.T
	c    *etcdtest.Cluster
	m    *etcdtest.Member
	file string
	mu   sync.Mutex
	runs *etcdtest.Member
	errs []error
}

func (k *fakeKubelet) loop(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for ctx.Err() == nil {
		src, err := os.ReadFile(k.file)
		k.mu.Lock()
		switch {
		case err != nil && k.runs == nil && k.m.Running():
			// The original member, from etcdtest.Start.
			for i, cm := range k.c.Members {
				if cm == k.m {
					k.c.StopMember(i)
				}
			}
		case err != nil && k.runs != nil:
			k.runs.Stop()
			k.runs = nil
		case err == nil && k.runs == nil && !k.m.Running():
			state, _, _ := manifest.Flag(src, "initial-cluster-state")
			ic, _, _ := manifest.Flag(src, "initial-cluster")
			if state == "existing" {
				n := &etcdtest.Member{Name: k.m.Name, ClientURL: k.m.ClientURL, PeerURL: k.m.PeerURL, MetricsURL: k.m.MetricsURL, DataDir: k.m.DataDir}
				if err := k.c.Join(n, ic); err != nil {
					k.errs = append(k.errs, err)
				} else {
					k.runs = n
				}
			}
		}
		k.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

// memberManifest is a kubeadm-like etcd manifest of m, with itself alone
// in --initial-cluster, as kubeadm writes it for the first node.
func memberManifest(c *etcdtest.Cluster, m *etcdtest.Member) string {
	ic := fmt.Sprintf("%s=%s", m.Name, m.PeerURL)
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: x
  name: etcd
spec:
  containers:
  - command:
    - etcd
    - --name=%s
    - --data-dir=%s
    - --advertise-client-urls=%s
    - --initial-advertise-peer-urls=%s
    - --initial-cluster=%s
    - --listen-client-urls=%s
    - --listen-peer-urls=%s
    - --listen-metrics-urls=%s
    - --cert-file=%s
    - --key-file=%s
    - --trusted-ca-file=%s
    image: etcd
    name: etcd
`, m.Name, m.DataDir, m.ClientURL, m.PeerURL, ic, m.ClientURL, m.PeerURL, m.MetricsURL, c.PKI.CertFile, c.PKI.KeyFile, c.PKI.CAFile)
}

// TestIntegrationReplaceSteps replaces a member of a real TLS cluster
// whose data was lost, through the agent's steps, a fake kubelet running
// the member from its manifest: its old data moved aside, a new ID, a
// learner promoted, the cluster's data on it.
func TestIntegrationReplaceSteps(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	put, err := cli.Put(ctx, "/registry/configmaps/default/before", "kept")
	if err != nil {
		t.Fatal(err)
	}
	c.WaitApplied(t, cli, put.Header.Revision)

	m := c.Members[2]
	oldID := m.ID()
	node := t.TempDir()
	static, journal := filepath.Join(node, "manifests"), filepath.Join(node, "journal", "20260102T030405Z")
	os.MkdirAll(static, 0o700)
	src := memberManifest(c, m)
	etcdYAML := filepath.Join(static, agentapi.EtcdManifest)
	if err := os.WriteFile(etcdYAML, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	k := &fakeKubelet{t: t, c: c, m: m, file: etcdYAML}
	kctx, kstop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go k.loop(kctx, &wg)
	defer func() { kstop(); wg.Wait() }()

	spec := &agentapi.ReplaceSpec{ID: "20260102T030405Z", Node: "n3", Member: m.Name, StaticPodDir: static, JournalDir: journal,
		OldID: hexID(oldID), Endpoints: []string{c.Members[0].ClientURL, c.Members[1].ClientURL},
		StopTimeout: agentapi.Duration(time.Minute), HealthyTimeout: agentapi.Duration(2 * time.Minute), PollInterval: agentapi.Duration(200 * time.Millisecond)}
	if err := PrepareReplace("/", spec); err != nil {
		t.Fatal(err)
	}
	gw, err := NewGRPC("/", spec.Endpoints, spec.CertFile, spec.KeyFile, spec.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	env := ReplaceEnv{Root: "/", Dialer: &net.Dialer{Timeout: time.Second}, HTTP: ProbeHTTP(), Members: gw}
	steps := ReplaceSteps(spec, env)
	j, err := NewJournal(spec.ID, agentapi.ReplaceOperation, spec.Node, time.Now(), spec, steps)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(journal, 0o700)
	e, err := NewEngine(filepath.Join(journal, agentapi.JournalFile), j, steps)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx); err != nil {
		k.mu.Lock()
		t.Fatalf("replace: %v (kubelet: %v)", err, k.errs)
	}

	// The old data is kept aside; the new member has a new ID, votes, and
	// holds the cluster's data.
	if _, err := os.Stat(filepath.Join(agentapi.AsideDataDir(m.DataDir, spec.ID), "snap", "db")); err != nil {
		t.Errorf("old data not kept aside: %v", err)
	}
	ms, err := gw.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, x := range ms {
		if x.PeerURLs[0] == m.PeerURL {
			found = true
			if x.ID == oldID || x.IsLearner || x.Name != m.Name {
				t.Errorf("the replaced member is %+v, want a new ID (old %x), voting, named %s", x, oldID, m.Name)
			}
		}
	}
	if !found || len(ms) != 3 {
		t.Fatalf("members after the replace: %+v", ms)
	}
	got, _ := os.ReadFile(etcdYAML)
	if !strings.Contains(string(got), "--initial-cluster-state=existing") || strings.Count(string(got), "https://127.0.0.1") < 3 {
		t.Errorf("the new manifest:\n%s", got)
	}
	gw3 := &GRPC{Endpoints: []string{m.ClientURL}, Client: gw.Client}
	st, err := gw3.Status(ctx, m.ClientURL)
	if err != nil || st.RaftIndex == 0 {
		t.Fatalf("status of the new member: %+v %v", st, err)
	}
	resp, err := c.EndpointClient(t, m.ClientURL).Get(ctx, "/registry/configmaps/default/before", clientv3.WithSerializable())
	if err != nil || resp.Count != 1 {
		t.Errorf("the key written before, read from the new member: count %v, %v", resp, err)
	}
}

// fakeMembers is a member list that fails where told.
type fakeMembers struct {
	list              []GWMember
	listErr, addErr   error
	removed, promoted []uint64
	added             [][]string
}

func (f *fakeMembers) List(context.Context) ([]GWMember, error) { return f.list, f.listErr }
func (f *fakeMembers) Remove(_ context.Context, id uint64) error {
	f.removed = append(f.removed, id)
	var keep []GWMember
	for _, m := range f.list {
		if m.ID != id {
			keep = append(keep, m)
		}
	}
	f.list = keep
	return nil
}
func (f *fakeMembers) AddLearner(_ context.Context, urls []string) (uint64, error) {
	if f.addErr != nil {
		return 0, f.addErr
	}
	f.added = append(f.added, urls)
	f.list = append(f.list, GWMember{ID: 0x99, PeerURLs: urls, IsLearner: true})
	return 0x99, nil
}
func (f *fakeMembers) Promote(_ context.Context, id uint64) error {
	f.promoted = append(f.promoted, id)
	for i := range f.list {
		if f.list[i].ID == id {
			f.list[i].IsLearner = false
		}
	}
	return nil
}
func (f *fakeMembers) Status(context.Context, string) (*GWStatus, error) {
	return &GWStatus{RaftIndex: 7}, nil
}

// fakeReplaceNode is a node's root with etcd's manifest and data.
func fakeReplaceNode(t *testing.T) (root string, spec *agentapi.ReplaceSpec) {
	root = t.TempDir()
	for _, d := range []string{"etc/kubernetes/manifests", "var/lib/etcd/member/snap", "pki"} {
		os.MkdirAll(filepath.Join(root, d), 0o700)
	}
	src := `apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://10.0.0.3:2379
spec:
  containers:
  - command:
    - etcd
    - --name=cp3
    - --data-dir=/var/lib/etcd
    - --initial-advertise-peer-urls=https://10.0.0.3:2380
    - --initial-cluster=cp1=https://10.0.0.1:2380,cp2=https://10.0.0.2:2380,cp3=https://10.0.0.3:2380
    - --initial-cluster-state=existing
    - --listen-client-urls=https://127.0.0.1:2379,https://10.0.0.3:2379
    - --listen-peer-urls=https://10.0.0.3:2380
    - --listen-metrics-urls=http://127.0.0.1:2381
    - --cert-file=/pki/server.crt
    - --key-file=/pki/server.key
    - --trusted-ca-file=/pki/ca.crt
    image: etcd
    name: etcd
`
	os.WriteFile(filepath.Join(root, "etc/kubernetes/manifests/etcd.yaml"), []byte(src), 0o600)
	os.WriteFile(filepath.Join(root, "var/lib/etcd/member/snap/db"), []byte("old data"), 0o600)
	spec = &agentapi.ReplaceSpec{ID: "20260102T030405Z", Node: "n3", Member: "cp3", StaticPodDir: "/etc/kubernetes/manifests",
		JournalDir: "/var/lib/kubectl-etcd/replace/20260102T030405Z", OldID: "3", Endpoints: []string{"https://10.0.0.1:2379"},
		StopTimeout: agentapi.Duration(time.Second), HealthyTimeout: agentapi.Duration(time.Second), PollInterval: agentapi.Duration(10 * time.Millisecond)}
	if err := PrepareReplace(root, spec); err != nil {
		t.Fatal(err)
	}
	return root, spec
}

func runReplace(t *testing.T, root string, spec *agentapi.ReplaceSpec, ms Members) (*Engine, error) {
	env := ReplaceEnv{Root: root, Dialer: &switchDialer{}, HTTP: healthy{}, Members: ms}
	steps := ReplaceSteps(spec, env)
	j, err := NewJournal(spec.ID, agentapi.ReplaceOperation, spec.Node, time.Now(), spec, steps)
	if err != nil {
		t.Fatal(err)
	}
	dir := under(root, spec.JournalDir)
	os.MkdirAll(dir, 0o700)
	e, err := NewEngine(filepath.Join(dir, agentapi.JournalFile), j, steps)
	if err != nil {
		t.Fatal(err)
	}
	return e, e.Run(context.Background())
}

func threeMembers() []GWMember {
	return []GWMember{
		{ID: 1, Name: "cp1", PeerURLs: []string{"https://10.0.0.1:2380"}},
		{ID: 2, Name: "cp2", PeerURLs: []string{"https://10.0.0.2:2380"}},
		{ID: 3, Name: "cp3", PeerURLs: []string{"https://10.0.0.3:2380"}},
	}
}

// TestReplaceStepsFailures: a failure before the member swap puts the
// manifest and the data back; one after the old ID was removed holds,
// and a resume finishes.
func TestReplaceStepsFailures(t *testing.T) {
	t.Run("before the point of no return", func(t *testing.T) {
		root, spec := fakeReplaceNode(t)
		_, err := runReplace(t, root, spec, &fakeMembers{listErr: errors.New("no route to host")})
		if !errors.Is(err, ErrRolledBack) {
			t.Fatalf("err = %v, want a rollback", err)
		}
		for _, p := range []string{"etc/kubernetes/manifests/etcd.yaml", "var/lib/etcd/member/snap/db"} {
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s is not back: %v", p, err)
			}
		}
	})
	t.Run("after the old ID was removed", func(t *testing.T) {
		root, spec := fakeReplaceNode(t)
		fm := &fakeMembers{list: threeMembers(), addErr: errors.New("etcdserver: too many requests")}
		e, err := runReplace(t, root, spec, fm)
		if !errors.Is(err, ErrPastPointOfNoReturn) || len(fm.removed) != 1 || fm.removed[0] != 3 {
			t.Fatalf("err = %v, removed %v; want a hold after removing 3", err, fm.removed)
		}
		if e.Journal().Phase != agentapi.PhaseFailed {
			t.Errorf("phase %s, want failed", e.Journal().Phase)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/kubernetes/manifests/etcd.yaml")); err == nil {
			t.Errorf("the old manifest is back, to start etcd on a removed member's data")
		}
		// A resume: the add succeeds now, without a second remove.
		fm.addErr = nil
		if err := e.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(fm.removed) != 1 || len(fm.added) != 1 || len(fm.promoted) != 1 || fm.promoted[0] != 0x99 {
			t.Errorf("removed %v, added %v, promoted %v", fm.removed, fm.added, fm.promoted)
		}
		got, err := os.ReadFile(filepath.Join(root, "etc/kubernetes/manifests/etcd.yaml"))
		if err != nil || !strings.Contains(string(got), "--initial-cluster=cp1=https://10.0.0.1:2380,cp2=https://10.0.0.2:2380,cp3=https://10.0.0.3:2380\n") {
			t.Errorf("the new manifest (%v):\n%s", err, got)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "var/lib/etcd/member.replaced-20260102T030405Z/snap/db")); string(b) != "old data" {
			t.Errorf("the old data is not kept aside: %q", b)
		}
	})
}

// TestPlanReplace: the plan's steps, the point of no return named.
func TestPlanReplace(t *testing.T) {
	_, spec := fakeReplaceNode(t)
	var names []string
	for _, s := range PlanReplace(spec) {
		n := s.Name
		if s.PointOfNoReturn {
			n += " [point of no return]"
		}
		names = append(names, n)
	}
	want := []string{"stop etcd", "wait until etcd is gone", "move the old data aside", agentapi.StepReplaceMember + " [point of no return]",
		"start etcd as the new member", agentapi.StepPromote, "wait until the member is healthy"}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
}

// TestReplaceSwapHoldsOnceBegun: once the swap asked etcd to remove the
// old ID, a later failure (on a resume, the cluster unreachable) holds
// rather than roll back onto the removed member's data.
func TestReplaceSwapHoldsOnceBegun(t *testing.T) {
	root, spec := fakeReplaceNode(t)
	fm := &fakeMembers{list: threeMembers(), addErr: errors.New("etcdserver: too many requests")}
	e, err := runReplace(t, root, spec, fm)
	if !errors.Is(err, ErrPastPointOfNoReturn) {
		t.Fatal(err)
	}
	fm.listErr = errors.New("no route to host")
	if err := e.Run(context.Background()); !errors.Is(err, ErrPastPointOfNoReturn) {
		t.Fatalf("resume with the cluster unreachable: %v, want a hold", err)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/etcd/member")); err == nil {
		t.Errorf("the removed member's data is back in place")
	}
}

// TestPrepareReplaceRefusesBesideARestore: a restore not over on the node
// moves the same manifest, so no replace starts beside it.
func TestPrepareReplaceRefusesBesideARestore(t *testing.T) {
	root, spec := fakeReplaceNode(t)
	dir := under(root, "/var/lib/kubectl-etcd/restore/20260101T000000Z")
	os.MkdirAll(dir, 0o700)
	if err := SaveJournal(&agentapi.Journal{ID: "20260101T000000Z", Operation: agentapi.RestoreOperation, Phase: agentapi.PhaseFailed}, filepath.Join(dir, agentapi.JournalFile)); err != nil {
		t.Fatal(err)
	}
	spec.ID, spec.JournalDir = "20260102T000000Z", "/var/lib/kubectl-etcd/replace/20260102T000000Z"
	if err := PrepareReplace(root, spec); err == nil || !strings.Contains(err.Error(), "20260101T000000Z") {
		t.Fatalf("PrepareReplace beside an unfinished restore: %v", err)
	}
}

// TestMemberOpPrepareRefuses: what a replace and a recovery both check
// on the node before anything stops, each refusal in the op's words.
func TestMemberOpPrepareRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		edit       func(root string, p *memberOp)
	}{
		{"another member's manifest", `runs member "cp3", the plan expects "cp9": survey the nodes again`, func(_ string, p *memberOp) { p.member = "cp9" }},
		{"no manifest", "A recover needs etcd's manifest", func(root string, _ *memberOp) {
			os.Remove(filepath.Join(root, "etc/kubernetes/manifests/etcd.yaml"))
		}},
		{"a WAL dir of its own", "a recovery copies the data dir's member/ only; remove --wal-dir (kubeadm does not set it), or recover by hand", func(root string, _ *memberOp) {
			f := filepath.Join(root, "etc/kubernetes/manifests/etcd.yaml")
			b, _ := os.ReadFile(f)
			os.WriteFile(f, []byte(strings.Replace(string(b), "    - --data-dir=/var/lib/etcd\n", "    - --data-dir=/var/lib/etcd\n    - --wal-dir=/wal\n", 1)), 0o600)
		}},
		{"a journal of the same id", "recover R1 already has a journal", func(root string, p *memberOp) {
			os.MkdirAll(under(root, p.journalDir), 0o700)
			os.WriteFile(under(root, path.Join(p.journalDir, agentapi.JournalFile)), []byte("{}"), 0o600)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, _ := fakeReplaceNode(t)
			p := memberOp{op: "recover", id: "R1", journalDir: "/var/lib/kubectl-etcd/recover/R1", staticPodDir: "/etc/kubernetes/manifests", member: "cp3",
				again: "survey the nodes again", walDir: "a recovery copies the data dir's member/ only"}
			tt.edit(root, &p)
			if _, _, err := p.prepare(root); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
