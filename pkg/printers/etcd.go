package printers

import (
	"time"

	"fmt"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
)

// MembersTable is the table of `kubectl etcd members`.
func MembersTable(v *cluster.MemberListView) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		h := []string{"ID", "NAME", "NODE", "STATUS", "LEARNER", "PEER URLS", "CLIENT URLS"}
		if wide {
			h = append(h, "POD")
		}
		var rows [][]string
		for _, m := range v.Members {
			r := []string{m.ID, dash(m.Name), dash(m.Node), m.Status, yesNo(m.IsLearner), list(m.PeerURLs), list(m.ClientURLs)}
			if wide {
				r = append(r, dash(m.Pod))
			}
			rows = append(rows, r)
		}
		return h, rows
	}
}

// HealthTable is the table of `kubectl etcd health`.
func HealthTable(v []cluster.HealthView) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		h := []string{"NAME", "NODE", "HEALTHY", "TOOK", "ERROR"}
		if wide {
			h = []string{"NAME", "NODE", "POD", "ENDPOINT", "HEALTHY", "TOOK", "ERROR"}
		}
		var rows [][]string
		for _, m := range v {
			if wide {
				rows = append(rows, []string{m.Name, dash(m.Node), dash(m.Pod), dash(m.Endpoint), fmt.Sprint(m.Healthy), m.TookText, cell(m.Error)})
			} else {
				rows = append(rows, []string{m.Name, dash(m.Node), fmt.Sprint(m.Healthy), m.TookText, cell(m.Error)})
			}
		}
		return h, rows
	}
}

// StatusTable is the table of `kubectl etcd status`.
func StatusTable(v *cluster.StatusListView) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		h := []string{"NAME", "NODE", "ID", "VERSION", "DB SIZE", "IN USE", "QUOTA", "LEADER", "LEARNER", "RAFT TERM", "RAFT INDEX", "APPLIED", "ALARMS", "ERRORS"}
		if wide {
			h = append(h[:4], append([]string{"STORAGE"}, h[4:]...)...)
			h = append(h, "REVISION", "POD")
		}
		var rows [][]string
		for _, m := range v.Members {
			if m.Error != "" {
				r := []string{m.Name, dash(m.Node), dash(m.ID), "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", cell(m.Error)}
				if wide {
					r = append(r[:4], append([]string{"-"}, r[4:]...)...)
					r = append(r, "-", dash(m.Pod))
				}
				rows = append(rows, r)
				continue
			}
			r := []string{m.Name, dash(m.Node), m.ID, m.Version,
				Bytes(m.DBSize), inUse(m.DBSizeInUse, m.DBSize), Bytes(m.Quota),
				yesNo(m.IsLeader), yesNo(m.IsLearner),
				fmt.Sprint(m.RaftTerm), fmt.Sprint(m.RaftIndex), fmt.Sprint(m.RaftAppliedIndex),
				list(m.Alarms), list(m.Errors)}
			if wide {
				r = append(r[:4], append([]string{dash(m.StorageVersion)}, r[4:]...)...)
				r = append(r, fmt.Sprint(m.Revision), dash(m.Pod))
			}
			rows = append(rows, r)
		}
		return h, rows
	}
}

// Bytes is a size for people: "12 MB" style, IEC units as etcd's own docs use.
func Bytes(n int64) string {
	if n < 0 {
		return "-"
	}
	return humanize.IBytes(uint64(n))
}

// inUse shows the bytes in use and their share of the file. A zero DB size
// (a member that has just started) must not divide by zero.
func inUse(used, size int64) string {
	if size <= 0 {
		return Bytes(used)
	}
	return fmt.Sprintf("%s (%d%%)", Bytes(used), used*100/size)
}

func yesNo(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

// MembershipTable is the table of `kubectl etcd member remove|add|promote`:
// the member list after the change.
func MembershipTable(v *membership.Result) TableFunc {
	if v.Members == nil {
		return func(bool) ([]string, [][]string) {
			return []string{"ID", "NAME"}, [][]string{{dash(v.Member.ID), dash(v.Member.Name)}}
		}
	}
	return MembersTable(v.Members)
}

// cell is an error's text for a table cell: one line, at most 200 bytes,
// "-" when empty.
func cell(s string) string { return dash(hint.OneLine(s)) }

// ReplaceTable is a member replace: the member list after it, or, for
// --status, each journal's steps.
func ReplaceTable(v *membership.ReplaceResult) TableFunc {
	if v.Op != "replace-status" {
		return MembershipTable(&v.Result)
	}
	return func(bool) ([]string, [][]string) {
		var rows [][]string
		for _, j := range v.Journal {
			for _, s := range j.Steps {
				took := ""
				if s.Started != nil && s.Ended != nil {
					took = s.Ended.Sub(*s.Started).Round(time.Second).String()
				}
				rows = append(rows, []string{j.ID, string(j.Phase), s.Name, string(s.State), dash(took), cell(s.Error)})
			}
		}
		return []string{"ID", "PHASE", "STEP", "STATE", "TOOK", "ERROR"}, rows
	}
}

// RecoverTable is the table of `kubectl etcd recover`: the surveys side
// by side, the survivor first, or the survey script written.
func RecoverTable(v *membership.RecoverResult) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		if v.Phase == "survey" {
			var rows [][]string
			for _, s := range v.Scripts {
				rows = append(rows, []string{s})
			}
			return []string{"SURVEY SCRIPT"}, rows
		}
		h := []string{"NODE", "MEMBER", "ID", "ETCD", "COMMIT", "LAST INDEX/TERM", "APPLIED", "REVISION", "BEHIND", "ROLE"}
		if wide {
			h = append(h, "TERM", "DATA DIR", "SURVEY")
		}
		var rows [][]string
		for _, s := range v.Surveys {
			etcd := "stopped"
			if s.EtcdRunning {
				etcd = "running"
			}
			commit, last, applied, rev, behind := "-", "-", "-", "-", "-"
			if s.WAL != nil {
				commit, last = fmt.Sprint(s.WAL.Commit), fmt.Sprintf("%d/%d", s.WAL.LastIndex, s.WAL.LastTerm)
				behind = fmt.Sprint(s.Behind)
				if s.LosesRevisions > 0 {
					behind += fmt.Sprintf(" (%d revs)", s.LosesRevisions)
				}
			}
			if b := s.Backend; b != nil && (b.Error == "" || b.From == "metrics") {
				applied, rev = fmt.Sprint(b.ConsistentIndex), fmt.Sprint(b.Revision)
			}
			role := s.Role
			if s.NoData != "" {
				role += ": " + s.NoData
			}
			r := []string{dash(s.Node), s.Member, dash(s.MemberID), etcd, commit, last, applied, rev, behind, role}
			if wide {
				term := "-"
				if s.WAL != nil {
					term = fmt.Sprint(s.WAL.Term)
				}
				r = append(r, term, s.DataDir, s.File)
			}
			rows = append(rows, r)
		}
		return h, rows
	}
}
