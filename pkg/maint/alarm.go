package maint

import (
	"context"
	"fmt"

	"github.com/dustin/go-humanize"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// AlarmView is one raised alarm.
type AlarmView struct {
	MemberID string `json:"memberID"`
	Member   string `json:"member,omitempty"` // its name, when it has a pod
	Node     string `json:"node,omitempty"`
	Alarm    string `json:"alarm"`
}

// MemberLabel names the alarm's member: name and hex ID.
func (a AlarmView) MemberLabel() string {
	if a.Member == "" {
		return a.MemberID
	}
	return fmt.Sprintf("%s (%s)", a.Member, a.MemberID)
}

// AlarmListView is the answer of `kubectl etcd alarm list`.
type AlarmListView struct {
	ClusterID string      `json:"clusterID"`
	Alarms    []AlarmView `json:"alarms"`
}

func alarmViews(c *cluster.Cluster, as []etcd.Alarm) []AlarmView {
	out := []AlarmView{}
	for _, a := range as {
		v := AlarmView{MemberID: etcd.HexID(a.MemberID), Alarm: a.Type}
		if m := c.ByID(a.MemberID); m != nil {
			v.Member, v.Node = m.Pod.Name, m.Pod.Node
		}
		out = append(out, v)
	}
	return out
}

// openAlarms opens the cluster, which must have answered the alarm list.
func openAlarms(ctx context.Context, d etcd.Transport, pods []discovery.Member) (*cluster.Cluster, error) {
	c, err := cluster.Open(ctx, d, pods)
	if err != nil {
		return nil, err
	}
	if c.ListErr != nil {
		c.Close()
		return nil, fmt.Errorf("listing the alarms: %w", c.ListErr)
	}
	return c, nil
}

// ListAlarms lists the alarms raised in the cluster.
func ListAlarms(ctx context.Context, d etcd.Transport, pods []discovery.Member) (*AlarmListView, error) {
	c, err := openAlarms(ctx, d, pods)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return &AlarmListView{ClusterID: cluster.HexOrEmpty(c.ClusterID), Alarms: alarmViews(c, c.Alarms)}, nil
}

// DisarmAlarms disarms every alarm raised, after a warning for each
// member whose database still fills its quota: its NOSPACE alarm comes
// back with the next write.
func DisarmAlarms(ctx context.Context, d etcd.Transport, pods []discovery.Member, o Options) (*AlarmListView, error) {
	o.Defaults()
	c, err := openAlarms(ctx, d, pods)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res := &AlarmListView{ClusterID: cluster.HexOrEmpty(c.ClusterID), Alarms: []AlarmView{}}
	if len(c.Alarms) == 0 {
		o.Notef("No alarm is raised; nothing to do")
		return res, nil
	}
	o.Notef("Plan: disarm %d alarms:", len(c.Alarms))
	for _, a := range alarmViews(c, c.Alarms) {
		o.Notef("  %s on %s", a.Alarm, a.MemberLabel())
	}
	warnFull(c, &o)
	if o.DryRun {
		o.Notef("Dry run: nothing was changed")
		return res, nil
	}
	if err := o.Confirm(fmt.Sprintf("Disarm %d alarms?", len(c.Alarms))); err != nil {
		return nil, err
	}
	res.Alarms, err = disarmAlarms(ctx, c, "")
	return res, err
}

// disarmAlarms disarms the raised alarms of type typ ("" for all), one
// by one, and checks that none of them is raised any more. With typ ""
// and alarms of more than one type raised, it disarms them in one call:
// the user confirmed them all, and over etcdctl (one verb disarms every
// alarm) one alarm alone is refused while another type is raised.
func disarmAlarms(ctx context.Context, c *cluster.Cluster, typ string) ([]AlarmView, error) {
	cl := c.Any()
	as, err := cl.AlarmList(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the alarms: %w", err)
	}
	var done []etcd.Alarm
	if typ == "" && len(alarmTypes(as)) > 1 {
		if _, err := cl.AlarmDisarm(ctx, etcd.Alarm{}); err != nil {
			return nil, fmt.Errorf("disarming every alarm: %w", err)
		}
		done, as = as, nil
	}
	for _, a := range as {
		if typ != "" && a.Type != typ {
			continue
		}
		if _, err := cl.AlarmDisarm(ctx, a); err != nil {
			return alarmViews(c, done), fmt.Errorf("disarming %s on %s: %w", a.Type, c.LabelOf(a.MemberID), err)
		}
		done = append(done, a)
	}
	left, err := cl.AlarmList(ctx)
	if err != nil {
		return alarmViews(c, done), fmt.Errorf("listing the alarms after disarming them: %w", err)
	}
	for _, a := range left {
		if typ == "" || a.Type == typ {
			return alarmViews(c, done), fmt.Errorf("alarm %s on %s is raised again: its database is still over its quota; run `kubectl etcd defrag --compact --disarm`", a.Type, c.LabelOf(a.MemberID))
		}
	}
	return alarmViews(c, done), nil
}

// warnFull warns about each member whose database is within 5% of its
// quota: etcd raises NOSPACE again as soon as it writes.
func warnFull(c *cluster.Cluster, o *Options) {
	for _, m := range c.Members {
		if m.Status == nil {
			continue
		}
		quota := m.Status.DBSizeQuota
		if quota <= 0 {
			quota = m.Pod.QuotaBackendBytes
		}
		if quota > 0 && m.Status.DBSize >= quota-quota/20 {
			o.Notef("Warning: %s's database (%s) nearly fills its quota (%s): the NOSPACE alarm comes back with the next writes unless it is compacted and defragmented first (kubectl etcd defrag --compact --disarm)",
				m.Label(), humanize.IBytes(uint64(m.Status.DBSize)), humanize.IBytes(uint64(quota)))
		}
	}
}

// alarmTypes are the distinct types of as.
func alarmTypes(as []etcd.Alarm) map[string]bool {
	out := map[string]bool{}
	for _, a := range as {
		out[a.Type] = true
	}
	return out
}
