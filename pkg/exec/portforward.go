package exec

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// maxErrorMessage bounds what is read of the kubelet's error stream.
const maxErrorMessage = 64 << 10

// DialFunc opens a new connection to the forwarded port.
type DialFunc func(ctx context.Context) (net.Conn, error)

// Forwarder opens port-forward sessions to a port of a pod.
type Forwarder interface {
	// Forward opens a session. dial opens connections to the port through
	// it; stop ends the session and every connection, and must be called.
	Forward(ctx context.Context, pod PodRef, port int) (dial DialFunc, stop func(), err error)
}

// RemoteForwarder forwards through the API server. Unlike kubectl
// port-forward it opens no local listening port: each connection is a
// pair of streams of the session, handed to the caller as a net.Conn.
// That keeps the forwarded etcd port away from other local users and
// saves a loopback copy of every byte, a sixth of a backup's CPU.
type RemoteForwarder struct {
	Config *rest.Config
	Client rest.Interface // CoreV1().RESTClient()
}

// Forward implements Forwarder.
func (r *RemoteForwarder) Forward(ctx context.Context, pod PodRef, port int) (DialFunc, func(), error) {
	u := r.Client.Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(r.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("building the port-forward transport: %w", err)
	}
	// The ForStreaming constructors are kubectl's: they hand out
	// k8s.io/streaming types, not apimachinery's deprecated ones.
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, "POST", u)
	if websocketsEnabled("KUBECTL_PORT_FORWARD_WEBSOCKETS") {
		ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, r.Config)
		if err != nil {
			return nil, nil, fmt.Errorf("building the WebSocket port-forward dialer: %w", err)
		}
		dialer = portforward.NewFallbackDialerForStreaming(ws, dialer, shouldFallback)
	}
	conn, err := withContext(ctx, func() (httpstream.Connection, error) {
		conn, proto, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
		if err == nil && proto != portforward.PortForwardProtocolV1Name {
			conn.Close()
			err = fmt.Errorf("the API server offered port-forward protocol %q, not %q", proto, portforward.PortForwardProtocolV1Name)
		}
		return conn, err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, err
		}
		return nil, nil, classify(err, pod, "create", "pods/portforward")
	}
	s := &session{conn: conn, pod: pod, port: port}
	return s.dial, sync.OnceFunc(func() { conn.Close() }), nil
}

// withContext runs open, which cannot be cancelled, apart and waits for
// it or for ctx. What open returns after ctx has ended is closed.
func withContext[C io.Closer](ctx context.Context, open func() (C, error)) (C, error) {
	type result struct {
		c   C
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := open()
		done <- result{c, err}
	}()
	select {
	case res := <-done:
		return res.c, res.err
	case <-ctx.Done():
		go func() {
			if res := <-done; res.err == nil {
				res.c.Close()
			}
		}()
		var zero C
		return zero, ctx.Err()
	}
}

// session is one port-forward connection to the API server.
type session struct {
	conn   httpstream.Connection
	pod    PodRef
	port   int
	nextID atomic.Int64
}

// dial opens the error and data streams of one forwarded connection, as
// the port-forward protocol (v1) pairs them by request ID. Creating a
// stream waits for the kubelet's reply, so it runs apart and ctx bounds
// the wait.
func (s *session) dial(ctx context.Context) (net.Conn, error) {
	return withContext(ctx, func() (net.Conn, error) {
		c, err := s.open()
		if err != nil {
			return nil, err // not a nil *streamConn in a non-nil net.Conn
		}
		return c, nil
	})
}

func (s *session) open() (*streamConn, error) {
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(s.port))
	h.Set(corev1.PortForwardRequestIDHeader, strconv.FormatInt(s.nextID.Add(1), 10))
	errStream, err := s.conn.CreateStream(h)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s: creating the error stream: %w", s.pod, err)
	}
	// Nothing is ever written to the error stream; the kubelet writes a
	// message there when it cannot reach the port.
	errStream.Close()
	c := newStreamConn(s)
	c.errStream = errStream
	go func() {
		defer close(c.errDone)
		// The kubelet's message is a line; a bound keeps a confused
		// peer from filling memory.
		msg, err := io.ReadAll(io.LimitReader(errStream, maxErrorMessage))
		switch {
		case len(msg) > 0:
			c.remoteErr = fmt.Errorf("port-forward to %s port %d: %s", s.pod, s.port, msg)
		case err != nil:
			c.remoteErr = fmt.Errorf("port-forward to %s port %d: reading the error stream: %w", s.pod, s.port, err)
		}
	}()
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	if c.data, err = s.conn.CreateStream(h); err != nil {
		errStream.Reset()
		s.conn.RemoveStreams(errStream)
		return nil, fmt.Errorf("port-forward to %s: creating the data stream: %w", s.pod, err)
	}
	go c.pump()
	return c, nil
}
