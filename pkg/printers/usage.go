package printers

import (
	"fmt"
	"io"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
)

// PrintUsage prints `kubectl etcd usage`: in tables, where the keys were
// read with the database's sizes, then the resources, the churn and the
// keys with the most history; in JSON and YAML, the report.
func PrintUsage(out io.Writer, format string, r *keyspace.UsageReport) error {
	if format == JSON || format == YAML {
		return Print(out, format, r, nil)
	}
	wide := format == Wide
	sections := []TableFunc{usageSummary(r), UsageTable(r), usageChurn(r), usageTopKeys(r)}
	for i, s := range sections {
		h, rows := s(wide)
		if rows == nil {
			continue
		}
		if i > 0 {
			fmt.Fprintln(out)
		}
		if err := RenderTable(out, h, rows); err != nil {
			return err
		}
	}
	return nil
}

// PrintInspect prints `snapshot inspect`: in tables, the numbers etcdutl
// snapshot status prints, then what each resource prefix holds.
func PrintInspect(out io.Writer, format string, r *keyspace.InspectReport) error {
	if format == JSON || format == YAML {
		return Print(out, format, r, nil)
	}
	h := []string{"HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE", "VERSION", "ENCRYPTED"}
	row := []string{r.Hash, fmt.Sprint(r.Revision), fmt.Sprint(r.TotalKey), Bytes(r.TotalSize), dash(r.Version), yesNo(r.Encrypted)}
	if format == Wide {
		h = append(h, "BOLT KEYS", "SHA256")
		row = append(row, fmt.Sprint(r.BoltKeys), r.FileSHA256)
	}
	if err := RenderTable(out, h, [][]string{row}); err != nil {
		return err
	}
	fmt.Fprintln(out)
	rows := [][]string{}
	for _, u := range r.Usage {
		rows = append(rows, []string{u.Prefix, fmt.Sprint(u.Keys), Bytes(u.Bytes), fmt.Sprint(u.Revisions), Bytes(u.HistoryBytes)})
	}
	return RenderTable(out, []string{"PREFIX", "KEYS", "SIZE", "REVISIONS", "HISTORY"}, rows)
}

func usageSummary(r *keyspace.UsageReport) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		from := r.File
		if r.Member != nil {
			from = fmt.Sprintf("%s (%s, %s)", r.Member.Name, r.Member.ID, r.Role)
		}
		quota, inuse := "-", "-"
		if r.DBSizeQuota > 0 {
			quota = Bytes(r.DBSizeQuota)
		}
		if r.DBSizeInUse > 0 {
			inuse = inUse(r.DBSizeInUse, r.DBSize)
		}
		h := []string{"READ FROM", "REVISION", "DB SIZE", "IN USE", "QUOTA", "KEYS", "SIZE"}
		row := []string{from, fmt.Sprint(r.Revision), Bytes(r.DBSize), inuse, quota, fmt.Sprint(r.Total.Keys), Bytes(r.Total.Bytes)}
		if r.History == keyspace.HistoryStored {
			h = append(h, "HISTORY", "COMPACTED AT")
			row = append(row, Bytes(r.Total.HistoryBytes), revOrDash(r.CompactRevision))
		}
		if wide {
			h = append(h, "LEASES")
			row = append(row, fmt.Sprint(r.Leases))
		}
		return h, [][]string{row}
	}
}

// historyColumn names the revision count the way the report counts it.
func historyColumn(r *keyspace.UsageReport) string {
	if r.History == keyspace.HistoryStored {
		return "REVISIONS"
	}
	return "VERSIONS"
}

// UsageTable is the resources of a usage report, one row each (per
// namespace with --by-namespace), the most stored first.
func UsageTable(r *keyspace.UsageReport) TableFunc {
	return func(wide bool) ([]string, [][]string) {
		byNS := false
		for _, u := range r.Resources {
			byNS = byNS || u.Namespace != ""
		}
		h := []string{"RESOURCE"}
		if byNS {
			h = append(h, "NAMESPACE")
		}
		h = append(h, "KEYS", "SIZE", historyColumn(r))
		if r.History == keyspace.HistoryStored {
			h = append(h, "HISTORY", "DELETED")
		}
		h = append(h, "SHARE")
		if wide {
			h = append(h, "LEASED KEYS", "PREFIX")
		}
		total := r.Total.Stored()
		row := func(name string, u keyspace.ResourceUsage) []string {
			out := []string{name}
			if byNS {
				out = append(out, dash(u.Namespace))
			}
			out = append(out, fmt.Sprint(u.Keys), Bytes(u.Bytes), fmt.Sprint(u.Revisions))
			if r.History == keyspace.HistoryStored {
				out = append(out, Bytes(u.HistoryBytes), fmt.Sprint(u.DeletedKeys))
			}
			out = append(out, share(u.Stored(), total))
			if wide {
				out = append(out, fmt.Sprint(u.LeasedKeys), dash(u.Prefix))
			}
			return out
		}
		rows := [][]string{}
		for _, u := range r.Resources {
			rows = append(rows, row(u.Resource, u))
		}
		if r.Rest != nil {
			rows = append(rows, row("(the rest)", *r.Rest))
		}
		return h, rows
	}
}

func usageChurn(r *keyspace.UsageReport) TableFunc {
	return func(bool) ([]string, [][]string) {
		h := []string{"CHURN", "KEYS", "SIZE", historyColumn(r)}
		if r.History == keyspace.HistoryStored {
			h = append(h, "HISTORY", "DELETED")
		}
		h = append(h, "LEASED KEYS")
		rows := [][]string{}
		for _, u := range r.Churn {
			row := []string{u.Resource, fmt.Sprint(u.Keys), Bytes(u.Bytes), fmt.Sprint(u.Revisions)}
			if r.History == keyspace.HistoryStored {
				row = append(row, Bytes(u.HistoryBytes), fmt.Sprint(u.DeletedKeys))
			}
			rows = append(rows, append(row, fmt.Sprint(u.LeasedKeys)))
		}
		leases := make([]string, len(h))
		leases[0], leases[1] = "etcd leases", fmt.Sprint(r.Leases)
		return h, append(rows, leases)
	}
}

func usageTopKeys(r *keyspace.UsageReport) TableFunc {
	return func(bool) ([]string, [][]string) {
		if len(r.TopKeys) == 0 {
			return nil, nil
		}
		h := []string{"KEY", historyColumn(r), "SIZE"}
		if r.History == keyspace.HistoryStored {
			h = append(h, "HISTORY")
		}
		var rows [][]string
		for _, k := range r.TopKeys {
			size := Bytes(k.Bytes)
			if k.Deleted {
				size = "deleted"
			}
			row := []string{k.Key, fmt.Sprint(k.Revisions), size}
			if r.History == keyspace.HistoryStored {
				row = append(row, Bytes(k.HistoryBytes))
			}
			rows = append(rows, row)
		}
		return h, rows
	}
}

// share is part's percentage of total; a total of 0 shows "-".
func share(part, total int64) string {
	if total <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", float64(part)*100/float64(total))
}

func revOrDash(rev int64) string {
	if rev <= 0 {
		return "-"
	}
	return fmt.Sprint(rev)
}
