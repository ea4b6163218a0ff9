package snapshot

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

func bundleFiles() []BundleFile {
	return []BundleFile{
		{Path: "nodes/cp1/pki/ca.key", Node: "cp1", Source: "/etc/kubernetes/pki/ca.key", Data: []byte("-----BEGIN KEY-----\nsecret\n")},
		{Path: "nodes/cp1/manifests/etcd.yaml", Node: "cp1", Source: "/etc/kubernetes/manifests/etcd.yaml", Data: []byte("kind: Pod\n")},
		{Path: "cluster/kubeadm-config.yaml", Source: "configmap/kube-system/kubeadm-config", Data: []byte("kind: ConfigMap\n")},
	}
}

// TestBundleRoundTrip writes a bundle as backup does and reads it back:
// every reader of snapshots finds the snapshot after the files, and
// OpenBundle the files, each checked against the index.
func TestBundleRoundTrip(t *testing.T) {
	snap := snapshotBytes(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "etcd.bundle.age")
	idx := BundleIndex{Created: time.Date(2026, 12, 7, 1, 2, 3, 4, time.UTC), Context: "ctx", EncryptionKeys: map[string][]string{"cp1": {"aescbc:key1"}}}
	res, err := Save(context.Background(), source(snap), &FileSink{Path: path}, Options{Encrypt: BundleEncrypter(Encrypter([]age.Recipient{id.Recipient()}), idx, bundleFiles())})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("secret")) || bytes.Contains(raw, []byte("kubeadm-config")) {
		t.Fatal("the bundle holds plain text")
	}
	ids := []age.Identity{id}
	v, err := Verify(path, ids)
	if err != nil || v.Size != int64(len(snap)) || v.FileSHA256 != res.FileSHA256 {
		t.Fatalf("verify: size %d (want %d), sha %s (want %s): %v", v.Size, len(snap), v.FileSHA256, res.FileSHA256, err)
	}
	if v.Bundle == nil || len(v.Bundle.Files) != len(bundleFiles()) {
		t.Errorf("verify does not name the bundle's files: %+v", v.Bundle)
	}
	p, err := Decrypt(path, ids, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Analyze(p); err != nil {
		t.Errorf("inspect a bundle: %v", err)
	}
	p.Close()
	b, rc, err := OpenBundle(path, ids)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if len(b.Index.Files) != 3 || b.Index.Files[0].Path != "cluster/kubeadm-config.yaml" || b.Index.EncryptionKeys["cp1"][0] != "aescbc:key1" {
		t.Errorf("index %+v", b.Index)
	}
	for _, f := range bundleFiles() {
		if string(b.Files[f.Path]) != string(f.Data) {
			t.Errorf("%s: %q", f.Path, b.Files[f.Path])
		}
	}
	plain := filepath.Join(t.TempDir(), "plain.db")
	os.WriteFile(plain, snap, 0o600)
	if _, _, err := OpenBundle(plain, ids); err == nil || !strings.Contains(err.Error(), "a snapshot, not a bundle") {
		t.Errorf("a plain snapshot as a bundle: %v", err)
	}
}

// TestBundleDamage: a file missing, one the index does not list, one
// altered, and a hostile name are each refused, naming the file.
func TestBundleDamage(t *testing.T) {
	write := func(files []BundleFile, edit func(idx *BundleIndex, files []BundleFile) []BundleFile) []byte {
		var idxBuf bytes.Buffer
		if err := WriteBundle(&idxBuf, BundleIndex{}, files); err != nil {
			t.Fatal(err)
		}
		b, err := ReadBundle(bytes.NewReader(idxBuf.Bytes()), false)
		if err != nil {
			t.Fatal(err)
		}
		idx := b.Index
		files = edit(&idx, files)
		// Write the files as edited under the index as it was.
		var out bytes.Buffer
		if err := writeWithIndex(&out, idx, files); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	for _, tt := range []struct {
		name string
		edit func(idx *BundleIndex, files []BundleFile) []BundleFile
		want string
	}{
		{"a file missing", func(_ *BundleIndex, f []BundleFile) []BundleFile { return f[1:] }, "lists cluster/kubeadm-config.yaml, which it does not hold"},
		{"a file not listed", func(idx *BundleIndex, f []BundleFile) []BundleFile {
			idx.Files = idx.Files[1:]
			return f
		}, "holds cluster/kubeadm-config.yaml, which its index does not list"},
		{"a file altered", func(_ *BundleIndex, f []BundleFile) []BundleFile {
			f[2].Data = []byte("-----BEGIN KEY-----\nsecreT\n")
			return f
		}, "the bundle's nodes/cp1/pki/ca.key has sha256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			files := bundleFiles()
			sortBundle(files)
			data := write(files, tt.edit)
			if _, err := ReadBundle(bytes.NewReader(data), true); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
	for _, bad := range []string{"../etc/passwd", "/etc/passwd", "nodes/../../x", "a\\b", ""} {
		if err := WriteBundle(&bytes.Buffer{}, BundleIndex{}, []BundleFile{{Path: bad}}); err == nil {
			t.Errorf("name %q written", bad)
		}
	}
}

// TestBundleExtract lays out one node's files, 0600 in 0700 dirs, the
// cluster's beside them, and nothing else.
func TestBundleExtract(t *testing.T) {
	var buf bytes.Buffer
	files := append(bundleFiles(), BundleFile{Path: "nodes/cp2/pki/ca.key", Node: "cp2", Data: []byte("other")})
	if err := WriteBundle(&buf, BundleIndex{}, files); err != nil {
		t.Fatal(err)
	}
	b, err := ReadBundle(&buf, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(b.Index.Nodes(), ","); got != "cp1,cp2" {
		t.Errorf("nodes %s", got)
	}
	dir := filepath.Join(t.TempDir(), "cp1")
	plan, err := b.ExtractPlan("cp1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the plan touched the dir: %v", err)
	}
	out, err := b.Extract("cp1", dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(out, " "); got != "kubeadm-config.yaml manifests/etcd.yaml pki/ca.key" {
		t.Errorf("written %s", got)
	}
	if !slices.Equal(plan, out) {
		t.Errorf("planned %v, wrote %v", plan, out)
	}
	var all []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		all = append(all, rel)
		if want := os.FileMode(0o600); !d.IsDir() && info.Mode().Perm() != want || d.IsDir() && info.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v", rel, info.Mode())
		}
		return nil
	})
	if got := strings.Join(all, " "); got != ". kubeadm-config.yaml manifests manifests/etcd.yaml pki pki/ca.key" {
		t.Errorf("the dir holds %s", got)
	}
	if key, _ := os.ReadFile(filepath.Join(dir, "pki", "ca.key")); string(key) != "-----BEGIN KEY-----\nsecret\n" {
		t.Errorf("ca.key %q", key)
	}
	if _, err := b.Extract("cp1", dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("into a full dir: %v", err)
	}
	if _, err := b.Extract("cp9", t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds cp1, cp2") {
		t.Errorf("an unknown node: %v", err)
	}
}
