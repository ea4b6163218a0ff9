//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCopyDB copies the database file of a member whose etcd
// crash-loops (a flag it does not know: it exits before it opens its
// data), after refusing while it ran. On kubeadm's local mode (the
// harness's, and kubeadm's default since 1.33) the node's kubelet
// reaches the API only through its own API server, which needs that
// member: copy-db says so and prints the command to run on the node.
// With the kubelet pointed at another node's API server, as a
// load-balanced control-plane endpoint does, it copies: snapshot inspect
// and get read the copy, snapshot verify refuses it (no trailer), and
// no pod is left.
func TestCopyDB(t *testing.T) {
	scenario(t)
	victim := farNode(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "member.db")

	r := kubectl(t, "etcd", "copy-db", victim, file)
	if r.code == 0 || !strings.Contains(r.stderr, "is running") || !strings.Contains(r.stderr, "kubectl etcd backup") {
		t.Fatalf("copy-db of a running member was not refused: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatalf("a refused copy-db left %s", file)
	}

	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-copydb", "--from-literal=k=v"))
	defer kubectl(t, "delete", "configmap", "e2e-copydb", "--ignore-not-found")
	// Every member applies the write before this one stops.
	settled(t, 2*time.Minute)

	saved := "/etc/kubernetes/etcd.yaml.e2e-copydb"
	savedConf := "/etc/kubernetes/kubelet.conf.e2e-copydb"
	mustSucceed(t, nodeExec(t, victim, "cp", "-p", manifest, saved))
	mustSucceed(t, nodeExec(t, victim, "cp", "-p", "/etc/kubernetes/kubelet.conf", savedConf))
	defer func() {
		mustSucceed(t, nodeExec(t, victim, "sh", "-c", fmt.Sprintf("cat %[1]s > %[2]s && rm %[1]s && cat %[3]s > /etc/kubernetes/kubelet.conf && rm %[3]s", saved, manifest, savedConf)))
		mustSucceed(t, runCmd(t, "bash", filepath.Join(root, "hack/cluster/restart-kubelet.sh"), victim))
		waitFor(t, 4*time.Minute, func() bool { return !strings.Contains(etcdCommand(t, victim), "--e2e-no-such-flag") })
		settled(t, 4*time.Minute)
	}()
	mustSucceed(t, nodeExec(t, victim, "sh", "-c", fmt.Sprintf(`sed 's/^\( *\)- --data-dir=/\1- --e2e-no-such-flag\n&/' %s > %s`, saved, manifest)))

	// Local mode: the kubelet lost the API with its etcd.
	var plan result
	waitFor(t, 2*time.Minute, func() bool {
		plan = runQuiet(t, "kubectl", "etcd", "copy-db", victim, file, "--dry-run")
		return strings.Contains(plan.stderr, "ControlPlaneKubeletLocalMode")
	})
	r = kubectl(t, "etcd", "copy-db", victim, file)
	if r.code == 0 || !strings.Contains(r.stderr, "no pod starts there") || !strings.Contains(r.stderr, "flock -n -s /var/lib/etcd") {
		t.Errorf("copy-db from a cut-off node: exit %d, want the local-mode refusal with the command for the node\n%s", r.code, r.stderr)
	}
	noHelperPods(t)

	// A kubelet that reaches another node's API server.
	firstIP := strings.TrimSpace(mustSucceed(t, kubectl(t, "get", "node", nodeNames(t)[0], "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)).stdout)
	mustSucceed(t, nodeExec(t, victim, "sh", "-c", fmt.Sprintf(`sed 's#server: https://.*:6443#server: https://%s:6443#' %s > /etc/kubernetes/kubelet.conf`, firstIP, savedConf)))
	mustSucceed(t, runCmd(t, "bash", filepath.Join(root, "hack/cluster/restart-kubelet.sh"), victim))
	waitFor(t, 4*time.Minute, func() bool {
		return strings.Contains(etcdCommand(t, victim), "--e2e-no-such-flag") &&
			runQuiet(t, "kubectl", "-n", "kube-system", "get", "pod", "etcd-"+victim, "-o", "jsonpath={.status.containerStatuses[0].restartCount}").stdout != "0" &&
			!strings.Contains(notReadyNodes(t), victim)
	})

	r = mustSucceed(t, kubectl(t, "etcd", "copy-db", victim, file, "--dry-run"))
	if !strings.Contains(r.stderr, "NOT a consistent snapshot") || strings.Contains(r.stderr, "warning") {
		t.Errorf("the plan does not say it is not a snapshot, or warns:\n%s", r.stderr)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatalf("--dry-run wrote %s", file)
	}
	r = mustSucceed(t, kubectl(t, "etcd", "copy-db", victim, file, "-o", "json"))
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", file, st.Mode().Perm())
	}
	if _, err := os.Stat(file + ".part"); err == nil {
		t.Errorf("%s.part is left", file)
	}
	t.Logf("copy-db of %d bytes took %s", st.Size(), r.took)

	r = mustSucceed(t, kubectl(t, "etcd", "snapshot", "inspect", file))
	if !strings.Contains(r.stderr, "copied from its data dir") {
		t.Errorf("inspect does not say the file is a raw copy:\n%s", r.stderr)
	}
	r = mustSucceed(t, kubectl(t, "etcd", "get", "configmaps/default/e2e-copydb", "--snapshot", file, "-o", "json"))
	if !strings.Contains(r.stdout, `"k": "v"`) {
		t.Errorf("the copy does not hold the ConfigMap written before:\n%s", r.stdout)
	}
	if r := kubectl(t, "etcd", "snapshot", "verify", file); r.code == 0 {
		t.Errorf("snapshot verify passed a file without a trailer")
	}
	noHelperPods(t)
}
