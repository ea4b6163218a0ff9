package printers

import (
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
)

var defrag = &maint.DefragResult{ClusterID: "f9f44c4ba0e96dd8", CompactedRevision: 9876,
	LeaderMoves: []maint.LeaderMove{{From: cluster.MemberRef{Name: "hc-cp1", ID: "8e9e05c52164694d"}, To: cluster.MemberRef{Name: "hc-cp2", ID: "2d2b4e1f3c7a9b10"}}},
	Members: []maint.DefragMember{
		{MemberRef: cluster.MemberRef{Name: "hc-cp2", ID: "2d2b4e1f3c7a9b10"}, Node: "hc-cp2", Role: "follower", Result: maint.ResultDefragmented, Reason: "1.5 GiB free (75%)",
			Before: maint.Usage{DBSize: 2 << 30, DBSizeInUse: 512 << 20}, After: &maint.Usage{DBSize: 520 << 20, DBSizeInUse: 512 << 20}, Took: 12 * time.Second, TookText: "12.345s"},
		{MemberRef: cluster.MemberRef{Name: "hc-cp3", ID: "c6a1ef15ef73e52b"}, Node: "hc-cp3", Role: "follower", Result: maint.ResultSkipped, Reason: "1.0 MiB free (5%), below --min-free 16 MiB",
			Before: maint.Usage{DBSize: 20 << 20, DBSizeInUse: 19 << 20}},
		{MemberRef: cluster.MemberRef{Name: "hc-cp1", ID: "8e9e05c52164694d"}, Node: "hc-cp1", Role: "leader", Result: maint.ResultFailed, Reason: "1.5 GiB free (75%)",
			Before: maint.Usage{DBSize: 2 << 30, DBSizeInUse: 512 << 20}, TookText: "5s", Error: "defragmenting: context deadline exceeded\nsecond line"},
		{MemberRef: cluster.MemberRef{Name: "hc-cp4"}, Role: "learner", Result: maint.ResultNotStarted},
	}}

var alarms = []maint.AlarmView{
	{MemberID: "8e9e05c52164694d", Member: "hc-cp1", Node: "hc-cp1", Alarm: "NOSPACE"},
	{MemberID: "ffffffffffffffff", Alarm: "CORRUPT"},
}

var moveLeader = &maint.MoveLeaderResult{From: cluster.MemberRef{Name: "hc-cp1", ID: "8e9e05c52164694d"}, To: cluster.MemberRef{Name: "hc-cp2", ID: "2d2b4e1f3c7a9b10"}, Moved: true, Took: time.Second, TookText: "1.002s"}

var compact = &maint.CompactResult{RevisionBefore: 9876, Compacted: 9000, RevisionAfter: 9880, TookText: "310ms"}
