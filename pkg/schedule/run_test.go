package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/snapshottest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// A run keeps a verified, compressed, encrypted snapshot 0600 under the
// schedule's name, then removes only its own files beyond the rule; a
// snapshot that fails its check leaves no file and removes nothing.
func TestRunOnce(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "snap.db")
	snapshottest.Write(t, plain, snapshottest.Snapshot{Ops: []snapshottest.Op{snapshottest.Put("/registry/configmaps/default/a", 100)}})
	snap, _ := os.ReadFile(plain)
	var z bytes.Buffer
	zw, _ := zstd.NewWriter(&z)
	zw.Write(snap)
	zw.Close()
	id, _ := age.GenerateX25519Identity()

	dir := t.TempDir()
	c := Config{Name: "nightly", Keep: Rule{Count: 2}}
	clock := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	for i := 1; i <= 3; i++ {
		os.WriteFile(filepath.Join(dir, FileName("nightly", clock.Add(-time.Duration(i)*24*time.Hour))), []byte("old"), 0o600)
	}
	os.WriteFile(filepath.Join(dir, "keep-me.db"), []byte("mine"), 0o600)
	var log []string
	deps := RunDeps{
		Snapshot: func(_ context.Context, w io.Writer) error { _, err := w.Write(z.Bytes()); return err },
		Encrypt:  snapshot.Encrypter([]age.Recipient{id.Recipient()}),
		Dest:     Dir(dir),
		Now:      func() time.Time { return clock },
		Log:      func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) },
	}
	out, err := RunOnce(context.Background(), c, deps)
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(log, "\n"))
	}
	file := filepath.Join(dir, out.File)
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 || out.Size != int64(len(snap)) || len(out.Removed) != 2 {
		t.Fatalf("outcome %+v, file %v %v", out, st, err)
	}
	v, err := snapshot.Verify(file, []age.Identity{id})
	if err != nil || !v.Compressed || v.Size != int64(len(snap)) {
		t.Errorf("the kept file: %+v, %v", v, err)
	}
	left, _ := Dir(dir).List(context.Background())
	var names []string
	for _, o := range left {
		names = append(names, o.Name)
	}
	if want := "keep-me.db " + FileName("nightly", clock.Add(-24*time.Hour)) + " " + out.File; strings.Join(names, " ") != want {
		t.Errorf("left %v, want %s", names, want)
	}

	// A corrupt snapshot: nothing kept, nothing removed.
	clock = clock.Add(time.Hour)
	flipped := append([]byte{}, snap...)
	flipped[200] ^= 1
	var bad bytes.Buffer
	zw, _ = zstd.NewWriter(&bad)
	zw.Write(flipped)
	zw.Close()
	deps.Snapshot = func(_ context.Context, w io.Writer) error { _, err := w.Write(bad.Bytes()); return err }
	out, err = RunOnce(context.Background(), c, deps)
	if err == nil || !strings.Contains(out.Error, "sha256") {
		t.Errorf("a corrupt snapshot: %+v, %v", out, err)
	}
	after, _ := Dir(dir).List(context.Background())
	if len(after) != len(left) {
		t.Errorf("a failed run changed the dir: %v", after)
	}
	// A snapshot that cannot be taken: said as it is.
	deps.Snapshot = func(context.Context, io.Writer) error {
		return errors.New("etcd at https://127.0.0.1:2379 does not answer")
	}
	if out, err = RunOnce(context.Background(), c, deps); err == nil || !strings.Contains(out.Error, "does not answer") {
		t.Errorf("no snapshot: %+v, %v", out, err)
	}
}
