// Package maint holds the on-call maintenance operations: defragmenting
// members in a safe order, listing and disarming alarms, moving the
// leader and compacting. Each operation takes a plain config and a
// transport (etcd.Transport), so that commands stay thin and tests use a recording fake.
package maint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
)

// Client is what maintenance needs of one member: a narrow part of
// etcd.Client.
type Client interface {
	MemberList(ctx context.Context) (clusterID uint64, members []etcd.MemberInfo, err error)
	Status(ctx context.Context) (*etcd.Status, error)
	GetPage(ctx context.Context, r etcd.PageRequest) (*etcd.Page, error)
	MoveLeader(ctx context.Context, toID uint64) error
	AlarmList(ctx context.Context) ([]etcd.Alarm, error)
	AlarmDisarm(ctx context.Context, a etcd.Alarm) ([]etcd.Alarm, error)
	Defragment(ctx context.Context) error
	Compact(ctx context.Context, rev int64, physical bool) error
	Close() error
}

// Options are what every operation shares.
type Options struct {
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Confirm is asked once the plan is printed; an error stops the
	// operation with nothing changed. Nil confirms.
	Confirm func(question string) error
	// Log takes the plan, progress and notices (the command's ErrOut).
	Log io.Writer
	// Progress is how often a long step says it is still running; 0:
	// never.
	Progress time.Duration
	// HealthTimeout bounds the wait for a member to be healthy again
	// (default 2m); Poll is how often it asks (default 1s).
	HealthTimeout time.Duration
	Poll          time.Duration
	// Now is the clock, for the times printed (default time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 2 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Confirm == nil {
		o.Confirm = func(string) error { return nil }
	}
}

func (o *Options) notef(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }

// Member is one member with a pod, its client, and what it said last.
type Member struct {
	Pod    discovery.Member
	ID     uint64
	Status *etcd.Status
	// Err is why the member could not be dialled or read, or nil.
	Err    error
	client Client
}

// Label names the member for people: name and hex ID.
func (m *Member) Label() string {
	if m.ID == 0 {
		return m.Pod.Name
	}
	return fmt.Sprintf("%s (%s)", m.Pod.Name, etcd.HexID(m.ID))
}

// IsLeader reports whether the member said it leads.
func (m *Member) IsLeader() bool {
	return m.Status != nil && m.Status.Leader != 0 && m.Status.Leader == m.Status.MemberID
}

// Client is the member's client; nil if it could not be dialled.
func (m *Member) Client() Client { return m.client }

func (m *Member) isLearner() bool { return m.Status != nil && m.Status.IsLearner }

// Cluster is every member that has a pod, dialled once, with what the
// member list and the alarm list said.
type Cluster struct {
	ClusterID uint64
	// Members are sorted by name.
	Members []*Member
	List    []etcd.MemberInfo
	Alarms  []etcd.Alarm
	// ListErr is why neither list could be read, or nil.
	ListErr error
}

// Open dials every pod's member and reads its status, the member list
// and the alarms. Members that fail keep their error; Open fails only
// when none answers.
func Open(ctx context.Context, d etcd.Transport, pods []discovery.Member) (*Cluster, error) {
	if len(pods) == 0 {
		return nil, errors.New("no etcd pods found")
	}
	// A failure shows again, member by member, when each is dialled.
	_ = d.Prepare(ctx, pods)
	c := &Cluster{}
	for _, p := range pods {
		c.Members = append(c.Members, &Member{Pod: p})
	}
	sort.SliceStable(c.Members, func(i, j int) bool { return c.Members[i].Pod.Name < c.Members[j].Pod.Name })
	par.Each(len(c.Members), func(i int) {
		m := c.Members[i]
		if m.client, m.Err = d.Client(ctx, m.Pod); m.Err == nil {
			m.Err = c.refresh(ctx, m)
		}
	})
	if c.any() == nil {
		c.Close()
		return nil, fmt.Errorf("no etcd member could be reached:%s", c.problems(nil))
	}
	for _, m := range c.Members {
		if m.Status != nil && c.ClusterID == 0 {
			c.ClusterID = m.Status.ClusterID
		}
	}
	c.ListErr = c.readLists(ctx)
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

// refresh reads m's status again.
func (c *Cluster) refresh(ctx context.Context, m *Member) error {
	st, err := m.client.Status(ctx)
	if err != nil {
		return err
	}
	m.Status, m.ID = st, st.MemberID
	return nil
}

// refreshAll reads every reachable member's status again.
func (c *Cluster) refreshAll(ctx context.Context) {
	par.Each(len(c.Members), func(i int) {
		if m := c.Members[i]; m.client != nil {
			m.Err = c.refresh(ctx, m)
		}
	})
}

func (c *Cluster) readLists(ctx context.Context) error {
	cl := c.any()
	id, list, err := cl.MemberList(ctx)
	if err != nil {
		return err
	}
	c.ClusterID, c.List = id, list
	c.Alarms, err = cl.AlarmList(ctx)
	return err
}

// any is a reachable member's client for cluster-wide calls, the
// leader's if it answers.
func (c *Cluster) any() Client {
	if l := c.Leader(); l != nil {
		return l.client
	}
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
	return nil, hint.Errorf("see `kubectl etcd status`", "no member says it is the leader:%s", c.problems(nil))
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
		if m == except || m.Err != nil || m.Status == nil || m.IsLeader() || m.isLearner() {
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
	return nil, "", hint.Errorf("see `kubectl etcd health` and `kubectl etcd status`", "no member to read the keys from: none is a reachable follower or the leader:%s", c.problems(nil))
}

// health checks m as etcdctl endpoint health does, minus the alarms,
// which each operation judges itself: its status answers and a
// linearizable read through it succeeds.
func (c *Cluster) health(ctx context.Context, m *Member) error {
	if m.client == nil {
		return m.Err
	}
	if err := c.refresh(ctx, m); err != nil {
		return err
	}
	if m.isLearner() {
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
			m.Err = c.health(ctx, m)
		}
	})
	extra := c.extraProblems(allowed)
	if p := c.problems(extra); p != "" {
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
	for _, mi := range c.List {
		if c.byID(mi.ID) == nil && c.byName(mi.Name) == nil {
			out = append(out, fmt.Sprintf("member %s (%s) has no etcd pod, so it cannot be reached", memberName(mi), etcd.HexID(mi.ID)))
		}
	}
	for _, a := range c.Alarms {
		if !contains(allowed, a.Type) {
			out = append(out, fmt.Sprintf("alarm %s raised on member %s", a.Type, c.label(a.MemberID)))
		}
	}
	if c.Leader() == nil && c.ListErr == nil {
		out = append(out, "no member says it is the leader")
	}
	return out
}

// problems lists, one per line, why members failed, then extra.
func (c *Cluster) problems(extra []string) string {
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

func (c *Cluster) byID(id uint64) *Member {
	for _, m := range c.Members {
		if m.ID == id {
			return m
		}
	}
	return nil
}

func (c *Cluster) byName(name string) *Member {
	for _, m := range c.Members {
		if name != "" && m.Pod.Name == name {
			return m
		}
	}
	return nil
}

// label names a member by its ID, with its name when it is known.
func (c *Cluster) label(id uint64) string {
	if m := c.byID(id); m != nil {
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

// waitHealthy polls m until it is healthy again, for at most
// HealthTimeout, and names the last error if it is not.
func (o *Options) waitHealthy(ctx context.Context, c *Cluster, m *Member) error {
	if err := o.waitFor(ctx, o.HealthTimeout, func() error { return c.health(ctx, m) }); err != nil {
		return fmt.Errorf("member %s is not healthy again: %w", m.Label(), err)
	}
	return nil
}

// during runs f, saying every Progress what is underway and for how
// long, and returns how long f took.
func (o *Options) during(what string, f func() error) (time.Duration, error) {
	start := o.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	if o.Progress > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(o.Progress)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					o.notef("  still %s: %s elapsed", what, o.Now().Sub(start).Round(time.Second))
				}
			}
		}()
	}
	err := f()
	close(done)
	wg.Wait()
	return o.Now().Sub(start), err
}

// alarmNoSpace is the alarm a full database raises; maintenance is what
// clears it, so it does not stop maintenance.
const alarmNoSpace = "NOSPACE"

func hexOrEmpty(id uint64) string {
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

// Every transport's client serves the operations.
var _ Client = etcd.Client(nil)
