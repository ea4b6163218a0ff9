//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// usageReport is the part of `kubectl etcd usage -o json` the test reads.
type usageReport struct {
	Source, Role, History string
	Revision, DBSize      int64
	DBSizeQuota           int64
	Total                 struct{ Keys, Bytes int64 }
	Resources             []struct {
		Resource, Namespace string
		Keys, Bytes         int64
		Revisions           int64
	}
	Churn []struct {
		Resource  string
		Keys      int64
		Revisions int64
	}
}

func (u usageReport) row(resource, namespace string) (keys int64, ok bool) {
	for _, r := range u.Resources {
		if r.Resource == resource && r.Namespace == namespace {
			return r.Keys, true
		}
	}
	return 0, false
}

func usageOf(t *testing.T, args ...string) usageReport {
	t.Helper()
	r := mustSucceed(t, kubectl(t, append([]string{"etcd", "usage", "-o", "json"}, args...)...))
	var u usageReport
	if err := json.Unmarshal([]byte(r.stdout), &u); err != nil {
		t.Fatalf("usage -o json: %v\n%s", err, r.stdout)
	}
	return u
}

// `kubectl etcd usage` on the real control plane lists pods, configmaps
// and events, live and from a backup taken here.
func TestUsage(t *testing.T) {
	scenario(t)
	const ns = "e2e-usage"
	mustSucceed(t, kubectl(t, "create", "namespace", ns))
	t.Cleanup(func() { kubectl(t, "delete", "namespace", ns, "--wait=false") })
	mustSucceed(t, kubectl(t, "-n", ns, "create", "configmap", "usage-cm", "--from-literal=k=v"))
	// An event of our own: the cluster's may have expired (1 h TTL).
	ev := filepath.Join(t.TempDir(), "event.yaml")
	os.WriteFile(ev, []byte(`apiVersion: v1
kind: Event
metadata:
  name: usage-e2e.1
  namespace: `+ns+`
involvedObject:
  kind: ConfigMap
  name: usage-cm
  namespace: `+ns+`
reason: E2E
message: kubectl etcd usage e2e
type: Normal
`), 0o600)
	mustSucceed(t, kubectl(t, "apply", "-f", ev))

	u := usageOf(t, "--top", "0")
	// etcd reports its quota in the status from 3.6 on (flavour 1.33 runs 3.5).
	if u.Source != "member" || u.History != "versions" || u.DBSize <= 0 || (u.DBSizeQuota <= 0 && flavour != "1.33") || u.Total.Keys <= 0 {
		t.Errorf("live usage: %+v", u)
	}
	if nodes > 1 && u.Role != "follower" {
		t.Errorf("read from the %s although followers are healthy", u.Role)
	}
	for _, res := range []string{"pods", "configmaps", "events"} {
		if n, ok := u.row(res, ""); !ok || n == 0 {
			t.Errorf("live usage lists no %s: %+v", res, u.Resources)
		}
	}
	if len(u.Churn) != 2 || u.Churn[0].Resource != "events" || u.Churn[0].Keys == 0 {
		t.Errorf("churn %+v", u.Churn)
	}

	byNS := usageOf(t, "--by-namespace", "--top", "0")
	if n, ok := byNS.row("configmaps", ns); !ok || n < 1 { // ours, and kube-root-ca.crt once published
		t.Errorf("configmaps in %s: %d (listed %v)", ns, n, ok)
	}
	if n, ok := byNS.row("events", ns); !ok || n < 1 {
		t.Errorf("events in %s: %d (listed %v)", ns, n, ok)
	}

	r := mustSucceed(t, kubectl(t, "etcd", "usage", "--top", "5"))
	if !strings.Contains(r.stdout, "RESOURCE") || !strings.Contains(r.stdout, "CHURN") || !strings.Contains(r.stdout, "(the rest)") {
		t.Errorf("usage table:\n%s", r.stdout)
	}

	file := filepath.Join(t.TempDir(), "etcd.db")
	mustSucceed(t, kubectl(t, "etcd", "backup", file))
	s := usageOf(t, "--snapshot", file, "--top", "0", "--by-namespace")
	if s.Source != "snapshot" || s.History != "stored-revisions" || s.Revision < u.Revision {
		t.Errorf("snapshot usage: %+v (live revision %d)", s, u.Revision)
	}
	if n, ok := s.row("configmaps", ns); !ok || n < 1 {
		t.Errorf("snapshot: configmaps in %s: %d (listed %v)", ns, n, ok)
	}
	for _, res := range []string{"pods", "events"} {
		found := false
		for _, row := range s.Resources {
			found = found || (row.Resource == res && row.Keys > 0 && row.Revisions >= row.Keys)
		}
		if !found {
			t.Errorf("snapshot usage lists no %s with its revisions: %+v", res, s.Resources)
		}
	}
}
