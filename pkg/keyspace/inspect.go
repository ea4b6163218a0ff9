package keyspace

import (
	"context"
	"fmt"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// InspectReport is what `kubectl etcd snapshot inspect` prints: the
// numbers etcdutl snapshot status prints, then what each resource holds.
type InspectReport struct {
	snapshot.Report
	// Usage is what each resource holds, the most stored first: the rows
	// of `kubectl etcd usage --snapshot` for the same file.
	Usage []PrefixUsage `json:"usage,omitempty"`
}

// PrefixUsage is what the keys under one resource prefix hold.
type PrefixUsage struct {
	Prefix string `json:"prefix"`
	// Keys and Bytes count live keys and their latest key+value sizes.
	Keys  int64 `json:"keys"`
	Bytes int64 `json:"bytes"`
	// Revisions and HistoryBytes count every stored version, which is
	// what fills a database that is not compacted.
	Revisions    int64 `json:"revisions"`
	HistoryBytes int64 `json:"historyBytes"`
}

// Inspect verifies the snapshot at path (decrypting it once, as OpenFile
// does), reads etcdutl's numbers from it (snapshot.Analyze) and sums its
// keys per resource as `usage --snapshot` does: the top rows, or every
// one when top <= 0.
func Inspect(ctx context.Context, path string, o FileOptions, top int) (*InspectReport, error) {
	f, err := OpenFile(path, o)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := snapshot.Analyze(f.plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st.File = path
	u, err := KeyUsageFile(ctx, f, UsageConfig{Top: top})
	if err != nil {
		return nil, err
	}
	rep := &InspectReport{Report: *st, Usage: make([]PrefixUsage, 0, len(u.Resources))}
	for _, r := range u.Resources {
		rep.Usage = append(rep.Usage, PrefixUsage{Prefix: r.Prefix, Keys: r.Keys, Bytes: r.Bytes, Revisions: r.Revisions, HistoryBytes: r.HistoryBytes})
	}
	return rep, nil
}
