package etcdtest

import (
	"fmt"
	"path/filepath"

	"go.etcd.io/etcd/server/v3/embed"
)

// NewMember reserves ports and a data directory for a member that is not
// in the cluster yet: add it with its PeerURL, then Join it.
func (c *Cluster) NewMember(name string) *Member {
	c.t.Helper()
	return &Member{
		Name:       name,
		ClientURL:  "https://127.0.0.1:" + freePort(c.t),
		PeerURL:    "https://127.0.0.1:" + freePort(c.t),
		MetricsURL: "http://127.0.0.1:" + freePort(c.t),
		DataDir:    filepath.Join(c.t.TempDir(), name+".etcd"),
	}
}

// Join starts m as a new member of the running cluster, with the
// cluster's TLS. initialCluster is name=peerURL for every member,
// m included, as etcdctl member add prints it. m stays out of
// c.Members; the test stops it with m.Stop, or the cleanup does.
func (c *Cluster) Join(m *Member, initialCluster string) error {
	m.cfg = memberConfig(m, c.PKI, initialCluster)
	m.cfg.ClusterState = embed.ClusterStateFlagExisting
	if err := m.start(); err != nil {
		return fmt.Errorf("joining %s: %w", m.Name, err)
	}
	c.t.Cleanup(m.Stop)
	return nil
}

// Stop stops a member started with Join; it may be called again.
func (m *Member) Stop() {
	if m.etcd != nil {
		m.etcd.Close()
		m.etcd = nil
	}
}

// RestartMember stops member i, lets edit change its configuration (a
// small QuotaBackendBytes, say) and starts it again on the same data.
func (c *Cluster) RestartMember(i int, edit func(*embed.Config)) error {
	c.StopMember(i)
	m := c.Members[i]
	if edit != nil {
		edit(m.cfg)
	}
	return m.start()
}
