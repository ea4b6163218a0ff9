package etcd

import (
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

func TestMetricsEndpoint(t *testing.T) {
	tls := []string{"https://127.0.0.1:2379", "https://10.0.0.1:2379"}
	tests := []struct {
		name    string
		metrics []string
		port    int
		https   bool
	}{
		{"kubeadm's loopback metrics", []string{"http://127.0.0.1:2381"}, 2381, false},
		{"wildcard https metrics", []string{"https://0.0.0.0:2382"}, 2382, true},
		{"a node address a port-forward cannot reach, then loopback", []string{"http://10.0.0.1:2381", "http://localhost:2383"}, 2383, false},
		{"only a node address: the client port", []string{"http://10.0.0.1:2381"}, 2379, true},
		{"none: the client port with TLS", nil, 2379, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := discovery.Member{ListenClientURLs: tls, ListenMetricsURLs: tc.metrics}
			port, https := MetricsEndpoint(m)
			if port != tc.port || https != tc.https {
				t.Errorf("MetricsEndpoint = %d, %v; want %d, %v", port, https, tc.port, tc.https)
			}
		})
	}
}
