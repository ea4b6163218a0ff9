package maint_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
)

// recorder wraps the real port-forward dialer and records the changes
// made through it, so that the order can be checked on a real cluster.
type recorder struct {
	etcd.Transport
	c     *etcdtest.Cluster
	mu    sync.Mutex
	calls []string
}

func (r *recorder) Client(ctx context.Context, m discovery.Member) (etcd.Client, error) {
	cl, err := r.Transport.Client(ctx, m)
	if err != nil {
		return nil, err
	}
	return &recClient{Client: cl, r: r, name: m.Name}, nil
}

func (r *recorder) add(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func (r *recorder) name(id uint64) string {
	for _, m := range r.c.Members {
		if m.Running() && m.ID() == id {
			return m.Name
		}
	}
	return etcd.HexID(id)
}

type recClient struct {
	etcd.Client
	r    *recorder
	name string
}

func (c *recClient) Defragment(ctx context.Context) error {
	c.r.add("defragment " + c.name)
	return c.Client.Defragment(ctx)
}

func (c *recClient) MoveLeader(ctx context.Context, to uint64) error {
	c.r.add("move-leader " + c.name + " -> " + c.r.name(to))
	return c.Client.MoveLeader(ctx, to)
}

func (c *recClient) Compact(ctx context.Context, rev int64, physical bool) error {
	c.r.add("compact")
	return c.Client.Compact(ctx, rev, physical)
}

func (c *recClient) AlarmDisarm(ctx context.Context, a etcd.Alarm) ([]etcd.Alarm, error) {
	c.r.add("disarm " + a.Type + " " + c.r.name(a.MemberID))
	return c.Client.AlarmDisarm(ctx, a)
}

// realOptions poll a real cluster: it needs real time.
func realOptions(log *bytes.Buffer) maint.Options {
	return maint.Options{Log: log, Poll: 100 * time.Millisecond, HealthTimeout: 30 * time.Second}
}

// leader asks etcd itself, not the plugin, who leads.
func leader(t *testing.T, c *etcdtest.Cluster, cli *clientv3.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		st, err := cli.Status(ctx, m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader == st.Header.MemberId {
			return m.Name
		}
	}
	t.Fatal("no leader")
	return ""
}

func fill(t *testing.T, cli *clientv3.Client, key string, n int) error {
	t.Helper()
	big := strings.Repeat("x", 64<<10)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, key, big)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// writer puts a small key every 50 ms until stopped, as the API
// server's leases do. A write may time out while the leadership moves
// (etcd drops proposals during the hand-over), on a loaded machine
// more so; three failures in a row mean maintenance stopped the cluster.
func writer(t *testing.T, cli *clientv3.Client) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		failed := 0
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := cli.Put(ctx, "/lease", time.Now().String())
			cancel()
			if err == nil {
				failed = 0
				continue
			}
			t.Logf("a write during maintenance: %v", err)
			if failed++; failed == 3 {
				t.Errorf("three writes in a row failed during maintenance: %v", err)
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func TestIntegrationMaint(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real 3-member etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	rec := &recorder{Transport: c.ForwardTransport(5 * time.Second), c: c}
	ctx := context.Background()

	t.Run("move-leader to a named member", func(t *testing.T) {
		from := leader(t, c, cli)
		to := c.Members[0].Name
		if to == from {
			to = c.Members[1].Name
		}
		cfg := maint.MoveLeaderConfig{Options: realOptions(&bytes.Buffer{}), To: to}
		res, err := maint.MoveLeader(ctx, rec, c.Pods(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if now := leader(t, c, cli); now != to || !res.Moved || res.From.Name != from || res.To.Name != to {
			t.Errorf("leader %s, result %+v; want %s -> %s", now, res, from, to)
		}
		if diff := cmp.Diff([]string{"move-leader " + from + " -> " + to}, rec.take()); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
	})

	t.Run("move-leader by hex ID, then to the best follower", func(t *testing.T) {
		from := leader(t, c, cli)
		var target *etcdtest.Member
		for _, m := range c.Members {
			if m.Name != from {
				target = m
			}
		}
		cfg := maint.MoveLeaderConfig{Options: realOptions(&bytes.Buffer{}), To: etcd.HexID(target.ID())}
		if _, err := maint.MoveLeader(ctx, rec, c.Pods(), cfg); err != nil {
			t.Fatal(err)
		}
		if now := leader(t, c, cli); now != target.Name {
			t.Fatalf("leader %s, want %s", now, target.Name)
		}
		res, err := maint.MoveLeader(ctx, rec, c.Pods(), maint.MoveLeaderConfig{Options: realOptions(&bytes.Buffer{})})
		if err != nil {
			t.Fatal(err)
		}
		now := leader(t, c, cli)
		if now == target.Name || now != res.To.Name || !res.Moved {
			t.Errorf("after moving to the best follower, %s leads (result %+v); %s led before", now, res, target.Name)
		}
		rec.take()
	})

	t.Run("defrag skips members below the threshold", func(t *testing.T) {
		if err := fill(t, cli, "/frag", 100); err != nil {
			t.Fatal(err)
		}
		cfg := maint.DefragConfig{Options: realOptions(&bytes.Buffer{}), MinFreeRatio: maint.DefaultMinFreeRatio, MinFree: maint.DefaultMinFree}
		res, err := maint.Defrag(ctx, rec, c.Pods(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Members {
			if m.Result != maint.ResultSkipped || m.Before.DBSize == 0 {
				t.Errorf("member %s: %s (%s), before %+v; want skipped: the history is not compacted", m.Name, m.Result, m.Reason, m.Before)
			}
		}
		if got := rec.take(); len(got) != 0 {
			t.Errorf("changes %v, want none", got)
		}
	})

	t.Run("defrag: followers first, leadership moved, then the leader", func(t *testing.T) {
		if err := fill(t, cli, "/frag", 100); err != nil {
			t.Fatal(err)
		}
		// Writes go on meanwhile, as the API server's leases do: they
		// also make the members count the pages the compaction freed.
		stop := writer(t, cli)
		defer stop()
		first := leader(t, c, cli)
		var log bytes.Buffer
		cfg := maint.DefragConfig{Options: realOptions(&log), Compact: true, MinFreeRatio: maint.DefaultMinFreeRatio, MinFree: 1 << 20}
		res, err := maint.Defrag(ctx, rec, c.Pods(), cfg)
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		// One compaction, then the same asked of each other member, to
		// wait until each has freed the history.
		calls := rec.take()
		if len(calls) != 7 || strings.Join(calls[:3], ",") != "compact,compact,compact" || calls[6] != "defragment "+first ||
			!strings.HasPrefix(calls[5], "move-leader "+first+" -> ") {
			t.Fatalf("changes %v: want compact, the two followers, the hand-over, then %s\n%s", calls, first, log.String())
		}
		for _, call := range calls[3:5] {
			if call == "defragment "+first || !strings.HasPrefix(call, "defragment ") {
				t.Errorf("change %q is not a follower's defragmentation", call)
			}
		}
		if now := leader(t, c, cli); now == first || len(res.LeaderMoves) != 1 || res.LeaderMoves[0].From.Name != first {
			t.Errorf("leader %s, moves %+v; %s led before", now, res.LeaderMoves, first)
		}
		for _, m := range res.Members {
			if m.Result != maint.ResultDefragmented || m.After == nil || m.After.DBSize >= m.Before.DBSize/2 || m.TookText == "" {
				t.Errorf("member %s: %s, %+v -> %+v", m.Name, m.Result, m.Before, m.After)
			}
		}
		if res.Members[2].Name != first || res.Members[2].Role != "leader" {
			t.Errorf("last row %+v, want the leader %s", res.Members[2], first)
		}
		// Nothing is left to give back: a second run skips everyone.
		cfg.Compact = false
		if _, err := maint.Defrag(ctx, rec, c.Pods(), cfg); err != nil {
			t.Fatal(err)
		}
		if got := rec.take(); len(got) != 0 {
			t.Errorf("second run changed %v", got)
		}
	})

	t.Run("compact to the current revision", func(t *testing.T) {
		if err := fill(t, cli, "/compact", 3); err != nil {
			t.Fatal(err)
		}
		res, err := maint.Compact(ctx, rec, c.Pods(), maint.CompactConfig{Options: realOptions(&bytes.Buffer{})})
		if err != nil {
			t.Fatal(err)
		}
		if res.Compacted != res.RevisionBefore || res.RevisionAfter < res.RevisionBefore {
			t.Errorf("result %+v", res)
		}
		_, err = cli.Get(ctx, "/compact", clientv3.WithRev(res.Compacted-1))
		if !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("reading revision %d after compacting: %v", res.Compacted-1, err)
		}
		rec.take()
	})

	t.Run("NOSPACE raised, disarmed, then cleared by defrag --compact --disarm", func(t *testing.T) {
		const quota = 2 << 20
		if err := c.RestartMember(0, func(cfg *embed.Config) { cfg.QuotaBackendBytes = quota }); err != nil {
			t.Fatal(err)
		}
		full := c.Members[0]
		if err := fill(t, cli, "/fill", 200); !errors.Is(err, rpctypes.ErrNoSpace) {
			t.Fatalf("filling a %d-byte quota: %v", quota, err)
		}
		list, err := maint.ListAlarms(ctx, rec, c.Pods())
		if err != nil || len(list.Alarms) != 1 || list.Alarms[0].Alarm != "NOSPACE" || list.Alarms[0].Member != full.Name || list.Alarms[0].MemberID != etcd.HexID(full.ID()) {
			t.Fatalf("alarms %+v, %v", list, err)
		}

		var log bytes.Buffer
		o := realOptions(&log)
		o.DryRun = true
		if _, err := maint.DisarmAlarms(ctx, rec, c.Pods(), o); err != nil || len(rec.take()) != 0 {
			t.Fatalf("a dry run: %v", err)
		}
		o.DryRun = false
		res, err := maint.DisarmAlarms(ctx, rec, c.Pods(), o)
		if err != nil || len(res.Alarms) != 1 {
			t.Fatalf("disarm: %+v, %v\n%s", res, err, log.String())
		}
		if !strings.Contains(log.String(), full.Name+" ("+etcd.HexID(full.ID())+")'s database") {
			t.Errorf("no warning that %s's database still fills its quota:\n%s", full.Name, log.String())
		}
		if diff := cmp.Diff([]string{"disarm NOSPACE " + full.Name}, rec.take()); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		// Still full: the next writes raise it again.
		if err := fill(t, cli, "/fill", 50); !errors.Is(err, rpctypes.ErrNoSpace) {
			t.Fatalf("writing to a full database after a bare disarm: %v", err)
		}

		log.Reset()
		cfg := maint.DefragConfig{Options: realOptions(&log), Compact: true, Disarm: true, MinFreeRatio: maint.DefaultMinFreeRatio, MinFree: maint.DefaultMinFree}
		dres, err := maint.Defrag(ctx, rec, c.Pods(), cfg)
		if err != nil {
			t.Fatalf("defrag with a NOSPACE alarm: %v\n%s", err, log.String())
		}
		for _, m := range dres.Members {
			if m.Result != maint.ResultDefragmented || m.Name == full.Name && m.After.DBSize >= quota {
				t.Errorf("member %s: %s (%s), %+v -> %+v", m.Name, m.Result, m.Reason, m.Before, m.After)
			}
		}
		if calls := rec.take(); calls[len(calls)-1] != "disarm NOSPACE "+full.Name {
			t.Errorf("changes %v do not end with the disarm", calls)
		}
		if list, err := maint.ListAlarms(ctx, rec, c.Pods()); err != nil || len(list.Alarms) != 0 {
			t.Errorf("alarms after recovery: %+v, %v", list, err)
		}
		if _, err := cli.Put(ctx, "/after", "ok"); err != nil {
			t.Errorf("write after recovery: %v", err)
		}
	})

	// Under NOSPACE no helper pod starts (the API server's writes are
	// refused), so the port-forward transport cannot read the TLS
	// material: the same recovery runs over etcdctl in the containers.
	t.Run("over exec: NOSPACE cleared by defrag --compact --disarm, leader moved", func(t *testing.T) {
		bins, err := etcdtest.Etcdctls(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		exec := &recorder{Transport: &etcd.ExecTransport{Exec: &etcdtest.LocalExecutor{Binaries: map[string]string{"etcdctl": bins["pinned"]}}, Timeout: 5 * time.Second}, c: c}
		full := c.Members[0]
		if err := fill(t, cli, "/fill-exec", 200); !errors.Is(err, rpctypes.ErrNoSpace) {
			t.Fatalf("filling the quota again: %v", err)
		}
		from := leader(t, c, cli)
		var log bytes.Buffer
		cfg := maint.DefragConfig{Options: realOptions(&log), Compact: true, Disarm: true, MinFreeRatio: maint.DefaultMinFreeRatio, MinFree: maint.DefaultMinFree}
		dres, err := maint.Defrag(ctx, exec, c.Pods(), cfg)
		if err != nil {
			t.Fatalf("defrag over exec with a NOSPACE alarm: %v\n%s", err, log.String())
		}
		for i, m := range dres.Members {
			if m.Result != maint.ResultDefragmented || m.Name == full.Name && m.After.DBSize >= 2<<20 {
				t.Errorf("member %s: %s (%s), %+v -> %+v", m.Name, m.Result, m.Reason, m.Before, m.After)
			}
			if (i == len(dres.Members)-1) != (m.Name == from) {
				t.Errorf("over exec, %s was defragmented at %d of %d (the leader was %s)", m.Name, i+1, len(dres.Members), from)
			}
		}
		if len(dres.LeaderMoves) != 1 || dres.LeaderMoves[0].From.Name != from || dres.Disarmed == nil || dres.CompactedRevision == 0 {
			t.Errorf("over exec: moves %+v, disarmed %+v, compacted at %d", dres.LeaderMoves, dres.Disarmed, dres.CompactedRevision)
		}
		if list, err := maint.ListAlarms(ctx, exec, c.Pods()); err != nil || len(list.Alarms) != 0 {
			t.Errorf("alarms after recovery over exec: %+v, %v", list, err)
		}
		if _, err := cli.Put(ctx, "/after-exec", "ok"); err != nil {
			t.Errorf("write after recovery over exec: %v", err)
		}
		// usage pages through keys, which etcdctl cannot.
		if _, err := keyspace.KeyUsage(ctx, exec, c.Pods(), keyspace.UsageConfig{}); !errors.Is(err, etcd.ErrUnsupported) {
			t.Errorf("usage over exec: %v, want ErrUnsupported", err)
		}
	})
}
