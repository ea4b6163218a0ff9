package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodefacts"
)

// Image is the etcd image the test pods name.
const Image = "registry.k8s.io/etcd:3.6.8-0"

// Forwarder "forwards" to each member's real address, so that the
// client/v3 transport runs end to end, minus the API server.
type Forwarder struct{ C *Cluster }

// Forward implements exec.Forwarder: the metrics port reaches the
// member's metrics listener, any other its client listener.
func (d Forwarder) Forward(_ context.Context, pod exec.PodRef, port int) (exec.DialFunc, func(), error) {
	for _, m := range d.C.Members {
		if "etcd-"+m.Name == pod.Name {
			u, _ := url.Parse(m.ClientURL)
			if mu, _ := url.Parse(m.MetricsURL); mu != nil && mu.Port() == strconv.Itoa(port) {
				u = mu
			}
			dial := func(ctx context.Context) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
			}
			return dial, func() {}, nil
		}
	}
	return nil, nil, fmt.Errorf("no member for pod %s", pod.Name)
}

// FileTLS reads the files the pod spec names from the local disk, where
// a node pod would read them on the node.
type FileTLS struct{}

// Material implements etcd.TLSSource.
func (FileTLS) Material(_ context.Context, m discovery.Member) (*etcd.Material, error) {
	ca, err := os.ReadFile(m.Client.TrustedCAFile)
	if err != nil {
		return nil, err
	}
	cert, _ := os.ReadFile(m.Client.CertFile)
	key, _ := os.ReadFile(m.Client.KeyFile)
	return &etcd.Material{CA: ca, Cert: cert, Key: key}, nil
}

// ForwardTransport is the plugin's port-forward transport to the cluster.
func (c *Cluster) ForwardTransport(timeout time.Duration) *etcd.ForwardTransport {
	return &etcd.ForwardTransport{Forwarder: Forwarder{c}, TLS: FileTLS{}, Timeout: timeout}
}

// Pods are the members as discovery reads them from their pods.
func (c *Cluster) Pods() []discovery.Member {
	var out []discovery.Member
	for i := range c.Members {
		out = append(out, discovery.ParsePod(c.Pod(i, Image)))
	}
	return out
}

// NodeFiles reads files and directory modes from the local disk, where
// a node pod would read them on the node.
type NodeFiles struct{}

// Read implements doctor.NodeReader.
func (NodeFiles) Read(_ context.Context, _ string, files, dirs []string) (*nodefacts.NodeReport, error) {
	rep := &nodefacts.NodeReport{Files: map[string][]byte{}, FileErrs: map[string]error{}, Modes: map[string]string{}, ModeErrs: map[string]error{}}
	for _, f := range files {
		if b, err := os.ReadFile(f); err != nil {
			rep.FileErrs[f] = err
		} else {
			rep.Files[f] = b
		}
	}
	for _, d := range dirs {
		if st, err := os.Stat(d); err != nil {
			rep.ModeErrs[d] = err
		} else {
			rep.Modes[d] = strconv.FormatUint(uint64(st.Mode().Perm()), 8)
		}
	}
	return rep, nil
}

// NamedTransport is one way the plugin reaches the cluster, named for
// subtests.
type NamedTransport struct {
	Name string
	T    etcd.Transport
}

// Transports are every way the plugin reaches the cluster: the
// port-forward transport, and the exec transport with each etcdctl that
// Etcdctls finds (built into dir).
func (c *Cluster) Transports(t testing.TB, timeout time.Duration) []NamedTransport {
	t.Helper()
	bins, err := Etcdctls(t.TempDir())
	if err != nil {
		t.Fatalf("building etcdctl: %v", err)
	}
	out := []NamedTransport{{"port-forward", c.ForwardTransport(timeout)}}
	names := make([]string, 0, len(bins))
	for n := range bins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ex := &LocalExecutor{Binaries: map[string]string{"etcdctl": bins[n]}}
		out = append(out, NamedTransport{"exec/etcdctl-" + n, &etcd.ExecTransport{Exec: ex, Timeout: timeout}})
	}
	return out
}
