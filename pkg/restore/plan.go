// Package restore plans `kubectl etcd restore`: which flags each member is
// restored with, where data moves, in which order, and why. The plan is
// pure; the node agent carries it out.
package restore

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

// Defaults for the paths on each node.
const (
	DefaultStaticPodDir = "/etc/kubernetes/manifests"
	DefaultJournalRoot  = "/var/lib/kubectl-etcd/restore"
	// FallbackBump is OpenShift's bump when it knows no live revision: "1bn
	// would be an etcd running at 1000 writes/s for about eleven days".
	FallbackBump int64 = 1_000_000_000
)

// Metadata is what restore reads from the FILE.json that backup writes. It
// mirrors a subset of pkg/plugin's Metadata, which is moving to
// pkg/snapshot; once it has, this becomes that type.
type Metadata struct {
	ClusterID   string
	Revision    int64
	EtcdVersion string
	MemberNames []string
	// Members are the members as backup saw them: what script mode plans
	// from when the API server cannot be reached.
	Members []MetadataMember
}

// MetadataMember is one member in FILE.json.
type MetadataMember struct {
	Name, Node string
	PeerURLs   []string
}

// Snapshot is what is known of the snapshot file. Revision is read from
// inside the file, never from a read of the cluster made before it.
type Snapshot struct {
	Path     string
	Revision int64
	// Keys counts the live keys at Revision, to check the result with.
	Keys           int
	Size           int64
	SHA256         string
	StorageVersion string
	Meta           *Metadata
	// Raw is a member's database copied from a data dir (copy-db): no
	// sha256 trailer vouches for it, and etcdutl restores it only with
	// --skip-hash-check.
	Raw bool
}

// Live is what preflight read from the running cluster; zero values mean
// unknown (a cluster without quorum answers nothing).
type Live struct {
	ClusterID    string
	Revision     int64
	MaxRaftIndex int64
}

// Options are the user's choices.
type Options struct {
	// ID names this restore's data dirs and journals; Time's UTC form by default.
	ID             string
	Time           time.Time
	Force          bool
	NoBumpRevision bool
	// StaticPodDir is the kubelets' static pod dir where StaticPodDirs,
	// read from each node's kubelet config, names none.
	StaticPodDir  string
	StaticPodDirs map[string]string
	JournalRoot   string
	// FromMetadata plans from FILE.json's members, for script mode
	// without the API: the data dirs and images are then left empty, for
	// each node's agent to read from its etcd manifest.
	FromMetadata bool
	// HealthyTimeout goes into each agent's spec (see Config).
	HealthyTimeout time.Duration
	// EncryptionConfigs are, by node, the encryption configs a bundle
	// puts back (Staged is filled by the plan).
	EncryptionConfigs map[string]*EncryptionConfigPlan
}

// EncryptionConfigPlan is a bundle's encryption config for one node: where
// its kube-apiserver reads it, where the plugin stages it, its sha256, and
// its content, held in memory and never printed.
type EncryptionConfigPlan struct {
	Path   string `json:"path"`
	Staged string `json:"staged"`
	SHA256 string `json:"sha256"`
	Data   []byte `json:"-"`
}

// Plan is what the user confirms and the agents carry out.
type Plan struct {
	ID             string
	Token          string
	InitialCluster string
	Snapshot       Snapshot
	Bump           int64
	BumpReason     string
	Members        []MemberPlan
	Warnings       []string
	// HealthyTimeout bounds each agent's wait for its restored member's
	// health; 0 is the agent's default.
	HealthyTimeout time.Duration
}

// restoredInto is where the restore pod writes the data, in its dir.
func restoredInto(restoreDir string) string { return path.Join(restoreDir, "data") }

// MemberPlan is one node's part.
type MemberPlan struct {
	Node, Name     string
	PeerURLs       []string
	Image, Version string
	OldDataDir     string
	NewDataDir     string
	// RestoreDir is the restore pod's only writable mount: a sibling of
	// NewDataDir (so on its filesystem), made empty and 0700 before the
	// pod runs; the pod restores into RestoreDir/data, which is then
	// renamed to NewDataDir (etcdutl refuses a data dir that exists, so
	// the pod cannot be given NewDataDir itself).
	RestoreDir string
	JournalDir string
	// StaticPodDir is the node's kubelet's; StaticPodSource says where it
	// was read.
	StaticPodDir    string
	StaticPodSource string
	StagedSnapshot  string
	// RestoreArgv runs in a pod of the member's own etcd image, with no
	// shell: 3.6+ images have none. RestoreFlags are its member, cluster
	// and bump flags, without the snapshot and the data dir.
	RestoreArgv  []string
	RestoreFlags []string
	Steps        []string
	// EncryptionConfig is the bundle's encryption config the agent puts
	// back; nil for a snapshot, or a node the bundle holds none for.
	EncryptionConfig *EncryptionConfigPlan `json:"encryptionConfig,omitempty"`
}

// NewPlan builds the plan, refusing what the restore cannot do safely.
func NewPlan(members []discovery.Member, snap Snapshot, live Live, opts Options) (*Plan, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("no etcd members found: restore needs the etcd static pods of kube-system to read their flags")
	}
	opts = withDefaults(opts)
	ms, err := sortedMembers(members, opts.FromMetadata)
	if err != nil {
		return nil, err
	}
	p := &Plan{ID: opts.ID, Token: "kubectl-etcd-restore-" + strings.ToLower(opts.ID), Snapshot: snap, InitialCluster: initialCluster(ms), HealthyTimeout: opts.HealthyTimeout}
	if err := p.checkSnapshot(ms, live, opts.Force); err != nil {
		return nil, err
	}
	p.Bump, p.BumpReason = chooseBump(snap.Revision, live, opts.NoBumpRevision)
	if snap.Raw {
		p.Warnings = append(p.Warnings, "the file is a member's database copied from its data dir (copy-db), not a snapshot: no sha256 trailer vouches for it, and it holds what that member had written when it stopped, which may be behind what the cluster had; it is restored with --skip-hash-check, as asked")
	}
	for _, m := range ms {
		mp, err := p.memberPlan(m, opts)
		if err != nil {
			return nil, err
		}
		p.Members = append(p.Members, mp)
	}
	// Each member's steps name the others' (the barrier's peers).
	for i := range p.Members {
		p.Members[i].Steps = p.nodeSteps(p.Members[i])
	}
	return p, nil
}

func withDefaults(o Options) Options {
	if o.ID == "" {
		o.ID = o.Time.UTC().Format("20060102T150405Z")
	}
	if o.StaticPodDir == "" {
		o.StaticPodDir = DefaultStaticPodDir
	}
	if o.JournalRoot == "" {
		o.JournalRoot = DefaultJournalRoot
	}
	return o
}

func sortedMembers(in []discovery.Member, fromMetadata bool) ([]discovery.Member, error) {
	ms := append([]discovery.Member{}, in...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	src := "etcd pod %s"
	if fromMetadata {
		src = "FILE.json's member %s"
	}
	for i, m := range ms {
		switch {
		case fromMetadata && (m.Name == "" || m.Node == "" || len(m.InitialAdvertisePeerURLs) == 0):
			return nil, fmt.Errorf("FILE.json's member %q has no name, node or peer URL: script mode without the API plans from them", m.Name)
		case m.Node != "" && len(validation.IsDNS1123Subdomain(m.Node)) > 0:
			// Names go into file names on the workstation and into root
			// scripts on the nodes (X2): only what Kubernetes allows.
			return nil, fmt.Errorf(src+" names the node %q, which is not a Kubernetes node name (%s): nothing was written", orPod(m, fromMetadata), m.Node, strings.Join(validation.IsDNS1123Subdomain(m.Node), "; "))
		case m.Name != "" && !memberNameRE.MatchString(m.Name):
			return nil, fmt.Errorf(src+" has the member name %q: restore accepts letters, digits, '.', '_' and '-' (as kubeadm's node names), so that the name is safe in file names and scripts", orPod(m, fromMetadata), m.Name)
		case fromMetadata:
		case m.Name == "" || m.Node == "" || m.DataDir == "" || len(m.InitialAdvertisePeerURLs) == 0:
			return nil, fmt.Errorf("etcd pod %s sets no --name, --data-dir or --initial-advertise-peer-urls, or runs on no node: restore reads them from the pod spec; fix the manifest", m.Pod)
		case i > 0 && ms[i-1].Name == m.Name:
			return nil, fmt.Errorf("two etcd pods use the member name %q: each member needs its own --name", m.Name)
		case !path.IsAbs(m.DataDir):
			return nil, fmt.Errorf("member %s has the relative data dir %q: set an absolute --data-dir", m.Name, m.DataDir)
		}
	}
	return ms, nil
}

// memberNameRE is what restore accepts as a member name.
var memberNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)

func orPod(m discovery.Member, fromMetadata bool) string {
	if fromMetadata {
		return strconv.Quote(m.Name)
	}
	return m.Pod
}

// initialCluster lists every member's peer URLs, sorted, so that every
// member is restored with the same string.
func initialCluster(ms []discovery.Member) string {
	var parts []string
	for _, m := range ms {
		urls := append([]string{}, m.InitialAdvertisePeerURLs...)
		sort.Strings(urls)
		for _, u := range urls {
			parts = append(parts, m.Name+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// newDataDir is the restored data's dir beside old (see
// agentapi.RestoredDataDir).
func newDataDir(old, id string) string { return agentapi.RestoredDataDir(old, id) }

func (p *Plan) memberPlan(m discovery.Member, o Options) (MemberPlan, error) {
	tool, err := restoreTool(m, p.Bump > 0)
	if err != nil && !(o.FromMetadata && m.Version == "") {
		return MemberPlan{}, err
	}
	if err := checkStorageVersion(p.Snapshot.StorageVersion, m); err != nil {
		return MemberPlan{}, err
	}
	old, nw := "", ""
	if m.DataDir != "" {
		old = path.Clean(m.DataDir)
		nw = newDataDir(old, o.ID)
	}
	restoreDir := ""
	if nw != "" {
		restoreDir = nw + ".part"
	}
	if tool == "" {
		tool = "etcdutl" // or etcdctl: the agent uses what the image has
	}
	mp := MemberPlan{
		Node: m.Node, Name: m.Name, PeerURLs: m.InitialAdvertisePeerURLs, Image: m.Image, Version: m.Version,
		OldDataDir: old, NewDataDir: nw, RestoreDir: restoreDir, JournalDir: path.Join(o.JournalRoot, o.ID),
		StaticPodDir: o.StaticPodDir, StaticPodSource: "kubeadm's default",
	}
	if d := o.StaticPodDirs[m.Node]; d != "" {
		mp.StaticPodDir, mp.StaticPodSource = path.Clean(d), "from the kubelet's config"
	}
	if strings.HasPrefix(mp.JournalDir+"/", mp.StaticPodDir+"/") {
		return MemberPlan{}, fmt.Errorf("node %s: the journal dir %s is inside the kubelet's static pod dir %s, which would start every file kept there as a pod", m.Node, mp.JournalDir, mp.StaticPodDir)
	}
	mp.StagedSnapshot = path.Join(mp.JournalDir, "snapshot.db")
	if e := o.EncryptionConfigs[m.Node]; e != nil {
		c := *e
		c.Staged = path.Join(mp.JournalDir, "encryption-config")
		mp.EncryptionConfig = &c
	}
	mp.RestoreFlags = []string{
		"--name=" + m.Name,
		"--initial-cluster=" + p.InitialCluster,
		"--initial-cluster-token=" + p.Token,
		"--initial-advertise-peer-urls=" + strings.Join(m.InitialAdvertisePeerURLs, ","),
	}
	if p.Snapshot.Raw {
		mp.RestoreFlags = append(mp.RestoreFlags, "--skip-hash-check")
	}
	if p.Bump > 0 {
		// etcdutl refuses a bump without --mark-compacted, and the mark is what
		// makes watchers from before the restore relist.
		mp.RestoreFlags = append(mp.RestoreFlags, "--bump-revision="+strconv.FormatInt(p.Bump, 10), "--mark-compacted")
	}
	mp.RestoreArgv = append([]string{tool, "snapshot", "restore", mp.StagedSnapshot}, mp.RestoreFlags...)
	mp.RestoreArgv = append(mp.RestoreArgv, "--data-dir="+restoredInto(mp.RestoreDir))
	return mp, nil
}
