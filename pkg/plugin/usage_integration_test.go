package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// TestIntegrationUsageCommand runs `kubectl etcd usage` live, against a
// real 3-member TLS cluster holding a dataset the test writes, and on a
// snapshot of it.
func TestIntegrationUsageCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real 3-member etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	ctx := context.Background()
	put := func(k string, n int, opts ...clientv3.OpOption) {
		t.Helper()
		if _, err := cli.Put(ctx, k, strings.Repeat("v", n), opts...); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		put(fmt.Sprintf("/registry/pods/team-a/web-%02d", i), 3000)
	}
	for i := range 10 {
		put(fmt.Sprintf("/registry/configmaps/team-b/cm-%d", i), 500)
	}
	l, err := cli.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		put(fmt.Sprintf("/registry/events/team-a/web.%d", i), 400, clientv3.WithLease(l.ID))
	}
	for range 30 {
		put("/registry/leases/kube-node-lease/node-1", 300)
	}
	del, err := cli.Delete(ctx, "/registry/events/team-a/web.5")
	if err != nil {
		t.Fatal(err)
	}
	// usage reads a follower, serializable: let every member apply the
	// writes first.
	c.WaitApplied(t, cli, del.Header.Revision)

	run := commandRunner(c)
	report := func(t *testing.T, args ...string) (*keyspace.UsageReport, map[string]keyspace.ResourceUsage) {
		t.Helper()
		out, _ := run(t, append(args, "-o", "json")...)
		var rep keyspace.UsageReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		rows := map[string]keyspace.ResourceUsage{}
		for _, r := range rep.Resources {
			rows[r.Resource+"/"+r.Namespace] = r
		}
		return &rep, rows
	}

	t.Run("live", func(t *testing.T) {
		rep, rows := report(t, "usage")
		if rep.Source != "member" || rep.Role != "follower" || !rep.Serializable || rep.DBSize == 0 || rep.DBSizeQuota == 0 || rep.History != keyspace.HistoryVersions {
			t.Errorf("report %+v", rep)
		}
		podKey := len("/registry/pods/team-a/web-00")
		if p := rows["pods/"]; p.Keys != 20 || p.Bytes != int64(20*(podKey+3000)) {
			t.Errorf("pods %+v", p)
		}
		if e := rows["events/"]; e.Keys != 5 || e.LeasedKeys != 5 || rep.Leases != 1 {
			t.Errorf("events %+v, %d leases", e, rep.Leases)
		}
		if len(rep.TopKeys) == 0 || rep.TopKeys[0].Key != "/registry/leases/kube-node-lease/node-1" || rep.TopKeys[0].Revisions != 30 {
			t.Errorf("top keys %+v", rep.TopKeys)
		}
		if rep.Churn[1].Resource != "leases" || rep.Churn[1].Revisions != 30 {
			t.Errorf("churn %+v", rep.Churn)
		}
	})

	t.Run("by namespace", func(t *testing.T) {
		_, rows := report(t, "usage", "--by-namespace", "--top", "2")
		if len(rows) != 2 || rows["pods/team-a"].Keys != 20 {
			t.Errorf("rows %+v", rows)
		}
	})

	t.Run("table", func(t *testing.T) {
		out, errOut := run(t, "usage", "--prefix", "/registry/configmaps/")
		if !strings.Contains(out, "\nRESOURCE ") || !strings.Contains(out, "configmaps ") || strings.Contains(out, "\npods ") {
			t.Errorf("table:\n%s", out)
		}
		if !strings.Contains(errOut, "from follower") {
			t.Errorf("notice %q", errOut)
		}
	})

	t.Run("snapshot", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "etcd.db")
		src := func(ctx context.Context) (io.ReadCloser, error) { return etcd.NewV3Conn(cli, 0).Snapshot(ctx) }
		if _, err := snapshot.Save(ctx, src, &snapshot.FileSink{Path: path}, snapshot.Options{}); err != nil {
			t.Fatal(err)
		}
		rep, rows := report(t, "usage", "--snapshot", path)
		if rep.Source != "snapshot" || rep.History != keyspace.HistoryStored || rep.Leases != 1 || rep.Revision == 0 {
			t.Errorf("report %+v", rep)
		}
		if e := rows["events/"]; e.Keys != 5 || e.DeletedKeys != 1 || e.Revisions != 7 {
			t.Errorf("events %+v", e)
		}
		if l := rows["leases/"]; l.Revisions != 30 || l.HistoryBytes != 30*int64(len("/registry/leases/kube-node-lease/node-1")+300) {
			t.Errorf("leases %+v", l)
		}
		if out, _ := run(t, "usage", "--snapshot", path); !strings.Contains(out, "COMPACTED AT") || !strings.Contains(out, "REVISIONS") {
			t.Errorf("table:\n%s", out)
		}
	})
}
