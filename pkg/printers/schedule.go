package printers

import (
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

// ScheduleTable is the table of `kubectl etcd schedule list`, its ages
// as of now.
func ScheduleTable(ss []schedule.Status, now time.Time) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		h := []string{"NAME", "NAMESPACE", "SCHEDULE", "DESTINATION", "RETENTION", "LAST SUCCESS", "LAST SIZE", "KEPT", "LAST ERROR"}
		if wide {
			h = append(h, "LAST ATTEMPT", "LAST FILE", "SUSPENDED", "IMAGE")
		}
		var rows [][]string
		for _, s := range ss {
			r := s.Record
			size, kept := "-", "-"
			if !r.LastSuccess.IsZero() {
				size = Bytes(r.LastSize)
			}
			if r.Kept != nil {
				kept = strconv.Itoa(len(r.Kept))
			}
			problem := r.LastError
			if s.Problem != "" {
				problem = s.Problem
			}
			if !wide {
				problem = truncate(hint.OneLine(problem), 60)
			}
			row := []string{s.Name, s.Namespace, s.Schedule, dash(s.Destination), dash(s.Retention), ago(r.LastSuccess, now), size, kept, cell(problem)}
			if wide {
				row = append(row, ago(r.LastAttempt, now), dash(r.LastFile), yesNo(s.Suspended), dash(s.Image))
			}
			rows = append(rows, row)
		}
		return h, rows
	}
}

// ago is how long before now t was, as kubectl says ages; "never" for
// no time.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return duration.HumanDuration(now.Sub(t)) + " ago"
}

// truncate cuts s to n runes, saying so.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}

// BackupsTable is the table of `kubectl etcd snapshot list`, its ages as
// of now: NODE for a node dir, VERIFIED with --verify; wide adds the
// time each was taken and, verified, its sha256.
func BackupsTable(bs []schedule.Backup, now time.Time, nodes, verified bool) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		h := []string{"NAME", "SCHEDULE", "TAKEN", "SIZE"}
		if nodes {
			h = append(h, "NODE")
		}
		if verified {
			h = append(h, "VERIFIED")
		}
		if wide {
			h = append(h, "TAKEN AT")
			if verified {
				h = append(h, "SHA256")
			}
		}
		var rows [][]string
		for _, b := range bs {
			row := []string{b.Name, dash(b.Schedule), ago(b.Taken, now), Bytes(b.Size)}
			if nodes {
				row = append(row, dash(b.Node))
			}
			if verified {
				row = append(row, verification(b.Verified, wide))
			}
			if wide {
				row = append(row, stamp(b.Taken))
				if verified {
					row = append(row, dash(sha(b.Verified)))
				}
			}
			rows = append(rows, row)
		}
		return h, rows
	}
}

// verification says in a cell what reading a file found.
func verification(v *schedule.Verification, wide bool) string {
	switch {
	case v == nil:
		return "-"
	case v.Error != "" && wide:
		return "FAILED: " + hint.OneLine(v.Error)
	case v.Error != "":
		return "FAILED: " + truncate(hint.OneLine(v.Error), 60)
	case v.Content:
		return "yes"
	}
	return "header only"
}

func sha(v *schedule.Verification) string {
	if v == nil {
		return ""
	}
	return v.SHA256
}

// stamp is t in UTC to the second, "-" for no time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
