package plugin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/internal/s3test"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/nodetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/snapshottest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

const backupDir = "/var/lib/etcd-backups"

// backupNodes is a cluster of three control-plane nodes, two of which
// keep a schedule's backups, sealed for a fresh identity written to
// key.txt; it returns the file, and the identity file.
func backupNodes(t *testing.T) (*nodetest.Cluster, []byte, string) {
	id, _ := age.GenerateX25519Identity()
	key := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(key, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, _ := snapshottest.Sealed(t, id.Recipient())
	n := nodetest.New(t, nodetest.ControlPlane, "hc-cp1", "hc-cp2", "hc-cp3")
	for i, node := range []string{"hc-cp1", "hc-cp2", "hc-cp1"} {
		n.Write(t, node, backupDir, schedule.FileName("nightly", scheduleNow.Add(-time.Duration(10+24*i)*time.Hour)), file)
	}
	n.Write(t, "hc-cp3", backupDir, "manual.db.age", file)
	old := scheduleNow.Add(-6 * 24 * time.Hour)
	if err := os.Chtimes(filepath.Join(n.Root, "hc-cp3", backupDir, "manual.db.age"), old, old); err != nil {
		t.Fatal(err)
	}
	return n, file, key
}

// runNodes runs kubectl etcd against n at scheduleNow.
func runNodes(t *testing.T, n *nodetest.Cluster, args ...string) (string, string, error) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	g := NewGlobalOptions(streams)
	g.Now = func() time.Time { return scheduleNow }
	if n != nil {
		g.Client, g.Executor = n.Client, n
	}
	cmd := NewCmdEtcdWithOptions(g)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// snapshot list reads the dir on each control-plane node, shows where
// each backup is, newest first, and with --verify what reading it found.
func TestSnapshotList(t *testing.T) {
	n, _, key := backupNodes(t)
	for _, tc := range []struct {
		golden string
		args   []string
		note   string // a piece of standard error
	}{
		{"cmd-snapshot-list", nil, ""},
		{"cmd-snapshot-list-verify", []string{"--verify", "--identity", key}, ""},
		{"cmd-snapshot-list-header-only", []string{"--verify", "--node", "hc-cp2"}, "their content was not checked"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, errOut, err := runNodes(t, n, append([]string{"snapshot", "list", "node:" + backupDir}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			golden.Assert(t, tc.golden, []byte(out))
			if !strings.Contains(errOut, tc.note) {
				t.Errorf("stderr %q lacks %q", errOut, tc.note)
			}
			if l := n.Leftovers(t); l != 0 {
				t.Errorf("%d node pods left", l)
			}
		})
	}
}

// snapshot get keeps the file and prints its path, and says what it
// checked; what it cannot do is refused before any pod starts.
func TestSnapshotGet(t *testing.T) {
	n, file, key := backupNodes(t)
	name := schedule.FileName("nightly", scheduleNow.Add(-34*time.Hour))
	dst := filepath.Join(t.TempDir(), "etcd.db.zst.age")
	out, errOut, err := runNodes(t, n, "snapshot", "get", "node:"+backupDir, name, dst, "-i", key)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if got, _ := os.ReadFile(dst); out != dst+"\n" || !bytes.Equal(got, file) {
		t.Errorf("stdout %q, %d bytes kept", out, len(got))
	}
	if want := "Kept " + name + " from node:/var/lib/etcd-backups on node hc-cp2 as " + dst; !strings.Contains(errOut, want) || !strings.Contains(errOut, "decrypted and checked against etcd's sha256 trailer") {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"over a file", []string{"node:" + backupDir, name, dst}, "already exists"},
		{"a name out of the dir", []string{"node:" + backupDir, "../etcd/member/snap/db", filepath.Join(t.TempDir(), "x")}, "object name"},
		{"a PVC", []string{"pvc:etcd-backups", name, filepath.Join(t.TempDir(), "x")}, "do not read a PersistentVolumeClaim"},
		{"S3 flags on a node dir", []string{"node:" + backupDir, name, "--s3-secret", "x"}, "go with an s3:// destination"},
		{"--node on S3", []string{"s3://backups/etcd", name, "--node", "hc-cp1"}, "--node goes with a node:/DIR destination"},
		{"not a destination", []string{backupDir, name}, "want node:/DIR, pvc:CLAIM or s3://BUCKET[/PREFIX]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runNodes(t, n, append([]string{"snapshot", "get"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if l := n.Leftovers(t); l != 0 {
		t.Errorf("%d node pods left", l)
	}
}

// restore --from copies the file from the destination into a directory
// of its own, verified, restores from there and removes the copy
// afterwards, whether the restore went on or not: this cluster has no
// etcd pods, so the restore's preflight stops it after the copy.
func TestRestoreFrom(t *testing.T) {
	n, _, key := backupNodes(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	name := schedule.FileName("nightly", scheduleNow.Add(-34*time.Hour))
	_, errOut, err := runNodes(t, n, "restore", name, "--from", "node:"+backupDir, "--identity", key, "--dry-run", "--agent-dir", t.TempDir())
	if err == nil {
		t.Fatalf("a restore on a cluster without etcd pods went on:\n%s", errOut)
	}
	want := "Copied " + name + " from node:/var/lib/etcd-backups on node hc-cp2 ("
	if !strings.Contains(errOut, want) || !strings.Contains(errOut, "decrypted and checked against etcd's sha256 trailer") {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	if strings.Contains(err.Error(), "no file") || strings.Contains(err.Error(), "not kept") {
		t.Errorf("the copy failed: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the copy was left in %s: %v", tmp, left)
	}
	_, _, err = runNodes(t, n, "restore", "missing.db.age", "--from", "node:"+backupDir, "--identity", key, "--dry-run")
	if err == nil || !strings.Contains(err.Error(), "no file missing.db.age in node:/var/lib/etcd-backups") {
		t.Errorf("a missing name: err = %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("a failed copy left %v in %s", left, tmp)
	}
	if l := n.Leftovers(t); l != 0 {
		t.Errorf("%d node pods left", l)
	}
}

// Against S3 the keys come from the environment, with no cluster at all,
// or from a Secret read through the API.
func TestSnapshotListGetS3(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts versitygw")
	}
	srv := s3test.Start(t, "backups")
	id, _ := age.GenerateX25519Identity()
	file, _ := snapshottest.Sealed(t, id.Recipient())
	name := schedule.FileName("hourly", scheduleNow.Add(-time.Hour))
	srv.Put(t, "backups", "etcd/"+name, file)
	dest := []string{"s3://backups/etcd", "--s3-endpoint", srv.Endpoint}

	t.Setenv(schedule.EnvAccessKeyID, srv.AccessKey)
	t.Setenv(schedule.EnvSecretAccessKey, srv.SecretKey)
	out, errOut, err := runNodes(t, nil, append([]string{"snapshot", "list", "-o", "json"}, dest...)...)
	if err != nil || !strings.Contains(out, `"name": "`+name+`"`) || !strings.Contains(out, `"schedule": "hourly"`) {
		t.Fatalf("list: %v\n%s%s", err, out, errOut)
	}

	t.Setenv(schedule.EnvAccessKeyID, "")
	t.Setenv(schedule.EnvSecretAccessKey, "")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "etcd-backup-s3", Namespace: "kube-system"},
		Data: map[string][]byte{schedule.EnvAccessKeyID: []byte(srv.AccessKey), schedule.EnvSecretAccessKey: []byte(srv.SecretKey)}}
	streams, _, stdout, stderr := genericiooptions.NewTestIOStreams()
	g := NewGlobalOptions(streams)
	g.Client = fake.NewClientset(secret)
	dst := filepath.Join(t.TempDir(), name)
	cmd := NewCmdEtcdWithOptions(g)
	cmd.SetArgs(append([]string{"snapshot", "get", "--s3-secret", "etcd-backup-s3", dest[0], name, dst}, dest[1:]...))
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("get: %v\n%s", err, stderr)
	}
	if got, _ := os.ReadFile(dst); stdout.String() != dst+"\n" || !bytes.Equal(got, file) || !strings.Contains(stderr.String(), "only its age header was read") {
		t.Errorf("stdout %q, stderr %q, %d bytes kept", stdout, stderr, len(got))
	}
	if strings.Contains(stdout.String()+stderr.String(), srv.SecretKey) {
		t.Error("the secret key was printed")
	}
}
