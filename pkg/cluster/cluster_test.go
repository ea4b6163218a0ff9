package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster/clustertest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// TestRead: one round reads every member's status and both lists; a
// member that fails keeps its error, the others their status.
func TestRead(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(f *clustertest.Cluster)
		leader string
		read   string // ReadMember's choice
		errs   string // "member: error" of each failed member
		list   string // ListErr, or ""
		rows   int    // rows of the status view
	}{
		{name: "healthy", leader: "m1", read: "m2", rows: 3},
		{name: "follower down", setup: func(f *clustertest.Cluster) { f.Fail["status m2"] = errors.New("reset by peer") },
			leader: "m1", read: "m3", errs: "m2: reset by peer", rows: 3},
		{name: "undialable", setup: func(f *clustertest.Cluster) { f.Fail["dial m3"] = errors.New("no route") },
			leader: "m1", read: "m2", errs: "m3: no route", rows: 3},
		{name: "leader down", setup: func(f *clustertest.Cluster) { f.Fail["status m1"] = errors.New("timed out") },
			read: "m2", errs: "m1: timed out", rows: 3},
		{name: "member without a pod", setup: func(f *clustertest.Cluster) { f.Members[2].NoPod = true },
			leader: "m1", read: "m2", rows: 3},
		{name: "lists fail", setup: func(f *clustertest.Cluster) { f.Fail["member-list m1"] = errors.New("denied") },
			leader: "m1", read: "m2", list: "denied", rows: 3},
		{name: "alarms read from the statuses", setup: func(f *clustertest.Cluster) {
			f.Alarms = []etcd.Alarm{{MemberID: 0xa2, Type: "NOSPACE"}}
			f.Fail["alarm-list m1"] = errors.New("not asked")
		}, leader: "m1", read: "m2", rows: 3},
		{name: "learner never reads", setup: func(f *clustertest.Cluster) { f.Members[1].Learner = true },
			leader: "m1", read: "m3", rows: 3},
	}
	for _, tc := range tests {
		for _, allInOne := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/all-in-one=%v", tc.name, allInOne), func(t *testing.T) {
				f := clustertest.New(3, 100<<20, 50<<20)
				f.AllInOne = allInOne
				f.Members[2].Applied = 400 // m2 is the newest follower
				if tc.setup != nil {
					tc.setup(f)
				}
				c := cluster.Read(t.Context(), f, f.Pods())
				defer c.Close()
				if got := name(c.Leader()); got != tc.leader {
					t.Errorf("leader %q, want %q", got, tc.leader)
				}
				m, _, err := c.ReadMember()
				if err != nil || m.Pod.Name != tc.read {
					t.Errorf("ReadMember = %v, %v; want %s", name(m), err, tc.read)
				}
				var errs []string
				for _, m := range c.Members {
					if m.Err != nil {
						errs = append(errs, m.Pod.Name+": "+m.Err.Error())
					}
				}
				if got := strings.Join(errs, "; "); got != tc.errs {
					t.Errorf("member errors %q, want %q", got, tc.errs)
				}
				if got := errString(c.ListErr); got != tc.list {
					t.Errorf("ListErr %q, want %q", got, tc.list)
				}
				if c.ClusterID != 0xc1a55 {
					t.Errorf("cluster ID %x", c.ClusterID)
				}
				v, err := c.StatusView()
				if len(v.Members) != tc.rows {
					t.Errorf("%d status rows, want %d: %+v", len(v.Members), tc.rows, v.Members)
				}
				bad := tc.errs != "" || tc.list != "" || tc.name == "member without a pod"
				if bad != errors.Is(err, cluster.ErrSomeFailed) {
					t.Errorf("StatusView error %v", err)
				}
				if tc.name == "alarms read from the statuses" && (len(c.Alarms) != 1 || strings.Join(v.Members[1].Alarms, ",") != "NOSPACE") {
					t.Errorf("alarms %+v, m2's row %+v", c.Alarms, v.Members[1])
				}
				if tc.name == "member without a pod" && v.Members[2].Error != "no etcd pod found for this member" {
					t.Errorf("the member without a pod: %+v", v.Members[2])
				}
			})
		}
	}
}

// notReady is the fake whose kubelet on m3's node runs nothing: m3's
// own status read fails, while its etcd still answers the others.
type notReady struct{ *clustertest.Cluster }

func (n notReady) Client(ctx context.Context, p discovery.Member) (etcd.Client, error) {
	c, err := n.Cluster.Client(ctx, p)
	if err != nil || p.Name != "m3" {
		return c, err
	}
	return kubeletDown{c}, nil
}

type kubeletDown struct{ etcd.Client }

func (kubeletDown) Status(context.Context) (*etcd.Status, error) {
	return nil, errors.New("kubelet down")
}

func (kubeletDown) Health(context.Context) (time.Duration, error) {
	return 0, errors.New("kubelet down")
}

// TestAllInOneTrustsReadyNodes: an answer through another member counts
// only for a member on a Ready node; one on a NotReady node is asked on
// its own, and its own failure, with the node named, is what shows.
func TestAllInOneTrustsReadyNodes(t *testing.T) {
	for _, ready := range []bool{true, false} {
		f := clustertest.New(3, 1, 1)
		f.AllInOne = true
		pods := f.Pods()
		pods[2].NodeReady = &ready
		c := cluster.Read(t.Context(), notReady{f}, pods)
		m3 := c.Members[2]
		if ready != (m3.Err == nil && m3.Status != nil) {
			t.Errorf("ready=%v: m3 status %+v, error %v", ready, m3.Status, m3.Err)
		}
		if !ready && !strings.Contains(fmt.Sprint(m3.Err), "node node-m3 is NotReady") {
			t.Errorf("m3's error does not name its node: %v", m3.Err)
		}
		c.Close()
		h, err := cluster.Health(t.Context(), notReady{f}, pods)
		if ready != (err == nil) || ready != h[2].Healthy {
			t.Errorf("ready=%v: health %+v, %v", ready, h, err)
		}
	}
}

// TestFind: --member names a member by name, node, pod or hex ID, and
// nothing else.
func TestFind(t *testing.T) {
	f := clustertest.New(3, 1, 1)
	c := cluster.Read(t.Context(), f, f.Pods())
	defer c.Close()
	for want, member := range map[string]string{"m2": "m2", "node-m3": "m3", "etcd-m1": "m1", "a2": "m2", "0xA3": "m3", "m4": "", "a9": ""} {
		m, err := c.Find(want)
		if got := name(m); got != member || (member == "") != (err != nil) {
			t.Errorf("Find(%q) = %q, %v; want %q", want, got, err, member)
		}
	}
}

// TestOpenNoneReachable: Open fails, naming each member's error, when
// none answers; Read still returns the model.
func TestOpenNoneReachable(t *testing.T) {
	f := clustertest.New(2, 1, 1)
	f.Fail["status m1"], f.Fail["status m2"] = errors.New("refused 1"), errors.New("refused 2")
	_, err := cluster.Open(t.Context(), f, f.Pods())
	if err == nil || !strings.Contains(err.Error(), "m1: refused 1") || !strings.Contains(err.Error(), "m2: refused 2") {
		t.Errorf("Open error %v", err)
	}
	if _, err := cluster.Open(t.Context(), f, nil); err == nil {
		t.Error("Open with no pods succeeded")
	}
}

func name(m *cluster.Member) string {
	if m == nil {
		return ""
	}
	return m.Pod.Name
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

var _ etcd.Transport = (*clustertest.Cluster)(nil)

// TestOneAnswerSkipsTheList: over exec, when the one etcdctl run answers
// for every member and for no member without a pod, status and health
// ask nothing more (a failing member list would show); otherwise they
// read the list, which names the member without a pod.
func TestOneAnswerSkipsTheList(t *testing.T) {
	for _, noPod := range []bool{false, true} {
		f := clustertest.New(3, 1, 1)
		f.AllInOne = true
		f.Members[2].NoPod = noPod
		f.Fail["member-list m1"] = errors.New("list read")
		v, err := cluster.Status(t.Context(), f, f.Pods())
		if noPod != (err != nil) || noPod != strings.Contains(fmt.Sprint(err), "list read") {
			t.Errorf("noPod=%v: status %+v, %v", noPod, v, err)
		}
		// health leaves out what a list it could not read would add.
		h, err := cluster.Health(t.Context(), f, f.Pods())
		if err != nil || len(h) != len(f.Pods()) {
			t.Errorf("noPod=%v: health %+v, %v", noPod, h, err)
		}
		delete(f.Fail, "member-list m1")
		if h, err := cluster.Health(t.Context(), f, f.Pods()); noPod && (err == nil || h[len(h)-1].Name != "m3") {
			t.Errorf("health without m3's pod: %+v, %v", h, err)
		}
	}
}
