package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
)

// clients opens a Client to every member through the port-forward
// dialer, as the commands will.
func clients(t *testing.T, c *etcdtest.Cluster) []etcd.Client {
	t.Helper()
	d := c.ForwardTransport(5 * time.Second)
	var out []etcd.Client
	for _, m := range pods(c) {
		cl, err := d.Client(context.Background(), m)
		if err != nil {
			t.Fatalf("client for %s: %v", m.Name, err)
		}
		t.Cleanup(func() { cl.Close() })
		out = append(out, cl)
	}
	return out
}

func leaderOf(t *testing.T, cls []etcd.Client) (leader int, st []*etcd.Status) {
	t.Helper()
	leader = -1
	for i, cl := range cls {
		s, err := cl.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		st = append(st, s)
		if s.Leader == s.MemberID {
			leader = i
		}
	}
	return leader, st
}

func wantHint(t *testing.T, err error, target error, permanent bool) {
	t.Helper()
	if !errors.Is(err, target) || hint.Of(err) == "" || hint.IsPermanent(err) != permanent {
		t.Errorf("error %v: want %v with a hint, permanent=%v (hint %q)", err, target, permanent, hint.Of(err))
	}
}

// retry retries f for up to 30 s, as a command's poll loop does, until
// it succeeds or fails for good.
func retry(f func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil || hint.IsPermanent(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestIntegrationClient(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real 3-member etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	cls := clients(t, c)
	ctx := context.Background()
	kv := c.Client(t)

	t.Run("paged get", func(t *testing.T) {
		for i := range 250 {
			if _, err := kv.Put(ctx, fmt.Sprintf("/page/%03d", i), fmt.Sprintf("v%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		r := etcd.PageRequest{Key: "/page/", End: "/page0", Limit: 100}
		var keys []string
		var pages int
		var rev int64
		for r.Key != "" {
			p, err := cls[1].GetPage(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if pages == 0 {
				rev = p.Revision
			}
			if p.Count != int64(250-len(keys)) || p.Revision != rev {
				t.Errorf("page %d: count %d, revision %d (first %d)", pages, p.Count, p.Revision, rev)
			}
			for _, e := range p.KVs {
				keys = append(keys, string(e.Key))
			}
			pages++
			// A write between pages must not show: the pages stay at rev.
			if pages == 1 {
				kv.Put(ctx, "/page/000a", "late")
			}
			r = p.Next(r)
		}
		if pages != 3 || len(keys) != 250 || keys[0] != "/page/000" || keys[249] != "/page/249" {
			t.Errorf("%d pages, %d keys (%v ... %v)", pages, len(keys), keys[:1], keys[len(keys)-1:])
		}
		p, err := cls[0].GetPage(ctx, etcd.PageRequest{Key: "/page/", End: "/page0", Limit: 2, KeysOnly: true})
		if err != nil || len(p.KVs) != 2 || len(p.KVs[0].Value) != 0 || !p.More {
			t.Errorf("keys-only page %+v, %v", p, err)
		}
	})

	t.Run("hashkv equal across members", func(t *testing.T) {
		_, st := leaderOf(t, cls)
		rev := st[0].Revision
		var hashes []uint32
		for _, cl := range cls {
			h, err := cl.HashKV(ctx, rev)
			if err != nil {
				t.Fatal(err)
			}
			if h.HashRevision != rev || h.MemberID == 0 {
				t.Errorf("hash %+v, want revision %d", h, rev)
			}
			hashes = append(hashes, h.Hash)
		}
		if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
			t.Errorf("hashes at revision %d differ: %x", rev, hashes)
		}
		_, err := cls[0].HashKV(ctx, rev+1000)
		wantHint(t, err, rpctypes.ErrFutureRev, true)
	})

	t.Run("compact and defragment", func(t *testing.T) {
		big := strings.Repeat("x", 64<<10)
		for range 100 {
			if _, err := kv.Put(ctx, "/big", big); err != nil {
				t.Fatal(err)
			}
		}
		before, err := cls[0].Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := cls[0].Compact(ctx, before.Revision, true); err != nil {
			t.Fatal(err)
		}
		if err := cls[0].Defragment(ctx); err != nil {
			t.Fatal(err)
		}
		after, err := cls[0].Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("db %d -> %d bytes, in use %d -> %d", before.DBSize, after.DBSize, before.DBSizeInUse, after.DBSizeInUse)
		if after.DBSize >= before.DBSize/2 {
			t.Errorf("defragment left %d bytes of %d", after.DBSize, before.DBSize)
		}
		_, err = cls[1].GetPage(ctx, etcd.PageRequest{Key: "/big", Revision: before.Revision - 1})
		wantHint(t, err, rpctypes.ErrCompacted, true)
	})

	t.Run("move leader", func(t *testing.T) {
		leader, st := leaderOf(t, cls)
		to := (leader + 1) % 3
		other := (leader + 2) % 3
		wantHint(t, cls[other].MoveLeader(ctx, st[to].MemberID), rpctypes.ErrNotLeader, false)
		if err := cls[leader].MoveLeader(ctx, st[to].MemberID); err != nil {
			t.Fatal(err)
		}
		if now, _ := leaderOf(t, cls); now != to {
			t.Errorf("leader is member %d, want %d", now, to)
		}
	})

	t.Run("learner add, promote, remove", func(t *testing.T) {
		m := c.NewMember("m4")
		var added etcd.MemberInfo
		var list []etcd.MemberInfo
		err := retry(func() (err error) {
			added, list, err = cls[0].MemberAdd(ctx, []string{m.PeerURL}, true)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !added.IsLearner || added.Started() || len(list) != 4 {
			t.Fatalf("added %+v, list of %d", added, len(list))
		}
		var initial []string
		for _, mi := range list {
			name := mi.Name
			if mi.ID == added.ID {
				name = m.Name
			}
			initial = append(initial, name+"="+mi.PeerURLs[0])
		}
		if err := c.Join(m, strings.Join(initial, ",")); err != nil {
			t.Fatal(err)
		}
		defer m.Stop()
		err = retry(func() (err error) {
			list, err = cls[1].MemberPromote(ctx, added.ID)
			if errors.Is(err, rpctypes.ErrMemberLearnerNotReady) {
				wantHint(t, err, rpctypes.ErrMemberLearnerNotReady, false)
			}
			return err
		})
		if err != nil {
			t.Fatalf("promote: %v", err)
		}
		for _, mi := range list {
			if mi.IsLearner {
				t.Errorf("member %s is still a learner", etcd.HexID(mi.ID))
			}
		}
		_, err = cls[1].MemberPromote(ctx, added.ID)
		wantHint(t, err, rpctypes.ErrMemberNotLearner, true)
		if err = retry(func() (err error) { list, err = cls[2].MemberRemove(ctx, added.ID); return err }); err != nil || len(list) != 3 {
			t.Fatalf("remove: %v, %d members", err, len(list))
		}
		_, err = cls[2].MemberRemove(ctx, added.ID)
		wantHint(t, err, rpctypes.ErrMemberNotFound, true)
	})

	t.Run("NOSPACE alarm: list, recover, disarm", func(t *testing.T) {
		const quota = 2 << 20
		if err := c.RestartMember(0, func(cfg *embed.Config) { cfg.QuotaBackendBytes = quota }); err != nil {
			t.Fatal(err)
		}
		big := strings.Repeat("y", 64<<10)
		var err error
		for i := 0; i < 200 && err == nil; i++ {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = kv.Put(pctx, "/fill", big)
			cancel()
		}
		if !errors.Is(err, rpctypes.ErrNoSpace) {
			t.Fatalf("filling a %d-byte quota: %v", quota, err)
		}
		alarms, err := cls[1].AlarmList(ctx)
		if err != nil || len(alarms) != 1 || alarms[0].Type != "NOSPACE" || alarms[0].MemberID != c.Members[0].ID() {
			t.Fatalf("alarms %+v, %v", alarms, err)
		}
		st, err := cls[0].Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := cls[0].Compact(ctx, st.Revision, true); err != nil {
			t.Fatal(err)
		}
		for _, cl := range cls {
			if err := cl.Defragment(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cls[0].AlarmDisarm(ctx, etcd.Alarm{Type: "NOSUCH"}); !hint.IsPermanent(err) {
			t.Errorf("disarming an unknown alarm: %v", err)
		}
		disarmed, err := cls[2].AlarmDisarm(ctx, etcd.Alarm{})
		if err != nil || len(disarmed) != 1 {
			t.Fatalf("disarmed %+v, %v", disarmed, err)
		}
		if alarms, err := cls[1].AlarmList(ctx); err != nil || len(alarms) != 0 {
			t.Errorf("alarms after disarming: %+v, %v", alarms, err)
		}
		if _, err := kv.Put(ctx, "/after", "ok"); err != nil {
			t.Errorf("write after recovery: %v", err)
		}
	})
}

func TestPageNext(t *testing.T) {
	kvs := func(keys ...string) []etcd.KeyValue {
		var out []etcd.KeyValue
		for _, k := range keys {
			out = append(out, etcd.KeyValue{Key: []byte(k)})
		}
		return out
	}
	r := etcd.PageRequest{Key: "/a", End: "/b", Limit: 2, KeysOnly: true}
	tests := []struct {
		name string
		page etcd.Page
		want etcd.PageRequest
	}{
		{name: "more", page: etcd.Page{KVs: kvs("/a1", "/a2"), More: true, Revision: 7}, want: etcd.PageRequest{Key: "/a2\x00", End: "/b", Limit: 2, KeysOnly: true, Revision: 7}},
		{name: "last page", page: etcd.Page{KVs: kvs("/a3"), Revision: 7}},
		{name: "empty", page: etcd.Page{More: true, Revision: 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.page.Next(r); got != tc.want {
				t.Errorf("Next = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestAlarmsIn: the alarms a status lists, in etcd's text forms (gogo's
// up to 3.6, protobuf-go's with its varying spaces from 3.7); an error
// that names an alarm but does not parse sends the caller to the list.
func TestAlarmsIn(t *testing.T) {
	tests := []struct {
		errs []string
		want string
		ok   bool
	}{
		{nil, "", true},
		{[]string{"etcdserver: no leader"}, "", true},
		{[]string{"memberID:10276657743932975437 alarm:NOSPACE "}, "8e9e05c52164694d NOSPACE", true},
		{[]string{"memberID:1  alarm:CORRUPT", "memberID: 2 alarm: NOSPACE"}, "1 CORRUPT, 2 NOSPACE", true},
		{[]string{"memberID:1 alarm:NOSPACE", "etcdserver: no leader"}, "1 NOSPACE", true},
		{[]string{"alarm: something new"}, "", false},
		{[]string{"memberID:1 alarm:NONE"}, "", false},
	}
	for _, tc := range tests {
		as, ok := etcd.AlarmsIn(&etcd.Status{Errors: tc.errs})
		var got []string
		for _, a := range as {
			got = append(got, etcd.HexID(a.MemberID)+" "+a.Type)
		}
		if ok != tc.ok || strings.Join(got, ", ") != tc.want {
			t.Errorf("AlarmsIn(%q) = %q, %v; want %q, %v", tc.errs, got, ok, tc.want, tc.ok)
		}
	}
}
