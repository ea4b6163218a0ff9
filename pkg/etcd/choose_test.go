package etcd

import (
	"strings"
	"testing"
)

func TestChooseSource(t *testing.T) {
	leader := StatusView{Name: "a", ID: "aa", IsLeader: true, RaftAppliedIndex: 100}
	f1 := StatusView{Name: "b", ID: "bb", RaftAppliedIndex: 99}
	f2 := StatusView{Name: "c", ID: "cc", RaftAppliedIndex: 100}
	down := StatusView{Name: "d", ID: "dd", Error: "connection refused"}
	learner := StatusView{Name: "e", ID: "ee", IsLearner: true, RaftAppliedIndex: 100}
	stale := StatusView{Name: "f", ID: "ff", RaftAppliedIndex: 10}
	bigLeader := StatusView{Name: "a", ID: "aa", IsLeader: true, RaftAppliedIndex: 5000}
	tests := []struct {
		name    string
		members []StatusView
		want    string
		pick    string
		wantErr string
	}{
		{name: "newest follower", members: []StatusView{leader, f1, f2}, want: "c"},
		{name: "skips down and learner", members: []StatusView{leader, down, learner, f1}, want: "b"},
		{name: "leader when alone", members: []StatusView{leader, down}, want: "a"},
		{name: "leader when followers lag", members: []StatusView{bigLeader, stale}, want: "a"},
		{name: "by name", members: []StatusView{leader, f1}, pick: "a", want: "a"},
		{name: "by hex id", members: []StatusView{leader, f1}, pick: "0xBB", want: "b"},
		{name: "picked member down", members: []StatusView{leader, down}, pick: "d", wantErr: "cannot serve"},
		{name: "unknown member", members: []StatusView{leader}, pick: "zz", wantErr: "no member named"},
		{name: "nobody healthy", members: []StatusView{down}, wantErr: "no healthy member"},
		{name: "each cause named", members: []StatusView{down, learner}, wantErr: "d: connection refused\n  e: a learner"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ChooseSource(&StatusListView{Members: tc.members}, tc.pick)
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

// One meaning of --member everywhere: a member's name, node or pod, or
// its hex ID in any case, with or without 0x.
func TestNames(t *testing.T) {
	const id = 0x8e9e05c52164694d
	for _, tt := range []struct {
		want string
		ok   bool
	}{
		{"hc-cp1", true}, {"node-1", true}, {"etcd-hc-cp1", true},
		{"8e9e05c52164694d", true}, {"0x8E9E05C52164694D", true},
		{"", false}, {"hc-cp", false}, {"8e9e05c5216469", false}, {"zz", false},
	} {
		if got := Names(tt.want, "hc-cp1", "node-1", "etcd-hc-cp1", id); got != tt.ok {
			t.Errorf("Names(%q) = %t, want %t", tt.want, got, tt.ok)
		}
	}
	if Names("0", "a", "b", "c", 0) {
		t.Error("an unknown ID (0) matched")
	}
}
