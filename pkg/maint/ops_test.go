package maint_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster/clustertest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
)

func TestMoveLeader(t *testing.T) {
	for _, tt := range []struct {
		name    string
		setup   func(c *clustertest.Cluster)
		to      string
		dryRun  bool
		confirm func(string) error
		calls   []string
		want    string // from -> to
		wantErr string
	}{
		{name: "by name", to: "m3", calls: []string{"move-leader m1 -> m3"}, want: "m1 -> m3"},
		{name: "by hex ID", to: "A2", calls: []string{"move-leader m1 -> m2"}, want: "m1 -> m2"},
		{name: "by 0x hex ID", to: "0xa3", calls: []string{"move-leader m1 -> m3"}, want: "m1 -> m3"},
		{name: "the best follower by default", setup: func(c *clustertest.Cluster) { c.Member("m3").Applied = 501 }, calls: []string{"move-leader m1 -> m3"}, want: "m1 -> m3"},
		{name: "an unhealthy follower is not the best", setup: func(c *clustertest.Cluster) { c.Member("m2").Applied = 900; c.Fail["status m2"] = errors.New("down") }, calls: []string{"move-leader m1 -> m3"}, want: "m1 -> m3"},
		{name: "an unhealthy target is refused", setup: func(c *clustertest.Cluster) { c.Fail["get m2"] = errors.New("no quorum") }, to: "m2", wantErr: "member m2 (a2) cannot take the leadership: it is not healthy: no quorum"},
		{name: "a learner is never the best", setup: func(c *clustertest.Cluster) { c.Member("m2").Learner = true }, calls: []string{"move-leader m1 -> m3"}, want: "m1 -> m3"},
		{name: "a learner cannot lead", setup: func(c *clustertest.Cluster) { c.Member("m2").Learner = true }, to: "m2", wantErr: "m2 (a2) is a learner"},
		{name: "already the leader", to: "m1", want: "m1 -> m1"},
		{name: "unknown member", to: "m9", wantErr: `no member named "m9"`},
		{name: "a leader not the first member", setup: func(c *clustertest.Cluster) { c.Leader = 0xa3 }, to: "m1", calls: []string{"move-leader m3 -> m1"}, want: "m3 -> m1"},
		{name: "dry run", to: "m2", dryRun: true, confirm: refuse, want: "m1 -> m2"},
		{name: "not confirmed", to: "m2", confirm: refuse, wantErr: "not confirmed"},
		{name: "refused by etcd", setup: func(c *clustertest.Cluster) {
			c.Fail["move-leader m1"] = errors.New("etcdserver: bad leader transferee")
		}, to: "m2", wantErr: "moving leadership from m1 (a1) to m2 (a2): etcdserver: bad leader transferee"},
		{name: "no follower in a single-member cluster", setup: func(c *clustertest.Cluster) { c.Members = c.Members[:1] }, wantErr: "no healthy voting follower"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fc := clustertest.New(3, gib, gib/4)
			if tt.setup != nil {
				tt.setup(fc)
			}
			cfg := maint.MoveLeaderConfig{Options: options(&bytes.Buffer{}), To: tt.to}
			cfg.DryRun, cfg.Confirm = tt.dryRun, tt.confirm
			res, err := maint.MoveLeader(context.Background(), fc, fc.Pods(), cfg)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.calls, fc.Changes()); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if tt.want != "" {
				if got := res.From.Name + " -> " + res.To.Name; got != tt.want {
					t.Errorf("result %s, want %s", got, tt.want)
				}
				if res.Moved != (len(tt.calls) > 0) {
					t.Errorf("moved = %t with changes %v", res.Moved, tt.calls)
				}
			}
		})
	}
}

func TestAlarms(t *testing.T) {
	noSpace := func(c *clustertest.Cluster) {
		c.Alarms = []etcd.Alarm{{MemberID: 0xa2, Type: "NOSPACE"}, {MemberID: 0xa3, Type: "NOSPACE"}}
	}
	for _, tt := range []struct {
		name    string
		setup   func(c *clustertest.Cluster)
		dryRun  bool
		confirm func(string) error
		calls   []string
		listed  []string
		wantErr string
		log     string
	}{
		{name: "none raised", log: "No alarm is raised"},
		{name: "disarm all", setup: noSpace, calls: []string{"disarm NOSPACE m2", "disarm NOSPACE m3"}, listed: []string{"NOSPACE m2 a2", "NOSPACE m3 a3"}},
		{name: "an alarm of a member without a pod", setup: func(c *clustertest.Cluster) {
			c.Alarms = []etcd.Alarm{{MemberID: 0xff, Type: "CORRUPT"}}
		}, calls: []string{"disarm CORRUPT ff"}, listed: []string{"CORRUPT  ff"}},
		{name: "a database still at its quota is warned about", setup: func(c *clustertest.Cluster) {
			noSpace(c)
			c.Member("m2").Quota = gib
		}, calls: []string{"disarm NOSPACE m2", "disarm NOSPACE m3"}, listed: []string{"NOSPACE m2 a2", "NOSPACE m3 a3"}, log: "Warning: m2 (a2)'s database (1.0 GiB) nearly fills its quota (1.0 GiB)"},
		{name: "two types at once: one call disarms them all", setup: func(c *clustertest.Cluster) {
			c.Alarms = []etcd.Alarm{{MemberID: 0xa2, Type: "NOSPACE"}, {MemberID: 0xa3, Type: "CORRUPT"}}
		}, calls: []string{"disarm NOSPACE m2", "disarm CORRUPT m3"}, listed: []string{"NOSPACE m2 a2", "CORRUPT m3 a3"}},
		{name: "dry run", setup: noSpace, dryRun: true, confirm: refuse, log: "Dry run"},
		{name: "not confirmed", setup: noSpace, confirm: refuse, wantErr: "not confirmed"},
		{name: "a failed disarm names the alarm", setup: func(c *clustertest.Cluster) {
			noSpace(c)
			c.Fail["disarm m1"] = errors.New("boom")
		}, wantErr: "disarming NOSPACE on m2 (a2): boom"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fc := clustertest.New(3, gib, gib/4)
			if tt.setup != nil {
				tt.setup(fc)
			}
			before := len(fc.Alarms)
			list, err := maint.ListAlarms(context.Background(), fc, fc.Pods())
			if err != nil || len(list.Alarms) != before || list.ClusterID != "c1a55" {
				t.Fatalf("ListAlarms = %+v, %v; want %d alarms", list, err, before)
			}
			var log bytes.Buffer
			o := options(&log)
			o.DryRun, o.Confirm = tt.dryRun, tt.confirm
			res, err := maint.DisarmAlarms(context.Background(), fc, fc.Pods(), o)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.calls, fc.Changes()); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if err == nil {
				var got []string
				for _, a := range res.Alarms {
					got = append(got, strings.Join([]string{a.Alarm, a.Member, a.MemberID}, " "))
				}
				if diff := cmp.Diff(tt.listed, got); diff != "" {
					t.Errorf("disarmed (-want +got):\n%s", diff)
				}
			}
			if !strings.Contains(log.String(), tt.log) {
				t.Errorf("log has no %q:\n%s", tt.log, log.String())
			}
		})
	}
}

func TestCompact(t *testing.T) {
	for _, tt := range []struct {
		name    string
		setup   func(c *clustertest.Cluster)
		rev     int64
		dryRun  bool
		confirm func(string) error
		calls   []string
		want    maint.CompactResult
		wantErr string
	}{
		{name: "a member that cannot wait fails the compaction", setup: func(c *clustertest.Cluster) { c.Fail["compact m3"] = errors.New("boom") }, calls: []string{"compact 1000 physical=true via m1"}, wantErr: "waiting for m3 (a3) to free the history compacted up to revision 1000: boom"},
		{name: "the current revision by default", calls: []string{"compact 1000 physical=true via m1"}, want: maint.CompactResult{RevisionBefore: 1000, Compacted: 1000, RevisionAfter: 1000}},
		{name: "a given revision", rev: 900, calls: []string{"compact 900 physical=true via m1"}, want: maint.CompactResult{RevisionBefore: 1000, Compacted: 900, RevisionAfter: 1000}},
		{name: "through the leader, then waiting on the others", setup: func(c *clustertest.Cluster) { c.Leader = 0xa2; c.Fail["compact m1"] = rpctypes.ErrCompacted }, calls: []string{"compact 1000 physical=true via m2"}, want: maint.CompactResult{RevisionBefore: 1000, Compacted: 1000, RevisionAfter: 1000}},
		{name: "a future revision is refused before etcd sees it", rev: 1001, wantErr: "revision 1001 is after the current revision 1000"},
		{name: "the current revision compacted already is nothing to do", setup: func(c *clustertest.Cluster) { c.Compacted = 1000 }, want: maint.CompactResult{RevisionBefore: 1000, Compacted: 1000, RevisionAfter: 1000}},
		{name: "already compacted", setup: func(c *clustertest.Cluster) { c.Compacted = 950 }, rev: 900, wantErr: "compacting up to revision 900: etcdserver: mvcc: required revision has been compacted"},
		{name: "dry run", dryRun: true, confirm: refuse, want: maint.CompactResult{RevisionBefore: 1000, Compacted: 1000, DryRun: true}},
		{name: "not confirmed", confirm: refuse, wantErr: "not confirmed"},
		{name: "no leader", setup: func(c *clustertest.Cluster) { c.Leader = 0 }, wantErr: "no member says it is the leader"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fc := clustertest.New(3, gib, gib/4)
			if tt.setup != nil {
				tt.setup(fc)
			}
			cfg := maint.CompactConfig{Options: options(&bytes.Buffer{}), Revision: tt.rev}
			cfg.DryRun, cfg.Confirm = tt.dryRun, tt.confirm
			res, err := maint.Compact(context.Background(), fc, fc.Pods(), cfg)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.calls, fc.Changes()); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if err == nil {
				res.Took, res.TookText = 0, ""
				if diff := cmp.Diff(tt.want, *res); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
			}
		})
	}
}
