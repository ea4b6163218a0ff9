package etcd

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
)

// maxHTTPBody bounds what one HTTP answer of a member may hold: etcd's
// /metrics is a few hundred KiB.
const maxHTTPBody = 16 << 20

// HTTPResponse is a member's answer to a GET.
type HTTPResponse struct {
	Code int
	Body []byte
}

// MetricsEndpoint is where a member serves /metrics, /health and
// /readyz to a port-forward: the first --listen-metrics-urls a
// port-forward can reach (loopback or wildcard, where kubeadm puts
// http://127.0.0.1:2381), else the client URL, with the client TLS
// material when the URL is https.
func MetricsEndpoint(m discovery.Member) (port int, https bool) {
	for _, raw := range m.ListenMetricsURLs {
		u, err := url.Parse(raw)
		if err != nil || !forwardable(u.Hostname()) {
			continue
		}
		if p, err := strconv.Atoi(u.Port()); err == nil {
			return p, u.Scheme == "https"
		}
	}
	return m.ClientPort(), m.TLS()
}

// forwardable reports whether a listener on host answers a port-forward,
// which connects to the loopback of the pod's network namespace.
func forwardable(host string) bool {
	switch host {
	case "", "0.0.0.0", "::", "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// Get fetches path (/metrics, /readyz?verbose) from the member's
// metrics endpoint through a port-forward. Any status is an answer: the
// caller judges it.
func (d *ForwardTransport) Get(ctx context.Context, m discovery.Member, path string) (*HTTPResponse, error) {
	if err := CheckRunning(m); err != nil {
		return nil, err
	}
	port, https := MetricsEndpoint(m)
	var tlsCfg *tls.Config
	if https {
		mat, err := d.TLS.Material(ctx, m)
		if err != nil {
			return nil, err
		}
		if tlsCfg, err = mat.ClientConfig(m.ServerNames()); err != nil {
			return nil, err
		}
	}
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	fctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	ref := exec.PodRef{Namespace: m.Namespace, Name: m.Pod, Container: m.Container}
	dial, stop, err := d.Forwarder.Forward(fctx, ref, port)
	if err != nil {
		return nil, fmt.Errorf("port-forward to member %s port %d (%s): %w", m.Name, port, ref, err)
	}
	defer stop()
	return get(fctx, dial, tlsCfg, m, port, path)
}

func get(ctx context.Context, dial exec.DialFunc, tlsCfg *tls.Config, m discovery.Member, port int, path string) (*HTTPResponse, error) {
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	tr := &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		TLSClientConfig:   tlsCfg,
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	target := scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, WithHint(m, fmt.Errorf("GET %s on member %s: %w", path, m.Name, explainRPC(err)))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s of member %s: %w", path, m.Name, err)
	}
	if len(body) > maxHTTPBody {
		return nil, fmt.Errorf("%s of member %s is larger than %d bytes", path, m.Name, maxHTTPBody)
	}
	return &HTTPResponse{Code: resp.StatusCode, Body: body}, nil
}
