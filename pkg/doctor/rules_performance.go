package doctor

import (
	"fmt"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/metrics"
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
func perMetrics(fs *Facts, f func(m *MemberFacts, x *metrics.Metrics) Result) []Result {
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

func over(l metrics.Latency) string {
	if l.SinceStart {
		return fmt.Sprintf("%d samples since start", l.Samples)
	}
	return fmt.Sprintf("%d samples in the window", l.Samples)
}

func judgeLatency(member, what string, l metrics.Latency, warn, fail float64, fix string) Result {
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
	return perMetrics(fs, func(m *MemberFacts, x *metrics.Metrics) Result {
		switch {
		case !x.HasLeaderSeen:
			return res(m.Name(), NotChecked, "", "not checked: the metrics have no %s", metrics.HasLeaderName)
		case !x.HasLeader:
			return res(m.Name(), Fail, "the member sees no leader: check that a quorum of members runs and that peers reach each other on port 2380", "etcd_server_has_leader is 0")
		}
		return ok(m.Name(), "has a leader")
	})
}

func checkWALFsync(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *metrics.Metrics) Result {
		return judgeLatency(m.Name(), "WAL fsync", x.WALFsync, fsyncWarn, fsyncFail,
			"give etcd a faster disk of its own (SSD, no noisy neighbours); etcd's hardware guide wants fsync p99 under 10ms")
	})
}

func checkBackendCommit(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *metrics.Metrics) Result {
		return judgeLatency(m.Name(), "backend commit", x.BackendCommit, commitWarn, commitFail,
			"the disk is slow or the database large: a faster disk, and defragment (kubectl etcd defrag)")
	})
}

// logSlack is how much later than the hour (or the member's start) a
// log may begin and still cover it: etcd logs at least every few
// minutes on a Kubernetes control plane (the API server compacts every
// 5), so a log that begins later was rotated meanwhile.
const logSlack = 10 * time.Minute

// checkLeaderChanges counts the changes of the last hour. For a member
// up less than an hour etcd's counter since it started is exact (the
// first election is no change), and its log is compared with it; beyond
// the hour the elections its log records in the hour count, at least,
// when the log was rotated within it.
func checkLeaderChanges(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *metrics.Metrics) Result {
		if x.LeaderChangesInWindow > 0 {
			return res(m.Name(), Warn, leaderFix, "%d leader change(s) during the %s window", x.LeaderChangesInWindow, x.WindowText)
		}
		sinceStart := max(x.LeaderChanges-1, 0)
		if x.StartTime.IsZero() {
			return res(m.Name(), NotChecked, "", "not checked: the member's start time is unknown; %d leader change(s) since it started", sinceStart)
		}
		up, e := fs.Now.Sub(x.StartTime), m.Elections
		if up <= electionsSince {
			found := fmt.Sprintf("since the member started %s ago", up.Round(time.Second))
			switch {
			case e == nil:
			case logCovers(e, x.StartTime) && max(e.Count-1, 0) == sinceStart:
				found += " (its log agrees)"
			case logCovers(e, x.StartTime):
				found += fmt.Sprintf(" (its log records %d)", max(e.Count-1, 0))
			}
			return leaderResult(m.Name(), sinceStart, found)
		}
		hourAgo := fs.Now.Add(-electionsSince)
		switch {
		case e == nil:
			return res(m.Name(), NotChecked, "", "not checked: the last hour's leader changes are in the member's log, which could not be read (%v); %d since it started %s ago",
				errOr(m.ElectionsErr, "not read"), sinceStart, days(up))
		case logCovers(e, hourAgo):
			return leaderResult(m.Name(), e.Count, fmt.Sprintf("in the last hour (its log; %d since the member started %s ago)", sinceStart, days(up)))
		case e.Count > 0:
			return res(m.Name(), Warn, leaderFix, "at least %d leader change(s) in the last hour (its log, rotated, begins %s ago)", e.Count, days(fs.Now.Sub(e.From)))
		}
		return res(m.Name(), NotChecked, "", "not checked: the member's log was rotated %s ago and shows no leader change since; %d since the member started %s ago",
			days(fs.Now.Sub(e.From)), sinceStart, days(up))
	})
}

// logCovers says whether the log reaches back to from: it begins by then,
// give or take logSlack, or has no line at all since then.
func logCovers(e *LogElections, from time.Time) bool {
	return e.From.IsZero() || !e.From.After(from.Add(logSlack))
}

func leaderResult(member string, changes int64, found string) Result {
	if changes == 0 {
		return ok(member, "no leader change %s", found)
	}
	return res(member, Warn, leaderFix+" (a rolling restart also causes some)", "%d leader change(s) %s", changes, found)
}

const leaderFix = "frequent elections mean slow disks or a lossy network: see performance.wal-fsync and performance.peer-rtt, and the members' logs"

func checkSlowApplies(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *metrics.Metrics) Result {
		if x.SlowAppliesInWindow > 0 {
			return res(m.Name(), Warn, "applies take over 100ms: a slow disk, a large database, or expensive requests (large ranges); see the member's log",
				"%d slow applies during the window (%d since start)", x.SlowAppliesInWindow, x.SlowApplies)
		}
		return ok(m.Name(), "no slow apply during the window (%d since start)", x.SlowApplies)
	})
}

func checkPeerRTT(fs *Facts) []Result {
	return perMetrics(fs, func(m *MemberFacts, x *metrics.Metrics) Result {
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
	return perMetrics(fs, func(m *MemberFacts, x *metrics.Metrics) Result {
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
