package exec

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Forwarder forwards a local loopback port to a port of a pod.
type Forwarder interface {
	// Forward returns the local address ("127.0.0.1:NNNNN") and a stop
	// function that must be called to release the forward.
	Forward(ctx context.Context, pod PodRef, port int) (addr string, stop func(), err error)
}

// RemoteForwarder forwards through the API server.
type RemoteForwarder struct {
	Config *rest.Config
	Client rest.Interface // CoreV1().RESTClient()
}

// Forward implements Forwarder.
func (r *RemoteForwarder) Forward(ctx context.Context, pod PodRef, port int) (string, func(), error) {
	u := r.Client.Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(r.Config)
	if err != nil {
		return "", nil, fmt.Errorf("building the port-forward transport: %w", err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	if websocketsEnabled("KUBECTL_PORT_FORWARD_WEBSOCKETS") {
		ws, err := portforward.NewSPDYOverWebsocketDialer(u, r.Config)
		if err != nil {
			return "", nil, fmt.Errorf("building the WebSocket port-forward dialer: %w", err)
		}
		dialer = portforward.NewFallbackDialer(ws, dialer, shouldFallback)
	}
	stopCh := make(chan struct{})
	readyCh := make(chan struct{})
	errOut := &lastLine{}
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stopCh, readyCh, io.Discard, errOut)
	if err != nil {
		return "", nil, err
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	stop := sync.OnceFunc(func() { close(stopCh) })
	select {
	case <-readyCh:
	case err := <-done:
		if err == nil {
			err = fmt.Errorf("port-forward ended before it was ready")
		}
		return "", nil, classify(err, pod, "create", "pods/portforward")
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		stop()
		return "", nil, fmt.Errorf("port-forward to %s gave no local port: %v", pod, err)
	}
	return "127.0.0.1:" + strconv.Itoa(int(ports[0].Local)), stop, nil
}

// lastLine keeps the last line the port-forwarder logged as an error, which
// otherwise would go to the user's terminal on every broken connection.
type lastLine struct{ s string }

func (l *lastLine) Write(p []byte) (int, error) {
	if t := strings.TrimSpace(string(p)); t != "" {
		l.s = t
	}
	return len(p), nil
}
