// Package discovery finds the etcd members of a kubeadm-style control plane
// through the Kubernetes API and reads their settings from the pod specs.
package discovery

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// DefaultQuotaBackendBytes is etcd's default backend quota (2 GiB), used when
// the pod spec does not set --quota-backend-bytes.
const DefaultQuotaBackendBytes int64 = 2 * 1024 * 1024 * 1024

// TLSFiles are the paths, on the node, of one side's TLS material.
type TLSFiles struct {
	CertFile       string `json:"certFile,omitempty"`
	KeyFile        string `json:"keyFile,omitempty"`
	TrustedCAFile  string `json:"trustedCAFile,omitempty"`
	ClientCertAuth bool   `json:"clientCertAuth"`
}

// Member is one etcd member as its static pod describes it.
type Member struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Node      string `json:"node"`
	Container string `json:"container"`
	// Running is true when the pod is Running and its etcd container is ready.
	Running bool `json:"running"`
	// PodPhase and NotRunningReason explain why a pod is not Running.
	PodPhase         corev1.PodPhase `json:"podPhase"`
	NotRunningReason string          `json:"notRunningReason,omitempty"`
	// NodeReady is nil when the node could not be read.
	NodeReady *bool `json:"nodeReady,omitempty"`

	Name                     string   `json:"name"`
	DataDir                  string   `json:"dataDir"`
	AdvertiseClientURLs      []string `json:"advertiseClientURLs,omitempty"`
	ListenClientURLs         []string `json:"listenClientURLs,omitempty"`
	InitialAdvertisePeerURLs []string `json:"initialAdvertisePeerURLs,omitempty"`
	ListenPeerURLs           []string `json:"listenPeerURLs,omitempty"`
	ListenMetricsURLs        []string `json:"listenMetricsURLs,omitempty"`
	InitialCluster           string   `json:"initialCluster,omitempty"`
	InitialClusterState      string   `json:"initialClusterState,omitempty"`
	Client                   TLSFiles `json:"client"`
	Peer                     TLSFiles `json:"peer"`
	QuotaBackendBytes        int64    `json:"quotaBackendBytes"`
	// AutoTLS and PeerAutoTLS are --auto-tls and --peer-auto-tls:
	// self-signed certificates that no client can verify.
	AutoTLS     bool   `json:"autoTLS,omitempty"`
	PeerAutoTLS bool   `json:"peerAutoTLS,omitempty"`
	Image       string `json:"image"`
	// Version is the etcd version read from the image tag ("3.5.35"), or "".
	Version string `json:"version,omitempty"`
	// Unsupported lists settings the plugin cannot honour, with a reason each.
	Unsupported []string `json:"unsupported,omitempty"`
}

// LocalClientURL is the client URL to use from inside the member's own
// network namespace: a loopback listener if there is one, else the first
// listen URL (a wildcard host becomes 127.0.0.1), else the advertised URL.
func (m *Member) LocalClientURL() string {
	for _, u := range m.ListenClientURLs {
		if h := hostOf(u); h == "127.0.0.1" || h == "localhost" || h == "::1" {
			return u
		}
	}
	for _, u := range m.ListenClientURLs {
		if h := hostOf(u); h == "0.0.0.0" || h == "::" || h == "" {
			return withHost(u, "127.0.0.1")
		}
	}
	if len(m.ListenClientURLs) > 0 {
		return m.ListenClientURLs[0]
	}
	if len(m.AdvertiseClientURLs) > 0 {
		return m.AdvertiseClientURLs[0]
	}
	return "https://127.0.0.1:2379"
}

// NodeClientURL is the client URL a pod on the member's node reaches it
// at from outside the host's network: the first listen URL on an address
// of the node, else, when etcd listens on every address, the first
// advertised URL that is not a loopback. It is "" when etcd listens for
// clients on the node's loopback only.
func (m *Member) NodeClientURL() string {
	wildcard := false
	for _, u := range m.ListenClientURLs {
		switch h := hostOf(u); {
		case h == "0.0.0.0" || h == "::" || h == "":
			wildcard = true
		case !isLoopback(h):
			return u
		}
	}
	if wildcard {
		for _, u := range m.AdvertiseClientURLs {
			if h := hostOf(u); h != "" && !isLoopback(h) {
				return u
			}
		}
	}
	return ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ClientPort is the TCP port of LocalClientURL (2379 when it has none).
func (m *Member) ClientPort() int {
	u, err := url.Parse(m.LocalClientURL())
	if err != nil || u.Port() == "" {
		return 2379
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		return 2379
	}
	return p
}

// TLS reports whether clients must speak TLS to this member.
func (m *Member) TLS() bool {
	return strings.HasPrefix(m.LocalClientURL(), "https://")
}

// ServerNames are the names the member's serving certificate may carry,
// any of which a port-forward (which reaches the member on its loopback)
// has to accept.
func (m *Member) ServerNames() []string {
	names := []string{"127.0.0.1", "localhost", m.Node, m.Name}
	for _, u := range append(append([]string{}, m.AdvertiseClientURLs...), m.ListenClientURLs...) {
		if h := hostOf(u); h != "" && h != "0.0.0.0" && h != "::" {
			names = append(names, h)
		}
	}
	return names
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func withHost(raw, host string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if p := u.Port(); p != "" {
		u.Host = net.JoinHostPort(host, p)
	} else {
		u.Host = host
	}
	return u.String()
}
