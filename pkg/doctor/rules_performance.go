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

// checkLeaderChanges: etcd counts changes since the process started.
// When that was within the hour, all of them are in the last hour; the
// first election is not a change.
func checkLeaderChanges(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *Metrics) Result {
		fix := "frequent elections mean slow disks or a lossy network: see performance.wal-fsync and performance.peer-rtt, and the members' logs"
		changes := max(x.LeaderChanges-1, 0)
		if x.LeaderChangesInWindow > 0 {
			return res(m.Name(), Warn, fix, "%d leader change(s) during the %s window", x.LeaderChangesInWindow, x.WindowText)
		}
		if x.StartTime.IsZero() {
			return ok(m.Name(), "%d leader change(s) since the member started", changes)
		}
		up := fs.Now.Sub(x.StartTime)
		if up <= time.Hour && changes > 0 {
			return res(m.Name(), Warn, fix+" (a rolling restart also causes some)", "%d leader change(s) in the last hour (up %s)", changes, up.Round(time.Second))
		}
		return ok(m.Name(), "%d leader change(s) since the member started %s ago", changes, days(up))
	})
}

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
