package keyspace

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode"
)

// fakeSource yields its entries in pages of two.
type fakeSource struct {
	entries []Entry
	history bool
	err     error
}

func (f *fakeSource) History() bool { return f.history }

func (f *fakeSource) Walk(_ context.Context, q Query, fn func(Page) error) (Result, error) {
	if q.Deleted != f.history || q.Detail != Sizes || !q.Prefix {
		return Result{}, errors.New("unexpected query")
	}
	for i := 0; i < len(f.entries); i += 2 {
		if err := fn(Page{Entries: f.entries[i:min(i+2, len(f.entries))], Revision: 99}); err != nil {
			return Result{}, err
		}
	}
	return Result{Revision: 99, Keys: int64(len(f.entries))}, f.err
}

func entry(key string, size, version, revisions int64, lease int64, deleted bool) Entry {
	return Entry{Key: []byte(key), ValueSize: size, Version: version, Revisions: revisions,
		HistoryBytes: revisions * (int64(len(key)) + size), Lease: lease, Deleted: deleted}
}

var usageEntries = []Entry{
	entry("/registry/apiregistration.k8s.io/apiservices/v1.apps", 300, 1, 1, 0, false),
	entry("/registry/configmaps/default/a", 1000, 1, 1, 0, false),
	entry("/registry/configmaps/kube-system/b", 2000, 3, 2, 0, false),
	entry("/registry/events/default/e1", 500, 2, 2, 7, false),
	entry("/registry/events/default/e2", 500, 1, 2, 0, true),
	entry("/registry/leases/kube-node-lease/n1", 200, 900, 40, 0, false),
	entry("/registry/nodes/n1", 5000, 50, 3, 0, false),
	entry("/registry/pods/default/p1", 4000, 5, 1, 0, false),
}

func TestCollectUsage(t *testing.T) {
	for _, c := range []struct {
		name        string
		history     bool
		cfg         UsageConfig
		rows        []string // resource/namespace, in order
		rest        int64    // keys in Rest
		keys, bytes int64
		topKeys     []string
		revisions   int64 // of the leases churn row
		leases      int64
	}{
		{
			name: "live", cfg: UsageConfig{TopKeys: 2},
			rows: []string{"nodes/", "pods/", "configmaps/", "events/", "apiservices.apiregistration.k8s.io/", "leases/"},
			keys: 7, bytes: 13000 + 18 + 25 + 34 + 28 + 53 + 27 + 36,
			topKeys: []string{"/registry/leases/kube-node-lease/n1", "/registry/nodes/n1"}, revisions: 900, leases: 1,
		},
		{
			name: "snapshot by namespace, top 3", history: true, cfg: UsageConfig{ByNamespace: true, Top: 3, TopKeys: 1},
			// The leases history outweighs the pod.
			rows: []string{"nodes/", "leases/kube-node-lease", "configmaps/kube-system"}, rest: 4,
			keys: 7, bytes: 13000 + 18 + 25 + 34 + 28 + 53 + 27 + 36,
			topKeys: []string{"/registry/leases/kube-node-lease/n1"}, revisions: 40,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := &UsageReport{}
			if err := collectUsage(context.Background(), &fakeSource{entries: usageEntries, history: c.history}, c.cfg, rep); err != nil {
				t.Fatal(err)
			}
			var rows []string
			for _, r := range rep.Resources {
				rows = append(rows, r.Resource+"/"+r.Namespace)
			}
			if !slices.Equal(rows, c.rows) {
				t.Errorf("rows %v, want %v", rows, c.rows)
			}
			if (rep.Rest == nil) != (c.rest == 0) || (rep.Rest != nil && rep.Rest.Keys != c.rest) {
				t.Errorf("rest %+v, want %d keys", rep.Rest, c.rest)
			}
			if rep.Total.Keys != c.keys || rep.Total.Bytes != c.bytes || rep.Revision != 99 {
				t.Errorf("total %+v at %d", rep.Total, rep.Revision)
			}
			var top []string
			for _, k := range rep.TopKeys {
				top = append(top, k.Key)
			}
			if !slices.Equal(top, c.topKeys) {
				t.Errorf("top keys %v, want %v", top, c.topKeys)
			}
			if len(rep.Churn) != 2 || rep.Churn[1].Revisions != c.revisions || rep.Churn[0].LeasedKeys != 1 {
				t.Errorf("churn %+v", rep.Churn)
			}
			if c.history && (rep.Churn[0].DeletedKeys != 1 || rep.Total.DeletedKeys != 1 || rep.Churn[0].Keys != 1) {
				t.Errorf("deleted event: churn %+v, total %+v", rep.Churn[0], rep.Total)
			}
			if rep.Leases != c.leases {
				t.Errorf("leases %d, want %d", rep.Leases, c.leases)
			}
		})
	}
}

func TestCollectUsageError(t *testing.T) {
	boom := errors.New("boom")
	err := collectUsage(context.Background(), &fakeSource{err: boom}, UsageConfig{}, &UsageReport{})
	if !errors.Is(err, boom) {
		t.Errorf("error %v", err)
	}
}

func TestNamespaceOf(t *testing.T) {
	for _, c := range []struct{ key, ns string }{
		{"/registry/pods/default/web-1", "default"},
		{"/registry/minions/n1", ""},
		{"/registry/cert-manager.io/certificates/prod/tls", "prod"},
		{"/registry/services/specs/default/kubernetes", "default"},
		{"/other/key", ""},
		{"compact_rev_key", ""},
	} {
		if ns := namespaceOf(c.key, decode.ResourcePrefix(c.key)); ns != c.ns {
			t.Errorf("%s: namespace %q, want %q", c.key, ns, c.ns)
		}
	}
}
