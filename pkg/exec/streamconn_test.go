package exec

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/streaming/pkg/httpstream"
)

// stuckStream is a stream over a tunnel that has stalled: reads and
// writes block until the stream is reset, and with stuckReset even the
// reset blocks, as writing its frame does when the session is stuck.
type stuckStream struct {
	once       sync.Once
	reset      chan struct{}
	stuckReset bool
	writes     chan []byte // writes that got through, when not nil
}

func newStuckStream() *stuckStream { return &stuckStream{reset: make(chan struct{})} }

func (s *stuckStream) Read([]byte) (int, error) { <-s.reset; return 0, io.EOF }
func (s *stuckStream) Write(p []byte) (int, error) {
	if s.writes != nil {
		s.writes <- append([]byte(nil), p...)
		return len(p), nil
	}
	<-s.reset
	return 0, errors.New("stream reset")
}
func (s *stuckStream) Close() error { return nil }
func (s *stuckStream) unblock()     { s.once.Do(func() { close(s.reset) }) }
func (s *stuckStream) Reset() error {
	s.unblock()
	if s.stuckReset {
		select {}
	}
	return nil
}
func (s *stuckStream) Headers() http.Header { return http.Header{} }
func (s *stuckStream) Identifier() uint32   { return 1 }

type nopConnection struct{}

func (nopConnection) CreateStream(http.Header) (httpstream.Stream, error) {
	return nil, errors.New("no")
}
func (nopConnection) Close() error                       { return nil }
func (nopConnection) CloseChan() <-chan bool             { return nil }
func (nopConnection) SetIdleTimeout(time.Duration)       {}
func (nopConnection) RemoveStreams(...httpstream.Stream) {}

func stuckConn(t *testing.T, data *stuckStream) *streamConn {
	t.Helper()
	c := newStreamConn(&session{conn: nopConnection{}, pod: PodRef{Namespace: "kube-system", Name: "etcd-a"}, port: 2379})
	c.errStream, c.data = newStuckStream(), data
	close(c.errDone)
	go c.pump()
	t.Cleanup(func() { c.Close(); data.unblock() })
	return c
}

// within runs f and fails the test if it takes longer than d.
func within(t *testing.T, d time.Duration, what string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s still blocked after %s", what, d)
	}
	return time.Since(start)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

func TestStreamConnDeadlines(t *testing.T) {
	// bound fails a call that blocks when it must return: far longer than
	// any deadline here, for a loaded machine. How early a call returns is
	// measured from before its deadline was set: the deadline is relative
	// to that, and a loaded machine may pause between the two.
	const bound = 10 * time.Second
	t.Run("read times out", func(t *testing.T) {
		c := stuckConn(t, newStuckStream())
		set := time.Now()
		c.SetReadDeadline(set.Add(100 * time.Millisecond))
		var err error
		within(t, bound, "Read", func() { _, err = c.Read(make([]byte, 8)) })
		if took := time.Since(set); !isTimeout(err) || took < 90*time.Millisecond {
			t.Errorf("Read = %v after %s, want a timeout after 100ms", err, took)
		}
		// Another deadline re-arms it.
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		within(t, bound, "second Read", func() { _, err = c.Read(make([]byte, 8)) })
		if !isTimeout(err) {
			t.Errorf("second Read = %v, want a timeout", err)
		}
	})
	t.Run("a pending read sees a new deadline", func(t *testing.T) {
		c := stuckConn(t, newStuckStream())
		c.SetReadDeadline(time.Now().Add(time.Hour))
		errc := make(chan error, 1)
		go func() { _, err := c.Read(make([]byte, 8)); errc <- err }()
		time.Sleep(50 * time.Millisecond)
		c.SetDeadline(time.Now().Add(50 * time.Millisecond))
		var err error
		within(t, bound, "Read", func() { err = <-errc })
		if !isTimeout(err) {
			t.Errorf("Read = %v, want a timeout", err)
		}
	})
	t.Run("a later deadline postpones a pending one", func(t *testing.T) {
		c := stuckConn(t, newStuckStream())
		set := time.Now()
		c.SetReadDeadline(set.Add(50 * time.Millisecond))
		c.SetReadDeadline(set.Add(300 * time.Millisecond))
		var err error
		within(t, bound, "Read", func() { _, err = c.Read(make([]byte, 8)) })
		if took := time.Since(set); !isTimeout(err) || took < 250*time.Millisecond {
			t.Errorf("Read = %v after %s, want a timeout after 300ms", err, took)
		}
	})
	t.Run("no deadline clears one", func(t *testing.T) {
		c := stuckConn(t, newStuckStream())
		c.SetReadDeadline(time.Now().Add(-time.Second))
		c.SetReadDeadline(time.Time{})
		errc := make(chan error, 1)
		go func() { _, err := c.Read(make([]byte, 8)); errc <- err }()
		select {
		case err := <-errc:
			t.Fatalf("Read without a deadline returned %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		c.Close()
		within(t, bound, "Read after Close", func() {
			if err := <-errc; !errors.Is(err, net.ErrClosed) {
				t.Errorf("Read after Close = %v", err)
			}
		})
	})
	t.Run("write times out and stays failed", func(t *testing.T) {
		c := stuckConn(t, newStuckStream())
		set := time.Now()
		c.SetWriteDeadline(set.Add(100 * time.Millisecond))
		var err error
		within(t, bound, "Write", func() { _, err = c.Write([]byte("hello")) })
		if took := time.Since(set); !isTimeout(err) || took < 90*time.Millisecond {
			t.Errorf("Write = %v after %s, want a timeout after 100ms", err, took)
		}
		c.SetWriteDeadline(time.Time{})
		within(t, bound, "Write after a timeout", func() { _, err = c.Write([]byte("again")) })
		if !isTimeout(err) {
			t.Errorf("Write after a timed-out one = %v, want the same timeout", err)
		}
	})
	t.Run("write copies the caller's buffer", func(t *testing.T) {
		s := newStuckStream()
		s.writes = make(chan []byte, 1)
		c := stuckConn(t, s)
		p := []byte("hello")
		if n, err := c.Write(p); n != 5 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		copy(p, "XXXXX")
		if got := string(<-s.writes); got != "hello" {
			t.Errorf("stream got %q", got)
		}
	})
	t.Run("close never blocks", func(t *testing.T) {
		s := newStuckStream()
		s.stuckReset = true
		c := stuckConn(t, s)
		errc := make(chan error, 2)
		go func() { _, err := c.Read(make([]byte, 8)); errc <- err }()
		go func() { _, err := c.Write([]byte("x")); errc <- err }()
		time.Sleep(50 * time.Millisecond)
		// A Close that waited on the stuck stream would block for good.
		within(t, bound, "Close", func() { c.Close() })
		for range 2 {
			within(t, bound, "I/O after Close", func() {
				if err := <-errc; !errors.Is(err, net.ErrClosed) {
					t.Errorf("I/O after Close = %v", err)
				}
			})
		}
	})
}

// silentServer accepts connections and never sends.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l.Addr().String()
}

// Through a real SPDY session: a kubelet that connects the port and
// then never sends no longer hangs a reader, and after a timeout the
// connection still works.
func TestForwardedReadDeadline(t *testing.T) {
	k := &fakeKubelet{t: t, ports: map[string]string{"2379": silentServer(t), "2380": echoServer(t, "etcd:")}, closed: make(chan string, 10)}
	f := forwarderTo(t, k)
	ctx := context.Background()
	pod := PodRef{Namespace: "kube-system", Name: "etcd-a"}

	dial, stop, err := f.Forward(ctx, pod, 2379)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	// The bounds are for a loaded machine: a stalled read, or a Close that
	// waited on the kubelet, would block for good.
	took := within(t, 10*time.Second, "Read from a silent port", func() { _, err = c.Read(make([]byte, 8)) })
	if !isTimeout(err) || !strings.Contains(err.Error(), "kube-system/etcd-a:2379") {
		t.Errorf("Read = %v, want a timeout naming the pod", err)
	}
	t.Logf("a stalled read failed after %s (deadline 200ms)", took.Round(time.Millisecond))
	within(t, 10*time.Second, "Close", func() { c.Close() })

	dial, stop2, err := f.Forward(ctx, pod, 2380)
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	if c, err = dial(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(make([]byte, 8)); !isTimeout(err) {
		t.Fatalf("Read before anything was sent = %v, want a timeout", err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := io.ReadAtLeast(c, buf, len("etcd:ping")); err != nil || string(buf[:n]) != "etcd:ping" {
		t.Errorf("after a timeout the connection read %q, %v", buf[:n], err)
	}
}
