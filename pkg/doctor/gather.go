package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/encryptionconfig"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/metrics"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodefacts"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

// Client is what check needs of one member: a read-only part of
// etcd.Client.
type Client interface {
	MemberList(ctx context.Context) (clusterID uint64, members []etcd.MemberInfo, err error)
	Status(ctx context.Context) (*etcd.Status, error)
	AlarmList(ctx context.Context) ([]etcd.Alarm, error)
	HashKV(ctx context.Context, rev int64) (*etcd.KVHash, error)
	Close() error
}

// HTTPGetter fetches a path of a member's metrics endpoint.
type HTTPGetter = metrics.HTTPGetter

// NodeReader reads certificates and stats directories on a node.
type NodeReader interface {
	Read(ctx context.Context, node string, files, dirs []string) (*nodefacts.NodeReport, error)
}

// Sources are where the facts come from. Nodes may be nil: the checks
// that need a node then say "not checked".
type Sources struct {
	Clients etcd.Transport
	HTTP    HTTPGetter
	Nodes   NodeReader
	// Logs reads the members' logs (nil: the leader changes of the last
	// hour come from the metrics alone).
	Logs LogReader
	// APIServers lists the kube-apiservers and their encryption config
	// (nil: encryption at rest is not checked).
	APIServers func(ctx context.Context) ([]discovery.APIServer, error)
	// Schedules lists the scheduled backups and their records (nil: they
	// are not checked).
	Schedules func(ctx context.Context) ([]schedule.Status, error)
}

// Every transport's client serves the checks.
var _ Client = etcd.Client(nil)

// Config is what `kubectl etcd check` asks for.
type Config struct {
	Selection
	// Window separates the two metrics scrapes; 0 judges the
	// histograms since each member started.
	Window time.Duration
	// BackupDir is where snapshots are kept ("": not checked).
	BackupDir string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log takes progress notices.
	Log io.Writer
}

func (c *Config) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// ErrFailed is returned (wrapped) when a check fails.
var ErrFailed = errors.New("checks failed")

// Check gathers the facts and judges them.
func Check(ctx context.Context, src Sources, pods []discovery.Member, cfg Config) (*Report, error) {
	cfg.defaults()
	f, err := Gather(ctx, src, pods, cfg)
	if err != nil {
		return nil, err
	}
	return Evaluate(f, cfg.Selection), nil
}

// Gather reads, in parallel, what the selected checks need. It fails
// only when no member can be reached at all and something needs one.
func Gather(ctx context.Context, src Sources, pods []discovery.Member, cfg Config) (*Facts, error) {
	cfg.defaults()
	f := &Facts{Now: cfg.Now()}
	for _, p := range pods {
		f.Members = append(f.Members, &MemberFacts{Pod: p})
	}
	c := cluster.Read(ctx, src.Clients, pods)
	defer c.Close()
	clients := fromModel(c, f, cfg.Now())
	if c.Any() != nil {
		f.ClusterID, f.List, f.Alarms, f.ListErr = c.ClusterID, c.List, c.Alarms, c.ListErr
	} else {
		f.ListErr = unreachable(f.Members)
	}
	var wg sync.WaitGroup
	run := func(want bool, g func()) {
		if want {
			wg.Add(1)
			go func() { defer wg.Done(); g() }()
		}
	}
	if cfg.wants("security.encryption") {
		f.Encryption = listAPIServers(ctx, src)
	}
	// One node pod per node reads the certificates, the data dirs and the
	// API server's encryption config; the stored values are walked once
	// the configs say which resources to read.
	run(cfg.wants("security.cert-expiry") || cfg.wants("security.data-dir") || f.Encryption != nil, func() {
		readNodes(ctx, src.Nodes, f, cfg)
		if f.Encryption != nil {
			readEncryptionStored(ctx, clients, f.Encryption)
		}
	})
	run(cfg.wants("consistency.readyz"), func() { readReadyz(ctx, src.HTTP, f) })
	run(cfg.wants("performance.leader-changes"), func() { readElections(ctx, src.Logs, f) })
	run(cfg.wantsArea(AreaPerformance) || cfg.wants("capacity.compaction"), func() { readMetrics(ctx, src.HTTP, clients, f, cfg) })
	run(cfg.wants("backups.schedules"), func() { f.Schedules = readSchedules(ctx, src) })
	if cfg.BackupDir != "" && cfg.wantsArea(AreaBackups) {
		f.Backup = ReadBackupDir(cfg.BackupDir)
	}
	wg.Wait()
	if cfg.wants("consistency.hashkv") || cfg.wants("capacity.compaction") {
		hashAll(ctx, clients, f)
	}
	return f, ctx.Err()
}

// fromModel copies what the cluster model read of each member (status
// or error) into f, and is each member's client, in f's order.
func fromModel(c *cluster.Cluster, f *Facts, at time.Time) []Client {
	clients := make([]Client, len(f.Members))
	for i, mf := range f.Members {
		for _, m := range c.Members {
			if m.Pod.Pod != mf.Pod.Pod || m.Pod.Namespace != mf.Pod.Namespace {
				continue
			}
			mf.Status, mf.Err, mf.statusAt = m.Status, m.Err, at
			if cl := m.Client(); cl != nil {
				clients[i] = cl
			}
		}
	}
	return clients
}

// readNodes reads each node once, for all its members and its API
// server: the certificate files (never the keys), the data dirs, and the
// encryption config (parsed, its keys kept only as hashes).
func readNodes(ctx context.Context, r NodeReader, f *Facts, cfg Config) {
	byNode := map[string][]*MemberFacts{}
	var nodes []string
	add := func(n string) {
		if _, ok := byNode[n]; !ok {
			nodes = append(nodes, n)
			byNode[n] = nil
		}
	}
	for _, m := range f.Members {
		add(m.Pod.Node)
		byNode[m.Pod.Node] = append(byNode[m.Pod.Node], m)
	}
	encConfig := map[string]string{} // node: its API server's config
	if e := f.Encryption; e != nil {
		for _, s := range e.Servers {
			if s.EncryptionConfig != "" {
				add(s.Node)
				encConfig[s.Node] = s.EncryptionConfig
			}
		}
	}
	if r == nil {
		err := errors.New("files on the node cannot be read here")
		for _, m := range f.Members {
			m.NodeErr = err
		}
		for n := range encConfig {
			f.Encryption.ConfigErrs[n] = err
		}
		return
	}
	configs := make([]*encryptionconfig.Config, len(nodes))
	configErrs := make([]error, len(nodes))
	par.Each(len(nodes), func(i int) {
		ms := byNode[nodes[i]]
		var files, dirs []string
		for _, m := range ms {
			if cfg.wants("security.cert-expiry") {
				for _, c := range certFiles(m) {
					files = append(files, c.path)
				}
			}
			if cfg.wants("security.data-dir") && m.Pod.DataDir != "" {
				dirs = append(dirs, m.Pod.DataDir)
			}
		}
		enc := encConfig[nodes[i]]
		if enc != "" {
			files = append(files, enc)
		}
		if len(files) == 0 && len(dirs) == 0 {
			for _, m := range ms {
				m.Node = &nodefacts.NodeReport{}
			}
			return
		}
		rep, err := r.Read(ctx, nodes[i], files, dirs)
		if enc != "" {
			configs[i], configErrs[i] = parseEncryptionConfig(enc, rep, err)
		}
		for _, m := range ms {
			m.Node, m.NodeErr = rep, err
		}
	})
	for i, n := range nodes {
		switch {
		case configErrs[i] != nil:
			f.Encryption.ConfigErrs[n] = configErrs[i]
		case configs[i] != nil:
			f.Encryption.Configs[n] = configs[i]
		}
	}
}

func readReadyz(ctx context.Context, g HTTPGetter, f *Facts) {
	par.Each(len(f.Members), func(i int) {
		m := f.Members[i]
		if v := parseVersion(memberVersion(m)); v.ok && v.less(readyzSince.major, readyzSince.minor, readyzSince.patch) {
			return
		}
		path := "/readyz?verbose"
		if m.Status != nil && m.Status.IsLearner {
			// A learner serves no reads by design.
			path += "&exclude=non_learner"
		}
		m.Ready, m.ReadyErr = g.Get(ctx, m.Pod, path)
	})
}

// readMetrics scrapes every member twice, Window apart, and reads the
// statuses again after the window for the revision growth.
func readMetrics(ctx context.Context, g HTTPGetter, clients []Client, f *Facts, cfg Config) {
	if cfg.Window > 0 {
		fmt.Fprintf(cfg.Log, "Reading every member's metrics twice, %s apart\n", cfg.Window)
	}
	ms, errs := metrics.ScrapeAll(ctx, g, podsOf(f), cfg.Window, cfg.Now)
	for i, m := range f.Members {
		m.Metrics, m.MetricsErr = ms[i], errs[i]
	}
	par.Each(len(f.Members), func(i int) {
		if m := f.Members[i]; clients[i] != nil && m.Err == nil {
			if st, err := clients[i].Status(ctx); err == nil {
				m.Later, m.Elapsed = st, cfg.Now().Sub(m.statusAt)
			}
		}
	})
}

func podsOf(f *Facts) []discovery.Member {
	out := make([]discovery.Member, len(f.Members))
	for i, m := range f.Members {
		out[i] = m.Pod
	}
	return out
}

// hashAll hashes every member's keys at one revision, the lowest any
// member reports, which every member has applied. A compaction racing
// the hashes shows as different compact revisions: then once more.
func hashAll(ctx context.Context, clients []Client, f *Facts) {
	for attempt := 0; attempt < 2; attempt++ {
		rev := int64(0)
		for _, m := range f.Members {
			if st := latest(m); st != nil && (rev == 0 || st.Revision < rev) {
				rev = st.Revision
			}
		}
		if rev == 0 {
			f.HashErr = errors.New("no member could be reached")
			return
		}
		f.HashRevision = rev
		par.Each(len(f.Members), func(i int) {
			if m := f.Members[i]; clients[i] != nil && m.Err == nil {
				m.Hash, m.HashErr = clients[i].HashKV(ctx, rev)
			}
		})
		if !compactRaced(f) {
			return
		}
	}
}

func latest(m *MemberFacts) *etcd.Status {
	if m.Later != nil {
		return m.Later
	}
	return m.Status
}

func compactRaced(f *Facts) bool {
	seen := map[int64]bool{}
	for _, m := range f.Members {
		if m.Hash != nil {
			seen[m.Hash.CompactRevision] = true
		}
	}
	return len(seen) > 1
}

// unreachable says why no member answered, with the first member's
// error. Under a NOSPACE alarm the API server can create no pod, so the
// helper that reads the TLS material never starts: only a forced
// --transport port-forward gets this far, as auto falls back to exec.
func unreachable(ms []*MemberFacts) error {
	for _, m := range ms {
		if m.Err == nil {
			continue
		}
		if strings.Contains(m.Err.Error(), "database space exceeded") {
			return fmt.Errorf("no member could be reached (%s: %v): etcd refuses writes (NOSPACE), so no helper pod can start; "+
				"without --transport port-forward check reads the members with etcdctl in their containers, and `kubectl etcd defrag --compact --disarm` clears the alarm", m.Pod.Name, m.Err)
		}
		return fmt.Errorf("no member could be reached (%s: %v)", m.Pod.Name, m.Err)
	}
	return errors.New("no member could be reached")
}
