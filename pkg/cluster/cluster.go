// Package cluster is the one model of the etcd cluster behind the pods:
// every member with its pod, client, status and error; the member and
// alarm lists; the leader; the best follower; the member a --member
// value names; a preflight. status, health, members, backup's choice of
// source, check, the maintenance operations, the key reader and
// restore's preflight all stand on it.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
)

// Member is one member with a pod, its client, and what it said last.
type Member struct {
	Pod    discovery.Member
	ID     uint64
	Status *etcd.Status
	// Err is why the member could not be dialled or read, or nil.
	Err    error
	client etcd.Client
}

// Label names the member for people: name and hex ID.
func (m *Member) Label() string {
	if m.ID == 0 {
		return m.Pod.Name
	}
	return fmt.Sprintf("%s (%s)", m.Pod.Name, etcd.HexID(m.ID))
}

// MemberRef names a member in results: its name and hex ID.
type MemberRef struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// Ref names the member in results.
func (m *Member) Ref() MemberRef { return MemberRef{Name: m.Pod.Name, ID: HexOrEmpty(m.ID)} }

// IsLeader reports whether the member said it leads.
func (m *Member) IsLeader() bool {
	return m.Status != nil && m.Status.Leader != 0 && m.Status.Leader == m.Status.MemberID
}

// IsLearner reports whether the member said it is a learner.
func (m *Member) IsLearner() bool { return m.Status != nil && m.Status.IsLearner }

// Client is the member's client; nil if it could not be dialled.
func (m *Member) Client() etcd.Client { return m.client }

// Cluster is every member that has a pod, dialled once, with what the
// member list and the alarm list said.
type Cluster struct {
	ClusterID uint64
	// Members are sorted by name.
	Members []*Member
	// List is nil when Status skipped it (see read).
	List   []etcd.MemberInfo
	Alarms []etcd.Alarm
	// ListErr is why the lists could not be read, or nil.
	ListErr error
}

// Dial makes a client for every pod's member, in parallel; each member
// that cannot be dialled keeps its error. It reads nothing.
func Dial(ctx context.Context, t etcd.Transport, pods []discovery.Member) *Cluster {
	// A failure shows again, member by member, when each is dialled.
	_ = t.Prepare(ctx, pods)
	c := &Cluster{}
	for _, p := range pods {
		c.Members = append(c.Members, &Member{Pod: p})
	}
	sort.SliceStable(c.Members, func(i, j int) bool { return c.Members[i].Pod.Name < c.Members[j].Pod.Name })
	par.Each(len(c.Members), func(i int) {
		m := c.Members[i]
		m.client, m.Err = t.Client(ctx, m.Pod)
		m.Err = etcd.WithHint(m.Pod, m.Err)
	})
	return c
}

// Read dials every member, then reads in one round every member's
// status (which lists the alarms) and the member list. It never fails: each member
// keeps its error, and ListErr says why the lists could not be read.
// Close it.
//
// Over exec, one etcdctl run in one member's container answers for
// every member it reaches (StatusAll), as the manual one-liner does;
// a member it does not answer for, or one on a node that is not Ready
// (its etcd may answer a peer while its kubelet cannot run anything),
// is asked on its own.
func Read(ctx context.Context, t etcd.Transport, pods []discovery.Member) *Cluster {
	return read(ctx, t, pods, true)
}

// read is Read; without needList, a StatusAll that answers for every
// member, and for no member without a pod, ends the read: the member
// list would only repeat it (List stays nil).
func read(ctx context.Context, t etcd.Transport, pods []discovery.Member, needList bool) *Cluster {
	c := Dial(ctx, t, pods)
	first := c.trusted()
	var all []etcd.EndpointStatus
	allErr := errNoConn
	if first != nil && !needList {
		if all, allErr = first.client.StatusAll(ctx); allErr == nil && c.covers(all) {
			c.finish(ctx, first, 0)
			return c
		}
	}
	var id uint64
	par.Each(2, func(i int) {
		switch {
		case i == 0:
			if first != nil && needList {
				all, allErr = first.client.StatusAll(ctx)
			}
			c.readStatuses(ctx, all, allErr)
		case first != nil:
			id, c.List, c.ListErr = first.client.MemberList(ctx)
		}
	})
	c.finish(ctx, first, id)
	return c
}

// finish reads the alarms and names the cluster once the statuses and
// the list (its ID: listID) are read.
func (c *Cluster) finish(ctx context.Context, first *Member, listID uint64) {
	if first == nil {
		c.ListErr = fmt.Errorf("no member could be reached:%s", c.Problems(nil))
	} else if err := c.readAlarms(ctx, first); c.ListErr == nil {
		c.ListErr = err
	}
	// The first member's status names the cluster; the list's header
	// only when no status was read (they differ only mid-restore).
	for _, m := range c.Members {
		if m.Status != nil && c.ClusterID == 0 {
			c.ClusterID = m.Status.ClusterID
		}
	}
	if c.ClusterID == 0 {
		c.ClusterID = listID
	}
}

// covers reports whether all holds an answer for every member, each
// from a trusted one (see answering), and no endpoint that failed or
// that no pod advertises; it fills the members' statuses.
func (c *Cluster) covers(all []etcd.EndpointStatus) bool {
	done := c.take(all)
	for _, e := range all {
		if e.Err != nil || c.answering(e.Endpoint) == nil {
			return false
		}
	}
	for _, m := range c.Members {
		if !done[m] {
			return false
		}
	}
	return true
}

// take fills the statuses that all holds for trusted members, and says
// which members it filled.
func (c *Cluster) take(all []etcd.EndpointStatus) map[*Member]bool {
	done := map[*Member]bool{}
	for _, e := range all {
		if m := c.answering(e.Endpoint); m != nil && e.Err == nil && e.Status != nil {
			m.Status, m.ID, done[m] = e.Status, e.Status.MemberID, true
		}
	}
	return done
}

// readAlarms takes the alarms from a status that was read (each lists
// every alarm raised), and asks first for the alarm list only when none
// could tell.
func (c *Cluster) readAlarms(ctx context.Context, first *Member) error {
	for _, m := range c.Members {
		if m.Err != nil || m.Status == nil {
			continue
		}
		if as, ok := etcd.AlarmsIn(m.Status); ok {
			c.Alarms = as
			return nil
		}
	}
	var err error
	c.Alarms, err = first.client.AlarmList(ctx)
	return err
}

// readStatuses reads every dialled member's status: those that all,
// StatusAll's answer (allErr: why there is none), holds, then each one
// left on its own, in parallel.
func (c *Cluster) readStatuses(ctx context.Context, all []etcd.EndpointStatus, allErr error) {
	done := map[*Member]bool{}
	if allErr == nil {
		done = c.take(all)
	}
	par.Each(len(c.Members), func(i int) {
		if m := c.Members[i]; m.Err == nil && !done[m] {
			m.Err = etcd.WithHint(m.Pod, c.Refresh(ctx, m))
		}
	})
}

// answering is the member whose pod advertises endpoint, if an answer
// through another member counts for it: dialled, and on a Ready node.
func (c *Cluster) answering(endpoint string) *Member {
	for _, m := range c.Members {
		if m.Err == nil && nodeReady(m.Pod) && contains(m.Pod.AdvertiseClientURLs, endpoint) {
			return m
		}
	}
	return nil
}

// trusted is the first dialled member on a Ready node, else the first
// dialled one; nil if none was.
func (c *Cluster) trusted() *Member {
	var any *Member
	for _, m := range c.Members {
		if m.Err != nil || m.client == nil {
			continue
		}
		if nodeReady(m.Pod) {
			return m
		}
		if any == nil {
			any = m
		}
	}
	return any
}

func nodeReady(p discovery.Member) bool { return p.NodeReady == nil || *p.NodeReady }

// Open is Read that fails when no member answered.
func Open(ctx context.Context, t etcd.Transport, pods []discovery.Member) (*Cluster, error) {
	if len(pods) == 0 {
		return nil, errors.New("no etcd pods found")
	}
	c := Read(ctx, t, pods)
	if c.Any() == nil {
		c.Close()
		return nil, fmt.Errorf("no etcd member could be reached:%s", c.Problems(nil))
	}
	return c, nil
}

// Close closes every client.
func (c *Cluster) Close() {
	for _, m := range c.Members {
		if m.client != nil {
			_ = m.client.Close()
		}
	}
}

// Refresh reads m's status again.
func (c *Cluster) Refresh(ctx context.Context, m *Member) error {
	if m.client == nil {
		return m.Err
	}
	st, err := m.client.Status(ctx)
	if err != nil {
		return err
	}
	m.Status, m.ID = st, st.MemberID
	return nil
}

// RefreshAll reads every dialled member's status again.
func (c *Cluster) RefreshAll(ctx context.Context) {
	par.Each(len(c.Members), func(i int) {
		if m := c.Members[i]; m.client != nil {
			m.Err = c.Refresh(ctx, m)
		}
	})
}

// Any is a reachable member's client for cluster-wide calls, the
// leader's if it answers; nil if none is reachable.
func (c *Cluster) Any() etcd.Client {
	if l := c.Leader(); l != nil {
		return l.client
	}
	return c.any()
}

// any is the first member's client that was dialled and has no error.
func (c *Cluster) any() etcd.Client {
	for _, m := range c.Members {
		if m.Err == nil && m.client != nil {
			return m.client
		}
	}
	return nil
}

// Leader is the member that said it leads, or nil.
func (c *Cluster) Leader() *Member {
	for _, m := range c.Members {
		if m.Err == nil && m.IsLeader() {
			return m
		}
	}
	return nil
}

// NeedLeader is the leader, or an error that says why there is none.
func (c *Cluster) NeedLeader() (*Member, error) {
	if l := c.Leader(); l != nil {
		return l, nil
	}
	return nil, hint.Errorf("see `kubectl etcd status`", "no member says it is the leader:%s", c.Problems(nil))
}

// Find is the member that want names (see etcd.Names).
func (c *Cluster) Find(want string) (*Member, error) {
	for _, m := range c.Members {
		if etcd.Names(want, m.Pod.Name, m.Pod.Node, m.Pod.Pod, m.ID) {
			return m, nil
		}
	}
	return nil, etcd.NoSuchMember(want)
}

// BestFollower is the healthy voting follower with the newest applied
// index, other than except; nil if there is none. Ties go by name.
func (c *Cluster) BestFollower(except *Member) *Member {
	var best *Member
	for _, m := range c.Members {
		if m == except || m.Err != nil || m.Status == nil || m.IsLeader() || m.IsLearner() {
			continue
		}
		if best == nil || m.Status.RaftAppliedIndex > best.Status.RaftAppliedIndex {
			best = m
		}
	}
	return best
}

// ReadMember is the member best placed for a long read, and its role:
// the best follower, which can answer serializable reads alone so that
// the leader serves none of it; the leader when no follower is healthy.
func (c *Cluster) ReadMember() (*Member, string, error) {
	if m := c.BestFollower(nil); m != nil {
		return m, "follower", nil
	}
	if l := c.Leader(); l != nil {
		return l, "leader", nil
	}
	return nil, "", hint.Errorf("see `kubectl etcd health` and `kubectl etcd status`", "no member to read the keys from: none is a reachable follower or the leader:%s", c.Problems(nil))
}

// Health checks m as etcdctl endpoint health does, minus the alarms,
// which each operation judges itself: its status answers and a
// linearizable read through it succeeds.
func (c *Cluster) Health(ctx context.Context, m *Member) error {
	if m.client == nil {
		return m.Err
	}
	if err := c.Refresh(ctx, m); err != nil {
		return err
	}
	if m.IsLearner() {
		return nil // learners serve no linearizable reads
	}
	_, err := m.client.GetPage(ctx, etcd.PageRequest{Key: "health", KeysOnly: true, Limit: 1})
	if errors.Is(err, rpctypes.ErrPermissionDenied) {
		// A permission error still proves that raft answered, as in etcdctl.
		return nil
	}
	return err
}

// Preflight checks that every member is healthy, that each one in the
// member list has a pod, and that no alarm but the allowed ones is
// raised. The error lists every problem and changes nothing.
func (c *Cluster) Preflight(ctx context.Context, allowed ...string) error {
	par.Each(len(c.Members), func(i int) {
		if m := c.Members[i]; m.Err == nil {
			m.Err = c.Health(ctx, m)
		}
	})
	extra := c.extraProblems(allowed)
	if p := c.Problems(extra); p != "" {
		return hint.Permanent(fmt.Errorf("the cluster is not ready for maintenance, so nothing was changed:%s", p),
			"fix these first (see `kubectl etcd health` and `kubectl etcd status`), then run again")
	}
	return nil
}

// extraProblems are those of the cluster rather than of one pod: the
// lists, members without a pod, alarms, no leader.
func (c *Cluster) extraProblems(allowed []string) []string {
	var out []string
	if c.ListErr != nil {
		out = append(out, "reading the member and alarm lists: "+c.ListErr.Error())
	}
	for _, mi := range c.Unpodded() {
		out = append(out, fmt.Sprintf("member %s (%s) has no etcd pod, so it cannot be reached", memberName(mi), etcd.HexID(mi.ID)))
	}
	for _, a := range c.Alarms {
		if !contains(allowed, a.Type) {
			out = append(out, fmt.Sprintf("alarm %s raised on member %s", a.Type, c.LabelOf(a.MemberID)))
		}
	}
	if c.Leader() == nil && c.ListErr == nil {
		out = append(out, "no member says it is the leader")
	}
	return out
}

// Unpodded are the listed members that no pod runs.
func (c *Cluster) Unpodded() []etcd.MemberInfo {
	var out []etcd.MemberInfo
	for _, mi := range c.List {
		if c.ByID(mi.ID) == nil && podFor(mi, c.pods()) == nil {
			out = append(out, mi)
		}
	}
	return out
}

func (c *Cluster) pods() []discovery.Member {
	out := make([]discovery.Member, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.Pod
	}
	return out
}

// Problems lists, one per line, why members failed, then extra.
func (c *Cluster) Problems(extra []string) string {
	var b strings.Builder
	for _, m := range c.Members {
		if m.Err != nil {
			fmt.Fprintf(&b, "\n  %s: %s", m.Label(), strings.ReplaceAll(m.Err.Error(), "\n", " "))
		}
	}
	for _, p := range extra {
		fmt.Fprintf(&b, "\n  %s", p)
	}
	return b.String()
}

// ByID is the member with this ID, or nil.
func (c *Cluster) ByID(id uint64) *Member {
	for _, m := range c.Members {
		if m.ID == id && id != 0 {
			return m
		}
	}
	return nil
}

// OfListed is the member whose pod runs the listed member mi: by ID once
// its status was read, else by name or peer URL (a member that does not
// answer has no ID in the model); nil if no pod runs it.
func (c *Cluster) OfListed(mi etcd.MemberInfo) *Member {
	if m := c.ByID(mi.ID); m != nil {
		return m
	}
	p := podFor(mi, c.pods())
	if p == nil {
		return nil
	}
	for _, m := range c.Members {
		if m.Pod.Namespace == p.Namespace && m.Pod.Pod == p.Pod && (m.ID == 0 || m.ID == mi.ID) {
			return m
		}
	}
	return nil
}

// LabelOf names a member by its ID, with its name when it is known.
func (c *Cluster) LabelOf(id uint64) string {
	if m := c.ByID(id); m != nil {
		return m.Label()
	}
	for _, mi := range c.List {
		if mi.ID == id {
			return fmt.Sprintf("%s (%s)", memberName(mi), etcd.HexID(id))
		}
	}
	return etcd.HexID(id)
}

func memberName(mi etcd.MemberInfo) string {
	if mi.Name == "" {
		return "unstarted"
	}
	return mi.Name
}

// HexOrEmpty is id in hex, or "" for an ID not known yet.
func HexOrEmpty(id uint64) string {
	if id == 0 {
		return ""
	}
	return etcd.HexID(id)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
