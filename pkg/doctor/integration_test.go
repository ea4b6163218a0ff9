package doctor_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodefacts"
)

// allOK wants every result of each check id, and at least one, ok.
func allOK(t *testing.T, rep *doctor.Report, ids ...string) {
	t.Helper()
	for _, id := range ids {
		rs := find(rep, id, "")
		if len(rs) == 0 {
			t.Errorf("%s: no result", id)
		}
		for _, r := range rs {
			if r.Severity != doctor.OK {
				t.Errorf("%s %s: %s %s", id, r.Member, r.Severity, r.Found)
			}
		}
	}
}

func find(rep *doctor.Report, id, member string) []doctor.Result {
	var out []doctor.Result
	for _, r := range rep.Results {
		if r.ID() == id && (member == "" || r.Member == member) {
			out = append(out, r)
		}
	}
	return out
}

// TestIntegrationCheck runs every check against a real three-member TLS
// cluster through the port-forward transport (minus the API server),
// with its metrics endpoints and its files on the local disk. The three
// members share this process's Prometheus registry, so their metrics
// endpoints serve the same numbers: per-member metrics are the e2e
// test's to prove.
func TestIntegrationCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real 3-member etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	for i := range 200 {
		if _, err := cli.Put(context.Background(), "/registry/k", strings.Repeat("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	fwd := c.ForwardTransport(5 * time.Second)
	src := doctor.Sources{Clients: fwd, HTTP: fwd, Nodes: etcdtest.NodeFiles{}}
	check := func(t *testing.T, cfg doctor.Config) *doctor.Report {
		t.Helper()
		rep, err := doctor.Check(context.Background(), src, c.Pods(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	t.Run("a healthy cluster has no fail", func(t *testing.T) {
		// The test PKI lives a day, which cert-expiry rightly fails; it
		// has its own test below.
		// Writes during the window, for the latencies to come from it.
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				_, _ = cli.Put(ctx, "/registry/w", "x")
				time.Sleep(10 * time.Millisecond)
			}
		}()
		rep := check(t, doctor.Config{Window: 2 * time.Second, Selection: doctor.Selection{Skip: []string{"security.cert-expiry"}}})
		stop()
		<-done
		for _, r := range rep.Results {
			// How fast this machine's disk is is not the test's business.
			if r.Area == doctor.AreaPerformance && r.Check != "has-leader" {
				continue
			}
			if r.Severity == doctor.Fail {
				t.Errorf("%s %s: %s", r.ID(), r.Member, r.Found)
			}
		}
		allOK(t, rep, "consistency.hashkv", "consistency.readyz", "performance.has-leader", "security.data-dir", "topology.member-count")
		if rep.ClusterID == "" {
			t.Errorf("no cluster ID: %+v", rep.Summary)
		}
		if rs := find(rep, "performance.wal-fsync", c.Members[0].Name); len(rs) != 1 || !strings.Contains(rs[0].Found, "in the window") {
			t.Errorf("wal-fsync should come from the window: %+v", rs)
		}
	})

	t.Run("one read per node: certificates and the encryption config", func(t *testing.T) {
		// encryptionconfig's fixture: key2 and key1 for secrets, kms for the rest.
		cfgFile, err := filepath.Abs("../encryptionconfig/testdata/config.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(context.Background(), "/registry/secrets/default/s1", "k8s:enc:aescbc:v1:key1:\x00ciphertext"); err != nil {
			t.Fatal(err)
		}
		defer cli.Delete(context.Background(), "/registry/secrets/default/s1")
		var servers []discovery.APIServer
		for _, p := range c.Pods() {
			servers = append(servers, discovery.APIServer{Node: p.Node, Pod: "kube-apiserver-" + p.Node, EncryptionConfig: cfgFile})
		}
		nodes := &countingNodes{reads: map[string]int{}}
		src := src
		src.Nodes = nodes
		src.APIServers = func(context.Context) ([]discovery.APIServer, error) { return servers, nil }
		rep, err := doctor.Check(context.Background(), src, c.Pods(), doctor.Config{Selection: doctor.Selection{Only: []string{"security.cert-expiry", "security.encryption"}}})
		if err != nil {
			t.Fatal(err)
		}
		if rs := find(rep, "security.encryption", ""); len(rs) != 1 || rs[0].Severity != doctor.OK || !strings.Contains(rs[0].Found, "1 aescbc:key1") {
			t.Errorf("security.encryption: %+v", rs)
		}
		if len(nodes.reads) != len(c.Pods()) {
			t.Errorf("nodes read: %v", nodes.reads)
		}
		for n, k := range nodes.reads {
			if k != 1 {
				t.Errorf("node %s read %d times, not once", n, k)
			}
		}
		for _, r := range nodes.reports {
			if b, ok := r.Files[cfgFile]; ok {
				t.Errorf("the report keeps the encryption config's bytes: %q", b)
			}
		}
	})

	t.Run("a certificate that expires tomorrow fails", func(t *testing.T) {
		rep := check(t, doctor.Config{Selection: doctor.Selection{Only: []string{"security.cert-expiry"}}})
		rs := find(rep, "security.cert-expiry", "")
		if len(rs) != 3 {
			t.Fatalf("results %+v", rs)
		}
		for _, r := range rs {
			if r.Severity != doctor.Fail || !strings.Contains(r.Found, "expires in 2") || r.Fix == "" {
				t.Errorf("%s: %s %s (fix %q)", r.Member, r.Severity, r.Found, r.Fix)
			}
		}
	})

	t.Run("an open data dir fails", func(t *testing.T) {
		dir := c.Members[1].DataDir
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o700)
		rep := check(t, doctor.Config{Selection: doctor.Selection{Only: []string{"security.data-dir"}}})
		if rs := find(rep, "security.data-dir", c.Members[1].Name); len(rs) != 1 || rs[0].Severity != doctor.Fail || !strings.Contains(rs[0].Fix, "chmod 700") {
			t.Errorf("%+v", rs)
		}
		if rs := find(rep, "security.data-dir", c.Members[0].Name); len(rs) != 1 || rs[0].Severity != doctor.OK {
			t.Errorf("%+v", rs)
		}
	})

	t.Run("under NOSPACE, over etcdctl in the containers: the alarm fails, the rest is read", func(t *testing.T) {
		const quota = 2 << 20
		if err := c.RestartMember(0, func(cfg *embed.Config) { cfg.QuotaBackendBytes = quota }); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		big := strings.Repeat("x", 64<<10)
		for i := 0; ; i++ {
			if _, err := cli.Put(ctx, "/fill", big); errors.Is(err, rpctypes.ErrNoSpace) {
				break
			} else if err != nil || i > 200 {
				t.Fatalf("filling a %d-byte quota: put %d: %v", quota, i, err)
			}
		}
		t.Cleanup(func() {
			if resp, err := cli.Get(ctx, "/fill"); err == nil {
				_, _ = cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
			}
			for _, ep := range c.Endpoints() {
				_, _ = cli.Defragment(ctx, ep)
			}
			_, _ = cli.AlarmDisarm(ctx, &clientv3.AlarmMember{})
		})
		bins, err := etcdtest.Etcdctls(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		exec := &etcd.ExecTransport{Exec: &etcdtest.LocalExecutor{Binaries: map[string]string{"etcdctl": bins["pinned"]}}, Timeout: 5 * time.Second}
		var log bytes.Buffer
		clients := &etcd.Auto{First: noHelperPod{}, Then: exec, Log: &log}
		rep, err := doctor.Check(ctx, doctor.Sources{Clients: clients, HTTP: fwd}, c.Pods(), doctor.Config{Selection: doctor.Selection{Only: []string{"topology", "consistency.hashkv", "capacity"}}})
		if err != nil {
			t.Fatalf("check under NOSPACE: %v\n%s", err, log.String())
		}
		if !strings.Contains(log.String(), "using etcdctl in the etcd containers") {
			t.Errorf("no word of the fallback: %q", log.String())
		}
		if rs := find(rep, "capacity.alarms", c.Members[0].Name); len(rs) != 1 || rs[0].Severity != doctor.Fail || rs[0].Found != "alarm NOSPACE raised" || !strings.Contains(rs[0].Fix, "defrag --compact --disarm") {
			t.Errorf("alarms: %+v", rs)
		}
		if rs := find(rep, "capacity.quota", c.Members[0].Name); len(rs) != 1 || rs[0].Severity != doctor.Fail {
			t.Errorf("quota of the full member: %+v", rs)
		}
		allOK(t, rep, "consistency.hashkv", "topology.reachable", "topology.member-count")
		if rep.Summary.Fail < 2 {
			t.Errorf("summary %+v", rep.Summary)
		}
	})

	t.Run("a stopped member fails reachability and is not checked elsewhere", func(t *testing.T) {
		c.StopMember(2)
		rep := check(t, doctor.Config{Selection: doctor.Selection{Only: []string{"topology", "consistency.hashkv", "capacity.quota"}}})
		if rs := find(rep, "topology.reachable", c.Members[2].Name); len(rs) != 1 || rs[0].Severity != doctor.Fail {
			t.Errorf("%+v", rs)
		}
		if rs := find(rep, "capacity.quota", c.Members[2].Name); len(rs) != 1 || rs[0].Severity != doctor.NotChecked {
			t.Errorf("%+v", rs)
		}
		if rs := find(rep, "consistency.hashkv", ""); len(rs) == 0 || rs[len(rs)-1].Severity != doctor.OK {
			t.Errorf("the two members left agree: %+v", rs)
		}
	})
}

// noHelperPod is the port-forward transport under NOSPACE: its helper
// pod, which would read the TLS material, cannot be created.
type noHelperPod struct{}

var errNoHelperPod = errors.New("creating helper pod on node cp1: etcdserver: mvcc: database space exceeded")

func (noHelperPod) Name() string                                      { return "port-forward" }
func (noHelperPod) Prepare(context.Context, []discovery.Member) error { return errNoHelperPod }
func (noHelperPod) Client(context.Context, discovery.Member) (etcd.Client, error) {
	return nil, errNoHelperPod
}

// countingNodes is etcdtest.NodeFiles, counting the reads of each node and
// keeping the reports.
type countingNodes struct {
	mu      sync.Mutex
	reads   map[string]int
	reports []*nodefacts.NodeReport
}

func (c *countingNodes) Read(ctx context.Context, node string, files, dirs []string) (*nodefacts.NodeReport, error) {
	rep, err := etcdtest.NodeFiles{}.Read(ctx, node, files, dirs)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads[node]++
	c.reports = append(c.reports, rep)
	return rep, err
}
