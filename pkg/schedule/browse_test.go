package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/nodetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/snapshottest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// newNodes is a fake cluster of control-plane nodes whose node pods run
// this machine's tools on the files of each.
func newNodes(t *testing.T, names ...string) *nodetest.Cluster {
	return nodetest.New(t, map[string]string{ControlPlaneLabel: ""}, names...)
}

func deps(n *nodetest.Cluster) BrowseDeps {
	return BrowseDeps{Client: n.Client, Runner: &nodepod.Runner{Client: n.Client, Exec: n, StartTimeout: 30 * time.Second}}
}

const backupDir = "/var/lib/etcd-backups"

// A node dir is read on every control-plane node at once, through pods
// that mount only it, read-only, and are deleted after: newest first,
// schedule names read, other files by their time, files being written
// and names get would refuse left out; a node without the dir is said,
// and is no failure.
func TestListBackupsNodeDir(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	file, _ := snapshottest.Sealed(t, id.Recipient())
	n := newNodes(t, "cp1", "cp2", "cp3")
	at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	n.Write(t, "cp1", backupDir, FileName("nightly", at), file)
	n.Write(t, "cp1", backupDir, FileName("nightly", at)+".part", file[:100])
	n.Write(t, "cp1", backupDir, "a..b", file)
	n.Write(t, "cp2", backupDir, FileName("nightly", at.Add(-24*time.Hour)), file)
	n.Write(t, "cp2", backupDir, "manual backup.db.age", file)
	os.Chtimes(filepath.Join(n.Root, "cp2", backupDir, "manual backup.db.age"), at.Add(-72*time.Hour), at.Add(-72*time.Hour))
	var notes []string
	c := Browse{Dest: Dest{Kind: DestNode, Path: backupDir}, Namespace: "kube-system", Log: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}

	bs, err := ListBackups(context.Background(), deps(n), ListConfig{Browse: c})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		got = append(got, fmt.Sprintf("%s %s %s %s %d", b.Node, b.Name, b.Schedule, b.Taken.Format(time.RFC3339), b.Size))
	}
	want := []string{
		fmt.Sprintf("cp1 nightly-20261207T020000Z.db.zst.age nightly 2026-12-07T02:00:00Z %d", len(file)),
		fmt.Sprintf("cp2 nightly-20261206T020000Z.db.zst.age nightly 2026-12-06T02:00:00Z %d", len(file)),
		fmt.Sprintf("cp2 manual backup.db.age  2026-12-04T02:00:00Z %d", len(file)),
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "Node cp3 has no dir /var/lib/etcd-backups") {
		t.Errorf("notes %q", notes)
	}
	if l := n.Leftovers(t); l != 0 {
		t.Errorf("%d node pods left", l)
	}

	t.Run("one node", func(t *testing.T) {
		c := c
		c.Nodes = []string{"cp2"}
		bs, err := ListBackups(context.Background(), deps(n), ListConfig{Browse: c})
		if err != nil || len(bs) != 2 || bs[0].Node != "cp2" {
			t.Errorf("%+v, %v", bs, err)
		}
	})
}

// --verify reads every file as it streams: decrypted and checked with an
// identity, its header only without; a cut stream, a file that differs
// from the node's and a damaged one fail, and the listing says so.
func TestListBackupsVerify(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	file, _ := snapshottest.Sealed(t, id.Recipient())
	damaged := slices.Clone(file)
	damaged[len(damaged)-50] ^= 0xff
	at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		file     []byte
		ids      []age.Identity
		cut      int
		lie      bool
		verified string // content, header, or a piece of the error
	}{
		{"with the identity", file, []age.Identity{id}, 0, false, "content"},
		{"without", file, nil, 0, false, "header"},
		{"a damaged file, with the identity", damaged, []age.Identity{id}, 0, false, "file may be corrupted"},
		{"a cut stream", file, nil, len(file) / 2, false, "the transfer was cut"},
		{"not the node's file", file, []age.Identity{id}, 0, true, "it changed, or was damaged on the way"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNodes(t, "cp1")
			n.Cut, n.Lie = tc.cut, tc.lie
			n.Write(t, "cp1", backupDir, FileName("nightly", at), tc.file)
			c := ListConfig{Browse: Browse{Dest: Dest{Kind: DestNode, Path: backupDir}, Namespace: "kube-system", Identities: tc.ids}, Verify: true}
			bs, err := ListBackups(context.Background(), deps(n), c)
			if len(bs) != 1 || bs[0].Verified == nil {
				t.Fatalf("%+v, %v", bs, err)
			}
			v := bs[0].Verified
			switch tc.verified {
			case "content", "header":
				if err != nil || v.Error != "" || v.Content != (tc.verified == "content") || v.SHA256 == "" {
					t.Errorf("%+v, %v", v, err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), "1 of 1 backups failed verification") || !strings.Contains(v.Error, tc.verified) {
					t.Errorf("%+v, %v; want %q", v, err, tc.verified)
				}
			}
			if l := n.Leftovers(t); l != 0 {
				t.Errorf("%d node pods left", l)
			}
		})
	}
}

// get copies one file as backup writes one: 0600, verified before it is
// named, never over a file; it looks on the nodes in turn (the first two
// have the dir, not the file); it refuses
// names that reach outside the dir, and keeps nothing of a bad copy.
func TestGetBackupNodeDir(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	file, _ := snapshottest.Sealed(t, id.Recipient())
	at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	name := FileName("nightly", at)
	for _, tc := range []struct {
		name    string
		get     string
		exists  bool // FILE is there already
		cut     int
		ids     []age.Identity
		err     string
		content bool
	}{
		{name: "from the node that has it", get: name, ids: []age.Identity{id}, content: true},
		{name: "without the identity", get: name},
		{name: "not there", get: FileName("nightly", at.Add(time.Hour)), err: "no file nightly-20261207T030000Z.db.zst.age in node:/var/lib/etcd-backups on node cp1, cp2, cp3"},
		{name: "over a file", get: name, exists: true, err: "already exists"},
		{name: "a cut stream", get: name, cut: len(file) / 2, err: "the transfer was cut"},
		{name: "out of the dir", get: "../etcd/member/snap/db", err: `object name "../etcd/member/snap/db"`},
		{name: "a sub dir", get: "sub/" + name, err: "without '/'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNodes(t, "cp1", "cp2", "cp3")
			n.Cut = tc.cut
			n.Write(t, "cp3", backupDir, name, file)
			n.Write(t, "cp1", backupDir, "other.db", file)
			n.Write(t, "cp2", backupDir, "other.db", file)
			out := filepath.Join(t.TempDir(), "etcd.db.zst.age")
			if tc.exists {
				os.WriteFile(out, []byte("mine"), 0o600)
			}
			c := GetConfig{Browse: Browse{Dest: Dest{Kind: DestNode, Path: backupDir}, Namespace: "kube-system", Identities: tc.ids}, Name: tc.get, File: out}
			got, err := GetBackup(context.Background(), deps(n), c)
			if l := n.Leftovers(t); l != 0 {
				t.Errorf("%d node pods left", l)
			}
			var before []byte
			if tc.exists {
				before = []byte("mine")
			}
			if !checkKept(t, out, err, tc.err, before, file) {
				return
			}
			if got.Node != "cp3" || got.Size != int64(len(file)) || got.Verified.Content != tc.content || got.File != out {
				t.Errorf("got %+v", got)
			}
		})
	}
}

// checkKept checks what GetBackup left at out, after err: no FILE.part
// either way; with wantErr that error, and FILE as it was before (nil:
// none); else want in FILE, 0600. It says whether the copy was kept.
func checkKept(t *testing.T, out string, err error, wantErr string, before, want []byte) bool {
	t.Helper()
	if _, perr := os.Stat(out + ".part"); perr == nil {
		t.Errorf("%s.part left", out)
	}
	b, _ := os.ReadFile(out)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("err = %v, want %q", err, wantErr)
		}
		if !bytes.Equal(b, before) {
			t.Errorf("FILE is %q, was %q", b, before)
		}
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); !bytes.Equal(b, want) || st.Mode().Perm() != 0o600 {
		t.Errorf("kept %d bytes, mode %v; want the file's %d, 0600", len(b), st.Mode(), len(want))
	}
	return true
}

// The nodes are the control-plane ones unless named; a denied node list
// says so and how to go without it; a PVC is refused with the way round.
func TestBrowsePlaces(t *testing.T) {
	n := newNodes(t, "cp2", "cp1")
	c := Browse{Dest: Dest{Kind: DestNode, Path: backupDir}}
	ps, err := c.places(context.Background(), deps(n))
	if err != nil || len(ps) != 2 || ps[0].Node != "cp1" || ps[1].Node != "cp2" {
		t.Errorf("places %+v, %v", ps, err)
	}
	n.Client.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "", errors.New("no"))
	})
	if _, err := c.places(context.Background(), deps(n)); err == nil || !strings.Contains(err.Error(), "cannot list nodes across the cluster") || !strings.Contains(err.Error(), "--node") {
		t.Errorf("nodes denied: %v", err)
	}
	c.Dest = Dest{Kind: DestPVC, Claim: "etcd-backups"}
	if _, err := c.places(context.Background(), deps(n)); err == nil || !strings.Contains(err.Error(), "kubectl cp") {
		t.Errorf("pvc: %v", err)
	}
	c.Dest = Dest{Kind: DestS3, Bucket: "b"}
	c.Getenv = func(string) string { return "" }
	if _, err := c.places(context.Background(), deps(n)); err == nil || !strings.Contains(err.Error(), "the environment (or give --s3-secret NAME) must hold AWS_ACCESS_KEY_ID") {
		t.Errorf("s3 without keys: %v", err)
	}
}

func TestParseFileName(t *testing.T) {
	at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	for name, want := range map[string]string{
		FileName("nightly", at):               "nightly " + at.Format(time.RFC3339),
		FileName("every-6h", at):              "every-6h " + at.Format(time.RFC3339),
		"nightly-20261207T020000Z.db.zst":     "",
		"-20261207T020000Z.db.zst.age":        "",
		"Nightly-20261207T020000Z.db.zst.age": "",
		"nightly-2026120T020000Z.db.zst.age":  "",
		"nightly20261207T020000Z.db.zst.age":  "",
		"manual.db":                           "",
	} {
		s, t2, ok := ParseFileName(name)
		got := ""
		if ok {
			got = s + " " + t2.Format(time.RFC3339)
		}
		if got != want {
			t.Errorf("ParseFileName(%q) = %q, want %q", name, got, want)
		}
	}
}
