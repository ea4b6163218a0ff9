//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
)

type metadata struct {
	File, ClusterID, Member, MemberID, EtcdVersion, KubernetesVersion, SHA256 string
	Revision, Size                                                            int64
	Encrypted                                                                 bool
	Members                                                                   []struct{ Name string }
}

type inspectReport struct {
	Hash      string `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	BoltKeys  int    `json:"boltKeys"`
	Usage     []struct {
		Prefix string `json:"prefix"`
		Keys   int    `json:"keys"`
	} `json:"usage"`
}

func TestBackupInspectVerify(t *testing.T) {
	scenario(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "etcd.db")
	r := mustSucceed(t, kubectl(t, "etcd", "backup", file))
	if strings.TrimSpace(r.stdout) != file {
		t.Errorf("backup printed %q, want the file name", r.stdout)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot %v mode %v", err, fi.Mode())
	}
	if _, err := os.Stat(file + ".part"); err == nil {
		t.Errorf(".part left behind")
	}
	var meta metadata
	b, err := os.ReadFile(file + ".json")
	if err != nil || json.Unmarshal(b, &meta) != nil {
		t.Fatalf("metadata: %v %s", err, b)
	}
	st, _ := getStatus(t)
	if meta.ClusterID != st.ClusterID || meta.Size != fi.Size() || meta.Revision <= 0 || len(meta.Members) != nodes ||
		meta.EtcdVersion != strings.TrimPrefix(env["ETCD_VERSION"], "v") || !strings.HasPrefix(meta.KubernetesVersion, "v1.") {
		t.Errorf("metadata %+v (status cluster %s, size %d)", meta, st.ClusterID, fi.Size())
	}
	if nodes > 1 {
		for _, m := range st.Members {
			if m.IsLeader && m.Name == meta.Member {
				t.Errorf("snapshot taken from the leader %s although followers are healthy", m.Name)
			}
		}
	}

	mustSucceed(t, kubectl(t, "etcd", "snapshot", "verify", file))
	var rep inspectReport
	r = mustSucceed(t, kubectl(t, "etcd", "snapshot", "inspect", file, "-o", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	// etcd's own tool, run on the host, must agree.
	var want struct {
		Hash      uint32 `json:"hash"`
		Revision  int64  `json:"revision"`
		TotalKey  int    `json:"totalKey"`
		TotalSize int64  `json:"totalSize"`
	}
	out := mustSucceed(t, runCmd(t, env["HC_ETCDUTL"], "snapshot", "status", file, "-w", "json"))
	if err := json.Unmarshal([]byte(out.stdout), &want); err != nil {
		t.Fatal(err)
	}
	// etcdutl 3.5 counts every bolt key as totalKey; 3.6+ counts live keys.
	wantKeys := rep.TotalKey
	if strings.HasPrefix(env["ETCD_VERSION"], "v3.5.") {
		wantKeys = rep.BoltKeys
	}
	if fmt.Sprintf("%x", want.Hash) != rep.Hash || rep.Revision != want.Revision || wantKeys != want.TotalKey || rep.TotalSize != want.TotalSize || rep.Revision != meta.Revision {
		t.Errorf("inspect %+v, etcdutl %+v, metadata revision %d", rep, want, meta.Revision)
	}
	found := false
	for _, u := range rep.Usage {
		if u.Prefix == "/registry/pods/" && u.Keys >= 4*nodes {
			found = true
		}
	}
	if !found {
		t.Errorf("usage lacks the control-plane pods: %+v", rep.Usage)
	}
	mustSucceed(t, kubectl(t, "etcd", "snapshot", "inspect", file, "--top", "5"))

	// A truncated copy is refused with the reason.
	trunc := filepath.Join(dir, "trunc.db")
	data, _ := os.ReadFile(file)
	os.WriteFile(trunc, data[:len(data)/2], 0o600)
	r = kubectl(t, "etcd", "snapshot", "verify", trunc)
	if r.code == 0 || !strings.Contains(r.stdout, "no sha256 trailer") {
		t.Errorf("truncated snapshot: exit %d", r.code)
	}
	// The same name again is refused rather than overwritten.
	r = kubectl(t, "etcd", "backup", file)
	if r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("second backup to the same name: exit %d", r.code)
	}
	noHelperPods(t)
}

func TestBackupEncryptedAndStdout(t *testing.T) {
	scenario(t)
	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "key.txt")
	os.WriteFile(key, []byte(id.String()+"\n"), 0o600)
	file := filepath.Join(dir, "etcd.db.age")
	mustSucceed(t, kubectl(t, "etcd", "backup", file, "--recipient", id.Recipient().String(), "-q"))
	r := kubectl(t, "etcd", "snapshot", "inspect", file)
	if r.code == 0 || !strings.Contains(r.stderr, "--identity") {
		t.Errorf("inspect without identity: exit %d", r.code)
	}
	r = mustSucceed(t, kubectl(t, "etcd", "snapshot", "inspect", file, "--identity", key, "-o", "json"))
	var rep inspectReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.TotalKey == 0 {
		t.Errorf("encrypted inspect: %v %+v", err, rep)
	}
	mustSucceed(t, kubectl(t, "etcd", "snapshot", "verify", file, "--identity", key))

	// To stdout, then verified as a file.
	out := filepath.Join(dir, "stdout.db")
	mustSucceed(t, runCmd(t, "bash", "-c", "kubectl etcd backup - -q > "+out))
	mustSucceed(t, kubectl(t, "etcd", "snapshot", "verify", out))
	noHelperPods(t)
}

// TestCtrlC interrupts commands while their helper pods exist and checks
// that the pods are gone and no file is left.
func TestCtrlC(t *testing.T) {
	scenario(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"etcd", "status", "--transport", "port-forward"},
		{"etcd", "backup", filepath.Join(dir, "cut.db")},
	} {
		cmd := newCmd("kubectl", args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the helper pod exists, then interrupt.
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			r := runQuiet(t, "kubectl", "get", "pods", "-n", "kube-system", "-l", "app.kubernetes.io/managed-by=kubectl-etcd", "-o", "name")
			if strings.TrimSpace(r.stdout) != "" {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		t.Logf("%v after SIGINT: %v", args, err)
		noHelperPods(t)
		// A backup that finished before the signal rightly keeps its file.
		if m, _ := filepath.Glob(filepath.Join(dir, "cut.db*")); err != nil && len(m) != 0 {
			t.Errorf("interrupted backup left %v", m)
		}
	}
}
