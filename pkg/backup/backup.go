// Package backup takes a verified snapshot of a cluster's etcd: it picks
// the member to read from, streams through the port-forward transport
// into a snapshot sink, moves to another member when a stream breaks or
// stalls, and writes the FILE.json that restore plans from. The cobra
// layer only builds a Config.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// Config is one backup.
type Config struct {
	// File is where the snapshot goes; "-" streams it to Out.
	File string
	Out  io.Writer
	// Member, if set (name or hex ID), is the only member read from.
	Member       string
	Retries      int
	StallTimeout time.Duration
	// Encrypt wraps the output (age); nil writes the plain snapshot.
	Encrypt func(io.Writer) (io.WriteCloser, error)
	// Progress returns a reader wrapper for a stream of about size bytes.
	Progress func(size int64) func(io.Reader) io.Reader
	// Notify receives progress lines; nil is silent.
	Notify func(format string, args ...any)
	// Context and KubernetesVersion go into the metadata.
	Context           string
	KubernetesVersion func() string
	Now               func() time.Time
	// APIServers lists the kube-apiservers, whose encryption at rest the
	// snapshot depends on (nil: not asked).
	APIServers func(ctx context.Context) ([]discovery.APIServer, error)
	// Bundle, when set, makes FILE a DR bundle: the snapshot with every
	// control-plane node's PKI, manifests and encryption config, and the
	// cluster's kubeadm ConfigMaps; only ever written encrypted.
	Bundle *BundleSource
	// Via is ViaStream (the default) or ViaNode, which Node serves.
	Via  string
	Node *NodeSource
}

// Result is a saved snapshot.
type Result struct {
	Save *snapshot.Result
	// Meta is nil when the snapshot went to a stream.
	Meta *snapshot.Metadata
	Took time.Duration
}

// Run takes the snapshot. A FILE target is claimed (FILE.part created
// exclusively, FILE and FILE.json checked) before the cluster is touched,
// so a second backup to the same name fails at once.
func Run(ctx context.Context, sess *etcd.Session, cfg Config) (*Result, error) {
	if cfg.Bundle != nil && cfg.Encrypt == nil {
		return nil, fmt.Errorf("a bundle holds the cluster's CA and service-account keys, so it is only ever written age-encrypted: give --recipient or --recipients-file")
	}
	sink, err := claim(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.APIServers != nil {
		// The bundle and FILE.json's encryptionAtRest read one listing.
		cfg.APIServers = onceAPIServers(cfg.APIServers)
	}
	var bundle *snapshot.BundleSummary
	if cfg.Bundle != nil {
		idx, files, err := gatherBundle(ctx, *cfg.Bundle, cfg.APIServers, cfg.notify)
		if err != nil {
			sink.Abort()
			return nil, fmt.Errorf("bundle not written: %w", err)
		}
		idx.Created, idx.Context = cfg.now().UTC(), cfg.Context
		cfg.Encrypt = snapshot.BundleEncrypter(cfg.Encrypt, idx, files)
		bundle = &snapshot.BundleSummary{Files: len(files), EncryptionKeys: idx.EncryptionKeys}
	}
	viaNode := cfg.Via == ViaNode
	if viaNode && cfg.Node == nil {
		sink.Abort()
		return nil, fmt.Errorf("a node-side snapshot needs node pods, which this backup cannot start")
	}
	var ns *nodeStream
	prestarted := func() (string, error) { return "", nil }
	if viaNode {
		ns = &nodeStream{src: *cfg.Node, notify: cfg.notify}
		defer ns.close()
		prestarted = ns.prestart(ctx, sess, cfg.Member)
	}
	c, order, err := sources(ctx, sess, cfg.Member, !viaNode)
	node, perr := prestarted()
	if err != nil {
		sink.Abort()
		return nil, err
	}
	var stream snapshotStream = &rotatingStream{transport: sess.Transport(etcd.ClientAPI), members: order, notify: cfg.notify}
	if viaNode {
		ns.members = order
		if perr != nil && node == order[0].Pod.Node {
			sink.Abort()
			return nil, perr
		}
		// The first node's pod starts before the stall timeout runs: a pod
		// has its own start timeout, and a slow start is not a stall.
		if _, _, err := ns.podFor(ctx, order[0]); err != nil {
			sink.Abort()
			return nil, err
		}
		stream = ns
	}
	defer stream.close()
	opts := snapshot.Options{
		Retries:      cfg.Retries,
		StallTimeout: cfg.StallTimeout,
		Encrypt:      cfg.Encrypt,
		Notify:       cfg.notify,
		Compressed:   viaNode && cfg.Node.Compress != "",
	}
	if cfg.Progress != nil {
		opts.Progress = cfg.Progress(order[0].Status.DBSize)
	}
	start := cfg.now()
	res, err := snapshot.Save(ctx, stream.open, sink, opts)
	if err != nil {
		if rs, ok := stream.(*rotatingStream); ok {
			err = stalledPath(err, rs.next)
		}
		return nil, fmt.Errorf("snapshot not saved: %w", err)
	}
	out := &Result{Save: res, Took: cfg.now().Sub(start)}
	if cfg.File == "-" {
		return out, nil
	}
	out.Meta = cfg.metadata(c, stream.used(), res, start)
	out.Meta.StorageVersion = stream.storageVersion()
	out.Meta.Via = ViaStream
	if viaNode {
		out.Meta.Via, out.Meta.Compression = ViaNode, cfg.Node.Compress
	}
	out.Meta.EncryptionAtRest = encryptionAtRest(ctx, cfg)
	out.Meta.Bundle = bundle
	if err := snapshot.WriteMetadata(snapshot.MetadataPath(cfg.File), out.Meta); err != nil {
		return out, fmt.Errorf("snapshot saved at %s, but its metadata was not: %w", cfg.File, err)
	}
	return out, nil
}

// onceAPIServers is list, listing only once.
func onceAPIServers(list func(context.Context) ([]discovery.APIServer, error)) func(context.Context) ([]discovery.APIServer, error) {
	var (
		once    sync.Once
		servers []discovery.APIServer
		err     error
	)
	return func(ctx context.Context) ([]discovery.APIServer, error) {
		once.Do(func() { servers, err = list(ctx) })
		return servers, err
	}
}

// encryptionAtRest lists the API servers that encrypt at rest, and warns
// that the snapshot's encrypted values need their keys.
func encryptionAtRest(ctx context.Context, cfg Config) []snapshot.EncryptionAtRest {
	if cfg.APIServers == nil {
		return nil
	}
	servers, err := cfg.APIServers(ctx)
	if err != nil {
		cfg.notify("Warning: whether the API servers encrypt at rest is not known (%v): if they do, this snapshot's Secrets need their keys", err)
		return nil
	}
	var out []snapshot.EncryptionAtRest
	var where []string
	for _, s := range servers {
		if s.EncryptionConfig != "" {
			out = append(out, snapshot.EncryptionAtRest{Node: s.Node, Config: s.EncryptionConfig})
			where = append(where, s.Node+":"+s.EncryptionConfig)
		}
	}
	if len(out) > 0 {
		cfg.notify("Warning: the API servers encrypt at rest (%s): the values they encrypted in this snapshot are unreadable without those keys, every key since rotated away included. Keep a copy of that file with the snapshot; kubectl etcd check --only security.encryption names the keys in use", strings.Join(where, ", "))
	}
	return out
}

// Check refuses a FILE target that is taken, before anything else runs.
func Check(file string) error {
	if file == "-" {
		return nil
	}
	return snapshot.CheckTargets(file, snapshot.MetadataPath(file))
}

func claim(cfg Config) (snapshot.Sink, error) {
	if cfg.File == "-" {
		return &snapshot.StreamSink{W: cfg.Out}, nil
	}
	sink := &snapshot.FileSink{Path: cfg.File, Companions: []string{snapshot.MetadataPath(cfg.File)}}
	if _, err := sink.Begin(); err != nil {
		return nil, err
	}
	return sink, nil
}

// sources reads the cluster and orders the members that can serve a
// snapshot: the chosen one first, then the other healthy members, newest
// data first. With want set only that member serves. The clients are
// closed: each attempt dials its own.
func sources(ctx context.Context, sess *etcd.Session, want string, forward bool) (*cluster.Cluster, []*cluster.Member, error) {
	pods, err := sess.Members(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Reading the TLS material for the port-forward takes a helper pod; it
	// starts while the members are asked for their status.
	prefetch := make(chan error, 1)
	if forward {
		go func() { prefetch <- sess.Forward.Prepare(ctx, pods) }()
	} else {
		prefetch <- nil
	}
	c := cluster.Read(ctx, sess.Transport(etcd.Reads), pods)
	c.Close()
	if err := <-prefetch; err != nil {
		return nil, nil, err
	}
	first, err := chooseSource(c, want)
	if err != nil {
		return nil, nil, err
	}
	order := []*cluster.Member{first}
	if want == "" {
		rest := append([]*cluster.Member(nil), c.Members...)
		sort.SliceStable(rest, func(i, j int) bool { return applied(rest[i]) > applied(rest[j]) })
		for _, m := range rest {
			if m != first && unusable(c, m) == "" {
				order = append(order, m)
			}
		}
	}
	return c, order, nil
}

func applied(m *cluster.Member) uint64 {
	if m.Status == nil {
		return 0
	}
	return m.Status.RaftAppliedIndex
}

// snapshotStream opens a snapshot's bytes per attempt.
type snapshotStream interface {
	open(ctx context.Context) (io.ReadCloser, error)
	// used is the member the saved snapshot came from.
	used() *cluster.Member
	storageVersion() string
	close()
}

// rotatingStream opens a fresh port-forward and snapshot stream per
// attempt, since a broken stream often means a broken forward, and moves
// to the next member after a failure.
type rotatingStream struct {
	transport etcd.Transport
	members   []*cluster.Member
	notify    func(string, ...any)

	next    int
	current int
	conn    etcd.Client
	version string
}

func (s *rotatingStream) open(ctx context.Context) (io.ReadCloser, error) {
	s.close()
	s.current = s.next % len(s.members)
	s.next++
	c := s.members[s.current]
	verb := "Taking"
	if snapshot.AttemptOf(ctx).N > 1 {
		verb = "Retrying: taking"
	}
	s.notify("%s a snapshot from member %s (%s) on node %s, DB size %s", verb, c.Pod.Name, cluster.HexOrEmpty(c.ID), c.Pod.Node, humanize.IBytes(uint64(max(c.Status.DBSize, 0))))
	conn, err := s.transport.Client(ctx, c.Pod)
	if err != nil {
		return nil, permanentIfDenied(err)
	}
	s.conn = conn
	st, err := conn.Snapshot(ctx)
	if err != nil {
		return nil, permanentIfDenied(err)
	}
	s.version = st.Version
	return st, nil
}

func (s *rotatingStream) used() *cluster.Member { return s.members[s.current] }

func (s *rotatingStream) storageVersion() string { return s.version }

func (s *rotatingStream) close() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// stalledPath explains a last attempt that stalled before its first
// byte, after another had stalled: the port-forward itself did not open.
// The API server the plugin reaches then often waits on the stalled
// member, since kubeadm's API servers talk to their own node's etcd only.
func stalledPath(err error, attempts int) error {
	var se *snapshot.StallError
	if attempts < 2 || !errors.As(err, &se) || se.After > 0 {
		return err
	}
	return hint.With(err, "no other member's stream opened either: the API server that kubectl reaches may be waiting on the stalled member "+
		"(a kubeadm API server uses only its own node's etcd); point kubectl at another control-plane node's API server "+
		"(kubectl --server https://NODE:6443) or let the member recover, then retry")
}

// permanentIfDenied stops the retries for an RBAC denial, which another
// attempt would only repeat.
func permanentIfDenied(err error) error {
	if errors.Is(err, exec.ErrForbidden) && !hint.IsPermanent(err) {
		return hint.Permanent(err, "ask for create on pods/portforward in the etcd pods' namespace")
	}
	return err
}

func (c *Config) notify(format string, args ...any) {
	if c.Notify != nil {
		c.Notify(format, args...)
	}
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// metadata describes a saved snapshot file for FILE.json.
func (c *Config) metadata(cl *cluster.Cluster, src *cluster.Member, res *snapshot.Result, start time.Time) *snapshot.Metadata {
	meta := &snapshot.Metadata{
		File: c.File, ClusterID: cluster.HexOrEmpty(cl.ClusterID), Member: src.Pod.Name, MemberID: cluster.HexOrEmpty(src.ID), Node: src.Pod.Node,
		Revision: src.Status.Revision, EtcdVersion: src.Status.Version,
		Context: c.Context, Time: start.UTC(), Size: res.Size, SHA256: res.FileSHA256,
		SnapshotSHA256: res.SnapshotSHA256, Encrypted: c.Encrypt != nil,
	}
	if list := cl.MemberList(); list != nil {
		for _, m := range list.Members {
			meta.Members = append(meta.Members, snapshot.MetadataMember(m))
		}
	}
	if c.KubernetesVersion != nil {
		meta.KubernetesVersion = c.KubernetesVersion()
	}
	// The status revision is from just before the stream, and a restore
	// compares FILE.json's with the snapshot's own: record the exact one,
	// read from the plain file, or for an encrypted one from the plaintext
	// as it streamed; none rather than a wrong one.
	switch {
	case c.Encrypt == nil && !(c.Via == ViaNode && c.Node.Compress != ""):
		if rev, err := snapshot.Revision(c.File); err == nil {
			meta.Revision = rev
		}
	case res.RevisionErr != nil:
		meta.Revision = 0
		c.notify("Warning: the snapshot's revision could not be read as it streamed (%v): FILE.json records none", res.RevisionErr)
	default:
		meta.Revision = res.Revision
	}
	return meta
}
