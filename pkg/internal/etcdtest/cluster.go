package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// Member is one running (or stopped) member.
type Member struct {
	Name       string
	ClientURL  string
	PeerURL    string
	MetricsURL string
	DataDir    string
	cfg        *embed.Config
	etcd       *embed.Etcd
}

// Cluster is a real etcd cluster in this process.
type Cluster struct {
	PKI     *PKI
	Members []*Member
	t       testing.TB
}

// Start starts an n-member cluster with TLS on client and peer ports and
// client-cert-auth on both, and stops it when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	dir := t.TempDir()
	pki, err := NewPKI(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatalf("pki: %v", err)
	}
	// A free port is not a reserved one: another process, or an outgoing
	// connection, may take it before etcd listens there, the more likely
	// the busier the machine. Such a start is tried again on other ports.
	for attempt := 1; ; attempt++ {
		base := dir
		if attempt > 1 {
			base = filepath.Join(dir, fmt.Sprintf("attempt%d", attempt))
		}
		c, err := start(t, pki, base, n)
		if err == nil {
			t.Cleanup(c.Stop)
			return c
		}
		if attempt == 5 || !addrInUse(err) {
			t.Fatalf("starting etcd: %v", err)
		}
		t.Logf("starting etcd: %v; trying other ports", err)
	}
}

func start(t testing.TB, pki *PKI, dir string, n int) (*Cluster, error) {
	c := &Cluster{PKI: pki, t: t}
	var initial []string
	for i := 0; i < n; i++ {
		m := &Member{
			Name:       fmt.Sprintf("m%d", i+1),
			ClientURL:  "https://127.0.0.1:" + freePort(t),
			PeerURL:    "https://127.0.0.1:" + freePort(t),
			MetricsURL: "http://127.0.0.1:" + freePort(t),
			DataDir:    filepath.Join(dir, fmt.Sprintf("m%d.etcd", i+1)),
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		m.cfg = memberConfig(m, pki, strings.Join(initial, ","))
	}
	// Members of a new cluster wait for each other, so start them together;
	// once one fails, the others stop waiting (they may lack a quorum).
	errs := make(chan error, n)
	abort := make(chan struct{})
	for _, m := range c.Members {
		go func() { errs <- m.startOr(abort) }()
	}
	var first error
	for range c.Members {
		if err := <-errs; err != nil && first == nil {
			first = err
			close(abort)
		}
	}
	if first != nil {
		c.Stop()
		return nil, first
	}
	return c, nil
}

func addrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

func (m *Member) start() error { return m.startOr(nil) }

// startOr starts m and waits until it is ready, or abort is closed.
func (m *Member) startOr(abort <-chan struct{}) error {
	e, err := embed.StartEtcd(m.cfg)
	if err != nil {
		return err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-abort:
		e.Close()
		return fmt.Errorf("member %s: another member failed to start", m.Name)
	case <-time.After(2 * time.Minute): // far more than it takes, on a loaded machine too
		e.Close()
		return fmt.Errorf("member %s not ready in 2m", m.Name)
	}
	m.etcd = e
	return nil
}

// ID is the member's ID, as etcd reports it.
func (m *Member) ID() uint64 { return uint64(m.etcd.Server.MemberID()) }

// Running reports whether the member is up.
func (m *Member) Running() bool { return m.etcd != nil }

// StopMember stops one member; the others keep quorum if there are three.
func (c *Cluster) StopMember(i int) {
	if m := c.Members[i]; m.etcd != nil {
		m.etcd.Close()
		m.etcd = nil
	}
}

// Stop stops every member.
func (c *Cluster) Stop() {
	for i := range c.Members {
		c.StopMember(i)
	}
}

// Endpoints are the client URLs of the running members.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		if m.Running() {
			out = append(out, m.ClientURL)
		}
	}
	return out
}

// Pod returns a kubeadm-style static pod spec for member i, as the
// discovery package would read it from the API.
func (c *Cluster) Pod(i int, image string) *corev1.Pod {
	m := c.Members[i]
	var initial []string
	for _, o := range c.Members {
		initial = append(initial, o.Name+"="+o.PeerURL)
	}
	// The pod stays Running after StopMember, like a static pod whose
	// etcd hangs: the failure must come from talking to the member.
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	phase := corev1.PodRunning
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "etcd-" + m.Name, Namespace: "kube-system", Labels: map[string]string{"component": "etcd", "tier": "control-plane"},
			Annotations: map[string]string{discovery.MirrorAnnotation: "hash-" + m.Name}},
		Spec: corev1.PodSpec{
			NodeName: "node-" + m.Name,
			Containers: []corev1.Container{{
				Name:  "etcd",
				Image: image,
				Command: []string{"etcd",
					"--name=" + m.Name,
					"--data-dir=" + m.DataDir,
					"--advertise-client-urls=" + m.ClientURL,
					"--listen-client-urls=" + m.ClientURL,
					"--initial-advertise-peer-urls=" + m.PeerURL,
					"--listen-peer-urls=" + m.PeerURL,
					"--listen-metrics-urls=" + m.MetricsURL,
					"--initial-cluster=" + strings.Join(initial, ","),
					"--cert-file=" + c.PKI.CertFile,
					"--key-file=" + c.PKI.KeyFile,
					"--trusted-ca-file=" + c.PKI.CAFile,
					"--client-cert-auth=true",
					"--peer-cert-file=" + c.PKI.CertFile,
					"--peer-key-file=" + c.PKI.KeyFile,
					"--peer-trusted-ca-file=" + c.PKI.CAFile,
					"--peer-client-cert-auth=true",
				},
			}},
		},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{Name: "etcd", State: running}}},
	}
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}

// Material is the cluster's client TLS material, as a node would give it.
func (c *Cluster) Material(t testing.TB) *etcd.Material {
	t.Helper()
	m := &etcd.Material{}
	for _, f := range []struct {
		path string
		dst  *[]byte
	}{{c.PKI.CAFile, &m.CA}, {c.PKI.CertFile, &m.Cert}, {c.PKI.KeyFile, &m.Key}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		*f.dst = b
	}
	return m
}

// Client is a client/v3 client to the running members, closed at the end
// of the test.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return c.EndpointClient(t, c.Endpoints()...)
}

// EndpointClient is a client/v3 client to the given client URLs only.
func (c *Cluster) EndpointClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	tlsCfg, err := c.Material(t).ClientConfig([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tlsCfg, DialTimeout: 30 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// memberConfig is m's embedded etcd configuration, with the cluster's TLS
// on both sides.
func memberConfig(m *Member, pki *PKI, initialCluster string) *embed.Config {
	tls := transport.TLSInfo{CertFile: pki.CertFile, KeyFile: pki.KeyFile, TrustedCAFile: pki.CAFile, ClientCertAuth: true}
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.DataDir
	cfg.ListenClientUrls = []url.URL{mustURL(m.ClientURL)}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.ListenPeerUrls = []url.URL{mustURL(m.PeerURL)}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.ListenMetricsUrls = []url.URL{mustURL(m.MetricsURL)}
	cfg.InitialCluster = initialCluster
	cfg.InitialClusterToken = "etcdtest"
	cfg.ClientTLSInfo = tls
	cfg.PeerTLSInfo = tls
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// etcd fails a request it has not applied within 5 s plus two election
	// timeouts: 7 s with the default 1 s, which a loaded machine (starved
	// of CPU, its disk busy) overran. A longer election timeout gives 15 s;
	// a stopped leader hands over first, so no test waits out an election.
	cfg.ElectionMs = 5000
	return cfg
}

// WaitApplied waits until every running member has applied rev, so that
// a read or a snapshot from any of them sees the writes up to it: a
// write returns once the member that took it applied it, and the others
// may follow a moment later.
func (c *Cluster) WaitApplied(t testing.TB, cli *clientv3.Client, rev int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // far more than it takes, on a loaded machine too
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		ep := m.ClientURL
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := cli.Status(ctx, ep)
			cancel()
			if err == nil && st.Header.Revision >= rev {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %s did not apply revision %d in a minute (status %v, %v)", m.Name, rev, st, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
