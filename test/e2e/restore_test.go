//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
)

// This file's tests change the cluster and run last (Go runs a package's
// files in name order). Where each runs is in the matrix table (matrix.go).

func restoreCmd(args ...string) []string {
	return append([]string{"etcd", "restore"}, args...)
}

// A dry run and the preflight refusals change nothing: the plan of a good
// snapshot, a corrupt snapshot, and a helper image that cannot start.
func TestRestoreRefusals(t *testing.T) {
	scenario(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "etcd.db")
	mustSucceed(t, kubectl(t, "etcd", "backup", good))
	before, _ := getStatus(t)

	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// --dry-run: the plan names every node, and nothing changes.
	r := mustSucceed(t, kubectl(t, restoreCmd(good, "--dry-run")...))
	if !strings.Contains(r.stderr, "--dry-run: nothing was changed") {
		t.Errorf("restore --dry-run does not say it changed nothing:\n%s", r.stderr)
	}
	for _, n := range nodeNames(t) {
		if !strings.Contains(r.stdout+r.stderr, n) {
			t.Errorf("restore --dry-run's plan does not name node %s:\n%s%s", n, r.stdout, r.stderr)
		}
	}

	// What copy-db saves: the database without the trailer.
	g, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "member.db")
	if err := os.WriteFile(raw, g[:len(g)-32], 0o600); err != nil {
		t.Fatal(err)
	}
	r = kubectl(t, restoreCmd(raw, "--yes")...)
	if r.code == 0 || !strings.Contains(r.stderr, "no sha256 trailer") || !strings.Contains(r.stderr, "--skip-hash-check") {
		t.Errorf("a raw database copy without --skip-hash-check: exit %d, stderr %q; want a refusal naming the flag", r.code, r.stderr)
	}

	r = kubectl(t, restoreCmd(corrupt, "--yes")...)
	if r.code == 0 || !strings.Contains(r.stderr, "does not verify") || !strings.Contains(r.stderr, "nothing was changed") {
		t.Errorf("a corrupt snapshot: exit %d, stderr %q; want a refusal naming it", r.code, r.stderr)
	}

	r = kubectl(t, restoreCmd(good, "--yes", "--image", "kubectl-etcd-e2e/no-such-image:0")...)
	if r.code == 0 || !strings.Contains(r.stderr, "cannot be pulled") {
		t.Errorf("an unpullable helper image: exit %d, stderr %q; want a refusal naming it", r.code, r.stderr)
	}
	if nodes > 1 {
		// The coordinator's node cannot take part (its barrier port is
		// taken): every node is prepared before any agent starts, so the
		// restore ends with nothing stopped anywhere (S1).
		coordinator := nodeNames(t)[0]
		holder := exec.Command("bash", filepath.Join(root, "hack/cluster/node-exec.sh"), coordinator, "perl", "-MIO::Socket::INET", "-e",
			`my $s = IO::Socket::INET->new(LocalAddr => "0.0.0.0:2382", Listen => 1, ReuseAddr => 1) or die "listen: $!"; $| = 1; print "listening\n"; sleep 600`)
		out, err := holder.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "listening\n" {
			holder.Process.Kill()
			t.Fatalf("could not take port 2382 on %s: %q", coordinator, line)
		}
		r = kubectl(t, restoreCmd(good, "--yes")...)
		holder.Process.Kill()
		holder.Wait()
		if r.code == 0 || !strings.Contains(r.stderr, "node "+coordinator+": prepare the agent") || !strings.Contains(r.stderr, "nothing was stopped on any node") {
			t.Errorf("the coordinator's barrier port taken: exit %d, stderr %q; want a refusal naming the node", r.code, r.stderr)
		}
		mustSucceed(t, kubectl(t, "etcd", "health"))
	}
	noHelperPods(t)
	after, _ := getStatus(t)
	if after.ClusterID != before.ClusterID {
		t.Errorf("the cluster ID changed from %s to %s after refusals", before.ClusterID, after.ClusterID)
	}
	st := mustSucceed(t, kubectl(t, restoreCmd("--status")...))
	if regexp.MustCompile(`\b(running|rolling-back|failed) \(agent`).MatchString(st.stdout) {
		t.Errorf("a refused restore left a journal that is not finished:\n%s", st.stdout)
	}
}

// configMaps lists the ConfigMaps in the default namespace.
func configMaps(t *testing.T) map[string]bool {
	t.Helper()
	r := mustSucceed(t, kubectl(t, "get", "configmaps", "-o", "jsonpath={.items[*].metadata.name}"))
	out := map[string]bool{}
	for _, n := range strings.Fields(r.stdout) {
		out[n] = true
	}
	return out
}

// setUpRestore creates ConfigMap A, backs up, creates B and deletes A.
func setUpRestore(t *testing.T, backupArgs ...string) (file string, before status) {
	t.Helper()
	mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-restore-a", "e2e-restore-b", "--ignore-not-found"))
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-restore-a", "--from-literal=k=a"))
	file = filepath.Join(t.TempDir(), "etcd.db")
	if slices.Contains(backupArgs, "--compress") {
		file += ".zst"
	}
	if slices.Contains(backupArgs, "--recipient") {
		file += ".age"
	}
	mustSucceed(t, kubectl(t, append([]string{"etcd", "backup", file}, backupArgs...)...))
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-restore-b", "--from-literal=k=b"))
	mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-restore-a"))
	before, _ = getStatus(t)
	return file, before
}

var restoredRE = regexp.MustCompile(`Restored (\S+): cluster ID (\S+), revision (\d+) \(snapshot (\d+) \+ bump (\d+)\)`)

// checkRestored checks the cluster after a restore of file.
func checkRestored(t *testing.T, before status, out string) (id string) {
	t.Helper()
	m := restoredRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in the output:\n%s", out)
	}
	id = m[1]
	cms := configMaps(t)
	if !cms["e2e-restore-a"] || cms["e2e-restore-b"] {
		t.Errorf("after the restore A present %t (want true), B present %t (want false)", cms["e2e-restore-a"], cms["e2e-restore-b"])
	}
	after, _ := getStatus(t)
	if after.ClusterID == before.ClusterID || after.ClusterID != m[2] {
		t.Errorf("cluster ID %s before, %s after, the summary says %s", before.ClusterID, after.ClusterID, m[2])
	}
	var snapRev, bump int64
	fmt.Sscan(m[4], &snapRev)
	fmt.Sscan(m[5], &bump)
	for _, mem := range after.Members {
		if mem.Revision < snapRev+bump {
			t.Errorf("member %s at revision %d, below the snapshot's %d plus the bump %d", mem.Name, mem.Revision, snapRev, bump)
		}
	}
	if len(after.Members) != nodes {
		t.Errorf("%d members after the restore, want %d", len(after.Members), nodes)
	}
	mustSucceed(t, kubectl(t, "etcd", "health"))
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-restore-c", "--from-literal=k=c"))
	mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-restore-c"))
	noHelperPods(t)
	// Nothing is deleted: the old data dir and the old manifest are kept.
	for _, n := range nodeNames(t) {
		r := mustSucceed(t, runCmd(t, "bash", filepath.Join(root, "hack/cluster/node-exec.sh"), n, "sh", "-c",
			`d=$(sed -n 's/.*--data-dir=//p' /var/lib/kubectl-etcd/restore/`+id+`/manifests/etcd.yaml) && ls -d "$d/member/snap" && test "$d" != "$(sed -n 's/.*--data-dir=//p' /etc/kubernetes/manifests/etcd.yaml)"`))
		if !strings.Contains(r.stdout, "/member/snap") {
			t.Errorf("node %s: the old data dir is gone", n)
		}
		noPlaintextLeft(t, n)
	}
	return id
}

// The whole story: restore, check, roll back, check.
func TestRestoreThenRollback(t *testing.T) {
	scenario(t)
	// A snapshot taken on the node and compressed there restores as any.
	file, before := setUpRestore(t, "--via", "node", "--compress", "zstd")
	r := mustSucceed(t, kubectl(t, restoreCmd(file, "--yes")...))
	id := checkRestored(t, before, r.stdout)
	// The node pods deleted as the API server went away are gone once it
	// is back (the restored etcd never knew them): nothing to warn about.
	if strings.Contains(r.stderr, "left behind") {
		t.Errorf("a good restore warns of pods left behind:\n%s", r.stderr)
	}
	restartKubelets(t, r.stdout)
	restored, _ := getStatus(t)

	st := mustSucceed(t, kubectl(t, restoreCmd("--status", "--id", id)...))
	if strings.Count(st.stdout, "restore "+id+" done") != nodes {
		t.Errorf("--status does not show restore %s done on %d nodes:\n%s", id, nodes, st.stdout)
	}

	// The summary's clean-up, done on one node before a rollback, ends the
	// way back there: the rollback refuses on every node, changes nothing,
	// and the cluster stays up on the restored data (D1).
	names := nodeNames(t)
	far := names[len(names)-1]
	oldMember := `"$(sed -n 's/.*--data-dir=//p' /var/lib/kubectl-etcd/restore/` + id + `/manifests/etcd.yaml)/member"`
	mustSucceed(t, nodeExec(t, far, "sh", "-c", "mv "+oldMember+" "+oldMember+".e2e-aside"))
	refused := kubectl(t, restoreCmd("--rollback", "--id", id, "--yes")...)
	mustSucceed(t, nodeExec(t, far, "sh", "-c", "mv "+oldMember+".e2e-aside "+oldMember))
	if refused.code == 0 || !strings.Contains(refused.stderr, "node "+far+": the old data dir") ||
		!strings.Contains(refused.stderr, "nothing was changed on any node") {
		t.Errorf("a rollback over removed old data on %s was not refused by name (exit %d):\n%s%s", far, refused.code, refused.stdout, refused.stderr)
	}
	if still, _ := getStatus(t); still.ClusterID != restored.ClusterID {
		t.Errorf("cluster ID %s after the refused rollback, want the restored %s", still.ClusterID, restored.ClusterID)
	}
	if !configMaps(t)["e2e-restore-a"] {
		t.Errorf("the refused rollback lost the restored data")
	}
	if st := mustSucceed(t, kubectl(t, restoreCmd("--status", "--id", id)...)); !strings.Contains(st.stdout, "rollback: etcd goes back to") {
		t.Errorf("--status does not say where a rollback leads:\n%s", st.stdout)
	}

	r = mustSucceed(t, kubectl(t, restoreCmd("--rollback", "--id", id, "--yes")...))
	if !strings.Contains(r.stdout, "Every write since the restore began") || !strings.Contains(r.stdout, "etcd goes back to") {
		t.Errorf("the rollback's plan does not name the old data and the lost writes:\n%s", r.stdout)
	}
	// As the rollback advises: the old data's revisions are below those the
	// kubelets' watches saw, so until they restart, new pods never start.
	restartKubelets(t, r.stdout)
	cms := configMaps(t)
	if cms["e2e-restore-a"] || !cms["e2e-restore-b"] {
		t.Errorf("after the rollback A present %t (want false), B present %t (want true)", cms["e2e-restore-a"], cms["e2e-restore-b"])
	}
	back, _ := getStatus(t)
	if back.ClusterID != before.ClusterID {
		t.Errorf("cluster ID %s after the rollback, want the old %s (restored: %s)", back.ClusterID, before.ClusterID, restored.ClusterID)
	}
	mustSucceed(t, kubectl(t, "etcd", "health"))
	noHelperPods(t)
	mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-restore-b"))
}

// The plugin is killed right after the API servers stop: each node
// finishes by itself, and --status reports it. The backup is
// age-encrypted, with its FILE.json beside it, whose revision must be the
// snapshot's own (R1); no node keeps the decrypted snapshot (X1).
func TestRestoreSurvivesKilledPlugin(t *testing.T) {
	scenario(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(key, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, before := setUpRestore(t, "--recipient", id.Recipient().String())
	if _, err := os.Stat(file + ".json"); err != nil {
		t.Fatalf("the encrypted backup has no FILE.json: %v", err)
	}
	cmd := exec.Command("kubectl", restoreCmd(file, "--identity", key, "--yes")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	killed := false
	for sc.Scan() {
		t.Log(sc.Text())
		if strings.Contains(sc.Text(), "the API server has stopped") {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatal("the plugin never reported the API server stopped")
	}
	// Wait for the control plane, as an operator would.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if r := runQuiet(t, "kubectl", "etcd", "health"); r.code == 0 {
			if s, _ := getStatusQuiet(t); s.ClusterID != "" && s.ClusterID != before.ClusterID {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the control plane did not come back restored within 5 minutes of the kill")
		}
		time.Sleep(3 * time.Second)
	}
	settled(t, 3*time.Minute)
	st := mustSucceed(t, kubectl(t, restoreCmd("--status")...))
	if !strings.Contains(st.stdout, " done (agent running: false)") {
		t.Errorf("--status does not report the restore done:\n%s", st.stdout)
	}
	cms := configMaps(t)
	if !cms["e2e-restore-a"] || cms["e2e-restore-b"] {
		t.Errorf("after the restore A present %t (want true), B present %t (want false)", cms["e2e-restore-a"], cms["e2e-restore-b"])
	}
	// The agents' static pods took themselves out; the plugin's node pods
	// are unknown to the restored etcd. (A helper pod of the backup that
	// the snapshot holds comes back with it: the plugin deletes it at the
	// end of a restore, which this one never reached; it ends at its
	// deadline.)
	deadline = time.Now().Add(2 * time.Minute)
	for {
		r := runQuiet(t, "kubectl", "get", "pods", "-A", "-l", "kubectl-etcd.io/purpose in (restore,restore-data,restore-agent)", "-o", "name")
		if r.code == 0 && strings.TrimSpace(r.stdout) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restore pods left behind: %s", r.stdout)
		}
		time.Sleep(2 * time.Second)
	}
	for _, n := range nodeNames(t) {
		noPlaintextLeft(t, n)
	}
	mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-restore-a"))
	restartKubelets(t, "systemctl restart kubelet") // as the summary, which the kill cut off, advises
}

// A single member whose restored etcd cannot start rolls back by itself
// (S2): the restored data is made unreadable between its restore and the
// swap, the member never becomes healthy, and past --healthy-timeout the
// node puts its old manifests back. The plugin reports the node's
// rollback as soon as the API server is back on the old data, not at its
// own timeout, and the cluster is as it was before the restore.
func TestRestoreRollsBackByItself(t *testing.T) {
	scenario(t)
	file, before := setUpRestore(t)
	// The file is made what copy-db saves (the database alone, no
	// FILE.json), so that the node's etcdutl (etcdctl on 3.5) restores
	// it with --skip-hash-check before the restore is broken.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b[:len(b)-32], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file + ".json"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("kubectl", restoreCmd(file, "--yes", "--healthy-timeout", "20s", "--skip-hash-check")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	restoredRE := regexp.MustCompile(`node (\S+): restored the snapshot into (\S+) in `)
	broken := false
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		stderr.WriteString(line + "\n")
		if m := restoredRE.FindStringSubmatch(line); m != nil && !broken {
			// Before the agent swaps: the steps that stop the API server
			// and etcd take seconds. etcd refuses a database it cannot read.
			mustSucceed(t, nodeExec(t, m[1], "sh", "-c", `printf 'not a bbolt file' > "$1/member/snap/db"`, "sh", m[2]))
			broken = true
		}
	}
	err = cmd.Wait()
	took := time.Since(start)
	t.Logf("$ kubectl etcd restore (took %s, %v)\n%s%s", took.Round(time.Second), err, stdout.String(), stderr.String())
	if !broken {
		t.Fatal("the plugin never said it restored the snapshot")
	}
	if !strings.Contains(stdout.String()+stderr.String(), "copied from its data dir (copy-db), not a snapshot") {
		t.Errorf("the plan does not warn that the file is a raw database copy")
	}
	if err == nil || !strings.Contains(stderr.String(), "back by itself: wait until the member is healthy: waited 20s") || !strings.Contains(stderr.String(), "back on its old data") {
		t.Fatalf("the plugin did not report the node's rollback and why (%v)", err)
	}
	if strings.Contains(stderr.String(), "resume the restore") {
		t.Errorf("a restore that rolled back by itself is offered a resume and a rollback")
	}
	if took > 6*time.Minute {
		t.Errorf("the plugin took %s: it waited for its own timeout, not for the node", took.Round(time.Second))
	}
	settled(t, 3*time.Minute)
	after, _ := getStatus(t)
	if after.ClusterID != before.ClusterID {
		t.Errorf("cluster ID %s after the automatic rollback, want the old %s", after.ClusterID, before.ClusterID)
	}
	cms := configMaps(t)
	if cms["e2e-restore-a"] || !cms["e2e-restore-b"] {
		t.Errorf("after the automatic rollback A present %t (want false), B present %t (want true)", cms["e2e-restore-a"], cms["e2e-restore-b"])
	}
	st := mustSucceed(t, kubectl(t, restoreCmd("--status")...))
	if !strings.Contains(st.stdout, " rolled-back (agent running: false)") {
		t.Errorf("--status does not show the restore rolled back:\n%s", st.stdout)
	}
	mustSucceed(t, kubectl(t, "etcd", "health"))
	noHelperPods(t)
	mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-restore-b"))
}

// restartKubelets does what the output of a restore or a rollback
// advises: restart every kubelet, so that its informers drop what they
// held before (until then it may not start new pods, and the API shows
// static pods as they were in the snapshot).
func restartKubelets(t *testing.T, out string) {
	t.Helper()
	if !strings.Contains(out, "systemctl restart kubelet") {
		t.Errorf("the output does not advise restarting the kubelets:\n%s", out)
	}
	mustSucceed(t, runCmd(t, "bash", append([]string{filepath.Join(root, "hack/cluster/restart-kubelet.sh")}, nodeNames(t)...)...))
	settled(t, 2*time.Minute)
}

func getStatusQuiet(t *testing.T) (status, error) {
	r := runQuiet(t, "kubectl", "etcd", "status", "-o", "json")
	var v status
	if r.code != 0 {
		return v, fmt.Errorf("exit %d", r.code)
	}
	return v, json.Unmarshal([]byte(r.stdout), &v)
}

// noPlaintextLeft checks that a node holds no staged snapshot (the
// backup's plaintext) after a restore, and nothing of ours under the
// journal root that another user could read: dirs 0700, files 0600; and
// no restore pod's dir (<new data dir>.part) left beside the data dirs.
func noPlaintextLeft(t *testing.T, node string) {
	t.Helper()
	r := mustSucceed(t, nodeExec(t, node, "sh", "-c",
		`find /var/lib/kubectl-etcd -name 'snapshot.db*'; find /var/lib/kubectl-etcd/restore \( -type d -perm /077 \) -o \( -type f -perm /077 \) | sed 's/^/wide: /'; find /var/lib /var/lib/etcd -maxdepth 1 -name '*-restore-*.part' | sed 's/^/left: /'; stat -c '%a %n' /var/lib/kubectl-etcd/restore`))
	out := strings.TrimSpace(r.stdout)
	if out != "700 /var/lib/kubectl-etcd/restore" {
		t.Errorf("node %s: a staged snapshot, or files others can read, under /var/lib/kubectl-etcd:\n%s", node, out)
	}
}
