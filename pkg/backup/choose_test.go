package backup

import (
	"errors"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// row is a member as the model holds it after a read.
type row struct {
	name    string
	id      uint64
	leader  bool
	learner bool
	applied uint64
	err     string
}

func (r row) member() *cluster.Member {
	m := &cluster.Member{Pod: discovery.Member{Name: r.name, Pod: "etcd-" + r.name, Node: r.name}, ID: r.id}
	if r.err != "" {
		m.Err = errors.New(r.err)
		return m
	}
	m.Status = &etcd.Status{MemberID: r.id, IsLearner: r.learner, RaftAppliedIndex: r.applied, Leader: 0xaa}
	if !r.leader && r.id == 0xaa {
		m.Status.Leader = 0
	}
	return m
}

func TestChooseSource(t *testing.T) {
	leader := row{name: "a", id: 0xaa, leader: true, applied: 100}
	f1 := row{name: "b", id: 0xbb, applied: 99}
	f2 := row{name: "c", id: 0xcc, applied: 100}
	down := row{name: "d", id: 0xdd, err: "connection refused"}
	learner := row{name: "e", id: 0xee, learner: true, applied: 100}
	stale := row{name: "f", id: 0xff, applied: 10}
	bigLeader := row{name: "a", id: 0xaa, leader: true, applied: 5000}
	full := []etcd.Alarm{{MemberID: 0xcc, Type: "NOSPACE"}}
	tests := []struct {
		name    string
		members []row
		alarms  []etcd.Alarm
		want    string
		pick    string
		wantErr string
	}{
		{name: "newest follower", members: []row{leader, f1, f2}, want: "c"},
		{name: "skips down and learner", members: []row{leader, down, learner, f1}, want: "b"},
		{name: "skips an alarmed member", members: []row{leader, f1, f2}, alarms: full, want: "b"},
		{name: "leader when alone", members: []row{leader, down}, want: "a"},
		{name: "leader when followers lag", members: []row{bigLeader, stale}, want: "a"},
		{name: "by name", members: []row{leader, f1}, pick: "a", want: "a"},
		{name: "by node", members: []row{leader, f1}, pick: "b", want: "b"},
		{name: "by pod", members: []row{leader, f1}, pick: "etcd-b", want: "b"},
		{name: "by hex id", members: []row{leader, f1}, pick: "0xBB", want: "b"},
		{name: "picked member down", members: []row{leader, down}, pick: "d", wantErr: "cannot serve"},
		{name: "unknown member", members: []row{leader}, pick: "zz", wantErr: "no member named"},
		{name: "nobody healthy", members: []row{down}, wantErr: "no healthy member"},
		{name: "each cause named", members: []row{down, learner, f2}, alarms: full, wantErr: "d: connection refused\n  e: a learner\n  c: alarm NOSPACE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &cluster.Cluster{Alarms: tc.alarms}
			for _, r := range tc.members {
				c.Members = append(c.Members, r.member())
			}
			got, err := chooseSource(c, tc.pick)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.Pod.Name != tc.want {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}
