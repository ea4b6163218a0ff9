// Package clustertest is a recording fake of an etcd cluster (an
// etcd.Transport) for the tests of the model and of what stands on it:
// every change made through it is logged in order, and any call can be
// made to fail.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// Member is one fake member.
type Member struct {
	Name          string
	ID            uint64
	DBSize, InUse int64
	Quota         int64
	Learner       bool
	Applied       uint64
	// NoPod leaves the member out of Pods, as a member whose static pod
	// is gone.
	NoPod bool
	// Unstarted leaves its name out of the member list, as etcd does for
	// a member added that has not started.
	Unstarted bool
	// PeerURL defaults to https://NAME:2380.
	PeerURL string
}

// Cluster is the fake. Set its fields before the test dials it.
type Cluster struct {
	mu        sync.Mutex
	ClusterID uint64
	Members   []*Member
	Leader    uint64
	Revision  int64
	Compacted int64
	Alarms    []etcd.Alarm
	// CompactFrees is the bytes in use a compaction frees on every
	// member.
	CompactFrees int64
	// Fail makes calls fail, keyed by call and member: "defragment m2",
	// "status m1", "get m3", "move-leader m1", "compact m1", "dial m2".
	Fail map[string]error
	// OnDefragment runs inside each Defragment, with the cluster
	// locked: it may change fields (Fail, a member's sizes) directly.
	OnDefragment func(name string)
	// AllInOne makes StatusAll and HealthAll answer for every member,
	// as etcdctl in a container does (a member's "status NAME" or
	// "health NAME" failure shows in its row); false refuses them with
	// ErrUnsupported, as a port-forward does.
	AllInOne bool
	// Calls are the changes, in order: "defragment m2", "move-leader m1
	// -> m3", "compact 42 physical=true via m1", "disarm NOSPACE m1".
	Calls []string
}

// New is a cluster of members m1..mn, m1 leading, each with db bytes of
// which inUse are in use.
func New(n int, db, inUse int64) *Cluster {
	c := &Cluster{ClusterID: 0xc1a55, Revision: 1000, Fail: map[string]error{}}
	for i := range n {
		c.Members = append(c.Members, &Member{Name: fmt.Sprintf("m%d", i+1), ID: uint64(0xa1 + i), DBSize: db, InUse: inUse, Quota: 2 << 30, Applied: 500})
	}
	c.Leader = c.Members[0].ID
	return c
}

// Pods are the members' pods, as discovery reads them.
func (c *Cluster) Pods() []discovery.Member {
	var out []discovery.Member
	for _, m := range c.Members {
		if !m.NoPod {
			out = append(out, discovery.Member{Name: m.Name, Pod: "etcd-" + m.Name, Node: "node-" + m.Name, Namespace: "kube-system", Container: "etcd", Running: true,
				AdvertiseClientURLs: []string{clientURL(m)}})
		}
	}
	return out
}

// Member is the member named name.
func (c *Cluster) Member(name string) *Member {
	for _, m := range c.Members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Changes is Calls, safe to read while clients run.
func (c *Cluster) Changes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.Calls...)
}

// Name implements etcd.Transport.
func (c *Cluster) Name() string { return "fake" }

// Prepare implements etcd.Transport; it has nothing to prepare.
func (c *Cluster) Prepare(context.Context, []discovery.Member) error { return nil }

// Client implements etcd.Transport.
func (c *Cluster) Client(_ context.Context, m discovery.Member) (etcd.Client, error) {
	if err := c.fail("dial " + m.Name); err != nil {
		return nil, err
	}
	return &client{c: c, name: m.Name}, nil
}

// fail is the injected error of call; the caller holds no lock.
func (c *Cluster) fail(call string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Fail[call]
}

func (c *Cluster) record(call string) {
	c.Calls = append(c.Calls, call)
}

type client struct {
	c    *Cluster
	name string
}

var errNotFaked = errors.New("not faked")

// do runs f on the member under the lock, after the injected failure of
// "verb name", if any.
func (cl *client) do(verb string, f func(m *Member) error) error {
	if err := cl.c.fail(verb + " " + cl.name); err != nil {
		return err
	}
	cl.c.mu.Lock()
	defer cl.c.mu.Unlock()
	return f(cl.c.Member(cl.name))
}

func (cl *client) MemberList(context.Context) (uint64, []etcd.MemberInfo, error) {
	var out []etcd.MemberInfo
	err := cl.do("member-list", func(*Member) error {
		for _, m := range cl.c.Members {
			out = append(out, info(m))
		}
		return nil
	})
	return cl.c.ClusterID, out, err
}

func info(m *Member) etcd.MemberInfo {
	mi := etcd.MemberInfo{ID: m.ID, Name: m.Name, IsLearner: m.Learner, PeerURLs: []string{"https://" + m.Name + ":2380"}, ClientURLs: []string{clientURL(m)}}
	if m.PeerURL != "" {
		mi.PeerURLs = []string{m.PeerURL}
	}
	if m.Unstarted {
		mi.Name, mi.ClientURLs = "", nil
	}
	return mi
}

func clientURL(m *Member) string { return "https://" + m.Name + ":2379" }

// StatusAll answers for every member when AllInOne is set.
func (cl *client) StatusAll(ctx context.Context) ([]etcd.EndpointStatus, error) {
	if err := cl.allInOne("status-all"); err != nil {
		return nil, err
	}
	var out []etcd.EndpointStatus
	for _, m := range cl.c.Members {
		st, err := (&client{c: cl.c, name: m.Name}).Status(ctx)
		out = append(out, etcd.EndpointStatus{Endpoint: clientURL(m), Status: st, Err: err})
	}
	return out, nil
}

// HealthAll answers for every member when AllInOne is set.
func (cl *client) HealthAll(ctx context.Context) ([]etcd.EndpointHealth, error) {
	if err := cl.allInOne("health-all"); err != nil {
		return nil, err
	}
	var out []etcd.EndpointHealth
	for _, m := range cl.c.Members {
		took, err := (&client{c: cl.c, name: m.Name}).Health(ctx)
		out = append(out, etcd.EndpointHealth{Endpoint: clientURL(m), Took: took, Err: err})
	}
	return out, nil
}

func (cl *client) allInOne(verb string) error {
	cl.c.mu.Lock()
	on := cl.c.AllInOne
	cl.c.mu.Unlock()
	if !on {
		return &etcd.UnsupportedError{Transport: "fake", Op: verb}
	}
	return cl.c.fail(verb + " " + cl.name)
}

func (cl *client) Status(context.Context) (*etcd.Status, error) {
	var st *etcd.Status
	err := cl.do("status", func(m *Member) error {
		st = &etcd.Status{ClusterID: cl.c.ClusterID, MemberID: m.ID, Revision: cl.c.Revision, Version: "3.6.8",
			DBSize: m.DBSize, DBSizeInUse: m.InUse, DBSizeQuota: m.Quota, Leader: cl.c.Leader,
			RaftTerm: 2, RaftIndex: m.Applied, RaftAppliedIndex: m.Applied, IsLearner: m.Learner}
		// As etcd does, every member's status lists every alarm.
		for _, a := range cl.c.Alarms {
			st.Errors = append(st.Errors, fmt.Sprintf("memberID:%d alarm:%s ", a.MemberID, a.Type))
		}
		return nil
	})
	return st, err
}

func (cl *client) GetPage(context.Context, etcd.PageRequest) (*etcd.Page, error) {
	var p *etcd.Page
	err := cl.do("get", func(*Member) error { p = &etcd.Page{Revision: cl.c.Revision}; return nil })
	return p, err
}

func (cl *client) MoveLeader(_ context.Context, to uint64) error {
	return cl.do("move-leader", func(m *Member) error {
		if cl.c.Leader != m.ID {
			return rpctypes.ErrNotLeader
		}
		var target *Member
		for _, o := range cl.c.Members {
			if o.ID == to && !o.Learner && o != m {
				target = o
			}
		}
		if target == nil {
			return rpctypes.ErrBadLeaderTransferee
		}
		cl.c.Leader = to
		cl.c.record(fmt.Sprintf("move-leader %s -> %s", m.Name, target.Name))
		return nil
	})
}

func (cl *client) AlarmList(context.Context) ([]etcd.Alarm, error) {
	var out []etcd.Alarm
	err := cl.do("alarm-list", func(*Member) error { out = append(out, cl.c.Alarms...); return nil })
	return out, err
}

func (cl *client) AlarmDisarm(_ context.Context, a etcd.Alarm) ([]etcd.Alarm, error) {
	var done []etcd.Alarm
	err := cl.do("disarm", func(*Member) error {
		var left []etcd.Alarm
		for _, r := range cl.c.Alarms {
			if (a.Type == "" || r.Type == a.Type) && (a.MemberID == 0 || r.MemberID == a.MemberID) {
				done = append(done, r)
				cl.c.record(fmt.Sprintf("disarm %s %s", r.Type, cl.c.nameOf(r.MemberID)))
				continue
			}
			left = append(left, r)
		}
		cl.c.Alarms = left
		return nil
	})
	return done, err
}

func (c *Cluster) nameOf(id uint64) string {
	for _, m := range c.Members {
		if m.ID == id {
			return m.Name
		}
	}
	return etcd.HexID(id)
}

// Defragment is done whatever happens to ctx, as etcd's is; the call
// reports ctx's end as the client does.
func (cl *client) Defragment(ctx context.Context) error {
	err := cl.do("defragment", func(m *Member) error {
		m.DBSize = m.InUse
		cl.c.record("defragment " + m.Name)
		if cl.c.OnDefragment != nil {
			cl.c.OnDefragment(m.Name)
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	return err
}

func (cl *client) Compact(_ context.Context, rev int64, physical bool) error {
	return cl.do("compact", func(via *Member) error {
		switch {
		case rev > cl.c.Revision:
			return rpctypes.ErrFutureRev
		case rev <= cl.c.Compacted:
			return rpctypes.ErrCompacted
		}
		cl.c.Compacted = rev
		for _, m := range cl.c.Members {
			m.InUse = max(m.InUse-cl.c.CompactFrees, 0)
		}
		cl.c.record(fmt.Sprintf("compact %d physical=%t via %s", rev, physical, via.Name))
		return nil
	})
}

// MemberAdd adds an unstarted member (no name, no pod) with the next ID.
func (cl *client) MemberAdd(ctx context.Context, peerURLs []string, asLearner bool) (etcd.MemberInfo, []etcd.MemberInfo, error) {
	var added *Member
	err := cl.do("member-add", func(via *Member) error {
		added = &Member{ID: cl.c.nextID(), Learner: asLearner, NoPod: true, Unstarted: true, PeerURL: peerURLs[0]}
		cl.c.Members = append(cl.c.Members, added)
		cl.c.record(fmt.Sprintf("member-add %s learner=%t via %s", peerURLs[0], asLearner, via.Name))
		return nil
	})
	if err != nil {
		return etcd.MemberInfo{}, nil, err
	}
	_, list, err := cl.MemberList(ctx)
	return info(added), list, err
}

// MemberRemove removes the member with id.
func (cl *client) MemberRemove(ctx context.Context, id uint64) ([]etcd.MemberInfo, error) {
	return cl.changeMember(ctx, "member-remove", id, func(i int) error {
		cl.c.Members = append(cl.c.Members[:i], cl.c.Members[i+1:]...)
		return nil
	})
}

// MemberPromote makes the learner with id vote.
func (cl *client) MemberPromote(ctx context.Context, id uint64) ([]etcd.MemberInfo, error) {
	return cl.changeMember(ctx, "member-promote", id, func(i int) error {
		if !cl.c.Members[i].Learner {
			return rpctypes.ErrMemberNotLearner
		}
		cl.c.Members[i].Learner = false
		return nil
	})
}

// changeMember applies f to the member with id, records "verb ID via
// NAME" and returns the list after.
func (cl *client) changeMember(ctx context.Context, verb string, id uint64, f func(i int) error) ([]etcd.MemberInfo, error) {
	err := cl.do(verb, func(via *Member) error {
		for i, m := range cl.c.Members {
			if m.ID == id {
				if err := f(i); err != nil {
					return err
				}
				cl.c.record(fmt.Sprintf("%s %s via %s", verb, etcd.HexID(id), via.Name))
				return nil
			}
		}
		return rpctypes.ErrMemberNotFound
	})
	if err != nil {
		return nil, err
	}
	_, list, err := cl.MemberList(ctx)
	return list, err
}

func (c *Cluster) nextID() uint64 {
	id := uint64(0xa1)
	for _, m := range c.Members {
		id = max(id, m.ID+1)
	}
	return id
}
func (cl *client) HashKV(context.Context, int64) (*etcd.KVHash, error) { return nil, errNotFaked }
func (cl *client) Close() error                                        { return nil }

// Health answers as Status does: a member that gives its status is healthy.
func (cl *client) Health(ctx context.Context) (time.Duration, error) {
	_, err := cl.Status(ctx)
	return 0, err
}

// Snapshot is not faked: the maintenance commands take none.
func (cl *client) Snapshot(context.Context) (*etcd.SnapshotStream, error) {
	return nil, &etcd.UnsupportedError{Transport: "fake", Op: "stream snapshots"}
}

var _ etcd.Transport = (*Cluster)(nil)
