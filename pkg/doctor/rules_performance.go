package doctor

import (
	"fmt"
	"strings"
	"time"
)

// etcd's hardware guide: WAL fsync p99 under 10 ms, backend commit p99
// under 25 ms. Ten times that misses heartbeats and costs elections.
const (
	fsyncWarn  = 0.010
	fsyncFail  = 0.100
	commitWarn = 0.025
	commitFail = 0.250
	// A round trip near the heartbeat interval (100 ms by default)
	// makes followers call elections.
	rttWarn = 0.050
	rttFail = 0.100
	// Proposals waiting for raft; a handful is normal under load.
	pendingWarn = 100
)

// perMetrics runs f on each member whose metrics were read.
func perMetrics(fs *Facts, f func(m *MemberFacts, x *Metrics) Result) []Result {
	var out []Result
	for _, m := range fs.Members {
		if m.Metrics == nil {
			out = append(out, notChecked(m.Name(), errOr(m.MetricsErr, "no metrics")))
			continue
		}
		out = append(out, f(m, m.Metrics))
	}
	return out
}

func ms(s float64) string { return fmt.Sprintf("%.1fms", s*1000) }

func over(l Latency) string {
	if l.SinceStart {
		return fmt.Sprintf("%d samples since start", l.Samples)
	}
	return fmt.Sprintf("%d samples in the window", l.Samples)
}

func judgeLatency(member, what string, l Latency, warn, fail float64, fix string) Result {
	if l.Samples == 0 {
		return res(member, NotChecked, "", "not checked: no %s observed yet", what)
	}
	found := fmt.Sprintf("%s p99 %s, p50 %s (%s)", what, ms(l.P99), ms(l.P50), over(l))
	switch {
	case l.P99 >= fail:
		return res(member, Fail, fix, "%s, above %s", found, ms(fail))
	case l.P99 >= warn:
		return res(member, Warn, fix, "%s, above %s", found, ms(warn))
	}
	return ok(member, "%s", found)
}

func checkHasLeader(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *Metrics) Result {
		switch {
		case !x.hasLeaderSeen:
			return res(m.Name(), NotChecked, "", "not checked: the metrics have no %s", mHasLeader)
		case !x.HasLeader:
			return res(m.Name(), Fail, "the member sees no leader: check that a quorum of members runs and that peers reach each other on port 2380", "etcd_server_has_leader is 0")
		}
		return ok(m.Name(), "has a leader")
	})
}

func checkWALFsync(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *Metrics) Result {
		return judgeLatency(m.Name(), "WAL fsync", x.WALFsync, fsyncWarn, fsyncFail,
			"give etcd a faster disk of its own (SSD, no noisy neighbours); etcd's hardware guide wants fsync p99 under 10ms")
	})
}

func checkBackendCommit(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *Metrics) Result {
		return judgeLatency(m.Name(), "backend commit", x.BackendCommit, commitWarn, commitFail,
			"the disk is slow or the database large: a faster disk, and defragment (kubectl etcd defrag)")
	})
}

// checkLeaderChanges counts the changes of the last hour: the elections
// the member's log records in the hour, else etcd's metric, which counts
// them since the process started and so covers the hour only when that
// was within it. The first election after a start is not a change.
func checkLeaderChanges(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *Metrics) Result {
		if x.LeaderChangesInWindow > 0 {
			return res(m.Name(), Warn, leaderFix, "%d leader change(s) during the %s window", x.LeaderChangesInWindow, x.WindowText)
		}
		sinceStart := max(x.LeaderChanges-1, 0)
		if x.StartTime.IsZero() {
			return res(m.Name(), NotChecked, "", "not checked: the member's start time is unknown; %d leader change(s) since it started", sinceStart)
		}
		up := fs.Now.Sub(x.StartTime)
		changes, found := sinceStart, fmt.Sprintf("since the member started %s ago", up.Round(time.Second))
		switch {
		case m.Elections != nil && up <= electionsSince:
			changes, found = max(*m.Elections-1, 0), found+" (its log)"
		case m.Elections != nil:
			changes, found = *m.Elections, fmt.Sprintf("in the last hour (its log; %d since the member started %s ago)", sinceStart, days(up))
		case up > electionsSince:
			return res(m.Name(), NotChecked, "", "not checked: the last hour's leader changes are in the member's log, which could not be read (%v); %d since it started %s ago",
				errOr(m.ElectionsErr, "not read"), sinceStart, days(up))
		}
		if changes == 0 {
			return ok(m.Name(), "no leader change %s", found)
		}
		return res(m.Name(), Warn, leaderFix+" (a rolling restart also causes some)", "%d leader change(s) %s", changes, found)
	})
}

const leaderFix = "frequent elections mean slow disks or a lossy network: see performance.wal-fsync and performance.peer-rtt, and the members' logs"

func checkSlowApplies(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *Metrics) Result {
		if x.SlowAppliesInWindow > 0 {
			return res(m.Name(), Warn, "applies take over 100ms: a slow disk, a large database, or expensive requests (large ranges); see the member's log",
				"%d slow applies during the window (%d since start)", x.SlowAppliesInWindow, x.SlowApplies)
		}
		return ok(m.Name(), "no slow apply during the window (%d since start)", x.SlowApplies)
	})
}

func checkPeerRTT(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *Metrics) Result {
		if len(x.PeerRoundTrip) == 0 {
			return ok(m.Name(), "no peer")
		}
		var f findings
		var parts []string
		for _, p := range x.PeerRoundTrip {
			if p.Samples == 0 {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s p99 %s", p.To, ms(p.P99)))
			fix := "the network between members is slow: keep members in one region, or raise --heartbeat-interval and --election-timeout to match"
			switch {
			case p.P99 >= rttFail:
				f.add(Fail, fmt.Sprintf("round trip to %s p99 %s, above %s", p.To, ms(p.P99), ms(rttFail)), fix)
			case p.P99 >= rttWarn:
				f.add(Warn, fmt.Sprintf("round trip to %s p99 %s, above %s", p.To, ms(p.P99), ms(rttWarn)), fix)
			}
		}
		if len(parts) == 0 {
			return res(m.Name(), NotChecked, "", "not checked: no round trip measured yet")
		}
		return f.result(m.Name(), "round trip "+strings.Join(parts, ", "))
	})
}

func checkProposals(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *Metrics) Result {
		var f findings
		if x.ProposalsFailedInWindow > 0 {
			f.add(Warn, fmt.Sprintf("%d proposals failed during the window", x.ProposalsFailedInWindow),
				"proposals fail on leader elections and lost quorum: see performance.leader-changes")
		}
		if x.ProposalsPending >= pendingWarn {
			f.add(Warn, fmt.Sprintf("%d proposals pending", x.ProposalsPending), "raft is not keeping up with the writes: check the disk and the leader's load")
		}
		return f.result(m.Name(), fmt.Sprintf("%d pending, none failed in the window (%d since start)", x.ProposalsPending, x.ProposalsFailed))
	})
}
