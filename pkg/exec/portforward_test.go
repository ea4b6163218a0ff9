package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// fakeKubelet speaks the server side of port-forward v1 over SPDY: it
// pairs each error stream with its data stream by request ID and
// connects the data stream to ports[port], or reports the port closed on
// the error stream, as the kubelet does.
type fakeKubelet struct {
	t        *testing.T
	ports    map[string]string // pod port -> local address
	hang     chan struct{}     // stream requests for port "9" wait for it
	sessions atomic.Int32
	closed   chan string // pod-side connections the client closed, by port
}

func (k *fakeKubelet) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	k.sessions.Add(1)
	if _, err := httpstream.Handshake(req, w, []string{portforward.PortForwardProtocolV1Name}); err != nil {
		return
	}
	var mu sync.Mutex
	errStreams := map[string]httpstream.Stream{}
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, req, func(s httpstream.Stream, replySent <-chan struct{}) error {
		id := s.Headers().Get(corev1.PortForwardRequestIDHeader)
		if s.Headers().Get(corev1.PortHeader) == "9" {
			<-k.hang
		}
		if s.Headers().Get(corev1.StreamType) == corev1.StreamTypeError {
			mu.Lock()
			errStreams[id] = s
			mu.Unlock()
			return nil
		}
		mu.Lock()
		es := errStreams[id]
		mu.Unlock()
		go func() {
			<-replySent
			port := s.Headers().Get(corev1.PortHeader)
			target, ok := k.ports[port]
			if !ok {
				fmt.Fprintf(es, "failed to connect to localhost:%s inside namespace: connection refused", port)
				es.Close()
				s.Close()
				return
			}
			c, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			go func() {
				// The client's Close resets the stream, which ends this copy.
				io.Copy(c, s)
				c.Close()
				k.closed <- port
			}()
			io.Copy(s, c)
			s.Close()
			es.Close()
		}()
		return nil
	})
	if conn != nil {
		<-conn.CloseChan()
	}
}

// echoServer answers every line with "<prefix><line>".
func echoServer(t *testing.T, prefix string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					fmt.Fprintf(c, "%s%s", prefix, buf[:n])
				}
			}()
		}
	}()
	return l.Addr().String()
}

// forwarderTo returns a forwarder whose API server is h, on SPDY.
func forwarderTo(t *testing.T, h http.Handler) *RemoteForwarder {
	t.Helper()
	t.Setenv("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := &rest.Config{Host: srv.URL}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &RemoteForwarder{Config: cfg, Client: cs.CoreV1().RESTClient()}
}

func TestForwardDialsConnectionsThroughOneSession(t *testing.T) {
	k := &fakeKubelet{t: t, ports: map[string]string{"2379": echoServer(t, "etcd:")}, closed: make(chan string, 10)}
	f := forwarderTo(t, k)
	pod := PodRef{Namespace: "kube-system", Name: "etcd-a"}
	ctx := context.Background()

	dial, stop, err := f.Forward(ctx, pod, 2379)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			msg := "hello " + strconv.Itoa(i)
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Error(err)
				return
			}
			buf := make([]byte, 64)
			n, err := io.ReadAtLeast(c, buf, len("etcd:"+msg))
			if err != nil || string(buf[:n]) != "etcd:"+msg {
				t.Errorf("connection %d read %q, %v", i, buf[:n], err)
			}
			if got := c.RemoteAddr().String(); got != "kube-system/etcd-a:2379" {
				t.Errorf("remote address %q", got)
			}
		}()
	}
	wg.Wait()
	if n := k.sessions.Load(); n != 1 {
		t.Errorf("%d port-forward sessions for 3 connections, want 1", n)
	}
	for range 3 {
		select {
		case <-k.closed:
		case <-time.After(30 * time.Second):
			t.Fatal("a closed connection stayed open on the pod side")
		}
	}

	// A port nothing listens on: the kubelet's reason reaches the reader.
	dial, stop2, err := f.Forward(ctx, pod, 2380)
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	c, err := dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Read(make([]byte, 8))
	if err == nil || !strings.Contains(err.Error(), "port-forward to kube-system/etcd-a port 2380: failed to connect") {
		t.Errorf("read from a closed port: %v", err)
	}
}

func TestDialGivesUpWithItsContext(t *testing.T) {
	k := &fakeKubelet{t: t, hang: make(chan struct{})}
	defer close(k.hang)
	f := forwarderTo(t, k)
	dial, stop, err := f.Forward(context.Background(), PodRef{Namespace: "kube-system", Name: "etcd-a"}, 9)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := dial(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("dial to a kubelet that does not answer: %v after %s", err, time.Since(start))
	}
}

func TestForwardExplainsADenial(t *testing.T) {
	f := forwarderTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `pods "etcd-a" is forbidden: User "x" cannot create resource "pods/portforward"`, http.StatusForbidden)
	}))
	_, _, err := f.Forward(context.Background(), PodRef{Namespace: "kube-system", Name: "etcd-a"}, 2379)
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "kubectl auth can-i create pods/portforward") {
		t.Errorf("err = %v", err)
	}
}

// An API server that refuses the WebSocket upgrade, as some proxies do:
// the forward falls back to SPDY.
func TestForwardFallsBackToSPDY(t *testing.T) {
	k := &fakeKubelet{t: t, ports: map[string]string{"2379": echoServer(t, "etcd:")}, closed: make(chan string, 10)}
	var wsTries atomic.Int32
	f := forwarderTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			wsTries.Add(1)
			http.Error(w, "websocket upgrades are not allowed here", http.StatusBadRequest)
			return
		}
		k.ServeHTTP(w, r)
	}))
	t.Setenv("KUBECTL_PORT_FORWARD_WEBSOCKETS", "true")
	dial, stop, err := f.Forward(context.Background(), PodRef{Namespace: "kube-system", Name: "etcd-a"}, 2379)
	if err != nil {
		t.Fatalf("Forward after a refused WebSocket upgrade: %v", err)
	}
	defer stop()
	c, err := dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := io.ReadAtLeast(c, buf, len("etcd:hi")); err != nil || string(buf[:n]) != "etcd:hi" {
		t.Errorf("read %q, %v", buf[:n], err)
	}
	if wsTries.Load() != 1 || k.sessions.Load() != 1 {
		t.Errorf("%d WebSocket tries and %d SPDY sessions, want 1 and 1", wsTries.Load(), k.sessions.Load())
	}
}
