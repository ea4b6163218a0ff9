package agentapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"regexp"
	"strings"
	"time"
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
	// EncryptionConfig, when set, puts a bundle's encryption config back
	// where the node's kube-apiserver reads it, while it is stopped.
	EncryptionConfig *EncryptionConfigSwap `json:"encryptionConfig,omitempty"`
}

// EncryptionConfigSwap is the API server's encryption config a restore
// from a bundle puts back: the plugin stages the bundle's file (0600) in
// the journal dir; the agent moves the node's own file aside, into the
// journal dir, and the staged one into place.
type EncryptionConfigSwap struct {
	// Path is the node path the kube-apiserver manifest names.
	Path string `json:"path"`
	// Staged is where the plugin put the bundle's file, and SHA256 its
	// sha256.
	Staged string `json:"staged"`
	SHA256 string `json:"sha256"`
}

// EncryptionConfigAside is where a restore keeps the node's own
// encryption config while the bundle's is in place.
func (s *RestoreSpec) EncryptionConfigAside() string {
	return path.Join(s.JournalDir, "encryption", path.Base(s.EncryptionConfig.Path)+".before")
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
	if e := s.EncryptionConfig; e != nil {
		for name, p := range map[string]string{"encryptionConfig.path": e.Path, "encryptionConfig.staged": e.Staged} {
			if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
				return fmt.Errorf("restore spec %s %q must be a clean absolute node path", name, p)
			}
		}
		if !strings.HasPrefix(e.Staged, s.JournalDir+"/") {
			return fmt.Errorf("restore spec encryptionConfig.staged %s is not in the journal dir %s", e.Staged, s.JournalDir)
		}
		if strings.HasPrefix(e.Path, s.StaticPodDir+"/") {
			return fmt.Errorf("the encryption config %s is in the static pod dir %s, where the kubelet would take it for a pod", e.Path, s.StaticPodDir)
		}
		if len(e.SHA256) != 64 {
			return fmt.Errorf("restore spec encryptionConfig.sha256 %q is not a sha256", e.SHA256)
		}
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

// BarrierSpec names this member's barrier listener and the other members'.
type BarrierSpec struct {
	// Addr is host:port of this member's listener, on its node IP; the
	// port is DefaultBarrierPort unless the plugin chose another.
	Addr  string `json:"addr"`
	Peers []Peer `json:"peers"`
	// Timeout bounds the coordinator's wait for every member; default 5m.
	// A participant holds after twice as long.
	Timeout Duration `json:"timeout,omitempty"`
	// Linger bounds how long an agent keeps serving, once its run has
	// ended, for peers that have not learned the decision; default 2m.
	Linger Duration `json:"linger,omitempty"`
}

// Peer is another member's agent.
type Peer struct {
	Member string `json:"member"`
	// Addr is host:port of its barrier listener, on the node's IP.
	Addr string `json:"addr"`
}

// Decision is what a barrier decided.
type Decision string

// Decisions.
const (
	Commit Decision = "commit"
	Abort  Decision = "abort"
)

// BarrierFile, in the journal dir, holds the decision once recorded.
const BarrierFile = "barrier.json"

// WithDefaults fills the timeouts left unset.
func (b *BarrierSpec) WithDefaults() {
	if b.Timeout == 0 {
		b.Timeout = Duration(5 * time.Minute)
	}
	if b.Linger == 0 {
		b.Linger = Duration(2 * time.Minute)
	}
}

func (b *BarrierSpec) validate(self string) error {
	b.WithDefaults()
	if len(b.Peers) > 0 {
		if _, _, err := net.SplitHostPort(b.Addr); err != nil {
			return fmt.Errorf("barrier addr %q: this member's listener needs host:port on its node IP, such as 10.0.0.1:%d", b.Addr, DefaultBarrierPort)
		}
	}
	seen := map[string]bool{self: true}
	for _, p := range b.Peers {
		if p.Member == "" || p.Addr == "" || seen[p.Member] {
			return fmt.Errorf("barrier peer %+v: each peer needs its own member name and an address, and not this node's", p)
		}
		seen[p.Member] = true
	}
	return nil
}

// DefaultBarrierPort is where the plugin puts each agent's barrier
// listener: beside kubeadm's etcd (2379 client, 2380 peer, 2381 metrics),
// and clear of the kubelet (10248, 10250, 10255), the control plane (6443,
// 10257, 10259) and kube-proxy (10249, 10256).
const DefaultBarrierPort = 2382

// BarrierPath is the one endpoint: GET it with the restore's id for the
// agent's BarrierStatus.
const BarrierPath = "/v1/barrier/"

// SnapshotRestore makes the agent restore the snapshot itself, as its
// first step, with the etcd tools of its static pod's image (etcd's own,
// so that they match the data): script mode, where nothing can be created
// through the API. The plugin's pod mode restores in a pod before the
// agent starts, and leaves it nil.
type SnapshotRestore struct {
	// Snapshot is the plain snapshot's node path; SHA256 its checksum,
	// checked before anything else.
	Snapshot string `json:"snapshot"`
	SHA256   string `json:"sha256"`
	// Flags are `snapshot restore`'s member and cluster flags: --name,
	// --initial-cluster, --initial-cluster-token,
	// --initial-advertise-peer-urls and the bump; the agent adds
	// --data-dir.
	Flags []string `json:"flags"`
}

// StepRestoreData is the step that restores the snapshot in script mode.
const StepRestoreData = "restore the snapshot into the new data dir"

// restoredSuffix ends a data dir that an earlier restore made.
var restoredSuffix = regexp.MustCompile(`-restore-[0-9]{8}T[0-9]{6}Z$`)

// RestoredDataDir is the restored data's dir beside old: /var/lib/etcd
// becomes /var/lib/etcd-restore-<id>, and so does an earlier restore's
// dir, so that names do not grow restore after restore.
func RestoredDataDir(old, id string) string {
	return restoredSuffix.ReplaceAllString(old, "") + "-restore-" + id
}

// FileSHA256 is the hex sha256 of the file at p.
func FileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ReaderSHA256(f)
}

// ReaderSHA256 is the hex sha256 of what r holds.
func ReaderSHA256(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
