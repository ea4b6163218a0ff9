//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
)

// TestConcurrentBackupsOneFile: two backups to one FILE. Exactly one
// saves it; the other refuses at once, before it touches the cluster, and
// the kept file verifies.
func TestConcurrentBackupsOneFile(t *testing.T) {
	scenario(t)
	file := filepath.Join(t.TempDir(), "same.db")
	cmds := []*exec.Cmd{exec.Command("kubectl", "etcd", "backup", file), exec.Command("kubectl", "etcd", "backup", file)}
	outs := make([]strings.Builder, 2)
	for i, c := range cmds {
		c.Stderr = &outs[i]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ok, refused := 0, 0
	for i, c := range cmds {
		err := c.Wait()
		t.Logf("backup %d: %v\n%s", i, err, outs[i].String())
		switch {
		case err == nil:
			ok++
		case strings.Contains(outs[i].String(), "same.db.part") || strings.Contains(outs[i].String(), "already exists"):
			refused++
			// At once: before any member was asked or streamed from.
			if strings.Contains(outs[i].String(), "snapshot from member") || strings.Contains(outs[i].String(), "created pod") {
				t.Errorf("backup %d refused only after it had started on the cluster", i)
			}
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("%d succeeded and %d refused, want 1 and 1", ok, refused)
	}
	mustSucceed(t, kubectl(t, "etcd", "snapshot", "verify", file))
	if _, err := os.Stat(file + ".part"); err == nil {
		t.Errorf("%s.part left behind", file)
	}
	noHelperPods(t)
}

// TestInspectEncryptedLeavesNoPlaintext: the decrypted database (every
// Secret) never lands in $TMPDIR.
func TestInspectEncryptedLeavesNoPlaintext(t *testing.T) {
	scenario(t)
	dir := t.TempDir()
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	id := filepath.Join(dir, "key.txt")
	os.WriteFile(id, []byte(key.String()+"\n"), 0o600)
	file := filepath.Join(dir, "enc.db.age")
	mustSucceed(t, kubectl(t, "etcd", "backup", file, "--recipient", key.Recipient().String(), "-q"))
	tmp := t.TempDir()
	cmd := exec.Command("kubectl", "etcd", "snapshot", "inspect", file, "--identity", id, "-o", "json")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"revision"`) {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("inspect left %d entries in $TMPDIR: %v", len(left), left)
	}
}

// TestSignalsLeaveNoPod: SIGHUP (a closed terminal) and a double Ctrl-C
// during the clean-up both leave no helper pod.
func TestSignalsLeaveNoPod(t *testing.T) {
	scenario(t)
	for _, tc := range []struct {
		name string
		sigs []syscall.Signal
	}{
		{"sighup", []syscall.Signal{syscall.SIGHUP}},
		{"repeated-ctrl-c", []syscall.Signal{syscall.SIGINT, syscall.SIGINT, syscall.SIGINT, syscall.SIGINT, syscall.SIGINT}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newCmd("kubectl", "etcd", "status", "--transport", "port-forward")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitForHelperPod(t)
			// The later signals land while the pod is being deleted.
			for _, s := range tc.sigs {
				cmd.Process.Signal(s)
				time.Sleep(40 * time.Millisecond)
			}
			err := cmd.Wait()
			t.Logf("after %v: %v", tc.sigs, err)
			// Killed by a signal means the clean-up was cut short.
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Errorf("the plugin did not end by itself with exit status 1: %v", err)
			}
			noHelperPods(t)
		})
	}
}

func waitForHelperPod(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := runQuiet(t, "kubectl", "get", "pods", "-A", "-l", "app.kubernetes.io/managed-by=kubectl-etcd", "-o", "name")
		if strings.TrimSpace(r.stdout) != "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no helper pod appeared within 60s")
}

// TestHelperNamespaceRestricted: helper pods in a namespace whose
// PodSecurity level is restricted are refused with the admission message
// and the label that would allow them; nothing is left.
func TestHelperNamespaceRestricted(t *testing.T) {
	scenario(t)
	ns := "kubectl-etcd-e2e-restricted"
	kubectl(t, "delete", "namespace", ns, "--ignore-not-found", "--wait=true")
	mustSucceed(t, kubectl(t, "create", "namespace", ns))
	defer kubectl(t, "delete", "namespace", ns, "--wait=false")
	mustSucceed(t, kubectl(t, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"))
	r := kubectl(t, "etcd", "status", "--transport", "port-forward", "--helper-namespace", ns)
	if r.code == 0 {
		t.Fatalf("status with a restricted helper namespace exited 0")
	}
	for _, want := range []string{"PodSecurity", "violates", "pod-security.kubernetes.io/enforce=privileged", ns} {
		if !strings.Contains(r.stderr+r.stdout, want) {
			t.Errorf("the error lacks %q", want)
		}
	}
	noHelperPods(t)
}

// TestPortForwardBackupOneHelperPod: the status check, the source choice
// and the stream share one session, so the keys are read once.
func TestPortForwardBackupOneHelperPod(t *testing.T) {
	scenario(t)
	r := mustSucceed(t, kubectl(t, "etcd", "backup", filepath.Join(t.TempDir(), "pf.db"), "--transport", "port-forward"))
	created := strings.Count(r.stderr, "created pod")
	if created < 1 || created > nodes {
		t.Errorf("%d helper pods created, want 1..%d (one per node at most)", created, nodes)
	}
	noHelperPods(t)
}

// TestFrozenMember: a member whose etcd process is stopped (SIGSTOP) in
// the middle of a backup fails within the stall bound and the backup is
// retried from another member.
func TestFrozenMember(t *testing.T) {
	scenario(t)
	fillEtcd(t, 120)
	// kubectl reaches the API server on hc-cp1, which (as kubeadm sets
	// it up) talks to hc-cp1's etcd only: freezing that member freezes
	// the API, and no port-forward to another member opens (the backup
	// then says so; TestFrozenMember's case is a frozen member elsewhere).
	// hc-cp1 leads, so the backup's source is a follower on another node.
	mustSucceed(t, kubectl(t, "etcd", "move-leader", "hc-cp1", "--yes"))
	for attempt := 1; attempt <= 3; attempt++ {
		if frozenBackup(t) {
			return
		}
		t.Logf("attempt %d: the stream finished before the member was frozen; again", attempt)
	}
	t.Fatal("could not freeze a member during a backup in 3 attempts")
}

// frozenBackup runs one backup and freezes its source as soon as it is
// named. It reports false if the stream ended before the freeze landed.
func frozenBackup(t *testing.T) bool {
	file := filepath.Join(t.TempDir(), "frozen.db")
	cmd := exec.Command("kubectl", "etcd", "backup", file, "--stall-timeout", "5s")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	var frozen int
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if frozen == 0 && strings.HasPrefix(line, "Taking a snapshot from member ") {
			name := strings.Fields(strings.TrimPrefix(line, "Taking a snapshot from member "))[0]
			if name == "hc-cp1" {
				t.Fatalf("the backup chose the leader hc-cp1 over its followers:\n%s", log.String())
			}
			frozen = etcdPID(t, name)
			mustSucceed(t, runCmd(t, "kill", "-STOP", strconv.Itoa(frozen)))
			defer runCmd(t, "kill", "-CONT", strconv.Itoa(frozen))
		}
	}
	err := cmd.Wait()
	t.Logf("backup: %v\n%s", err, log.String())
	if frozen == 0 {
		t.Fatal("the backup never named its source member")
	}
	if !strings.Contains(log.String(), "stalled") {
		return false
	}
	if err != nil {
		t.Fatalf("the backup was not retried on another member: %v", err)
	}
	if !strings.Contains(log.String(), "from member") || strings.Count(log.String(), "snapshot from member") < 2 {
		t.Errorf("the retry does not say which member it moved to")
	}
	mustSucceed(t, kubectl(t, "etcd", "snapshot", "verify", file))
	runCmd(t, "kill", "-CONT", strconv.Itoa(frozen))
	settled(t, 2*time.Minute)
	noHelperPods(t)
	return true
}

// etcdPID finds the etcd process of a node: the one listening on 2379 in
// the node's network namespace.
func etcdPID(t *testing.T, node string) int {
	t.Helper()
	r := mustSucceed(t, runCmd(t, "bash", filepath.Join(root, "hack/cluster/node-exec.sh"), node, "ss", "-ltnpH", "sport = :2379"))
	i := strings.Index(r.stdout, "pid=")
	if i < 0 {
		t.Fatalf("no process listens on 2379 on %s", node)
	}
	var pid int
	fmt.Sscanf(r.stdout[i+4:], "%d", &pid)
	return pid
}

// fillEtcd writes n values of 1 MB under /e2e-fill/ straight into etcd on
// the first node, so that a snapshot stream takes a while, and removes
// them (compacted, defragmented) when the test ends.
func fillEtcd(t *testing.T, n int) {
	t.Helper()
	nodeExec := filepath.Join(root, "hack/cluster/node-exec.sh")
	tls := "--endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key"
	value := filepath.Join(t.TempDir(), "value")
	mustSucceed(t, runCmd(t, "bash", "-c", "head -c 750000 /dev/urandom | base64 -w0 >"+value))
	ctl := env["HC_ETCDCTL"] + " " + tls
	mustSucceed(t, runCmd(t, "bash", nodeExec, "hc-cp1", "bash", "-c",
		fmt.Sprintf("for i in $(seq 1 %d); do %s put /e2e-fill/$i <%s >/dev/null || exit 1; done", n, ctl, value)))
	t.Cleanup(func() {
		runCmd(t, "bash", nodeExec, "hc-cp1", "bash", "-c", fmt.Sprintf(
			"%[1]s del --prefix /e2e-fill/ >/dev/null; rev=$(%[1]s endpoint status -w json | sed -n 's/.*\"revision\":\\([0-9]*\\).*/\\1/p'); %[1]s compact $rev >/dev/null; %[1]s defrag --cluster >/dev/null", ctl))
	})
}

// TestNotReadyNode: with the kubelet of the last node stopped, its node
// goes NotReady; the error names the node while the other members (none
// on one node) answer. Its etcd and API server run on: containers do not
// need their kubelet.
func TestNotReadyNode(t *testing.T) {
	scenario(t)
	victim := farNode(t)
	pidFile := "/run/hackcluster/pids/kubelet-n" + strings.TrimPrefix(victim, "hc-cp")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("kubelet pid of %s: %v", victim, err)
	}
	pid := strings.TrimSpace(string(b))
	mustSucceed(t, runCmd(t, "kill", "-STOP", pid))
	defer func() {
		runCmd(t, "kill", "-CONT", pid)
		waitFor(t, 3*time.Minute, func() bool {
			return strings.Contains(runQuiet(t, "kubectl", "get", "node", victim).stdout, " Ready")
		})
		settled(t, 2*time.Minute)
	}()
	waitFor(t, 3*time.Minute, func() bool {
		return strings.Contains(runQuiet(t, "kubectl", "get", "node", victim).stdout, "NotReady")
	})
	for _, tr := range []string{"exec", "port-forward"} {
		r := kubectl(t, "etcd", "health", "--transport", tr)
		if r.code == 0 {
			t.Errorf("%s: health exited 0 with node %s NotReady", tr, victim)
		}
		if !strings.Contains(r.stdout+r.stderr, victim+" is NotReady") {
			t.Errorf("%s: the output does not name the NotReady node", tr)
		}
		if strings.Count(r.stdout, " true ") != nodes-1 {
			t.Errorf("%s: want the other %d member(s) healthy", tr, nodes-1)
		}
	}
	noHelperPods(t)
}
