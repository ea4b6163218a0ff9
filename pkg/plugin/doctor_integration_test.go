package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/metrics"
)

// TestIntegrationCheckAndMetrics runs check and metrics as a user would,
// against a real 3-member TLS cluster found from its pod specs.
func TestIntegrationCheckAndMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real 3-member etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	var pods []runtime.Object
	for i := range c.Members {
		pods = append(pods, c.Pod(i, etcdtest.Image))
	}
	run := func(t *testing.T, args ...string) (string, string, error) {
		t.Helper()
		streams, _, out, errOut := genericiooptions.NewTestIOStreams()
		g := NewGlobalOptions(streams)
		g.Client = fake.NewClientset(pods...)
		fwd := c.ForwardTransport(5 * time.Second)
		g.Clients, g.HTTP, g.NodeFiles = fwd, fwd, etcdtest.NodeFiles{}
		cmd := NewCmdEtcdWithOptions(g)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), errOut.String(), err
	}

	t.Run("check passes without the day-long test certificates", func(t *testing.T) {
		out, errOut, err := run(t, "check", "--window", "1s", "--skip", "security.cert-expiry,performance")
		if err != nil {
			t.Fatalf("%v\n%s%s", err, out, errOut)
		}
		t.Logf("\n%s%s", out, errOut)
		for _, area := range []string{"topology", "versions", "consistency", "security", "capacity", "backups"} {
			if !strings.Contains(out, "\n"+area+" ") {
				t.Errorf("no %s rows:\n%s", area, out)
			}
		}
		if !strings.Contains(errOut, " 0 fail,") {
			t.Errorf("summary: %s", errOut)
		}
	})

	t.Run("check exits non-zero on a failing check, as json", func(t *testing.T) {
		out, _, err := run(t, "check", "--only", "security.cert-expiry", "-o", "json")
		if !errors.Is(err, doctor.ErrFailed) {
			t.Fatalf("err = %v", err)
		}
		var rep doctor.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if rep.Summary.Fail != 3 || len(rep.Results) != 3 || rep.Results[0].Fix == "" {
			t.Errorf("%+v", rep)
		}
	})

	t.Run("--strict passes a run without warnings", func(t *testing.T) {
		// Three members on three nodes, all fine: no warning, no error.
		// TestCheckStrict has --strict failing on a warning.
		if _, _, err := run(t, "check", "--strict", "--only", "topology"); err != nil {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("unknown check names are refused", func(t *testing.T) {
		if _, _, err := run(t, "check", "--only", "security.nope"); err == nil || !strings.Contains(err.Error(), "no check or area") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("metrics agrees with the raw scrape", func(t *testing.T) {
		out, errOut, err := run(t, "metrics", "--window", "0", "--member", c.Members[0].Name, "-o", "json")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		var ms []metrics.Metrics
		if err := json.Unmarshal([]byte(out), &ms); err != nil || len(ms) != 1 {
			t.Fatalf("%v: %s", err, out)
		}
		raw, _, err := run(t, "metrics", "--raw", "--member", c.Members[0].Name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := metrics.ParseScrape(bytes.NewReader([]byte(raw)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if q, _ := s.Value("etcd_server_quota_backend_bytes"); int64(q) != ms[0].Quota || ms[0].Quota == 0 {
			t.Errorf("quota %d, raw %g", ms[0].Quota, q)
		}
		if v := s.Label("etcd_server_version", "server_version"); v != ms[0].Version || v == "" {
			t.Errorf("version %q, raw %q", ms[0].Version, v)
		}
		if l, _ := s.Value("etcd_server_has_leader"); (l == 1) != ms[0].HasLeader {
			t.Errorf("has leader %v, raw %g", ms[0].HasLeader, l)
		}
		if lc, _ := s.Value("etcd_server_leader_changes_seen_total"); int64(lc) != ms[0].LeaderChanges {
			t.Errorf("leader changes %d, raw %g", ms[0].LeaderChanges, lc)
		}
	})

	t.Run("metrics table over a window", func(t *testing.T) {
		out, errOut, err := run(t, "metrics", "--window", "1s", "-o", "wide")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		t.Logf("\n%s", out)
		if strings.Count(out, "\n") != 4 || !strings.Contains(out, "WAL FSYNC P99") {
			t.Errorf("%s", out)
		}
	})
}
