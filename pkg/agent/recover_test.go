package agent

import (
	"context"
	clientv3 "go.etcd.io/etcd/client/v3"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
)

// forceKubelet runs member i of c from its manifest file as the kubelet
// would: stopped while the file is gone, started on its data, with
// --force-new-cluster when the file says so, when it comes back.
type forceKubelet struct {
	c      *etcdtest.Cluster
	i      int
	file   string
	mu     sync.Mutex
	forced []bool
	errs   []error
}

func (k *forceKubelet) loop(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	m := k.c.Members[k.i]
	for ctx.Err() == nil {
		src, err := os.ReadFile(k.file)
		k.mu.Lock()
		switch {
		case err != nil && m.Running():
			k.c.StopMember(k.i)
		case err == nil && !m.Running():
			force := strings.Contains(string(src), "--force-new-cluster=true")
			if err := k.c.RestartMember(k.i, func(cfg *embed.Config) { cfg.ForceNewCluster = force }); err != nil {
				k.errs = append(k.errs, err)
			} else {
				k.forced = append(k.forced, force)
			}
		}
		k.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

func runSteps(t *testing.T, ctx context.Context, journal, op string, spec any, steps []Step) error {
	t.Helper()
	j, err := NewJournal(filepath.Base(journal), op, "n", time.Now(), spec, steps)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(journal, 0o700)
	e, err := NewEngine(filepath.Join(journal, agentapi.JournalFile), j, steps)
	if err != nil {
		t.Fatal(err)
	}
	return e.Run(ctx)
}

// TestIntegrationRecover loses the quorum of a real 3-member TLS cluster
// (two members stopped), surveys every member offline, recovers the
// running one with --force-new-cluster through the agent's steps, and
// rejoins a second by the replace steps: the data written before is
// there, the survivor's old data kept as a copy.
func TestIntegrationRecover(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	put, err := cli.Put(ctx, "/registry/configmaps/default/last", "kept")
	if err != nil {
		t.Fatal(err)
	}
	c.WaitApplied(t, cli, put.Header.Revision)
	ids := []uint64{c.Members[0].ID(), c.Members[1].ID(), c.Members[2].ID()}
	c.StopMember(1)
	c.StopMember(2)

	statics := make([]string, 3)
	for i, m := range c.Members {
		statics[i] = filepath.Join(t.TempDir(), "manifests")
		os.MkdirAll(statics[i], 0o700)
		if err := os.WriteFile(filepath.Join(statics[i], agentapi.EtcdManifest), []byte(memberManifest(c, m)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hc := ProbeHTTP()
	env := SurveyEnv{Root: "/", Dialer: &net.Dialer{Timeout: time.Second}, HTTP: hc, Node: "n", Now: time.Now}
	surveys := make([]*agentapi.Survey, 3)
	for i := range c.Members {
		if surveys[i], err = TakeSurvey(ctx, env, statics[i]); err != nil {
			t.Fatalf("survey %d: %v", i, err)
		}
		s := surveys[i]
		if s.NoData != "" || s.WAL == nil || s.Backend == nil {
			t.Fatalf("survey %d has no data: %+v", i, s)
		}
		if s.MemberID != hexID(ids[i]) || s.ClusterID != surveys[0].ClusterID || s.WAL.Commit == 0 || s.WAL.LastIndex < s.WAL.Commit {
			t.Errorf("survey %d: member %s cluster %s WAL %+v, want member %x", i, s.MemberID, s.ClusterID, s.WAL, ids[i])
		}
		if s.Healthy {
			t.Errorf("survey %d: healthy without a quorum", i)
		}
	}
	if s := surveys[0]; !s.EtcdRunning || s.Backend.From != "metrics" || s.Backend.Revision < put.Header.Revision {
		t.Errorf("the running member's survey: running %v, backend %+v; want its metrics, revision >= %d", s.EtcdRunning, s.Backend, put.Header.Revision)
	}
	for _, s := range surveys[1:] {
		if s.EtcdRunning || s.Backend.From != "db" || s.Backend.Revision < put.Header.Revision || s.Backend.ConsistentIndex == 0 || len(s.Members) != 3 {
			t.Errorf("a stopped member's survey: running %v, backend %+v, members %+v", s.EtcdRunning, s.Backend, s.Members)
		}
	}

	// The survivor: member 0, as a cluster of one.
	m0 := c.Members[0]
	file := filepath.Join(statics[0], agentapi.EtcdManifest)
	k := &forceKubelet{c: c, i: 0, file: file}
	kctx, kstop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go k.loop(kctx, &wg)
	defer func() { kstop(); wg.Wait() }()
	journal := filepath.Join(t.TempDir(), "recover", "20260102T030405Z")
	spec := &agentapi.RecoverSpec{ID: "20260102T030405Z", Node: "n1", Member: m0.Name, StaticPodDir: statics[0], JournalDir: journal, Expect: *surveys[0],
		StopTimeout: agentapi.Duration(time.Minute), HealthyTimeout: agentapi.Duration(2 * time.Minute), PollInterval: agentapi.Duration(200 * time.Millisecond)}
	if err := PrepareRecover("/", spec); err != nil {
		t.Fatal(err)
	}
	renv := RecoverEnv{Root: "/", Dialer: &net.Dialer{Timeout: time.Second}, HTTP: hc}
	if err := runSteps(t, ctx, journal, agentapi.RecoverOperation, spec, RecoverSteps(spec, renv)); err != nil {
		k.mu.Lock()
		t.Fatalf("recover: %v (kubelet: %v)", err, k.errs)
	}
	k.mu.Lock()
	if len(k.forced) != 2 || !k.forced[0] || k.forced[1] {
		t.Errorf("etcd's starts (with --force-new-cluster?): %v, want [true false]", k.forced)
	}
	k.mu.Unlock()
	if _, err := os.Stat(filepath.Join(agentapi.BeforeRecoverDataDir(m0.DataDir, spec.ID), "snap", "db")); err != nil {
		t.Errorf("the survivor's data was not copied aside: %v", err)
	}
	if got, _ := os.ReadFile(file); strings.Contains(string(got), "force-new-cluster") || !strings.Contains(string(got), agentapi.RecoveredAnnotation+": "+spec.ID) {
		t.Errorf("etcd's manifest after the recovery:\n%s", got)
	}
	gw, err := NewGRPC("/", []string{m0.ClientURL}, c.PKI.CertFile, c.PKI.KeyFile, c.PKI.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := gw.List(ctx); err != nil || len(ms) != 1 || ms[0].ID != ids[0] {
		t.Fatalf("members after the recovery: %+v %v, want %x alone", ms, err, ids[0])
	}

	// Member 1 rejoins by the replace steps: no old ID to remove.
	m1 := c.Members[1]
	file1 := filepath.Join(statics[1], agentapi.EtcdManifest)
	k1 := &fakeKubelet{t: t, c: c, m: m1, file: file1}
	wg.Add(1)
	go k1.loop(kctx, &wg)
	rjournal := filepath.Join(t.TempDir(), "replace", "20260102T030406Z")
	rspec := &agentapi.ReplaceSpec{ID: "20260102T030406Z", Node: "n2", Member: m1.Name, StaticPodDir: statics[1], JournalDir: rjournal,
		Endpoints: []string{m0.ClientURL}, StopTimeout: agentapi.Duration(time.Minute), HealthyTimeout: agentapi.Duration(2 * time.Minute), PollInterval: agentapi.Duration(200 * time.Millisecond)}
	if err := PrepareReplace("/", rspec); err != nil {
		t.Fatal(err)
	}
	if err := runSteps(t, ctx, rjournal, agentapi.ReplaceOperation, rspec, ReplaceSteps(rspec, ReplaceEnv{Root: "/", Dialer: &net.Dialer{Timeout: time.Second}, HTTP: hc, Members: gw})); err != nil {
		k1.mu.Lock()
		t.Fatalf("rejoin: %v (kubelet: %v)", err, k1.errs)
	}
	ms, err := gw.List(ctx)
	if err != nil || len(ms) != 2 {
		t.Fatalf("members after the rejoin: %+v %v", ms, err)
	}
	for _, m := range ms {
		if m.IsLearner {
			t.Errorf("member %s is still a learner", m.Name)
		}
	}
	resp, err := c.EndpointClient(t, m1.ClientURL).Get(ctx, "/registry/configmaps/default/last", clientv3.WithSerializable())
	if err != nil || resp.Count != 1 {
		t.Errorf("the key written last, read from the rejoined member: count %v, %v", resp, err)
	}
}
