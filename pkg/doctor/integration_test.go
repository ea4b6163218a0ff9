package doctor_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
)

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
	fwd := c.ForwardDialer(5 * time.Second)
	src := doctor.Sources{Clients: doctor.Clients(fwd), HTTP: fwd, Nodes: etcdtest.NodeFiles{}}
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
		for _, id := range []string{"consistency.hashkv", "consistency.readyz", "performance.has-leader", "security.data-dir", "topology.member-count"} {
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
		if rep.ClusterID == "" {
			t.Errorf("no cluster ID: %+v", rep.Summary)
		}
		if rs := find(rep, "performance.wal-fsync", c.Members[0].Name); len(rs) != 1 || !strings.Contains(rs[0].Found, "in the window") {
			t.Errorf("wal-fsync should come from the window: %+v", rs)
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
