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

// recovered is `recover -o json`.
type recovered struct {
	Phase   string   `json:"phase"`
	ID      string   `json:"id"`
	Scripts []string `json:"scripts"`
	Surveys []struct {
		Node     string `json:"node"`
		Member   string `json:"member"`
		MemberID string `json:"memberID"`
		Role     string `json:"role"`
		NoData   string `json:"noData"`
	} `json:"surveys"`
}

// TestRecoverAfterQuorumLoss loses two members of three with their data
// (their etcd stopped, data dir's member/ moved away, etcd started again
// on nothing), so that the API cannot serve, and recovers through the
// scripts an operator runs over ssh: the survey on every node, the
// survivor with --force-new-cluster, the others rejoining. The ConfigMap
// written last is there (nothing lost, unlike a snapshot restore), every
// member healthy, the survivor with its ID and its old data kept.
func TestRecoverAfterQuorumLoss(t *testing.T) {
	scenario(t)
	all := nodeNames(t)
	survivor, lost := all[0], all[1:]
	survivorID := memberID(t, survivor)
	kubectl(t, "delete", "configmap", "e2e-recover-first", "e2e-recover-last", "e2e-recover-after", "--ignore-not-found")
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-recover-first", "--from-literal=k=v"))
	defer kubectl(t, "delete", "configmap", "e2e-recover-first", "e2e-recover-last", "e2e-recover-after", "--ignore-not-found")
	settled(t, 2*time.Minute)
	early := filepath.Join(t.TempDir(), "early")
	if r := kubectl(t, "etcd", "recover", "--script-dir", early); r.code == 0 || !strings.Contains(r.stderr, "has a quorum") {
		t.Errorf("recover on a cluster with its quorum: exit %d:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(early); !os.IsNotExist(err) {
		t.Errorf("a refused recover wrote %s: %v", early, err)
	}
	// The leader knows the commit index first; a follower learns it with
	// the next heartbeat.
	kubectl(t, "etcd", "move-leader", survivor, "--yes")
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-recover-last", "--from-literal=k=v"))
	time.Sleep(2 * time.Second)

	for _, n := range lost {
		memberDataLost(t, n)
	}
	waitFor(t, 3*time.Minute, func() bool {
		return runQuiet(t, "kubectl", "get", "configmaps", "--request-timeout=5s").code != 0
	})

	dir := filepath.Join(t.TempDir(), "recover")
	r := mustSucceed(t, kubectl(t, "etcd", "recover", "--script-dir", dir, "-o", "json"))
	if !strings.Contains(r.stderr, "sh recover/survey.sh > recover/survey-$(hostname).json") || !strings.Contains(r.stderr, "the recovery goes on through node scripts") {
		t.Errorf("round 1 does not say that the API cannot tell, or how to run the survey:\n%s", r.stderr)
	}
	for _, n := range all {
		s := runFor(t, 2*time.Minute, "bash", filepath.Join(root, "hack/cluster/node-exec.sh"), n, "sh", filepath.Join(dir, "survey.sh"))
		t.Logf("node %s: the survey exited %d after %s:\n%s%s", n, s.code, s.took.Round(time.Millisecond), s.stdout, s.stderr)
		mustSucceed(t, s)
		if err := os.WriteFile(filepath.Join(dir, "survey-"+n+".json"), []byte(s.stdout), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r = mustSucceed(t, kubectl(t, "etcd", "recover", "--script-dir", dir, "--yes", "-o", "json"))
	for _, want := range []string{"point of no return", "member.before-recover-", "survivor: member " + survivor, "sh recover/recover-" + survivor + ".sh"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the plan lacks %q:\n%s", want, r.stderr)
		}
	}
	var res recovered
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("recover -o json: %v\n%s", err, r.stdout)
	}
	if len(res.Surveys) != len(all) || res.Surveys[0].Node != survivor || res.Surveys[0].MemberID != survivorID || len(res.Scripts) != len(all) {
		t.Fatalf("the surveys ranked %+v, scripts %v; want %s (%s) first", res.Surveys, res.Scripts, survivor, survivorID)
	}
	tbl := mustSucceed(t, kubectl(t, "etcd", "recover", "--script-dir", dir, "--dry-run"))
	t.Logf("the surveys side by side:\n%s", tbl.stdout)
	if !strings.Contains(tbl.stderr, "written already") {
		t.Errorf("a dry run beside the scripts does not say they are written:\n%s", tbl.stderr)
	}

	for _, script := range res.Scripts {
		node := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(filepath.Base(script), "recover-"), "rejoin-"), ".sh")
		run := runFor(t, 15*time.Minute, "bash", filepath.Join(root, "hack/cluster/node-exec.sh"), node, "sh", script)
		t.Logf("node %s: %s exited %d after %s:\n%s%s", node, filepath.Base(script), run.code, run.took.Round(time.Second), run.stdout, run.stderr)
		mustSucceed(t, run)
		fmt.Fprintf(os.Stderr, "e2e: %s took %s\n", filepath.Base(script), run.took.Round(100*time.Millisecond))
	}

	settled(t, 5*time.Minute)
	for _, m := range membersNow(t).Members {
		if m.IsLearner || m.Status != "started" {
			t.Errorf("member %s: learner %v, %s", m.Name, m.IsLearner, m.Status)
		}
		if m.Name == survivor && m.ID != survivorID {
			t.Errorf("the survivor %s has ID %s, was %s", survivor, m.ID, survivorID)
		}
	}
	mustSucceed(t, kubectl(t, "get", "configmap", "e2e-recover-first", "e2e-recover-last"))
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-recover-after", "--from-literal=k=v"))
	data := dataDirOf(t, survivor)
	mustSucceed(t, nodeExec(t, survivor, "test", "-f", data+"/member.before-recover-"+res.ID+"/snap/db"))
	nodeExec(t, survivor, "rm", "-rf", data+"/member.before-recover-"+res.ID)
	noHelperPods(t)
}

// memberDataLost stops node's etcd, moves its data dir's member/ away
// (removed when the test ends) and puts a file there, as a disk that died
// leaves garbage: etcd crash-loops on it. (On an empty data dir a joined
// member would start again with its old ID, vote, and heal the quorum
// with a log it no longer has.)
func memberDataLost(t *testing.T, node string) {
	t.Helper()
	data := dataDirOf(t, node)
	saved := "/etc/kubernetes/etcd.yaml.e2e-recover"
	mustSucceed(t, nodeExec(t, node, "mv", manifest, saved))
	t.Cleanup(func() {
		nodeExec(t, node, "sh", "-c", fmt.Sprintf("[ -f %[1]s ] && mv %[1]s %[2]s", saved, manifest))
	})
	waitFor(t, 2*time.Minute, func() bool {
		return runQuiet(t, "bash", filepath.Join(root, "hack/cluster/node-exec.sh"), node, "curl", "-s", "-o", "/dev/null", "http://127.0.0.1:2381/health").code == 7
	})
	mustSucceed(t, nodeExec(t, node, "sh", "-c", fmt.Sprintf("mv %[1]s/member %[1]s/member.e2e-lost && echo garbage > %[1]s/member && mv %[2]s %[3]s", data, saved, manifest)))
	// Unrecovered (the test failed before), the member gets its data back.
	t.Cleanup(func() {
		nodeExec(t, node, "sh", "-c", fmt.Sprintf("if [ -f %[1]s/member ]; then rm -f %[1]s/member && mv %[1]s/member.e2e-lost %[1]s/member; fi; rm -rf %[1]s/member.e2e-lost %[1]s/member.replaced-*", data))
	})
}
