//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// membersNow is `kubectl etcd members -o json`.
func membersNow(t *testing.T) memberList {
	t.Helper()
	var v memberList
	r := mustSucceed(t, kubectl(t, "etcd", "members", "-o", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// controlPlaneNodeBack waits for a deleted node's kubelet to register
// it again, gives it back what kubeadm join added (the control-plane
// label and taint), and waits until the control plane has settled, with
// the node's etcd pod listed again.
func controlPlaneNodeBack(t *testing.T, node string) {
	t.Helper()
	waitFor(t, 3*time.Minute, func() bool { return runQuiet(t, "kubectl", "get", "node", node).code == 0 })
	mustSucceed(t, kubectl(t, "label", "node", node, "node-role.kubernetes.io/control-plane=", "node.kubernetes.io/exclude-from-external-load-balancers=", "--overwrite"))
	mustSucceed(t, kubectl(t, "taint", "node", node, "node-role.kubernetes.io/control-plane:NoSchedule", "--overwrite"))
	waitFor(t, 3*time.Minute, func() bool {
		return runQuiet(t, "kubectl", "-n", "kube-system", "get", "pod", "etcd-"+node).code == 0
	})
	settled(t, 4*time.Minute)
}

// TestMemberRemoveThenAddBack takes the last node away the way a failed
// migration does (its etcd stopped, its kubelet gone, its Node deleted,
// no kubeadm reset), removes its member (refused first: two members
// left are an even count), and brings it back by hand with member add
// --learner and member promote, as the Kubernetes etcd guide does: its
// old data dir moved aside, its manifest started with
// --initial-cluster-state=existing. The data written before is there,
// writes succeed after, and the member has a new ID.
func TestMemberRemoveThenAddBack(t *testing.T) {
	scenario(t)
	victim := farNode(t)
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-member-before", "--from-literal=k=v"))
	defer kubectl(t, "delete", "configmap", "e2e-member-before", "e2e-member-after", "--ignore-not-found")
	var oldID, peerURL string
	for _, m := range membersNow(t).Members {
		if m.Name == victim {
			oldID, peerURL = m.ID, m.PeerURLs[0]
		}
	}
	if oldID == "" {
		t.Fatalf("no member %s", victim)
	}

	// The node goes away: etcd stopped, the kubelet killed, the Node deleted.
	saved := "/etc/kubernetes/etcd.yaml.e2e-member"
	mustSucceed(t, nodeExec(t, victim, "mv", manifest, saved))
	waitFor(t, 2*time.Minute, func() bool { return runQuiet(t, "kubectl", "etcd", "health").code != 0 })
	pidFile := "/run/hackcluster/pids/kubelet-n" + strings.TrimPrefix(victim, "hc-cp")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("kubelet pid of %s: %v", victim, err)
	}
	mustSucceed(t, runCmd(t, "kill", "-TERM", strings.TrimSpace(string(b))))
	mustSucceed(t, kubectl(t, "delete", "node", victim, "--wait=false"))
	// Its etcd pod stays listed until the pod garbage collector takes it
	// (a minute or more): the plan names the node as gone either way.
	broken := true
	defer func() {
		if broken { // put the node back as it was, for the scenarios after
			nodeExec(t, victim, "sh", "-c", fmt.Sprintf("[ -f %[1]s ] && mv %[1]s %[2]s", saved, manifest))
			runCmd(t, "bash", filepath.Join(root, "hack/cluster/restart-kubelet.sh"), victim)
			controlPlaneNodeBack(t, victim)
		}
	}()

	r := kubectl(t, "etcd", "member", "remove", victim, "--yes")
	if r.code == 0 || !strings.Contains(r.stderr, "even count") || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("remove leaving 2 members was not refused: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "its node "+victim+" no longer exists") {
		t.Errorf("the plan does not say that the node is gone:\n%s", r.stderr)
	}
	r = mustSucceed(t, kubectl(t, "etcd", "member", "remove", victim, "--yes", "--force", "-o", "json"))
	var removed struct {
		Done    bool       `json:"done"`
		Members memberList `json:"members"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &removed); err != nil {
		t.Fatal(err)
	}
	if !removed.Done || len(removed.Members.Members) != 2 {
		t.Fatalf("remove --force: %s", r.stdout)
	}
	// The pods of the deleted node go once the garbage collector runs.
	waitFor(t, 3*time.Minute, func() bool {
		return runQuiet(t, "kubectl", "-n", "kube-system", "get", "pod", "etcd-"+victim).code != 0
	})
	mustSucceed(t, kubectl(t, "etcd", "health"))
	if n := len(membersNow(t).Members); n != 2 {
		t.Fatalf("%d members after the removal", n)
	}

	// Back by hand: a learner first, then its node with an empty data
	// dir (the old one moved aside) and the existing cluster.
	r = mustSucceed(t, kubectl(t, "etcd", "member", "add", victim, "--peer-urls", peerURL, "--learner", "--yes", "-o", "json"))
	var added struct {
		Member         struct{ ID string } `json:"member"`
		InitialCluster string              `json:"initialCluster"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &added); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(added.InitialCluster, victim+"="+peerURL) || added.Member.ID == oldID {
		t.Fatalf("member add: %s", r.stdout)
	}
	// The data dir the manifest names, moved aside (its member was
	// removed: etcd would refuse to start on it).
	mustSucceed(t, nodeExec(t, victim, "sh", "-c", fmt.Sprintf(`set -e
umask 077 # the manifest is new: 0600, as kubeadm writes it
d=$(sed -n 's/^ *- --data-dir=//p' %[3]s)
[ -d "$d" ] && mv "$d" "$d.e2e-removed"
sed -e '/--initial-cluster-state=/d' -e 's|^\( *\)- --initial-cluster=.*$|\1- --initial-cluster=%[2]s\n\1- --initial-cluster-state=existing|' %[3]s > %[4]s
rm %[3]s
echo "$d.e2e-removed" > /etc/kubernetes/e2e-member-moved`, "", added.InitialCluster, saved, manifest)))
	defer nodeExec(t, victim, "sh", "-c", "rm -rf \"$(cat /etc/kubernetes/e2e-member-moved)\" /etc/kubernetes/e2e-member-moved")
	mustSucceed(t, runCmd(t, "bash", filepath.Join(root, "hack/cluster/restart-kubelet.sh"), victim))
	broken = false
	// Until it starts, etcd knows the learner by its ID alone.
	if r := kubectl(t, "etcd", "member", "promote", victim, "--yes"); r.code == 0 {
		t.Log("hc-cp3 had started by the time promote ran")
	} else if !strings.Contains(r.stderr, "name it by its hex ID (unstarted: "+added.Member.ID) {
		t.Errorf("promote by name before the start does not name the unstarted member's ID:\n%s", r.stderr)
	}
	r = mustSucceed(t, runFor(t, 4*time.Minute, "kubectl", "etcd", "member", "promote", added.Member.ID, "--yes"))
	if !strings.Contains(r.stderr, "Promoted "+victim) {
		t.Errorf("promote did not say so:\n%s", r.stderr)
	}
	controlPlaneNodeBack(t, victim)

	var newID string
	for _, m := range membersNow(t).Members {
		if m.IsLearner || m.Status != "started" {
			t.Errorf("member %s: learner %v, %s", m.Name, m.IsLearner, m.Status)
		}
		if m.Name == victim {
			newID = m.ID
		}
	}
	if newID == "" || newID == oldID {
		t.Errorf("%s has ID %q, was %s", victim, newID, oldID)
	}
	mustSucceed(t, kubectl(t, "get", "configmap", "e2e-member-before"))
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-member-after", "--from-literal=k=v"))
	noHelperPods(t)
}
