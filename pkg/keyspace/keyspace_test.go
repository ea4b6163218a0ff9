package keyspace_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// fixture is a real 3-member cluster holding a small registry with
// history: updates, deletions, a lease and a compaction.
type fixture struct {
	c        *etcdtest.Cluster
	cli      *clientv3.Client
	follower etcd.Client
	// before is a revision after the first writes and the compaction,
	// where pod-0 still had its first value and pod-1 existed.
	before int64
	lease  int64
}

func setup(t *testing.T) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts a real 3-member etcd cluster")
	}
	f := &fixture{c: etcdtest.Start(t, 3)}
	f.cli = f.c.Client(t)
	ctx := context.Background()
	put := func(k string, n int, opts ...clientv3.OpOption) *clientv3.PutResponse {
		t.Helper()
		resp, err := f.cli.Put(ctx, k, strings.Repeat("x", n), opts...)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	put("/registry/pods/default/pod-0", 10) // compacted away below
	rev := put("/registry/pods/default/pod-0", 100).Header.Revision
	for i := 1; i < 30; i++ {
		put(fmt.Sprintf("/registry/pods/default/pod-%d", i), 100+i)
		put(fmt.Sprintf("/registry/configmaps/kube-system/cm-%02d", i), 1000+i)
	}
	if _, err := f.cli.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	l, err := f.cli.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	f.lease = int64(l.ID)
	f.before = put("/registry/events/default/ev-1", 500, clientv3.WithLease(l.ID)).Header.Revision
	put("/registry/pods/default/pod-0", 200)
	put("/registry/pods/default/pod-0", 300)
	if _, err := f.cli.Delete(ctx, "/registry/pods/default/pod-1"); err != nil {
		t.Fatal(err)
	}
	last := put("/registry/apps/deployments/default/web", 700).Header.Revision
	// The follower reads serializable, and the snapshot may come from
	// any member.
	f.c.WaitApplied(t, f.cli, last)
	f.follower = followerClient(t, f.c)
	return f
}

// followerClient is a plugin client bound to a follower, through the
// port-forward transport as the commands dial it.
func followerClient(t *testing.T, c *etcdtest.Cluster) etcd.Client {
	t.Helper()
	d := c.ForwardTransport(5 * time.Second)
	for _, m := range c.Pods() {
		cl, err := d.Client(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		st, err := cl.Status(context.Background())
		if err == nil && st.Leader != st.MemberID {
			t.Cleanup(func() { cl.Close() })
			return cl
		}
		cl.Close()
	}
	t.Fatal("no follower")
	return nil
}

// saveSnapshot writes a snapshot of the cluster to dir, encrypted to rs
// when given, as `kubectl etcd backup` does.
func (f *fixture) saveSnapshot(t *testing.T, dir string, rs []age.Recipient) string {
	t.Helper()
	path := filepath.Join(dir, "etcd.db")
	opts := snapshot.Options{}
	if rs != nil {
		path += ".age"
		opts.Encrypt = snapshot.Encrypter(rs)
	}
	src := func(ctx context.Context) (io.ReadCloser, error) { return etcd.NewV3Conn(f.cli, 0).Snapshot(ctx) }
	if _, err := snapshot.Save(context.Background(), src, &snapshot.FileSink{Path: path}, opts); err != nil {
		t.Fatal(err)
	}
	return path
}

// collect walks q and returns the entries (copied) and the pages' sizes.
func collect(t *testing.T, s keyspace.Source, q keyspace.Query) ([]keyspace.Entry, []int, keyspace.Result) {
	t.Helper()
	var out []keyspace.Entry
	var pages []int
	res, err := s.Walk(context.Background(), q, func(p keyspace.Page) error {
		pages = append(pages, len(p.Entries))
		for _, e := range p.Entries {
			e.Key = append([]byte(nil), e.Key...)
			if e.Value != nil {
				e.Value = append([]byte{}, e.Value...)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %+v: %v", q, err)
	}
	return out, pages, res
}

func keysOf(es []keyspace.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Key))
	}
	return out
}

func find(es []keyspace.Entry, key string) *keyspace.Entry {
	for i := range es {
		if string(es[i].Key) == key {
			return &es[i]
		}
	}
	return nil
}

func TestIntegrationKeyspace(t *testing.T) {
	f := setup(t)
	live := &keyspace.Live{Client: f.follower, Serializable: true}
	dir := t.TempDir()
	plain, err := keyspace.OpenFile(f.saveSnapshot(t, dir, nil), keyspace.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	encPath := f.saveSnapshot(t, t.TempDir(), []age.Recipient{id.Recipient()})
	if _, err := keyspace.OpenFile(encPath, keyspace.FileOptions{}); err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Errorf("encrypted file without identity: %v", err)
	}
	enc, err := keyspace.OpenFile(encPath, keyspace.FileOptions{Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if !enc.Encrypted || enc.Revision != plain.Revision || enc.Leases != 1 || plain.CompactRevision == 0 {
		t.Errorf("files: encrypted %+v, plain %+v", enc, plain)
	}
	sources := []struct {
		name string
		s    keyspace.Source
	}{{"live", live}, {"file", plain}, {"encrypted file", enc}}

	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			testSource(t, f, src.s)
		})
	}

	t.Run("file matches live", func(t *testing.T) {
		q := keyspace.Query{Key: "/registry/", Prefix: true}
		want, _, wres := collect(t, live, q)
		got, _, gres := collect(t, plain, q)
		if len(got) != len(want) || gres.Revision != wres.Revision {
			t.Fatalf("file %d keys at %d, live %d at %d", len(got), gres.Revision, len(want), wres.Revision)
		}
		for i := range want {
			g, w := got[i], want[i]
			g.Revisions, g.HistoryBytes = 0, 0
			if string(g.Key) != string(w.Key) || g.ValueSize != w.ValueSize || g.CreateRevision != w.CreateRevision ||
				g.ModRevision != w.ModRevision || g.Version != w.Version || g.Lease != w.Lease {
				t.Errorf("key %d: file %+v, live %+v", i, g, w)
			}
		}
	})

	t.Run("file history", func(t *testing.T) {
		es, _, _ := collect(t, plain, keyspace.Query{Key: "/registry/pods/", Prefix: true, Deleted: true})
		pod0, pod1 := find(es, "/registry/pods/default/pod-0"), find(es, "/registry/pods/default/pod-1")
		// pod-0: the revision kept at the compaction, then two more.
		if pod0 == nil || pod0.Revisions != 3 || pod0.HistoryBytes != 3*int64(len("/registry/pods/default/pod-0"))+100+200+300 || pod0.Deleted {
			t.Errorf("pod-0 %+v", pod0)
		}
		if pod1 == nil || !pod1.Deleted || pod1.Revisions != 2 || pod1.ModRevision <= f.before {
			t.Errorf("pod-1 %+v", pod1)
		}
		if live.History() || !plain.History() {
			t.Error("History: live has none, a file has it")
		}
	})

	t.Run("file revisions out of range", func(t *testing.T) {
		for _, rev := range []int64{plain.CompactRevision - 1, plain.Revision + 1} {
			_, err := plain.Walk(context.Background(), keyspace.Query{Revision: rev, Prefix: true}, func(keyspace.Page) error { return nil })
			if err == nil {
				t.Errorf("revision %d: no error", rev)
			}
		}
	})

	t.Run("live windows cover every key once", func(t *testing.T) {
		var want []string
		var ops []clientv3.Op
		for i := range 1500 {
			k := fmt.Sprintf("/win/%c/ns-%d/obj-%04d", 'a'+i%7, i%13, i)
			if i%5 == 0 {
				k = fmt.Sprintf("/win/%c%d", 'a'+i%3, i)
			}
			want = append(want, k)
			if ops = append(ops, clientv3.OpPut(k, "v")); len(ops) == 100 {
				if _, err := f.cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
					t.Fatal(err)
				}
				ops = nil
			}
		}
		sort.Strings(want)
		// A linearizable read makes the follower catch up with the writes.
		if _, err := f.follower.GetPage(context.Background(), etcd.PageRequest{Key: "/win/", Limit: 1}); err != nil {
			t.Fatal(err)
		}
		parallel := &keyspace.Live{Client: f.follower, Serializable: true, Parallel: 3}
		for _, c := range []struct {
			name string
			live *keyspace.Live
			size int
		}{
			{"page size 9", live, 9}, {"page size 50", live, 50}, {"adaptive", live, 0},
			{"parallel, page size 9", parallel, 9}, {"parallel, adaptive", parallel, 0},
		} {
			es, _, res := collect(t, c.live, keyspace.Query{Key: "/win/", Prefix: true, PageSize: c.size, AnyOrder: true})
			got := keysOf(es)
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(want, ",") || res.More || res.Keys != int64(len(want)) {
				t.Errorf("%s: %d keys, want %d (result %+v)", c.name, len(got), len(want), res)
			}
		}
		es, _, res := collect(t, live, keyspace.Query{Key: "/win/", Prefix: true, PageSize: 4, Limit: 1000})
		if len(es) != 1000 || !res.More || string(es[999].Key) != want[999] {
			t.Errorf("limit 1000: %d keys, more %v", len(es), res.More)
		}
	})

	t.Run("parallel live walk", func(t *testing.T) {
		parallel := &keyspace.Live{Client: f.follower, Serializable: true, Parallel: 3}
		q := keyspace.Query{Key: "/registry/", Prefix: true, PageSize: 4, AnyOrder: true}
		want, _, wres := collect(t, live, keyspace.Query{Key: "/registry/", Prefix: true})
		got, _, gres := collect(t, parallel, q)
		sort.Slice(got, func(i, j int) bool { return string(got[i].Key) < string(got[j].Key) })
		if len(got) != len(want) || gres.Revision != wres.Revision || gres.Keys != wres.Keys {
			t.Fatalf("parallel %d keys at %d, sequential %d at %d", len(got), gres.Revision, len(want), wres.Revision)
		}
		for i := range want {
			if string(got[i].Key) != string(want[i].Key) || got[i].ValueSize != want[i].ValueSize || got[i].Version != want[i].Version {
				t.Errorf("key %d: parallel %+v, sequential %+v", i, got[i], want[i])
			}
		}
		for _, c := range []struct {
			name    string
			ret     error
			wantErr bool
		}{{"stop", keyspace.Stop, false}, {"error", fmt.Errorf("boom"), true}} {
			calls := 0
			_, err := parallel.Walk(context.Background(), q, func(keyspace.Page) error { calls++; return c.ret })
			if calls != 1 || (err != nil) != c.wantErr {
				t.Errorf("%s: %d calls, %v", c.name, calls, err)
			}
		}
		q = keyspace.Query{Key: "/registry/pods/", Prefix: true, PageSize: 3, AnyOrder: true}
		if n, err := walkWithLateWrite(f, parallel, q, "/registry/pods/default/late"); err != nil || n != 29 {
			t.Errorf("walked %d pods (want 29, the late one unseen): %v", n, err)
		}
	})

	t.Run("live pages stay at one revision", func(t *testing.T) {
		q := keyspace.Query{Key: "/registry/configmaps/", Prefix: true, PageSize: 10}
		if n, err := walkWithLateWrite(f, live, q, "/registry/configmaps/kube-system/cm-99"); err != nil || n != 29 {
			t.Errorf("walked %d configmaps (want 29, the late one unseen): %v", n, err)
		}
	})

}

// walkWithLateWrite walks q, writing late once the first page is in,
// and returns the keys walked.
func walkWithLateWrite(f *fixture, s keyspace.Source, q keyspace.Query, late string) (int, error) {
	var n int
	_, err := s.Walk(context.Background(), q, func(p keyspace.Page) error {
		if n == 0 {
			if _, err := f.cli.Put(context.Background(), late, "late"); err != nil {
				return err
			}
		}
		n += len(p.Entries)
		return nil
	})
	return n, err
}

// testSource checks what every source must do alike.
func testSource(t *testing.T, f *fixture, s keyspace.Source) {
	ctx := context.Background()
	t.Run("prefix in pages", func(t *testing.T) {
		es, pages, res := collect(t, s, keyspace.Query{Key: "/registry/pods/", Prefix: true, PageSize: 8})
		keys := keysOf(es)
		if len(keys) != 29 || keys[0] != "/registry/pods/default/pod-0" || find(es, "/registry/pods/default/pod-1") != nil {
			t.Fatalf("keys %v", keys)
		}
		if fmt.Sprint(pages) != "[8 8 8 5]" || res.Keys != 29 || res.More || res.Revision == 0 {
			t.Errorf("pages %v, result %+v", pages, res)
		}
		for i := 1; i < len(keys); i++ {
			if keys[i-1] >= keys[i] {
				t.Errorf("out of order: %q, %q", keys[i-1], keys[i])
			}
		}
		if e := es[0]; e.ValueSize != 300 || e.Value != nil || e.Version != 4 {
			t.Errorf("pod-0 %+v", e)
		}
	})
	t.Run("limit", func(t *testing.T) {
		es, _, res := collect(t, s, keyspace.Query{Key: "/registry/", Prefix: true, Limit: 5, PageSize: 3})
		if len(es) != 5 || !res.More {
			t.Errorf("%d keys, %+v", len(es), res)
		}
		es, _, res = collect(t, s, keyspace.Query{Key: "/registry/apps/", Prefix: true, Limit: 1})
		if len(es) != 1 || res.More {
			t.Errorf("%d keys, %+v", len(es), res)
		}
	})
	t.Run("one key with its value and lease", func(t *testing.T) {
		es, _, _ := collect(t, s, keyspace.Query{Key: "/registry/events/default/ev-1", Detail: keyspace.Values})
		if len(es) != 1 || len(es[0].Value) != 500 || es[0].Lease != f.lease {
			t.Errorf("event %+v", es)
		}
	})
	t.Run("keys only", func(t *testing.T) {
		es, _, _ := collect(t, s, keyspace.Query{Key: "/registry/configmaps/", Prefix: true, Detail: keyspace.KeysOnly})
		if len(es) < 29 || es[0].Value != nil || (es[0].ValueSize != -1 && es[0].ValueSize != 1001) {
			t.Errorf("keys only %+v", es[:1])
		}
	})
	t.Run("at an older revision", func(t *testing.T) {
		es, _, res := collect(t, s, keyspace.Query{Key: "/registry/pods/default/pod-", Prefix: true, Revision: f.before, Detail: keyspace.Values})
		if res.Revision != f.before || len(es) != 30 || len(es[0].Value) != 100 || find(es, "/registry/pods/default/pod-1") == nil {
			t.Errorf("at %d: %d keys, %+v", f.before, len(es), res)
		}
	})
	t.Run("every key", func(t *testing.T) {
		es, _, _ := collect(t, s, keyspace.Query{Prefix: true})
		if len(es) < 60 {
			t.Errorf("%d keys", len(es))
		}
	})
	t.Run("stop", func(t *testing.T) {
		calls := 0
		_, err := s.Walk(ctx, keyspace.Query{Prefix: true, PageSize: 2}, func(keyspace.Page) error { calls++; return keyspace.Stop })
		if err != nil || calls != 1 {
			t.Errorf("stop: %d calls, %v", calls, err)
		}
	})
}

func TestRangeEnd(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/registry/", "/registry0"},
		{"a\xff", "b"},
		{"\xff\xff", "\x00"},
		{"", "\x00"},
	} {
		if got := keyspace.RangeEnd(c.in); got != c.want {
			t.Errorf("RangeEnd(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("not a snapshot"), 0o600)
	for _, p := range []string{junk, filepath.Join(dir, "missing.db")} {
		if _, err := keyspace.OpenFile(p, keyspace.FileOptions{}); err == nil {
			t.Errorf("%s opened", p)
		}
	}
}
