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

func TestWaitForKeepsTheLastReason(t *testing.T) {
	n := 0
	err := WaitFor(context.Background(), "etcd", func(context.Context) error { n++; return errors.New("no leader") }, 20*time.Millisecond, time.Millisecond)
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
	}, 20*time.Millisecond, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "still accepts") {
		t.Errorf("err = %v, want the reason from before the deadline", err)
	}
}
