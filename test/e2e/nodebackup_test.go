//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// TestBackupViaNode takes snapshots on the member's node: as etcd sends
// them, zstd- and s2-compressed, and compressed then encrypted. Each is a snapshot
// etcdutl reads (the compressed one once decompressed here), inspect,
// verify and get --snapshot read the compressed files as they are,
// FILE.json says how the file was written, and Ctrl-C mid-stream leaves
// no pod and no file.
func TestBackupViaNode(t *testing.T) {
	scenario(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "node.db")
	r := mustSucceed(t, kubectl(t, "etcd", "backup", plain, "--via", "node"))
	if !strings.Contains(r.stderr, "Taking a snapshot on node ") {
		t.Errorf("backup --via node does not say where it takes the snapshot:\n%s", r.stderr)
	}
	meta := nodeBackupMeta(t, plain)
	if meta.Via != "node" || meta.Compression != "" || meta.Revision <= 0 {
		t.Errorf("FILE.json %+v", meta)
	}
	etcdutlAgrees(t, plain, plain)

	zst := filepath.Join(dir, "node.db.zst")
	mustSucceed(t, kubectl(t, "etcd", "backup", zst, "--via", "node", "--compress", "zstd"))
	meta = nodeBackupMeta(t, zst)
	if meta.Via != "node" || meta.Compression != "zstd" || meta.Revision <= 0 {
		t.Errorf("FILE.json %+v", meta)
	}
	dec := filepath.Join(dir, "decompressed.db")
	decompress(t, "zstd", zst, dec)
	if st, _ := os.Stat(zst); st == nil || st.Size() >= meta.Size {
		t.Errorf("the compressed file is not smaller than the %d-byte snapshot: %v", meta.Size, st)
	}
	etcdutlAgrees(t, zst, dec)
	if r := mustSucceed(t, kubectl(t, "etcd", "snapshot", "verify", zst)); !strings.Contains(r.stdout, ": OK") {
		t.Errorf("verify: %s", r.stdout)
	}
	mustSucceed(t, kubectl(t, "etcd", "get", "namespaces/default", "--snapshot", zst, "-o", "json"))

	s2f := filepath.Join(dir, "node.db.s2")
	mustSucceed(t, kubectl(t, "etcd", "backup", s2f, "--via", "node", "--compress", "s2"))
	if meta = nodeBackupMeta(t, s2f); meta.Compression != "s2" {
		t.Errorf("FILE.json %+v", meta)
	}
	decS2 := filepath.Join(dir, "decompressed-s2.db")
	decompress(t, "s2", s2f, decS2)
	etcdutlAgrees(t, s2f, decS2)

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "key.txt")
	os.WriteFile(key, []byte(id.String()+"\n"), 0o600)
	both := filepath.Join(dir, "node.db.s2.age")
	mustSucceed(t, kubectl(t, "etcd", "backup", both, "--via", "node", "--compress", "s2", "--recipient", id.Recipient().String()))
	mustSucceed(t, kubectl(t, "etcd", "snapshot", "verify", both, "--identity", key))
	mustSucceed(t, kubectl(t, "etcd", "snapshot", "inspect", both, "--identity", key))
	noHelperPods(t)

	// Ctrl-C once the snapshot's pod exists: no pod and no file. On the
	// node the agent writes nothing: it goes to its pod's scratch dir (an
	// emptyDir, gone with the pod), and serves the snapshot to the one
	// port-forward, from memory.
	cut := filepath.Join(dir, "cut.db")
	cmd := newCmd("kubectl", "etcd", "backup", cut, "--via", "node", "--compress", "zstd")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := runQuiet(t, "kubectl", "get", "pods", "-n", "kube-system", "-l", "kubectl-etcd.io/purpose=snapshot", "-o", "name")
		if strings.TrimSpace(r.stdout) != "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	t.Logf("backup --via node after SIGINT: %v", err)
	noHelperPods(t)
	if m, _ := filepath.Glob(cut + "*"); err != nil && len(m) != 0 {
		t.Errorf("interrupted backup left %v", m)
	}
}

type nodeMeta struct {
	Via, Compression string
	Revision, Size   int64
}

func nodeBackupMeta(t *testing.T, file string) nodeMeta {
	t.Helper()
	var m nodeMeta
	b, err := os.ReadFile(file + ".json")
	if err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("metadata of %s: %v %s", file, err, b)
	}
	return m
}

// etcdutlAgrees: inspect of file says what etcdutl says of plain, the
// same snapshot uncompressed.
func etcdutlAgrees(t *testing.T, file, plain string) {
	t.Helper()
	var rep inspectReport
	r := mustSucceed(t, kubectl(t, "etcd", "snapshot", "inspect", file, "-o", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	var want struct {
		Hash     uint32 `json:"hash"`
		Revision int64  `json:"revision"`
	}
	out := mustSucceed(t, runCmd(t, env["HC_ETCDUTL"], "snapshot", "status", plain, "-w", "json"))
	if err := json.Unmarshal([]byte(out.stdout), &want); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%x", want.Hash) != rep.Hash || rep.Revision != want.Revision {
		t.Errorf("inspect of %s %+v, etcdutl of %s %+v", file, rep, plain, want)
	}
}

// decompress writes src, compressed with name (zstd or s2), to dst, with
// the compression library itself.
func decompress(t *testing.T, name, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var zr io.Reader = s2.NewReader(in)
	if name == "zstd" {
		d, err := zstd.NewReader(in)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		zr = d
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
}
