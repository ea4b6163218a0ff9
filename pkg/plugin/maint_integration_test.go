package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
)

// TestIntegrationMaintCommands runs the maintenance commands as a user
// would, against a real 3-member TLS cluster: the members are discovered
// from their pod specs and reached through the port-forward transport's
// client.
func TestIntegrationMaintCommands(t *testing.T) {
	c, _ := startCluster(t)
	cli := c.Client(t)
	big := strings.Repeat("x", 64<<10)
	for range 50 {
		if _, err := cli.Put(context.Background(), "/big", big); err != nil {
			t.Fatal(err)
		}
	}
	run := commandRunner(c)

	t.Run("move-leader", func(t *testing.T) {
		out, _ := run(t, "move-leader", c.Members[2].Name, "--yes", "-o", "json")
		var res maint.MoveLeaderResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if res.To.Name != c.Members[2].Name || res.To.ID != strings.ToLower(res.To.ID) || len(res.To.ID) == 0 {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("defrag --compact", func(t *testing.T) {
		out, errOut := run(t, "defrag", "--compact", "--min-free", "1MiB", "--yes", "-o", "json")
		var res maint.DefragResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if len(res.Members) != 3 || res.Members[2].Name != c.Members[2].Name || res.CompactedRevision == 0 {
			t.Fatalf("result %+v\n%s", res, errOut)
		}
		for _, m := range res.Members {
			if m.Result != maint.ResultDefragmented || m.After == nil || m.After.DBSize >= m.Before.DBSize {
				t.Errorf("member %s: %s (%s), %+v -> %+v\n%s", m.Name, m.Result, m.Reason, m.Before, m.After, errOut)
			}
		}
	})

	t.Run("alarm list and compact", func(t *testing.T) {
		if _, errOut := run(t, "alarm", "list"); !strings.Contains(errOut, "No alarm is raised.") {
			t.Errorf("alarm list said %q", errOut)
		}
		out, _ := run(t, "compact", "--yes")
		if !strings.HasPrefix(out, "REVISION BEFORE") {
			t.Errorf("compact printed %q", out)
		}
	})
}

// commandRunner runs command lines as a user would against c: the members
// are discovered from their pod specs and reached through the
// port-forward transport's client. It returns stdout and stderr, and
// fails the test when the command fails.
func commandRunner(c *etcdtest.Cluster) func(t *testing.T, args ...string) (string, string) {
	var pods []runtime.Object
	for i := range c.Members {
		pods = append(pods, c.Pod(i, etcdtest.Image))
	}
	return func(t *testing.T, args ...string) (string, string) {
		t.Helper()
		streams, _, out, errOut := genericiooptions.NewTestIOStreams()
		g := NewGlobalOptions(streams)
		g.Client = fake.NewClientset(pods...)
		g.Clients = c.ForwardTransport(5 * time.Second)
		g.Poll = 100 * time.Millisecond
		cmd := NewCmdEtcdWithOptions(g)
		cmd.SetArgs(args)
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("kubectl etcd %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out.String(), errOut.String()
	}
}
