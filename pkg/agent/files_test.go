package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMoveAside(t *testing.T) {
	d := t.TempDir()
	src, dst := filepath.Join(d, "a"), filepath.Join(d, "j/x/a")
	mustWrite(t, src, "1")
	if err := MoveAside(src, dst); err != nil {
		t.Fatal(err)
	}
	if err := MoveAside(src, dst); err != nil {
		t.Errorf("second move: %v, want done", err)
	}
	mustWrite(t, src, "2")
	if err := MoveAside(src, dst); err == nil || !strings.Contains(err.Error(), "nothing is overwritten") {
		t.Errorf("move onto an existing file: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "1" {
		t.Errorf("destination was overwritten: %q", b)
	}
	if err := MoveAside(filepath.Join(d, "none"), filepath.Join(d, "none2")); err == nil {
		t.Error("moving nothing succeeded")
	}
}

func TestWriteFileAtomicLeavesNoTemp(t *testing.T) {
	d := t.TempDir()
	p := filepath.Join(d, "etcd.yaml")
	for _, body := range []string{"a", "b"} {
		if err := WriteFileAtomic(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(d)
	if len(ents) != 1 {
		t.Errorf("dir holds %d entries, want only etcd.yaml", len(ents))
	}
	if b, _ := os.ReadFile(p); string(b) != "b" {
		t.Errorf("content %q", b)
	}
}

type fakeDialer struct{ err error }

func (f fakeDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	if f.err != nil {
		return nil, f.err
	}
	c, s := net.Pipe()
	s.Close()
	return c, nil
}

func TestPortProbes(t *testing.T) {
	refused := &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	ctx := context.Background()
	if err := PortClosed(fakeDialer{err: refused}, "127.0.0.1:6443")(ctx); err != nil {
		t.Errorf("refused: %v, want closed", err)
	}
	if err := PortClosed(fakeDialer{}, "127.0.0.1:6443")(ctx); err == nil {
		t.Error("open port counted as closed")
	}
	if err := PortClosed(fakeDialer{err: errors.New("i/o timeout")}, "127.0.0.1:6443")(ctx); err == nil {
		t.Error("a timeout counted as closed")
	}
	if err := PortOpen(fakeDialer{}, "127.0.0.1:2379")(ctx); err != nil {
		t.Errorf("open: %v", err)
	}
}

func TestEtcdHealthy(t *testing.T) {
	for _, tt := range []struct {
		body string
		code int
		ok   bool
	}{
		{`{"health":"true","reason":""}`, 200, true},
		{`{"health":"false","reason":"RAFT NO LEADER"}`, 503, false},
		{`garbage`, 200, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/health" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(tt.code)
			w.Write([]byte(tt.body))
		}))
		err := EtcdHealthy(srv.Client(), srv.URL+"/")(context.Background())
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.body, err, tt.ok)
		}
		srv.Close()
	}
}

// waitForTimeout runs out in the WaitFor tests, which wait it out: long
// enough that a loaded machine still probes more than once before it
// does (a goroutine may not run for tens of milliseconds there).
const waitForTimeout = 500 * time.Millisecond

func TestWaitForKeepsTheLastReason(t *testing.T) {
	n := 0
	err := WaitFor(context.Background(), "etcd", func(context.Context) error { n++; return errors.New("no leader") }, waitForTimeout, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no leader") || n < 2 {
		t.Errorf("err = %v after %d tries", err, n)
	}
}

func TestWaitForIgnoresTheDeadlinesOwnError(t *testing.T) {
	err := WaitFor(context.Background(), "etcd", func(ctx context.Context) error {
		<-time.After(5 * time.Millisecond)
		if dl, _ := ctx.Deadline(); time.Now().After(dl) {
			return errors.New("i/o timeout")
		}
		return errors.New("still accepts connections")
	}, waitForTimeout, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "still accepts") {
		t.Errorf("err = %v, want the reason from before the deadline", err)
	}
}

// syncLog is a fileOps whose fsync records each path it syncs, with
// whether watch existed then, and fails on the paths in fail.
type syncLog struct {
	watch  string
	fail   map[string]bool
	synced []string
}

func (l *syncLog) ops(rename func(string, string) error) fileOps {
	if rename == nil {
		rename = os.Rename
	}
	return fileOps{rename: rename, fsync: func(p string) error {
		entry := p
		if _, err := os.Lstat(l.watch); err != nil {
			entry += " (src gone)"
		}
		l.synced = append(l.synced, entry)
		if l.fail[p] {
			return &os.PathError{Op: "sync", Path: p, Err: syscall.EIO}
		}
		return nil
	}}
}

// exdev makes the rename of from fail as across filesystems.
func exdev(from string) func(string, string) error {
	return func(o, n string) error {
		if o == from {
			return &os.LinkError{Op: "rename", Old: o, New: n, Err: syscall.EXDEV}
		}
		return os.Rename(o, n)
	}
}

func TestMoveAsideSyncs(t *testing.T) {
	for _, tt := range []struct {
		name   string
		dst    string // under the temp dir; static/ and journal/ exist
		exdev  bool
		synced []string
	}{
		{name: "rename", dst: "journal/a", synced: []string{"static (src gone)", "journal (src gone)"}},
		// D4.2: the parent of each new dir is synced before the move.
		{name: "rename into new dirs", dst: "journal/m/n/a", synced: []string{"journal/m", "journal", "static (src gone)", "journal/m/n (src gone)"}},
		// D4.1: the source's dir is synced after the unlink.
		{name: "copy across filesystems", dst: "journal/a", exdev: true, synced: []string{"journal", "static (src gone)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			src, dst := filepath.Join(d, "static/a"), filepath.Join(d, tt.dst)
			mustWrite(t, src, "manifest")
			mustWrite(t, filepath.Join(d, "journal/keep"), "")
			l := &syncLog{watch: src}
			var rename func(string, string) error
			if tt.exdev {
				rename = exdev(src)
			}
			if err := l.ops(rename).moveAside(src, dst); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range l.synced {
				rel, _ := filepath.Rel(d, p)
				got = append(got, rel)
			}
			if diff := cmp.Diff(tt.synced, got); diff != "" {
				t.Errorf("synced (-want +got):\n%s", diff)
			}
			if b, _ := os.ReadFile(dst); string(b) != "manifest" {
				t.Errorf("destination holds %q", b)
			}
		})
	}
}

// A failed fsync after the move took effect is ErrNotDurable; before it,
// the move changed nothing (D4.3).
func TestMoveAsideFsyncFailures(t *testing.T) {
	for _, tt := range []struct {
		name, dst, fail string
		exdev, moved    bool
		wantNotDurable  bool
	}{
		{name: "rename, then the source dir", dst: "journal/a", fail: "static", moved: true, wantNotDurable: true},
		{name: "rename, then the destination dir", dst: "journal/a", fail: "journal", moved: true, wantNotDurable: true},
		{name: "a new dir's parent", dst: "journal/new/a", fail: "journal"},
		{name: "copy, the destination dir before the unlink", dst: "journal/a", fail: "journal", exdev: true},
		{name: "copy, the source dir after the unlink", dst: "journal/a", fail: "static", exdev: true, moved: true, wantNotDurable: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			src, dst := filepath.Join(d, "static/a"), filepath.Join(d, tt.dst)
			mustWrite(t, src, "manifest")
			mustWrite(t, filepath.Join(d, "journal/keep"), "")
			l := &syncLog{watch: src, fail: map[string]bool{filepath.Join(d, tt.fail): true}}
			var rename func(string, string) error
			if tt.exdev {
				rename = exdev(src)
			}
			err := l.ops(rename).moveAside(src, dst)
			if err == nil || errors.Is(err, ErrNotDurable) != tt.wantNotDurable {
				t.Fatalf("err = %v, want ErrNotDurable %v", err, tt.wantNotDurable)
			}
			_, serr := os.Lstat(src)
			_, derr := os.Lstat(dst)
			if moved := serr != nil && derr == nil; moved != tt.moved {
				t.Errorf("moved = %v (src %v, dst %v), want %v", moved, serr, derr, tt.moved)
			}
			if tt.moved {
				// Run again, as a resumed step: done, once the sync works.
				if err := (&syncLog{watch: src}).ops(nil).moveAside(src, dst); err != nil {
					t.Errorf("re-run: %v", err)
				}
			}
			if part, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*.part")); len(part) > 0 {
				t.Errorf("partial copies left: %v", part)
			}
		})
	}
}

func TestWriteFileNew(t *testing.T) {
	for _, tt := range []struct {
		name, there    string // "" for no file
		failSync       bool
		want           string
		wantErr        string
		wantNotDurable bool
	}{
		{name: "absent", want: "new"},
		{name: "written already, by a run cut off", there: "new", want: "new"},
		// D4.5: a file that reappeared is refused, not overwritten.
		{name: "reappeared", there: "config management", want: "config management", wantErr: "never overwritten"},
		{name: "dir fsync fails", failSync: true, want: "new", wantErr: "crash may undo it", wantNotDurable: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			p := filepath.Join(d, "etcd.yaml")
			if tt.there != "" {
				mustWrite(t, p, tt.there)
			}
			l := &syncLog{watch: p}
			if tt.failSync {
				l.fail = map[string]bool{d: true}
			}
			err := l.ops(nil).writeFile(p, []byte("new"), 0o600, false)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrNotDurable) != tt.wantNotDurable {
				t.Errorf("err = %v, want ErrNotDurable %v", err, tt.wantNotDurable)
			}
			if b, _ := os.ReadFile(p); string(b) != tt.want {
				t.Errorf("content %q, want %q", b, tt.want)
			}
			if ents, _ := os.ReadDir(d); len(ents) != 1 {
				t.Errorf("dir holds %d entries, want only etcd.yaml", len(ents))
			}
		})
	}
}
