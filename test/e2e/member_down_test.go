//go:build e2e

package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMemberDown stops one member's static pod the way an operator would
// meet it (its manifest gone) and checks that health and status report it
// while showing the others, with a non-zero exit.
func TestMemberDown(t *testing.T) {
	scenario(t)
	victim := "hc-cp3"
	nodeExec := filepath.Join(root, "hack/cluster/node-exec.sh")
	mustSucceed(t, runCmd(t, "bash", nodeExec, victim, "mv", "/etc/kubernetes/manifests/etcd.yaml", "/etc/kubernetes/etcd.yaml.e2e"))
	defer func() {
		mustSucceed(t, runCmd(t, "bash", nodeExec, victim, "mv", "/etc/kubernetes/etcd.yaml.e2e", "/etc/kubernetes/manifests/etcd.yaml"))
		settled(t, 4*time.Minute)
	}()
	waitFor(t, 2*time.Minute, func() bool { return runQuiet(t, "kubectl", "etcd", "health").code != 0 })

	for _, tr := range []string{"exec", "port-forward"} {
		r := kubectl(t, "etcd", "health", "--transport", tr, "-o", "json")
		if r.code == 0 {
			t.Errorf("%s: health exited 0 with a member down", tr)
		}
		// A node that cannot start pods must not hold the answer up for
		// the healthy members (it once took the full 2 minute pod wait).
		if r.took > 90*time.Second {
			t.Errorf("%s: health took %s with one member down", tr, r.took)
		}
		var h health
		if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
			t.Fatal(err)
		}
		good := 0
		for _, m := range h {
			if m.Healthy {
				good++
			} else if m.Name != victim {
				t.Errorf("%s: %s reported unhealthy: %s", tr, m.Name, m.Error)
			}
		}
		if good != 2 || len(h) != 3 {
			t.Errorf("%s: %d healthy of %d rows, want 2 of 3", tr, good, len(h))
		}
		st, r := getStatus(t, "--transport", tr)
		if r.code == 0 {
			t.Errorf("%s: status exited 0 with a member down", tr)
		}
		answered := 0
		for _, m := range st.Members {
			if m.Error == "" && m.Version != "" {
				answered++
			} else if !strings.Contains(m.Name, victim) && m.Name != victim {
				t.Errorf("%s: status of %s failed: %s", tr, m.Name, m.Error)
			}
		}
		if answered != 2 || len(st.Members) != 3 {
			t.Errorf("%s: %d members answered of %d rows", tr, answered, len(st.Members))
		}
	}
	// A backup still works from a healthy member.
	mustSucceed(t, kubectl(t, "etcd", "backup", filepath.Join(t.TempDir(), "degraded.db"), "-q"))
	noHelperPods(t)
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	began := time.Now()
	deadline := began.Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(3 * time.Second)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Logf("waited %s", took.Round(time.Second))
	}
}
