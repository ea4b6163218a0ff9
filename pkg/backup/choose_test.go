package backup

import (
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

func TestChooseSource(t *testing.T) {
	leader := etcd.StatusView{Name: "a", ID: "aa", IsLeader: true, RaftAppliedIndex: 100}
	f1 := etcd.StatusView{Name: "b", ID: "bb", RaftAppliedIndex: 99}
	f2 := etcd.StatusView{Name: "c", ID: "cc", RaftAppliedIndex: 100}
	down := etcd.StatusView{Name: "d", ID: "dd", Error: "connection refused"}
	learner := etcd.StatusView{Name: "e", ID: "ee", IsLearner: true, RaftAppliedIndex: 100}
	stale := etcd.StatusView{Name: "f", ID: "ff", RaftAppliedIndex: 10}
	bigLeader := etcd.StatusView{Name: "a", ID: "aa", IsLeader: true, RaftAppliedIndex: 5000}
	tests := []struct {
		name    string
		members []etcd.StatusView
		want    string
		pick    string
		wantErr string
	}{
		{name: "newest follower", members: []etcd.StatusView{leader, f1, f2}, want: "c"},
		{name: "skips down and learner", members: []etcd.StatusView{leader, down, learner, f1}, want: "b"},
		{name: "leader when alone", members: []etcd.StatusView{leader, down}, want: "a"},
		{name: "leader when followers lag", members: []etcd.StatusView{bigLeader, stale}, want: "a"},
		{name: "by name", members: []etcd.StatusView{leader, f1}, pick: "a", want: "a"},
		{name: "by hex id", members: []etcd.StatusView{leader, f1}, pick: "0xBB", want: "b"},
		{name: "picked member down", members: []etcd.StatusView{leader, down}, pick: "d", wantErr: "cannot serve"},
		{name: "unknown member", members: []etcd.StatusView{leader}, pick: "zz", wantErr: "no member named"},
		{name: "nobody healthy", members: []etcd.StatusView{down}, wantErr: "no healthy member"},
		{name: "each cause named", members: []etcd.StatusView{down, learner}, wantErr: "d: connection refused\n  e: a learner"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseSource(&etcd.StatusListView{Members: tc.members}, tc.pick)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.Name != tc.want {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}
