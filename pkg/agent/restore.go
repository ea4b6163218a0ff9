package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/manifest"
)

// RestoreOperation is the journal's Operation for a restore.
const RestoreOperation = "restore"

// Files in a restore's journal dir.
const (
	JournalFile = "journal.json"
	LogFile     = "agent.log"
	LockFile    = "lock"
	// RestoredManifest is the rewritten etcd manifest, kept here from the
	// start so that a resumed agent swaps in exactly the bytes checked then.
	RestoredManifest = "etcd.yaml.restored"
)

// Duration is a time.Duration written in JSON as "5m0s".
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string such as "90s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"90s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// What a node does when a step after the point of no return fails.
const (
	// AfterSwapStay leaves the node as it is and reports; the plugin offers
	// --rollback. With several members it is the only safe choice: the other
	// members may already serve the restored data.
	AfterSwapStay = "stay"
	// AfterSwapRollback rolls the node back by itself; only for a single
	// member, where no other node depends on it.
	AfterSwapRollback = "rollback"
)

// RestoreSpec is one node's part of a restore, as the plugin writes it.
// Every path is a node path (the agent prefixes its --root). The fields
// after Barrier are filled by the agent from the node's manifests when the
// restore starts, and kept in the journal: once the manifests have moved
// out of the static pod dir, a resumed agent could not read them there.
type RestoreSpec struct {
	ID           string `json:"id"`
	Node         string `json:"node"`
	Member       string `json:"member"`
	StaticPodDir string `json:"staticPodDir"`
	JournalDir   string `json:"journalDir"`
	OldDataDir   string `json:"oldDataDir"`
	// NewDataDir was written by `snapshot restore` before the agent starts.
	NewDataDir string `json:"newDataDir"`

	// StopTimeout bounds each wait for a component to go; default 2m.
	StopTimeout Duration `json:"stopTimeout,omitempty"`
	// HealthyTimeout bounds the wait for the restored member's health,
	// which needs a quorum of nodes; default 5m.
	HealthyTimeout Duration `json:"healthyTimeout,omitempty"`
	// PollInterval is how often a wait probes; default 1s.
	PollInterval Duration `json:"pollInterval,omitempty"`
	// AfterSwapFailure is AfterSwapStay (the default) or AfterSwapRollback.
	AfterSwapFailure string `json:"afterSwapFailure,omitempty"`
	// StartWithin bounds how long after `restore start` this node's agent
	// may begin its steps; the agent writes the deadline, by its own
	// clock, as StartBy. One that begins later (its kubelet slow to start
	// it, its barrier port busy for hours) closes the restore as rolled
	// back rather than act long after the other nodes gave up (S7). Zero:
	// no deadline (scripts, run by hand).
	StartWithin Duration `json:"startWithin,omitempty"`
	// StartBy is the deadline, filled by the agent at the start.
	StartBy *time.Time `json:"startBy,omitempty"`
	// Barrier lists the other members' agents; empty for a single member.
	Barrier *BarrierSpec `json:"barrier,omitempty"`
	// AgentImage runs the agent's static pod (see AgentPod): etcd's own
	// image, which the node has. Empty runs the agent as a detached
	// process instead, which only a node without a kubelet survives.
	AgentImage string `json:"agentImage,omitempty"`
	// SnapshotRestore makes the agent restore the data itself (script
	// mode); OldDataDir, NewDataDir and AgentImage may then be empty, and
	// are read from the node's etcd manifest.
	SnapshotRestore *SnapshotRestore `json:"snapshotRestore,omitempty"`

	// APIServerAddr is kube-apiserver's secure port, from its manifest.
	APIServerAddr string `json:"apiServerAddr,omitempty"`
	// EtcdAddrs are etcd's client, peer and metrics listeners, from its
	// manifest; etcd is gone when all refuse.
	EtcdAddrs []string `json:"etcdAddrs,omitempty"`
	// MetricsURL serves /health without TLS (kubeadm: http://127.0.0.1:2381).
	MetricsURL string `json:"metricsURL,omitempty"`
	// PeerCertFile, PeerKeyFile and PeerCAFile are etcd's peer TLS files
	// (node paths, from its manifest), which the barrier serves and asks
	// with; set only with peers.
	PeerCertFile string `json:"peerCertFile,omitempty"`
	PeerKeyFile  string `json:"peerKeyFile,omitempty"`
	PeerCAFile   string `json:"peerCAFile,omitempty"`
}

// ControlPlaneManifests are stopped before etcd and started after it; the
// controller-manager and the scheduler go too, so that they drop caches
// filled before the restore.
var ControlPlaneManifests = []string{"kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"}

// EtcdManifest is etcd's file in the static pod dir.
const EtcdManifest = "etcd.yaml"

func (s *RestoreSpec) withDefaults() {
	if s.StopTimeout == 0 {
		s.StopTimeout = Duration(2 * time.Minute)
	}
	if s.HealthyTimeout == 0 {
		s.HealthyTimeout = Duration(5 * time.Minute)
	}
	if s.PollInterval == 0 {
		s.PollInterval = Duration(time.Second)
	}
	if s.AfterSwapFailure == "" {
		s.AfterSwapFailure = AfterSwapStay
	}
}

// Validate checks the spec as the plugin wrote it, before the node is read.
func (s *RestoreSpec) Validate() error {
	s.withDefaults()
	if s.ID == "" || s.Member == "" {
		return fmt.Errorf("the restore spec needs an id and a member name")
	}
	if strings.ContainsAny(s.ID, "/. ") {
		return fmt.Errorf("restore id %q must be a single path element such as 20260102T030405Z", s.ID)
	}
	for name, p := range map[string]string{"staticPodDir": s.StaticPodDir, "journalDir": s.JournalDir, "oldDataDir": s.OldDataDir, "newDataDir": s.NewDataDir} {
		if p == "" && s.SnapshotRestore != nil && (name == "oldDataDir" || name == "newDataDir") {
			continue // read from the node's manifest
		}
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return fmt.Errorf("restore spec %s %q must be a clean absolute node path", name, p)
		}
	}
	if strings.HasPrefix(s.JournalDir+"/", s.StaticPodDir+"/") {
		// The kubelet starts every file in the static pod dir as a pod.
		return fmt.Errorf("journal dir %s is inside the static pod dir %s: choose one outside it", s.JournalDir, s.StaticPodDir)
	}
	switch s.AfterSwapFailure {
	case AfterSwapStay:
	case AfterSwapRollback:
		if s.Barrier != nil && len(s.Barrier.Peers) > 0 {
			return fmt.Errorf("afterSwapFailure %q is for a single member: with peers, a member that rolls back alone splits the cluster", AfterSwapRollback)
		}
	default:
		return fmt.Errorf("afterSwapFailure %q is neither %q nor %q", s.AfterSwapFailure, AfterSwapStay, AfterSwapRollback)
	}
	if s.Barrier != nil {
		return s.Barrier.validate(s.Member)
	}
	return nil
}

// NodeLockFile, in the journal root (the parent of every restore's journal
// dir), is locked while a restore starts, so that two starts on one node
// cannot both find no unfinished restore (S10).
const NodeLockFile = ".lock"

// refuseUnfinished refuses a restore beside another one that is not over
// on this node: their steps would move the same manifests. The plugin
// checks this when it prepares the nodes; this check, made under the
// node's lock (NodeLockFile), also holds for starts minutes later, or run
// by hand.
func refuseUnfinished(root string, s *RestoreSpec) error {
	all, err := LoadJournals(under(root, path.Dir(s.JournalDir)))
	if err != nil {
		return fmt.Errorf("%w: a new restore starts only once every journal on the node is readable", err)
	}
	for _, j := range all {
		if j.ID != s.ID && j.Unfinished() {
			return UnfinishedError(j)
		}
	}
	return nil
}

// under maps a node path under the agent's root.
func under(root, p string) string { return filepath.Join(root, filepath.FromSlash(p)) }

// PrepareRestore reads the node as it is before anything stops: it checks
// the spec against the etcd manifest, fills the addresses the waits probe,
// and returns the rewritten etcd manifest. It changes nothing.
func PrepareRestore(root string, s *RestoreSpec) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(under(root, path.Join(s.JournalDir, JournalFile))); err == nil {
		return nil, fmt.Errorf("restore %s already has a journal in %s: resume it with `restore run` or roll it back; a second restore never starts on top", s.ID, s.JournalDir)
	}
	if err := refuseUnfinished(root, s); err != nil {
		return nil, err
	}
	etcdSrc, err := os.ReadFile(under(root, path.Join(s.StaticPodDir, EtcdManifest)))
	if err != nil {
		return nil, fmt.Errorf("read etcd's manifest: %w: is %s the kubelet's static pod dir?", err, s.StaticPodDir)
	}
	m, err := manifest.ReadMember(etcdSrc)
	if err != nil {
		return nil, err
	}
	s.fillFromManifest(m.DataDir, m.Image)
	// What would make the restored member fail to start on every node,
	// after the point of no return, is refused here, with nothing changed (S3).
	if m.WALDir != "" {
		return nil, fmt.Errorf("etcd's manifest sets --wal-dir=%s: a restore writes the WAL inside the new data dir and does not move a separate one, so the restored member would start on the old WAL. Remove --wal-dir from the manifest (kubeadm does not set it), or restore by hand", m.WALDir)
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
	if err := s.fillEtcdAddrs(m); err != nil {
		return nil, err
	}
	if err := s.fillPeerTLS(etcdSrc); err != nil {
		return nil, err
	}
	apiSrc, err := os.ReadFile(under(root, path.Join(s.StaticPodDir, ControlPlaneManifests[0])))
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

func (s *RestoreSpec) fillEtcdAddrs(m *manifest.Member) error {
	s.EtcdAddrs = nil
	for _, list := range [][]string{m.ListenClientURLs, m.ListenPeerURLs, m.ListenMetricsURLs} {
		for _, u := range list {
			a, err := dialAddr(u)
			if err != nil {
				return fmt.Errorf("etcd's manifest: %w", err)
			}
			s.EtcdAddrs = append(s.EtcdAddrs, a)
		}
	}
	for _, u := range m.ListenMetricsURLs {
		if strings.HasPrefix(u, "http://") {
			a, _ := dialAddr(u)
			s.MetricsURL = "http://" + a
			return nil
		}
	}
	return fmt.Errorf("etcd's manifest has no plain-HTTP --listen-metrics-urls, where the agent reads /health without etcd's client certificate: kubeadm sets --listen-metrics-urls=http://127.0.0.1:2381; add it, then retry")
}

// fillPeerTLS reads the files of etcd's peer TLS, which the barrier uses.
func (s *RestoreSpec) fillPeerTLS(etcdSrc []byte) error {
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
func checkRestoreTree(root string, s *RestoreSpec) error {
	for _, f := range append([]string{EtcdManifest}, ControlPlaneManifests...) {
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
