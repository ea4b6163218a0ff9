package agent

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/manifest"
)

// refuseUnfinished refuses a restore beside another one that is not over
// on this node: their steps would move the same manifests. The plugin
// checks this when it prepares the nodes; this check, made under the
// node's lock (NodeLockFile), also holds for starts minutes later, or run
// by hand.
func refuseUnfinished(root string, s *agentapi.RestoreSpec) error {
	all, err := agentapi.LoadJournals(under(root, path.Dir(s.JournalDir)))
	if err != nil {
		return fmt.Errorf("%w: a new restore starts only once every journal on the node is readable", err)
	}
	for _, j := range all {
		if j.ID != s.ID && j.Unfinished() {
			return agentapi.UnfinishedError(j)
		}
	}
	return nil
}

// under maps a node path under the agent's root.
func under(root, p string) string { return filepath.Join(root, filepath.FromSlash(p)) }

// PrepareRestore reads the node as it is before anything stops: it checks
// the spec against the etcd manifest, fills the addresses the waits probe,
// and returns the rewritten etcd manifest. It changes nothing.
func PrepareRestore(root string, s *agentapi.RestoreSpec) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(under(root, path.Join(s.JournalDir, agentapi.JournalFile))); err == nil {
		return nil, fmt.Errorf("restore %s already has a journal in %s: resume it with `restore run` or roll it back; a second restore never starts on top", s.ID, s.JournalDir)
	}
	if err := refuseUnfinished(root, s); err != nil {
		return nil, err
	}
	if err := refuseUnfinishedAny(root, s.JournalDir, s.ID); err != nil { // a member replace's too
		return nil, err
	}
	etcdSrc, err := os.ReadFile(under(root, path.Join(s.StaticPodDir, agentapi.EtcdManifest)))
	if err != nil {
		return nil, fmt.Errorf("read etcd's manifest: %w: is %s the kubelet's static pod dir?", err, s.StaticPodDir)
	}
	m, err := manifest.ReadMember(etcdSrc)
	if err != nil {
		return nil, err
	}
	fillFromManifest(s, m.DataDir, m.Image)
	// What would make the restored member fail to start on every node,
	// after the point of no return, is refused here, with nothing changed (S3).
	if m.WALDir != "" {
		return nil, fmt.Errorf("etcd's manifest sets a WAL dir of its own (%s, by --wal-dir or ETCD_WAL_DIR): a restore writes the WAL inside the new data dir and does not move a separate one, so the restored member would start on the old WAL. Remove it from the manifest (kubeadm does not set it), or restore by hand", m.WALDir)
	}
	if m.RunAsUser != nil && *m.RunAsUser != 0 {
		return nil, fmt.Errorf("etcd runs as uid %d (securityContext.runAsUser; kubeadm's rootless control plane?): the restored data dir would be root's, which that uid cannot open. A restore supports etcd running as root only for now", *m.RunAsUser)
	}
	if m.Name != s.Member || path.Clean(m.DataDir) != s.OldDataDir {
		return nil, fmt.Errorf("etcd's manifest on this node runs member %q on %s, the plan expects %q on %s (read from the API's etcd pod, which a kubelet that has not restarted since an earlier restore may still show as it was): restart the kubelet on this node, then plan the restore again", m.Name, m.DataDir, s.Member, s.OldDataDir)
	}
	restored, _, err := manifest.SetDataDir(etcdSrc, s.NewDataDir)
	if err != nil {
		return nil, err
	}
	if err := fillEtcdAddrs(s, m); err != nil {
		return nil, err
	}
	if err := fillPeerTLS(s, etcdSrc); err != nil {
		return nil, err
	}
	apiSrc, err := os.ReadFile(under(root, path.Join(s.StaticPodDir, agentapi.ControlPlaneManifests[0])))
	if err != nil {
		return nil, fmt.Errorf("read kube-apiserver's manifest: %w", err)
	}
	if s.APIServerAddr, err = apiServerAddr(apiSrc); err != nil {
		return nil, err
	}
	if err := checkRestoreTree(root, s); err != nil {
		return nil, err
	}
	if b := NewBarrier(root, s); b != nil {
		return restored, b.check()
	}
	return restored, nil
}

func fillEtcdAddrs(s *agentapi.RestoreSpec, m *manifest.Member) error {
	var err error
	s.EtcdAddrs, s.MetricsURL, err = etcdAddrs(m)
	return err
}

// etcdAddrs are etcd's client, peer and metrics listeners, which refuse
// once it is gone, and the plain-HTTP metrics URL that serves /health.
func etcdAddrs(m *manifest.Member) (addrs []string, metricsURL string, err error) {
	for _, list := range [][]string{m.ListenClientURLs, m.ListenPeerURLs, m.ListenMetricsURLs} {
		for _, u := range list {
			a, err := dialAddr(u)
			if err != nil {
				return nil, "", fmt.Errorf("etcd's manifest: %w", err)
			}
			addrs = append(addrs, a)
		}
	}
	for _, u := range m.ListenMetricsURLs {
		if strings.HasPrefix(u, "http://") {
			a, _ := dialAddr(u)
			return addrs, "http://" + a, nil
		}
	}
	return nil, "", fmt.Errorf("etcd's manifest has no plain-HTTP --listen-metrics-urls, where the agent reads /health without etcd's client certificate: kubeadm sets --listen-metrics-urls=http://127.0.0.1:2381; add it, then retry")
}

// fillPeerTLS reads the files of etcd's peer TLS, which the barrier uses.
func fillPeerTLS(s *agentapi.RestoreSpec, etcdSrc []byte) error {
	if s.Barrier == nil || len(s.Barrier.Peers) == 0 {
		return nil
	}
	for flag, dst := range map[string]*string{"peer-cert-file": &s.PeerCertFile, "peer-key-file": &s.PeerKeyFile, "peer-trusted-ca-file": &s.PeerCAFile} {
		v, ok, err := manifest.Flag(etcdSrc, flag)
		if err != nil {
			return fmt.Errorf("etcd's manifest: %w", err)
		}
		if !ok || !path.IsAbs(v) {
			return fmt.Errorf("etcd's manifest has no absolute --%s, which the agents' barrier authenticates with (kubeadm sets it under /etc/kubernetes/pki/etcd): a restore with peers needs etcd's peer TLS", flag)
		}
		*dst = path.Clean(v)
	}
	return nil
}

// dialAddr turns a listen URL into the address to probe: a wildcard host
// is reached on loopback (the agent shares the node's network).
func dialAddr(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Port() == "" {
		return "", fmt.Errorf("listen URL %q has no host:port", raw)
	}
	return hostPort(u.Hostname(), u.Port()), nil
}

func hostPort(host, port string) string {
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// apiServerAddr is kube-apiserver's --bind-address (default: every
// address, so loopback) and --secure-port (default 6443).
func apiServerAddr(src []byte) (string, error) {
	port, _, err := manifest.Flag(src, "secure-port")
	if err != nil {
		return "", fmt.Errorf("kube-apiserver's manifest: %w", err)
	}
	if port == "" {
		port = "6443"
	}
	host, _, _ := manifest.Flag(src, "bind-address")
	return hostPort(host, port), nil
}

// checkRestoreTree refuses to start unless every path is where the steps
// expect it, so that a mistake stops here with nothing changed.
func checkRestoreTree(root string, s *agentapi.RestoreSpec) error {
	for _, f := range append([]string{agentapi.EtcdManifest}, agentapi.ControlPlaneManifests...) {
		if _, err := os.Stat(under(root, path.Join(s.StaticPodDir, f))); err != nil {
			return fmt.Errorf("%w: a kubeadm control-plane node has all four manifests", err)
		}
	}
	if _, err := os.Stat(under(root, s.OldDataDir)); err != nil {
		return fmt.Errorf("old data dir: %w", err)
	}
	if s.SnapshotRestore != nil {
		return checkSnapshotRestore(root, s)
	}
	if _, err := os.Stat(under(root, path.Join(s.NewDataDir, "member"))); err != nil {
		return fmt.Errorf("the restored data dir holds no member dir (%w): run `snapshot restore` into %s first", err, s.NewDataDir)
	}
	return nil
}
