package keyspace

import (
	"container/heap"
	"context"
	"io"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// UsageConfig says what `kubectl etcd usage` sums.
type UsageConfig struct {
	// Prefix limits the walk to the keys under it; "" walks every key.
	Prefix string
	// ByNamespace gives each resource one row per namespace.
	ByNamespace bool
	// Top keeps the N rows that store the most bytes, and sums the rest
	// in Rest; 0 keeps every row.
	Top int
	// TopKeys is how many of the keys with the most history to list.
	TopKeys int
	// Log takes notices: which member is read.
	Log io.Writer
}

// What a report's revision counts are.
const (
	// HistoryStored: the revisions still stored, counted in a snapshot
	// file's key bucket (tombstones included).
	HistoryStored = "stored-revisions"
	// HistoryVersions: etcd's version of each key, its changes since it
	// was created, compacted ones included. A live range shows nothing
	// else; what is still stored is at most that.
	HistoryVersions = "versions"
)

// Churned are the prefixes whose churn the report always shows: events
// come and go with a lease each, and coordination leases are rewritten
// every few seconds by every kubelet and controller.
var Churned = []string{"/registry/events/", "/registry/leases/"}

// UsageReport is what fills the database.
type UsageReport struct {
	// Source is "member" or "snapshot".
	Source string             `json:"source"`
	Member *cluster.MemberRef `json:"member,omitempty"`
	// Role is the member's: follower (read serializable, leaving the
	// leader alone) or leader.
	Role         string `json:"role,omitempty"`
	Serializable bool   `json:"serializable,omitempty"`
	File         string `json:"file,omitempty"`
	Encrypted    bool   `json:"encrypted,omitempty"`
	Prefix       string `json:"prefix,omitempty"`
	Revision     int64  `json:"revision"`
	// CompactRevision is known in a snapshot file only.
	CompactRevision int64 `json:"compactRevision,omitempty"`
	DBSize          int64 `json:"dbSize"`
	// DBSizeInUse and DBSizeQuota are a member's; a file has neither.
	DBSizeInUse int64 `json:"dbSizeInUse,omitempty"`
	DBSizeQuota int64 `json:"dbSizeQuota,omitempty"`
	// History says what Revisions count: HistoryStored or
	// HistoryVersions.
	History string        `json:"history"`
	Total   ResourceUsage `json:"total"`
	// Resources are the rows, the most stored bytes first.
	Resources []ResourceUsage `json:"resources"`
	// Rest sums the rows past Top.
	Rest *ResourceUsage `json:"rest,omitempty"`
	// Churn is each of Churned, whether or not it made the top.
	Churn []ResourceUsage `json:"churn"`
	// TopKeys are the keys with the most revisions (or versions).
	TopKeys []KeyHistory `json:"topKeys"`
	// Leases counts etcd leases: those stored, in a file; on a member,
	// the distinct leases that keys are attached to.
	Leases int64 `json:"leases"`
}

// ResourceUsage is what one Kubernetes resource (one key prefix), or one
// namespace of it, holds.
type ResourceUsage struct {
	// Prefix is /registry/<resource>/ or /registry/<group>/<resource>/.
	Prefix string `json:"prefix,omitempty"`
	// Resource is the resource's name: pods, apiservices.apiregistration.k8s.io.
	Resource  string `json:"resource,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Keys and Bytes are the live keys and their key and value bytes.
	Keys  int64 `json:"keys"`
	Bytes int64 `json:"bytes"`
	// Revisions counts history as the report's History says.
	Revisions int64 `json:"revisions"`
	// HistoryBytes are the bytes of every stored revision, the live ones
	// included, and DeletedKeys the deleted keys whose history is still
	// stored: a snapshot file's only.
	HistoryBytes int64 `json:"historyBytes,omitempty"`
	DeletedKeys  int64 `json:"deletedKeys,omitempty"`
	// LeasedKeys are the live keys attached to an etcd lease.
	LeasedKeys int64 `json:"leasedKeys,omitempty"`
}

// Stored is what the row costs the database: its history where that is
// known, else its live bytes.
func (u *ResourceUsage) Stored() int64 { return max(u.Bytes, u.HistoryBytes) }

func (u *ResourceUsage) add(o ResourceUsage) {
	u.Keys += o.Keys
	u.Bytes += o.Bytes
	u.Revisions += o.Revisions
	u.HistoryBytes += o.HistoryBytes
	u.DeletedKeys += o.DeletedKeys
	u.LeasedKeys += o.LeasedKeys
}

// KeyHistory is one key with much history.
type KeyHistory struct {
	Key          string `json:"key"`
	Revisions    int64  `json:"revisions"`
	Bytes        int64  `json:"bytes"`
	HistoryBytes int64  `json:"historyBytes,omitempty"`
	Deleted      bool   `json:"deleted,omitempty"`
}

// KeyUsage reads what fills the database from a live member, the one
// OpenReader picks. It pages through the keys (see Live), so its memory
// does not grow with the values.
func KeyUsage(ctx context.Context, d etcd.Transport, pods []discovery.Member, cfg UsageConfig) (*UsageReport, error) {
	r, err := OpenReader(ctx, d, pods, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	r.Parallel, r.PageBytes = usageParallel, usagePageBytes
	m, ref := r.Member, r.Member.Ref()
	rep := &UsageReport{Source: "member", Member: &ref, Role: r.Role, Serializable: r.Serializable, Prefix: cfg.Prefix,
		DBSize: m.Status.DBSize, DBSizeInUse: m.Status.DBSizeInUse, DBSizeQuota: m.Status.DBSizeQuota, History: HistoryVersions}
	if rep.DBSizeQuota == 0 {
		// etcd reports its quota from 3.6 on; before, the pod spec's flag
		// (or etcd's default) is what it enforces.
		rep.DBSizeQuota = m.Pod.QuotaBackendBytes
	}
	return rep, collectUsage(ctx, r, cfg, rep)
}

// KeyUsageFile reads what fills the database from a snapshot file, with
// the history that a live range cannot show: the revisions stored and
// the deleted keys not compacted yet.
func KeyUsageFile(ctx context.Context, f *File, cfg UsageConfig) (*UsageReport, error) {
	rep := &UsageReport{Source: "snapshot", File: f.Path, Encrypted: f.Encrypted, Prefix: cfg.Prefix,
		CompactRevision: f.CompactRevision, DBSize: f.Size, History: HistoryStored, Leases: int64(f.Leases)}
	return rep, collectUsage(ctx, f, cfg, rep)
}

// Usage reads usageParallel windows at once from its member: with one,
// the member and the plugin take turns with each page; with three, both
// stay busy. Pages of usagePageBytes keep the three within the memory
// that one page of 2 MiB took (hack/bench/usage.sh: 200k keys in 2.2 s
// at 91 MiB of RSS, against 3.3 s at 94 MiB one 2 MiB page at a time).
const (
	usageParallel  = 3
	usagePageBytes = 1 << 20
)

type usageRow struct{ prefix, namespace string }

// collectUsage walks src once and fills rep's rows, churn, top keys and
// totals.
func collectUsage(ctx context.Context, src Source, cfg UsageConfig, rep *UsageReport) error {
	rows := map[usageRow]*ResourceUsage{}
	churn := map[string]*ResourceUsage{}
	for _, p := range Churned {
		churn[p] = &ResourceUsage{Prefix: p, Resource: decode.ResourceName(p)}
	}
	leases := map[int64]struct{}{}
	top := &keyHeap{}
	// Sums need no order: a live source may read several windows at once.
	q := Query{Key: cfg.Prefix, Prefix: true, Detail: Sizes, Deleted: src.History(), AnyOrder: true}
	res, err := src.Walk(ctx, q, func(p Page) error {
		for i := range p.Entries {
			e := &p.Entries[i]
			key := string(e.Key)
			prefix := decode.ResourcePrefix(key)
			u := entryUsage(e, src.History())
			row := usageRow{prefix: prefix}
			if cfg.ByNamespace {
				row.namespace = namespaceOf(key, prefix)
			}
			r := rows[row]
			if r == nil {
				r = &ResourceUsage{Prefix: prefix, Resource: decode.ResourceName(prefix), Namespace: row.namespace}
				rows[row] = r
			}
			r.add(u)
			if c := churn[prefix]; c != nil {
				c.add(u)
			}
			if e.Lease != 0 && !e.Deleted {
				leases[e.Lease] = struct{}{}
			}
			top.offer(cfg.TopKeys, KeyHistory{Key: key, Revisions: u.Revisions, Bytes: u.Bytes, HistoryBytes: u.HistoryBytes, Deleted: e.Deleted})
		}
		return nil
	})
	rep.Revision = res.Revision
	if err != nil {
		return err
	}
	if !src.History() {
		rep.Leases = int64(len(leases))
	}
	rep.Resources, rep.Rest = topRows(rows, cfg.Top)
	for _, r := range rep.Resources {
		rep.Total.add(r)
	}
	if rep.Rest != nil {
		rep.Total.add(*rep.Rest)
	}
	for _, p := range Churned {
		rep.Churn = append(rep.Churn, *churn[p])
	}
	rep.TopKeys = top.sorted()
	return nil
}

// entryUsage is one entry's share of its row.
func entryUsage(e *Entry, history bool) ResourceUsage {
	var u ResourceUsage
	if e.Deleted {
		u.DeletedKeys = 1
	} else {
		u.Keys, u.Bytes = 1, int64(len(e.Key))+e.ValueSize
		if e.Lease != 0 {
			u.LeasedKeys = 1
		}
	}
	u.Revisions = e.Version
	if history {
		u.Revisions, u.HistoryBytes = e.Revisions, e.HistoryBytes
	}
	return u
}

// topRows sorts the rows, the most stored bytes first, and sums those
// past top.
func topRows(rows map[usageRow]*ResourceUsage, top int) ([]ResourceUsage, *ResourceUsage) {
	out := make([]ResourceUsage, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.Stored() != b.Stored() {
			return a.Stored() > b.Stored()
		}
		if a.Prefix != b.Prefix {
			return a.Prefix < b.Prefix
		}
		return a.Namespace < b.Namespace
	})
	if top <= 0 || len(out) <= top {
		return out, nil
	}
	rest := &ResourceUsage{}
	for _, r := range out[top:] {
		rest.add(r)
	}
	return out[:top], rest
}

// namespaceOf is the namespace in a key under a resource prefix:
// namespaced keys are <prefix><namespace>/<name>, cluster-scoped ones
// <prefix><name>, and Kubernetes names hold no slash.
func namespaceOf(key, prefix string) string {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return ""
	}
	ns, _, namespaced := strings.Cut(rest, "/")
	if !namespaced {
		return ""
	}
	return ns
}

// keyHeap keeps the keys with the most revisions: a min-heap whose root
// is the first to go.
type keyHeap []KeyHistory

func (h keyHeap) Len() int { return len(h) }
func (h keyHeap) Less(i, j int) bool {
	if h[i].Revisions != h[j].Revisions {
		return h[i].Revisions < h[j].Revisions
	}
	return h[i].Key > h[j].Key
}
func (h keyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)   { *h = append(*h, x.(KeyHistory)) }
func (h *keyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// offer keeps k if it is among the n with the most revisions; keys with
// a single revision have no history to show.
func (h *keyHeap) offer(n int, k KeyHistory) {
	if n <= 0 || k.Revisions <= 1 {
		return
	}
	if h.Len() < n {
		heap.Push(h, k)
		return
	}
	if (*h)[0].Revisions < k.Revisions || ((*h)[0].Revisions == k.Revisions && (*h)[0].Key > k.Key) {
		(*h)[0] = k
		heap.Fix(h, 0)
	}
}

// sorted is the kept keys, the most revisions first.
func (h *keyHeap) sorted() []KeyHistory {
	out := make([]KeyHistory, 0, h.Len())
	for h.Len() > 0 {
		out = append(out, heap.Pop(h).(KeyHistory))
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
