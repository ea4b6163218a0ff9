//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"filippo.io/age"
)

// ageKey makes an age identity in dir: its key file and its recipient.
func ageKey(t *testing.T, dir string) (keyFile, recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, id.Recipient().String()
}

// TestBackupBundle writes a DR bundle (refused without a recipient),
// reads its snapshot with snapshot verify and inspect, and lays out the
// first node's files with bundle extract: kubeadm's PKI as the node has
// it, the manifests and the kubeadm ConfigMaps, 0600 in 0700 dirs, and
// nothing else.
func TestBackupBundle(t *testing.T) {
	scenario(t)
	dir := t.TempDir()
	key, recipient := ageKey(t, dir)
	file := filepath.Join(dir, "etcd.bundle.age")
	r := kubectl(t, "etcd", "backup", file, "--bundle")
	if r.code == 0 || !strings.Contains(r.stderr, "only ever written age-encrypted") {
		t.Errorf("a bundle without a recipient: exit %d:\n%s", r.code, r.stderr)
	}
	r = mustSucceed(t, kubectl(t, "etcd", "backup", file, "--bundle", "--recipient", recipient))
	if !strings.Contains(r.stderr, "Bundling") {
		t.Errorf("backup --bundle does not say what it bundles:\n%s", r.stderr)
	}
	if meta, _ := os.ReadFile(file + ".json"); !strings.Contains(string(meta), `"bundle"`) {
		t.Errorf("FILE.json does not say it is a bundle:\n%s", meta)
	}
	r = mustSucceed(t, kubectl(t, "etcd", "snapshot", "verify", file, "--identity", key))
	if !strings.Contains(r.stdout, "OK (bundle of ") {
		t.Errorf("snapshot verify does not say the file is a bundle:\n%s", r.stdout)
	}
	mustSucceed(t, kubectl(t, "etcd", "snapshot", "inspect", file, "--identity", key))

	node := nodeNames(t)[0]
	to := filepath.Join(dir, node)
	r = kubectl(t, "etcd", "bundle", "extract", file, "--identity", key, "--to", to)
	if nodes > 1 && (r.code == 0 || !strings.Contains(r.stderr, "--node")) {
		t.Errorf("extract from a bundle of %d nodes without --node: exit %d:\n%s", nodes, r.code, r.stderr)
	}
	dry := mustSucceed(t, kubectl(t, "etcd", "bundle", "extract", file, "--identity", key, "--node", node, "--to", to, "--dry-run"))
	if _, err := os.Stat(to); !os.IsNotExist(err) {
		t.Errorf("extract --dry-run made %s: %v", to, err)
	}
	wrote := mustSucceed(t, kubectl(t, "etcd", "bundle", "extract", file, "--identity", key, "--node", node, "--to", to, "--yes"))
	if dry.stdout != wrote.stdout || !strings.Contains(wrote.stdout, "pki/ca.key") {
		t.Errorf("extract --dry-run listed\n%s\nextract wrote\n%s", dry.stdout, wrote.stdout)
	}
	if r := kubectl(t, "etcd", "bundle", "extract", file, "--identity", key, "--node", node, "--to", to); r.code == 0 || !strings.Contains(r.stderr, "is not empty") {
		t.Errorf("extract into a full dir is not refused before the question: exit %d:\n%s", r.code, r.stderr)
	}
	var got []string
	err := filepath.WalkDir(to, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(to, p)
		if want := os.FileMode(0o700); d.IsDir() && info.Mode().Perm() != want || !d.IsDir() && info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", rel, info.Mode().Perm())
		}
		if !d.IsDir() {
			got = append(got, rel)
			if info.Size() > 1<<20 {
				t.Errorf("%s is %d bytes: the snapshot was written?", rel, info.Size())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	for _, want := range []string{"pki/ca.crt", "pki/ca.key", "pki/sa.key", "pki/etcd/ca.key", "manifests/etcd.yaml", "manifests/kube-apiserver.yaml", "kubeadm-config.yaml", "kubelet-config.yaml"} {
		if !slices.Contains(got, want) {
			t.Errorf("extract did not write %s; it wrote %v", want, got)
		}
	}
	for _, f := range got {
		if !strings.HasPrefix(f, "pki/") && !strings.HasPrefix(f, "manifests/") && !strings.HasPrefix(f, "encryption/") && !strings.HasSuffix(f, "-config.yaml") {
			t.Errorf("extract wrote %s, which is none of the node's files", f)
		}
	}
	onNode := mustSucceed(t, nodeExec(t, node, "sha256sum", "/etc/kubernetes/pki/ca.key"))
	b, _ := os.ReadFile(filepath.Join(to, "pki", "ca.key"))
	sum := sha256.Sum256(b)
	if !strings.HasPrefix(onNode.stdout, hex.EncodeToString(sum[:])) {
		t.Errorf("pki/ca.key differs from the node's: %s", onNode.stdout)
	}
	noHelperPods(t)
}
