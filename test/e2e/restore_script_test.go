//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// breakEtcd takes etcd's database away on node n, as a failed disk would:
// its member crash-loops on the manifest it still has. The old file is
// kept beside it.
func breakEtcd(t *testing.T, n string) {
	t.Helper()
	script := `set -eu
m=/etc/kubernetes/manifests/etcd.yaml
hold=/var/lib/kubectl-etcd/e2e-etcd.yaml
d=$(sed -n 's/.*--data-dir=//p' "$m")
mv "$m" "$hold"
i=0
while curl -fsS -m 1 http://127.0.0.1:2381/health >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 120 ] || { echo "etcd did not stop" >&2; exit 1; }
  sleep 1
done
sleep 2
mv "$d/member/snap/db" "$d/member/snap/db.e2e-broken"
printf 'broken by the e2e test' > "$d/member/snap/db"
mv "$hold" "$m"`
	mustSucceed(t, runCmd(t, "bash", filepath.Join(root, "hack/cluster/node-exec.sh"), n, "sh", "-c", script))
}

// etcd loses quorum (its database is gone on a majority of the nodes), so
// the API server can no longer act; `restore --script-dir` plans from the
// backup's FILE.json, and the scripts, run on each node as over ssh,
// bring the control plane back restored.
func TestRestoreScriptsAfterQuorumLoss(t *testing.T) {
	scenario(t)
	file, before := setUpRestore(t)
	all := nodeNames(t)
	broken := all
	if len(all) > 1 {
		broken = all[len(all)/2:] // a majority: 1 of 1, 2 of 3
	}
	for _, n := range broken {
		breakEtcd(t, n)
	}
	waitFor(t, 3*time.Minute, func() bool {
		return runQuiet(t, "kubectl", "get", "configmaps", "--request-timeout=5s").code != 0
	})

	dir := filepath.Join(t.TempDir(), "scripts")
	r := mustSucceed(t, kubectl(t, restoreCmd(file, "--script-dir", dir)...))
	if !strings.Contains(r.stdout+r.stderr, "planned from FILE.json's members") {
		t.Errorf("the plan does not say it came from FILE.json:\n%s\n%s", r.stdout, r.stderr)
	}
	var wg sync.WaitGroup
	outs := make([]result, len(all))
	for i, n := range all {
		script := filepath.Join(dir, "restore-"+n+".sh")
		if _, err := os.Stat(script); err != nil {
			t.Fatalf("no script for node %s: %v", n, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = runFor(t, 15*time.Minute, "bash", filepath.Join(root, "hack/cluster/node-exec.sh"), n, "sh", script)
			t.Logf("node %s: the script exited %d after %s:\n%s%s", n, outs[i].code, outs[i].took.Round(time.Second), outs[i].stdout, outs[i].stderr)
		}()
	}
	wg.Wait()
	for i, n := range all {
		if outs[i].code != 0 || !strings.Contains(outs[i].stdout, " is done") {
			t.Errorf("node %s: the script exited %d:\n%s\n%s", n, outs[i].code, outs[i].stdout, outs[i].stderr)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	waitFor(t, 3*time.Minute, func() bool { return runQuiet(t, "kubectl", "get", "configmaps", "--request-timeout=5s").code == 0 })
	restartKubelets(t, r.stdout)
	cms := configMaps(t)
	if !cms["e2e-restore-a"] || cms["e2e-restore-b"] {
		t.Errorf("after the scripts A present %t (want true), B present %t (want false)", cms["e2e-restore-a"], cms["e2e-restore-b"])
	}
	after, _ := getStatus(t)
	if after.ClusterID == before.ClusterID || len(after.Members) != nodes {
		t.Errorf("cluster ID %s before, %s after, %d members (want a new ID and %d)", before.ClusterID, after.ClusterID, len(after.Members), nodes)
	}
	st := mustSucceed(t, kubectl(t, restoreCmd("--status")...))
	if strings.Count(st.stdout, " done (agent running: false)") < nodes {
		t.Errorf("--status does not show the scripts' restore done on %d nodes:\n%s", nodes, st.stdout)
	}
	mustSucceed(t, kubectl(t, "etcd", "health"))
	noHelperPods(t)
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-restore-c", "--from-literal=k=c"))
	mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-restore-a", "e2e-restore-c"))
	fmt.Fprintf(os.Stderr, "e2e: scripts restored %d node(s), %d of them broken\n", len(all), len(broken))
}
