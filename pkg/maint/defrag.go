package maint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// Defaults of the rule that skips members not worth defragmenting: the
// pause a defragmentation costs buys back little below them.
const (
	DefaultMinFreeRatio       = 0.3
	DefaultMinFree      int64 = 16 << 20
)

// DefragConfig is what `kubectl etcd defrag` asks for.
type DefragConfig struct {
	Options
	// Compact first compacts the history up to the current revision,
	// waiting until every member has freed it, and then defragments
	// every member: bbolt counts the pages a compaction frees only at
	// the commits of later writes, so the skip rule cannot judge them.
	Compact bool
	// NoMoveLeader defragments the leader without handing leadership
	// to a follower first.
	NoMoveLeader bool
	// A member is defragmented only when both MinFree bytes and
	// MinFreeRatio of its database are free, or with Force.
	MinFreeRatio float64
	MinFree      int64
	Force        bool
	// Disarm disarms the NOSPACE alarms once every member is done.
	Disarm bool
}

// Results of one member.
const (
	ResultPlanned      = "defragment" // a dry run's plan
	ResultSkip         = "skip"       // a dry run's plan
	ResultDefragmented = "defragmented"
	ResultSkipped      = "skipped"
	ResultFailed       = "failed"
	ResultNotStarted   = "not started"
)

// DefragResult is what a defrag did, member by member in the order it
// went.
type DefragResult struct {
	ClusterID         string         `json:"clusterID"`
	DryRun            bool           `json:"dryRun,omitempty"`
	CompactedRevision int64          `json:"compactedRevision,omitempty"`
	LeaderMoves       []LeaderMove   `json:"leaderMoves,omitempty"`
	Members           []DefragMember `json:"members"`
	Disarmed          []AlarmView    `json:"disarmed,omitempty"`
}

// LeaderMove is one hand-over of leadership.
type LeaderMove struct {
	From cluster.MemberRef `json:"from"`
	To   cluster.MemberRef `json:"to"`
}

// DefragMember is one member's step.
type DefragMember struct {
	cluster.MemberRef
	Node   string `json:"node,omitempty"`
	Role   string `json:"role"` // leader, follower or learner, when planned
	Result string `json:"result"`
	// Reason says why it is (or was) defragmented or skipped.
	Reason   string        `json:"reason,omitempty"`
	Before   Usage         `json:"before"`
	After    *Usage        `json:"after,omitempty"`
	Took     time.Duration `json:"-"`
	TookText string        `json:"took,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Usage is a member's database file size and the bytes in use in it.
type Usage struct {
	DBSize      int64 `json:"dbSize"`
	DBSizeInUse int64 `json:"dbSizeInUse"`
}

func usageOf(st *etcd.Status) Usage { return Usage{DBSize: st.DBSize, DBSizeInUse: st.DBSizeInUse} }

// Free is the bytes a defragmentation would give back.
func (u Usage) Free() int64 { return max(u.DBSize-u.DBSizeInUse, 0) }

// FreeRatio is Free's share of the file; 0 for an empty file.
func (u Usage) FreeRatio() float64 {
	if u.DBSize <= 0 {
		return 0
	}
	return float64(u.Free()) / float64(u.DBSize)
}

// Worth says whether a member with u is to be defragmented, and why.
func (cfg *DefragConfig) Worth(u Usage) (bool, string) {
	free := fmt.Sprintf("%s free (%.0f%%)", humanize.IBytes(uint64(u.Free())), 100*u.FreeRatio())
	switch {
	case cfg.Force:
		return true, free + ", --force"
	case u.Free() < cfg.MinFree:
		return false, fmt.Sprintf("%s, below --min-free %s", free, humanize.IBytes(uint64(cfg.MinFree)))
	case u.FreeRatio() < cfg.MinFreeRatio:
		return false, fmt.Sprintf("%s, below --min-free-ratio %.2f", free, cfg.MinFreeRatio)
	}
	return true, free
}

// Defrag defragments the members one at a time, followers first and the
// leader last, each healthy again before the next starts.
func Defrag(ctx context.Context, d etcd.Transport, pods []discovery.Member, cfg DefragConfig) (*DefragResult, error) {
	cfg.Defaults()
	c, err := cluster.Open(ctx, d, pods)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Preflight(ctx, alarmNoSpace); err != nil {
		return nil, err
	}
	r := &defragRun{cfg: &cfg, c: c, order: DefragOrder(c)}
	todo := r.plan()
	if cfg.DryRun {
		cfg.Notef("Dry run: nothing was changed")
		return r.res, nil
	}
	if !todo {
		cfg.Notef("Nothing to do: no member is worth defragmenting (--force defragments them all)")
		for i := range r.res.Members {
			r.res.Members[i].Result = ResultSkipped
		}
		return r.res, nil
	}
	if err := cfg.Confirm(fmt.Sprintf("Carry out this plan (%d of %d members to defragment)?", r.planned(), len(r.order))); err != nil {
		return nil, err
	}
	if err := r.run(ctx); err != nil {
		if hint.Of(err) == "" {
			err = hint.With(err, "check `kubectl etcd health`, then run the command again: the members done already have little left to give back and are skipped (unless --compact or --force)")
		}
		return r.res, err
	}
	return r.res, nil
}

// DefragOrder is the followers by name, then the leader.
func DefragOrder(c *cluster.Cluster) []*cluster.Member {
	var out []*cluster.Member
	for _, m := range c.Members {
		if !m.IsLeader() {
			out = append(out, m)
		}
	}
	if l := c.Leader(); l != nil {
		out = append(out, l)
	}
	return out
}

type defragRun struct {
	cfg   *DefragConfig
	c     *cluster.Cluster
	order []*cluster.Member
	res   *DefragResult
}

// plan fills the result with the planned rows, prints the plan, and
// reports whether there is anything to do.
func (r *defragRun) plan() bool {
	cfg := r.cfg
	r.res = &DefragResult{ClusterID: cluster.HexOrEmpty(r.c.ClusterID), DryRun: cfg.DryRun}
	cfg.Notef("Plan: %d members, one at a time, each healthy again before the next:", len(r.order))
	step := 0
	stepf := func(format string, args ...any) { step++; cfg.Notef("  %d. "+format, append([]any{step}, args...)...) }
	todo := cfg.Compact || (cfg.Disarm && r.hasNoSpace())
	if cfg.Compact {
		stepf("compact the history up to the current revision (%d), and wait until the backend has freed it", r.c.Leader().Status.Revision)
	}
	for _, m := range r.order {
		row := DefragMember{MemberRef: m.Ref(), Node: m.Pod.Node, Role: role(m), Before: usageOf(m.Status)}
		ok, why := r.decide(m)
		row.Result, row.Reason = ResultSkip, why
		if !ok {
			stepf("skip %s, %s: %s", m.Label(), article(row.Role), why)
		} else {
			row.Result, todo = ResultPlanned, true
			r.planLeader(m, stepf)
			stepf("defragment %s, %s: %s", m.Label(), article(row.Role), why)
		}
		r.res.Members = append(r.res.Members, row)
	}
	if cfg.Disarm {
		stepf("disarm the NOSPACE alarms (%d raised now)", r.countNoSpace())
	}
	return todo
}

// planLeader says what happens to the leadership before m, the leader,
// is defragmented.
func (r *defragRun) planLeader(m *cluster.Member, stepf func(string, ...any)) {
	switch {
	case !m.IsLeader():
	case len(r.c.Members) == 1:
		r.cfg.Notef("  warning: %s is the only member: reads and writes stall until its defragmentation ends", m.Label())
	case r.cfg.NoMoveLeader:
		r.cfg.Notef("  warning: the leader %s keeps the leadership (--no-move-leader): writes stall until its defragmentation ends", m.Label())
	default:
		to := "the best follower"
		if b := r.c.BestFollower(m); b != nil {
			to = b.Label()
		}
		stepf("move the leadership from %s to %s", m.Label(), to)
	}
}

// decide applies the skip rule to m, except that with --compact every
// member is defragmented, and so is a member with a NOSPACE alarm.
func (r *defragRun) decide(m *cluster.Member) (bool, string) {
	ok, why := r.cfg.Worth(usageOf(m.Status))
	switch {
	case ok:
	case r.cfg.Compact:
		return true, "--compact defragments every member"
	case r.alarmed(m):
		return true, "its NOSPACE alarm is raised"
	}
	return ok, why
}

func (r *defragRun) alarmed(m *cluster.Member) bool {
	for _, a := range r.c.Alarms {
		if a.Type == alarmNoSpace && a.MemberID == m.ID {
			return true
		}
	}
	return false
}

func (r *defragRun) planned() int {
	n := 0
	for _, row := range r.res.Members {
		if row.Result == ResultPlanned {
			n++
		}
	}
	return n
}

func article(role string) string {
	if role == "leader" {
		return "the leader"
	}
	return "a " + role
}

func role(m *cluster.Member) string {
	switch {
	case m.IsLeader():
		return "leader"
	case m.IsLearner():
		return "learner"
	}
	return "follower"
}

// run carries the plan out, and stops at the first step that fails:
// the members after it are left as they were.
func (r *defragRun) run(ctx context.Context) error {
	if r.cfg.Compact {
		if err := r.compact(ctx); err != nil {
			r.markNotStarted(0)
			return fmt.Errorf("defrag stopped before any member: %w", err)
		}
	}
	for i, m := range r.order {
		if err := r.member(ctx, m, &r.res.Members[i]); err != nil {
			r.markNotStarted(i + 1)
			return fmt.Errorf("defrag stopped at member %s (the members after it were not touched): %w", m.Label(), err)
		}
	}
	if r.cfg.Disarm {
		if err := r.disarm(ctx); err != nil {
			return fmt.Errorf("every member is done, but disarming the NOSPACE alarms failed: %w", err)
		}
	}
	return nil
}

func (r *defragRun) markNotStarted(from int) {
	for i := from; i < len(r.res.Members); i++ {
		row := &r.res.Members[i]
		row.Result, row.Reason = ResultNotStarted, ""
	}
}

// compact compacts up to the current revision, and waits until every
// member has freed the history.
func (r *defragRun) compact(ctx context.Context) error {
	l := r.c.Leader()
	if err := r.c.Refresh(ctx, l); err != nil {
		return fmt.Errorf("reading the current revision from %s: %w", l.Label(), err)
	}
	rev := l.Status.Revision
	r.cfg.Notef("Compacting the history up to revision %d", rev)
	took, err := r.cfg.During(fmt.Sprintf("compacting up to revision %d", rev), func() error { return compact(r.c, ctx, l, rev, true) })
	if err != nil {
		return err
	}
	r.cfg.Notef("Compacted up to revision %d in %s", rev, roundTook(took))
	r.res.CompactedRevision = rev
	return nil
}

// member defragments m if it is worth it, moving the leadership away
// first when m leads.
func (r *defragRun) member(ctx context.Context, m *cluster.Member, row *DefragMember) error {
	fail := func(err error) error {
		row.Result, row.Error = ResultFailed, err.Error()
		return err
	}
	if err := r.c.Refresh(ctx, m); err != nil {
		return fail(fmt.Errorf("reading its status: %w", err))
	}
	row.Before = usageOf(m.Status)
	ok, why := r.decide(m)
	row.Reason = why
	if !ok {
		row.Result = ResultSkipped
		r.cfg.Notef("Skipping %s: %s", m.Label(), why)
		return nil
	}
	if err := r.leaveLeadership(ctx, m); err != nil {
		return fail(err)
	}
	r.cfg.Notef("Defragmenting %s: DB %s, %s in use", m.Label(), humanize.IBytes(uint64(row.Before.DBSize)), humanize.IBytes(uint64(row.Before.DBSizeInUse)))
	took, err := r.cfg.During("defragmenting "+m.Label(), func() error { return m.Client().Defragment(ctx) })
	row.Took, row.TookText = took, roundTook(took).String()
	if err != nil && ctx.Err() != nil {
		// The RPC ends, the defragmentation does not: etcd has no way
		// to stop one, and the member stalls until it is done.
		return fail(fmt.Errorf("interrupted after %s: etcd carries on defragmenting %s by itself (it cannot be stopped) and the member answers again once it is done; watch it with `kubectl etcd status`. The members after it were not touched: %w", roundTook(took), m.Label(), err))
	}
	if err != nil {
		return fail(fmt.Errorf("defragmenting: %w", err))
	}
	if err := r.cfg.WaitHealthy(ctx, r.c, m); err != nil {
		return fail(err)
	}
	after := usageOf(m.Status)
	row.Result, row.After = ResultDefragmented, &after
	r.cfg.Notef("Defragmented %s in %s: DB %s -> %s", m.Label(), roundTook(took), humanize.IBytes(uint64(row.Before.DBSize)), humanize.IBytes(uint64(after.DBSize)))
	return nil
}

// leaveLeadership hands the leadership to the best follower when m
// leads, unless --no-move-leader or m is alone, which it warns about.
func (r *defragRun) leaveLeadership(ctx context.Context, m *cluster.Member) error {
	switch {
	case !m.IsLeader():
		return nil
	case len(r.c.Members) == 1:
		r.cfg.Notef("Warning: %s is the only member: reads and writes stall until its defragmentation ends", m.Label())
		return nil
	}
	if r.cfg.NoMoveLeader {
		r.cfg.Notef("Warning: defragmenting the leader %s without moving the leadership: writes stall until it is done", m.Label())
		return nil
	}
	r.c.RefreshAll(ctx)
	to := r.c.BestFollower(m)
	if to == nil {
		return errors.New("no healthy follower to take the leadership; use --no-move-leader to defragment the leader as it is")
	}
	if _, err := moveLeader(ctx, &r.cfg.Options, r.c, m, to); err != nil {
		return err
	}
	r.res.LeaderMoves = append(r.res.LeaderMoves, LeaderMove{From: m.Ref(), To: to.Ref()})
	return nil
}

func (r *defragRun) hasNoSpace() bool { return r.countNoSpace() > 0 }

func (r *defragRun) countNoSpace() int {
	n := 0
	for _, a := range r.c.Alarms {
		if a.Type == alarmNoSpace {
			n++
		}
	}
	return n
}

// disarm disarms every NOSPACE alarm raised now.
func (r *defragRun) disarm(ctx context.Context) error {
	views, err := disarmAlarms(ctx, r.c, alarmNoSpace)
	r.res.Disarmed = views
	if err != nil {
		return err
	}
	if len(views) == 0 {
		r.cfg.Notef("No NOSPACE alarm to disarm")
	}
	for _, a := range views {
		r.cfg.Notef("Disarmed %s on %s", a.Alarm, a.MemberLabel())
	}
	return nil
}
