package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
)

type transport = etcdtest.NamedTransport

func transports(t *testing.T, c *etcdtest.Cluster) []transport { return c.Transports(t, 3*time.Second) }

func pods(c *etcdtest.Cluster) []discovery.Member { return c.Pods() }

// truth asks etcd directly, without the plugin's code.
func truth(t *testing.T, c *etcdtest.Cluster) (*clientv3.MemberListResponse, map[string]*clientv3.StatusResponse) {
	t.Helper()
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]*clientv3.StatusResponse{}
	for _, m := range c.Members {
		if m.Running() {
			if st[m.Name], err = cli.Status(ctx, m.ClientURL); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ml, st
}

func TestIntegrationRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real 3-member etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	ctx := context.Background()
	ml, st := truth(t, c)
	trs := transports(t, c)

	for _, tr := range trs {
		t.Run("healthy/"+tr.Name, func(t *testing.T) {
			v, err := cluster.Members(ctx, tr.T, pods(c))
			if err != nil {
				t.Fatalf("ListMembers: %v", err)
			}
			if v.ClusterID != etcd.HexID(ml.Header.ClusterId) {
				t.Errorf("cluster ID %s, etcd says %x", v.ClusterID, ml.Header.ClusterId)
			}
			if len(v.Members) != len(ml.Members) {
				t.Fatalf("%d members, etcd says %d", len(v.Members), len(ml.Members))
			}
			want := map[string]string{}
			for _, m := range ml.Members {
				want[fmt.Sprintf("%x", m.ID)] = m.Name
			}
			for _, m := range v.Members {
				if want[m.ID] != m.Name || m.Status != "started" || m.Pod != "etcd-"+m.Name || m.Node != "node-"+m.Name {
					t.Errorf("member %+v does not match etcd's %v", m, want)
				}
			}

			h, err := cluster.Health(ctx, tr.T, pods(c))
			if err != nil {
				t.Fatalf("CheckHealth: %v (%+v)", err, h)
			}
			for _, r := range h {
				if !r.Healthy || r.Took <= 0 {
					t.Errorf("member %s: healthy=%v took=%v err=%s", r.Name, r.Healthy, r.Took, r.Error)
				}
			}

			s, err := cluster.Status(ctx, tr.T, pods(c))
			if err != nil {
				t.Fatalf("CollectStatus: %v", err)
			}
			leaders := 0
			for _, r := range s.Members {
				e := st[r.Name]
				if r.ID != fmt.Sprintf("%x", e.Header.MemberId) || r.Version != e.Version || r.Leader != fmt.Sprintf("%x", e.Leader) {
					t.Errorf("status of %s = %+v, etcd says id %x version %s leader %x", r.Name, r, e.Header.MemberId, e.Version, e.Leader)
				}
				if r.DBSize <= 0 || r.RaftIndex == 0 || r.Quota != discovery.DefaultQuotaBackendBytes {
					t.Errorf("status of %s has empty numbers: %+v", r.Name, r)
				}
				if r.IsLeader {
					leaders++
				}
			}
			if leaders != 1 {
				t.Errorf("%d leaders, want 1", leaders)
			}
			allInOne(t, ctx, tr, c, "")
			rc := cluster.Read(ctx, tr.T, pods(c))
			list := rc.MemberList()
			rc.Close()
			if list == nil || len(list.Members) != 3 || list.ClusterID != s.ClusterID {
				t.Errorf("the read did not keep the member list: %+v", list)
			}
		})
	}

	// hashkv through etcdctl, which check uses when no helper pod can
	// start: the same hash as etcd's API, and etcd's error, not an empty
	// answer, at a compacted revision.
	cli := c.Client(t)
	for i := range 3 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/hash/%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	put, err := cli.Put(ctx, "/hash/last", "v")
	if err != nil {
		t.Fatal(err)
	}
	rev := put.Header.Revision
	c.WaitApplied(t, cli, rev)
	if _, err := cli.Compact(ctx, rev-1); err != nil {
		t.Fatal(err)
	}
	// The compaction is applied on each member in its own time: wait until
	// the member the subtests hash has it, or the two answers may straddle it.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		h, err := cli.HashKV(ctx, c.Members[0].ClientURL, rev)
		if err == nil && h.CompactRevision == rev-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member %s has not applied the compaction at %d: %+v, %v", c.Members[0].Name, rev-1, h, err)
		}
	}
	for _, tr := range trs {
		ex, ok := tr.T.(*etcd.ExecTransport)
		if !ok {
			continue
		}
		t.Run("hashkv/"+tr.Name, func(t *testing.T) {
			m := pods(c)[0]
			want, err := cli.HashKV(ctx, c.Members[0].ClientURL, rev)
			if err != nil {
				t.Fatal(err)
			}
			ec, err := ex.Client(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			h, err := ec.HashKV(ctx, rev)
			if err != nil || h.Hash != want.Hash || h.CompactRevision != want.CompactRevision || h.MemberID != want.Header.MemberId {
				t.Errorf("HashKV(%d) = %+v, %v; etcd says hash %d compacted at %d", rev, h, err, want.Hash, want.CompactRevision)
			}
			if _, err := ec.HashKV(ctx, rev-2); !errors.Is(err, rpctypes.ErrCompacted) {
				t.Errorf("HashKV at a compacted revision: %v, want ErrCompacted", err)
			}
		})
	}

	c.StopMember(2)
	stopped := c.Members[2].Name
	for _, tr := range trs {
		t.Run("member-down/"+tr.Name, func(t *testing.T) {
			v, err := cluster.Members(ctx, tr.T, pods(c))
			if err != nil || len(v.Members) != 3 {
				t.Fatalf("ListMembers with one member down: %v, %+v", err, v)
			}
			allInOne(t, ctx, tr, c, c.Members[2].ClientURL)
			h, err := cluster.Health(ctx, tr.T, pods(c))
			if !errors.Is(err, cluster.ErrSomeFailed) {
				t.Errorf("CheckHealth error = %v, want ErrSomeFailed", err)
			}
			for _, r := range h {
				if r.Healthy == (r.Name == stopped) {
					t.Errorf("member %s healthy=%v err=%s", r.Name, r.Healthy, r.Error)
				}
			}
			s, err := cluster.Status(ctx, tr.T, pods(c))
			if !errors.Is(err, cluster.ErrSomeFailed) {
				t.Errorf("CollectStatus error = %v, want ErrSomeFailed", err)
			}
			if len(s.Members) != 3 {
				t.Fatalf("%d status rows, want 3", len(s.Members))
			}
			for _, r := range s.Members {
				if (r.Error != "") != (r.Name == stopped) {
					t.Errorf("status of %s: error %q", r.Name, r.Error)
				}
				if r.Name != stopped && r.Version == "" {
					t.Errorf("running member %s lost its status: %+v", r.Name, r)
				}
			}
		})
	}
}

// allInOne: over exec, one etcdctl run answers for every member, each by
// its client URL, and names the member that is down (down: its URL);
// over a port-forward it is unsupported.
func allInOne(t *testing.T, ctx context.Context, tr transport, c *etcdtest.Cluster, down string) {
	t.Helper()
	cl, err := tr.T.Client(ctx, pods(c)[0])
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	st, serr := cl.StatusAll(ctx)
	h, herr := cl.HealthAll(ctx)
	if tr.Name == "port-forward" {
		if !errors.Is(serr, etcd.ErrUnsupported) || !errors.Is(herr, etcd.ErrUnsupported) {
			t.Errorf("over a port-forward StatusAll, HealthAll = %v, %v; want ErrUnsupported", serr, herr)
		}
		return
	}
	if serr != nil || herr != nil || len(st) != 3 || len(h) != 3 {
		t.Fatalf("StatusAll = %+v, %v; HealthAll = %+v, %v: want 3 rows each", st, serr, h, herr)
	}
	ids := map[uint64]bool{}
	for i := range 3 {
		sDown, hDown := st[i].Err != nil, h[i].Err != nil
		if sDown != (st[i].Endpoint == down) {
			t.Errorf("StatusAll row %s: %+v", st[i].Endpoint, st[i])
		}
		if hDown != (h[i].Endpoint == down) {
			t.Errorf("HealthAll row %s: %+v", h[i].Endpoint, h[i])
		}
		if !sDown {
			ids[st[i].Status.MemberID] = true
		}
		if !hDown && h[i].Took <= 0 {
			t.Errorf("HealthAll row %s took %v", h[i].Endpoint, h[i].Took)
		}
	}
	if want := 3 - min(1, len(down)); len(ids) != want {
		t.Errorf("StatusAll answered for %d members, want %d", len(ids), want)
	}
}
