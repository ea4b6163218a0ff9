package printers

import (
	"fmt"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
)

// DefragTable is the table of `kubectl etcd defrag`: each member's
// sizes before and after, in the order the members went.
func DefragTable(v *maint.DefragResult) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		h := []string{"NAME", "ID", "ROLE", "RESULT", "DB BEFORE", "IN USE BEFORE", "DB AFTER", "IN USE AFTER", "TOOK", "NOTE"}
		if wide {
			h = append(h, "NODE")
		}
		var rows [][]string
		for _, m := range v.Members {
			after, afterUse := "-", "-"
			if m.After != nil {
				after, afterUse = Bytes(m.After.DBSize), inUse(m.After.DBSizeInUse, m.After.DBSize)
			}
			note := m.Reason
			if m.Error != "" {
				note = m.Error
			}
			r := []string{dash(m.Name), dash(m.ID), m.Role, m.Result,
				Bytes(m.Before.DBSize), inUse(m.Before.DBSizeInUse, m.Before.DBSize), after, afterUse,
				dash(m.TookText), cell(note)}
			if wide {
				r = append(r, dash(m.Node))
			}
			rows = append(rows, r)
		}
		return h, rows
	}
}

// AlarmTable is the table of `kubectl etcd alarm list` and `disarm`.
func AlarmTable(alarms []maint.AlarmView) TableFunc {
	return func(bool) ([]string, [][]string) {
		var rows [][]string
		for _, a := range alarms {
			rows = append(rows, []string{a.MemberID, dash(a.Member), dash(a.Node), a.Alarm})
		}
		return []string{"MEMBER ID", "NAME", "NODE", "ALARM"}, rows
	}
}

// MoveLeaderTable is the table of `kubectl etcd move-leader`.
func MoveLeaderTable(v *maint.MoveLeaderResult) TableFunc {
	return func(bool) ([]string, [][]string) {
		return []string{"FROM", "FROM ID", "TO", "TO ID", "MOVED", "TOOK"},
			[][]string{{v.From.Name, v.From.ID, v.To.Name, v.To.ID, yesNo(v.Moved), dash(v.TookText)}}
	}
}

// CompactTable is the table of `kubectl etcd compact`.
func CompactTable(v *maint.CompactResult) TableFunc {
	return func(bool) ([]string, [][]string) {
		after := "-"
		if v.RevisionAfter > 0 {
			after = fmt.Sprint(v.RevisionAfter)
		}
		return []string{"REVISION BEFORE", "COMPACTED TO", "REVISION AFTER", "TOOK"},
			[][]string{{fmt.Sprint(v.RevisionBefore), fmt.Sprint(v.Compacted), after, dash(v.TookText)}}
	}
}

// CopyDBTable is the table of `kubectl etcd copy-db`.
func CopyDBTable(v *backup.CopyDBResult) TableFunc {
	return func(bool) ([]string, [][]string) {
		size := "-"
		if v.Size > 0 {
			size = Bytes(v.Size)
		}
		return []string{"NODE", "SOURCE", "FILE", "SIZE", "SHA256", "TOOK"},
			[][]string{{v.Node, v.Source, v.File, size, dash(v.FileSHA256), dash(v.TookText)}}
	}
}
