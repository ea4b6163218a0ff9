package printers

import (
	"fmt"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/metrics"
)

// CheckTable is the table of `kubectl etcd check`, grouped by area: the
// area is named on its first row only. The plain table folds the rows of
// one check that are ok with the same finding into one row naming their
// members; wide keeps a row per member.
func CheckTable(r *doctor.Report) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		var rows [][]string
		last := ""
		results := r.Results
		for i := 0; i < len(results); i++ {
			x := results[i]
			member := dash(x.Member)
			if !wide {
				j := i
				for j+1 < len(results) && foldable(x, results[j+1]) {
					j++
					member += "," + results[j].Member
				}
				i = j
			}
			area := ""
			if x.Area != last {
				area, last = x.Area, x.Area
			}
			rows = append(rows, []string{area, x.Check, member, string(x.Severity), cell(x.Found), dash(x.Fix)})
		}
		return []string{"AREA", "CHECK", "MEMBER", "SEVERITY", "FOUND", "FIX"}, rows
	}
}

func foldable(a, b doctor.Result) bool {
	return a.ID() == b.ID() && a.Severity == doctor.OK && b.Severity == doctor.OK && a.Found == b.Found && a.Member != "" && b.Member != ""
}

// MetricsTable is the table of `kubectl etcd metrics`; wide adds the
// p50s, the node and the version.
func MetricsTable(ms []metrics.Metrics) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		h := []string{"NAME", "ROLE", "HAS LEADER", "WAL FSYNC P99", "COMMIT P99", "PEER RTT P99", "LEADER CHANGES", "SLOW APPLIES", "PROPOSALS FAILED", "PENDING", "DB SIZE", "WINDOW"}
		if wide {
			h = append(h, "WAL FSYNC P50", "COMMIT P50", "NODE", "VERSION")
		}
		h = append(h, "ERROR")
		var rows [][]string
		for _, m := range ms {
			if m.Error != "" {
				r := []string{m.Member, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"}
				if wide {
					r = append(r, "-", "-", dash(m.Node), "-")
				}
				rows = append(rows, append(r, cell(m.Error)))
				continue
			}
			role := "follower"
			if m.IsLeader {
				role = "leader"
			}
			r := []string{m.Member, role, yesNo(m.HasLeader), latency(m.WALFsync.P99, m.WALFsync.Samples), latency(m.BackendCommit.P99, m.BackendCommit.Samples), peerRTT(m.PeerRoundTrip),
				counted(m.LeaderChanges, m.LeaderChangesInWindow), counted(m.SlowApplies, m.SlowAppliesInWindow), counted(m.ProposalsFailed, m.ProposalsFailedInWindow),
				fmt.Sprint(m.ProposalsPending), Bytes(m.DBSize), m.WindowText}
			if wide {
				r = append(r, latency(m.WALFsync.P50, m.WALFsync.Samples), latency(m.BackendCommit.P50, m.BackendCommit.Samples), dash(m.Node), dash(m.Version))
			}
			rows = append(rows, append(r, "-"))
		}
		return h, rows
	}
}

func latency(s float64, samples int64) string {
	if samples == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fms", s*1000)
}

// peerRTT is the slowest peer's p99.
func peerRTT(ps []metrics.PeerLatency) string {
	worst, n := 0.0, int64(0)
	for _, p := range ps {
		if p.Samples > 0 && p.P99 >= worst {
			worst, n = p.P99, p.Samples
		}
	}
	return latency(worst, n)
}

// counted is a counter since start, with its growth in the window.
func counted(total, window int64) string {
	if window == 0 {
		return fmt.Sprint(total)
	}
	return fmt.Sprintf("%d (+%d)", total, window)
}
