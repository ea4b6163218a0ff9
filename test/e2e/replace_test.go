//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// replaced is `member replace -o json`.
type replaced struct {
	Done  bool   `json:"done"`
	ID    string `json:"id"`
	OldID string `json:"oldID"`
	NewID string `json:"newID"`
}

func memberID(t *testing.T, name string) string {
	t.Helper()
	for _, m := range membersNow(t).Members {
		if m.Name == name {
			return m.ID
		}
	}
	t.Fatalf("no member %s", name)
	return ""
}

// dataDirOf is the --data-dir of node's etcd manifest, read on the node.
func dataDirOf(t *testing.T, node string) string {
	t.Helper()
	r := mustSucceed(t, nodeExec(t, node, "sed", "-n", `s/^ *- --data-dir=//p`, manifest))
	return strings.TrimSpace(r.stdout)
}

// kubeletViaFirstNode points node's kubelet at the first node's API
// server, as a load-balanced control-plane endpoint does, and returns
// what puts it back.
func kubeletViaFirstNode(t *testing.T, node string) func() {
	t.Helper()
	saved := "/etc/kubernetes/kubelet.conf.e2e-replace"
	mustSucceed(t, nodeExec(t, node, "cp", "-p", "/etc/kubernetes/kubelet.conf", saved))
	firstIP := strings.TrimSpace(mustSucceed(t, kubectl(t, "get", "node", nodeNames(t)[0], "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)).stdout)
	mustSucceed(t, nodeExec(t, node, "sh", "-c", fmt.Sprintf(`sed 's#server: https://.*:6443#server: https://%s:6443#' %s > /etc/kubernetes/kubelet.conf`, firstIP, saved)))
	restarted := time.Now().Add(-time.Second)
	mustSucceed(t, runCmd(t, "bash", filepath.Join(root, "hack/cluster/restart-kubelet.sh"), node))
	// The new kubelet has synced with the API once it renews its lease: a
	// static pod file moved before then may outlive its pod for minutes.
	waitFor(t, 2*time.Minute, func() bool {
		r := runQuiet(t, "kubectl", "-n", "kube-node-lease", "get", "lease", node, "-o", "jsonpath={.spec.renewTime}")
		renewed, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(r.stdout))
		return err == nil && renewed.After(restarted)
	})
	time.Sleep(5 * time.Second) // and read its static pod dir
	return func() {
		mustSucceed(t, nodeExec(t, node, "sh", "-c", fmt.Sprintf("cat %[1]s > /etc/kubernetes/kubelet.conf && rm %[1]s", saved)))
		mustSucceed(t, runCmd(t, "bash", filepath.Join(root, "hack/cluster/restart-kubelet.sh"), node))
	}
}

// checkReplaced checks the cluster after a replace of victim: every
// member started and voting, victim with a new ID, the data written
// before there, a write after succeeding, no pod of the plugin's left.
func checkReplaced(t *testing.T, victim, oldID, before string) string {
	t.Helper()
	settled(t, 4*time.Minute)
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
	mustSucceed(t, kubectl(t, "etcd", "health"))
	mustSucceed(t, kubectl(t, "get", "configmap", before))
	mustSucceed(t, kubectl(t, "create", "configmap", before+"-after", "--from-literal=k=v"))
	noHelperPods(t)
	return newID
}

// diskDies stops victim's etcd, moves its data dir's member/ away (kept
// as member.e2e-died) and starts etcd again on nothing: it crash-loops.
// It returns the data dir and where the data went.
func diskDies(t *testing.T, victim string) (data, died string) {
	t.Helper()
	data = dataDirOf(t, victim)
	died = data + "/member.e2e-died"
	// A new leader would not remember how far the member had got, and
	// would take it back, empty, by a snapshot: the leader that does
	// remember makes it crash (raft's "tocommit out of range").
	kubectl(t, "etcd", "move-leader", nodeNames(t)[0], "--yes")
	saved := "/etc/kubernetes/etcd.yaml.e2e-replace"
	mustSucceed(t, nodeExec(t, victim, "mv", manifest, saved))
	t.Cleanup(func() {
		nodeExec(t, victim, "sh", "-c", fmt.Sprintf("[ -f %[1]s ] && mv %[1]s %[2]s", saved, manifest))
	})
	var h result
	waitFor(t, 3*time.Minute, func() bool { h = runQuiet(t, "kubectl", "etcd", "health"); return h.code != 0 })
	t.Logf("with its etcd stopped:\n%s%s", h.stdout, h.stderr)
	mustSucceed(t, nodeExec(t, victim, "sh", "-c", fmt.Sprintf("mv %s/member %s && mv %s %s", data, died, saved, manifest)))
	t.Cleanup(func() { nodeExec(t, victim, "sh", "-c", fmt.Sprintf("rm -rf %s %s/member.replaced-*", died, data)) })
	return data, died
}

// checkKept checks that nothing was deleted: the dead disk's data as the
// test left it, and logs what the crash loop wrote, moved aside.
func checkKept(t *testing.T, victim, data, died, id string) {
	t.Helper()
	mustSucceed(t, nodeExec(t, victim, "test", "-d", died+"/snap"))
	aside := nodeExec(t, victim, "ls", "-d", data+"/member.replaced-"+id)
	t.Logf("what the crash loop wrote, moved aside: %s%s", aside.stdout, aside.stderr)
}

// TestMemberReplace replaces a member whose disk died (its data gone, its
// etcd crash-looping) on kubeadm's local mode, where its node's kubelet
// lost the API with its etcd: replace says so and names --script-dir; the
// script, run on the node, replaces it: every member healthy, a new
// member ID, the data intact, the old data kept, no pod left. Once the
// node answers, --status shows the journal, and a re-run finds the work
// done.
func TestMemberReplace(t *testing.T) {
	scenario(t)
	victim := farNode(t)
	oldID := memberID(t, victim)
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-replace", "--from-literal=k=v"))
	defer kubectl(t, "delete", "configmap", "e2e-replace", "e2e-replace-after", "--ignore-not-found")
	settled(t, 2*time.Minute)
	data, died := diskDies(t, victim)

	var r result
	waitFor(t, 3*time.Minute, func() bool {
		r = runQuiet(t, "kubectl", "etcd", "member", "replace", victim, "--dry-run")
		return strings.Contains(r.stderr, "ControlPlaneKubeletLocalMode")
	})
	if r.code == 0 || !strings.Contains(r.stderr, "--script-dir") {
		t.Errorf("replace on a cut-off node: exit %d, want a refusal naming --script-dir:\n%s", r.code, r.stderr)
	}
	dir := filepath.Join(t.TempDir(), "replace")
	r = mustSucceed(t, kubectl(t, "etcd", "member", "replace", victim, "--script-dir", dir, "-o", "json"))
	for _, want := range []string{"point of no return", "member.replaced-", "not healthy", "sh replace/replace-" + victim + ".sh"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the plan lacks %q:\n%s", want, r.stderr)
		}
	}
	var res replaced
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	noHelperPods(t)
	run := runFor(t, 15*time.Minute, "bash", filepath.Join(root, "hack/cluster/node-exec.sh"), victim, "sh", filepath.Join(dir, "replace-"+victim+".sh"))
	t.Logf("the node script took %s:\n%s%s", run.took, run.stdout, run.stderr)
	mustSucceed(t, run)
	checkReplaced(t, victim, oldID, "e2e-replace")
	checkKept(t, victim, data, died, res.ID)
	st := mustSucceed(t, kubectl(t, "etcd", "member", "replace", victim, "--status"))
	if !strings.Contains(st.stdout, "done") || !strings.Contains(st.stdout, res.ID) {
		t.Errorf("--status does not show replace %s done:\n%s", res.ID, st.stdout)
	}
	again := mustSucceed(t, kubectl(t, "etcd", "member", "replace", victim, "--yes"))
	if !strings.Contains(again.stderr, "nothing to do") {
		t.Errorf("a re-run after the replace did not find it done:\n%s", again.stderr)
	}
	noHelperPods(t)
}

// TestMemberReplaceLoadBalancedKubelet replaces a member whose disk died
// from the workstation alone: its node's kubelet reaches another node's
// API server, as with a load-balanced control-plane endpoint (kubeadm's
// kubelet.conf before 1.33), so the agent's node pod starts there.
func TestMemberReplaceLoadBalancedKubelet(t *testing.T) {
	scenario(t)
	victim := farNode(t)
	oldID := memberID(t, victim)
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-replace-lb", "--from-literal=k=v"))
	defer kubectl(t, "delete", "configmap", "e2e-replace-lb", "e2e-replace-lb-after", "--ignore-not-found")
	settled(t, 2*time.Minute)
	defer kubeletViaFirstNode(t, victim)()
	data, died := diskDies(t, victim)
	waitFor(t, 4*time.Minute, func() bool { return !strings.Contains(notReadyNodes(t), victim) })

	// --again: TestMemberReplace may have replaced this member minutes ago.
	r := mustSucceed(t, kubectl(t, "etcd", "member", "replace", victim, "--dry-run", "--again"))
	for _, want := range []string{"point of no return", "Dry run: nothing was changed", "member.replaced-", "not healthy", "free for"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the plan lacks %q:\n%s", want, r.stderr)
		}
	}
	r = runFor(t, 15*time.Minute, "kubectl", "etcd", "member", "replace", victim, "--yes", "--again", "-o", "json")
	t.Logf("member replace took %s:\n%s", r.took, r.stderr)
	mustSucceed(t, r)
	var res replaced
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Done || res.OldID != oldID || res.NewID == "" || res.NewID == oldID {
		t.Errorf("replace result: %s", r.stdout)
	}
	if newID := checkReplaced(t, victim, oldID, "e2e-replace-lb"); newID != res.NewID {
		t.Errorf("members show %s with ID %s, replace said %s", victim, newID, res.NewID)
	}
	checkKept(t, victim, data, died, res.ID)
}

// TestMemberReplaceSurvivesKilledPlugin replaces a healthy member (its
// data suspected bad) on kubeadm's local mode, where the node's kubelet
// loses the API as soon as etcd stops there, and kills the plugin
// (SIGKILL) once the member swap, the point of no return, has begun. The
// agent's static pod carries on; --status shows the journal; a re-run
// follows the replace, or finds it done, and never starts a second one.
func TestMemberReplaceSurvivesKilledPlugin(t *testing.T) {
	scenario(t)
	victim := farNode(t)
	oldID := memberID(t, victim)
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-replace-kill", "--from-literal=k=v"))
	defer kubectl(t, "delete", "configmap", "e2e-replace-kill", "e2e-replace-kill-after", "--ignore-not-found")
	settled(t, 2*time.Minute)
	data := dataDirOf(t, victim)
	defer nodeExec(t, victim, "sh", "-c", fmt.Sprintf("rm -rf %s/member.replaced-*", data))

	// --again: an earlier scenario may have replaced this member minutes ago.
	cmd := exec.Command("kubectl", "etcd", "member", "replace", victim, "--yes", "--again")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	killed := false
	started := regexp.MustCompile(`runs replace (\d{8}T\d{6}Z) in the static pod`)
	var id string
	for sc.Scan() {
		t.Log(sc.Text())
		if m := started.FindStringSubmatch(sc.Text()); m != nil {
			id = m[1]
		}
		if strings.Contains(sc.Text(), "running  replace the member in the cluster") || strings.Contains(sc.Text(), "done     replace the member in the cluster") {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatal("the plugin never reported the member swap")
	}
	// The killed plugin's node pod ends at its deadline; an operator
	// deletes it (the re-run starts its own).
	mustSucceed(t, kubectl(t, "delete", "pods", "-A", "-l", "kubectl-etcd.io/purpose=replace", "--wait=false"))

	// The node comes back once the new member serves its API server.
	var st result
	waitFor(t, 8*time.Minute, func() bool {
		st = runQuiet(t, "kubectl", "etcd", "member", "replace", victim, "--status")
		return st.code == 0
	})
	if id == "" || !strings.Contains(st.stderr, "Replace "+id+" of member "+victim) {
		t.Fatalf("--status does not name replace %q:\n%s\n%s", id, st.stdout, st.stderr)
	}
	// The node's readiness can still drop while the new member is a
	// learner (its kubelet asks its own API server, which asks the
	// learner): the re-run then refuses, saying the node is NotReady, and
	// the operator runs it again once the node is back, as here.
	var r result
	for try := 1; ; try++ {
		r = runFor(t, 15*time.Minute, "kubectl", "etcd", "member", "replace", victim, "--yes", "-o", "json")
		t.Logf("the re-run (try %d) took %s:\n%s", try, r.took, r.stderr)
		if r.code == 0 || try == 3 || !strings.Contains(r.stderr, "node "+victim+" is NotReady") {
			break
		}
		waitFor(t, 8*time.Minute, func() bool {
			return runQuiet(t, "kubectl", "wait", "--for=condition=Ready", "node/"+victim, "--timeout=5s").code == 0
		})
	}
	mustSucceed(t, r)
	if !strings.Contains(r.stderr, "following it") && !strings.Contains(r.stderr, "nothing to do") {
		t.Errorf("the re-run neither followed the replace nor found it done:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "agent pid") {
		t.Errorf("the re-run started a second replace:\n%s", r.stderr)
	}
	checkReplaced(t, victim, oldID, "e2e-replace-kill")
	st = mustSucceed(t, kubectl(t, "etcd", "member", "replace", victim, "--status", "-o", "json"))
	var js struct {
		Journals []struct {
			ID    string `json:"id"`
			Phase string `json:"phase"`
		} `json:"journals"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &js); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, j := range js.Journals {
		if j.Phase != "done" {
			t.Errorf("replace %s is %s", j.ID, j.Phase)
		}
		if j.ID >= id {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d replaces since the killed one, want 1: %s", n, st.stdout)
	}
}
