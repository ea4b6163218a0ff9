package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// Deps are the clients a restore uses; tests pass fakes.
type Deps struct {
	Client kubernetes.Interface
	Exec   exec.Executor
	// Members discovers the etcd pods afresh on every call: after the
	// restore they are new pods.
	Members func(ctx context.Context) ([]discovery.Member, error)
	// Reads reads status and health (etcd.Reads).
	Reads etcd.Transport
	// StaticPodDir reads a node's kubelet static pod dir (see
	// KubeletStaticPodDir); nil uses DefaultStaticPodDir.
	StaticPodDir StaticPodDirReader
	// Clients reads keys and hashes to check the result; nil skips that
	// check with a warning.
	Clients etcd.Transport
	// APIServers lists the kube-apiservers, for where a bundle's
	// encryption config goes (nil: where the bundle read it).
	APIServers func(ctx context.Context) ([]discovery.APIServer, error)
}

// Config is one `kubectl etcd restore`.
type Config struct {
	File           string
	Identities     []age.Identity
	Force          bool
	NoBumpRevision bool
	DryRun         bool
	// SkipHashCheck takes a member's database copied from a data dir
	// (copy-db), which has no sha256 trailer, and restores it with
	// etcdutl's --skip-hash-check.
	SkipHashCheck bool
	// Confirm is asked once the plan is printed; an error stops the restore
	// with nothing changed. See Confirmation.
	Confirm func(*Plan) error
	// Namespace and Image are those of the node pods.
	Namespace string
	Image     string
	// AgentDir holds kubectl-etcd-agent[-linux-<arch>].
	AgentDir string
	// ID selects the restore that --rollback undoes; empty picks the
	// unfinished one.
	ID string
	// ScriptDir is where Scripts writes the per-node scripts.
	ScriptDir string
	// HealthyTimeout bounds each node's wait for its restored member to be
	// healthy once its etcd runs on the restored data; 0 is the agent's
	// default (5m).
	HealthyTimeout time.Duration

	Out, ErrOut io.Writer
	Now         func() time.Time
	// Poll and WaitTimeout pace the wait for the control plane to come back.
	Poll        time.Duration
	WaitTimeout time.Duration
	// PodLifetime bounds each node pod (seconds): one that a killed plugin
	// could not delete goes by itself after it. The agents run in static
	// pods of their own, so a node pod serves only until they start: the
	// upload, the data restore and the agents' start. 0 is 20 minutes, and
	// a second more for each 4 MiB of a restore's snapshot, for the upload.
	PodLifetime int64
}

// Result is what a restore did.
type Result struct {
	Plan      *Plan
	ClusterID string
	Revision  int64
	Journals  map[string]*agentapi.JournalStatus
	// Data is what the restored members hold at the restore's revision.
	Data *DataCheck
}

// Run restores cfg.File: preflight with the cluster untouched, the plan
// and its confirmation, then the node pods, the data restore and the
// agents, and the wait until the control plane is back.
//
// Every exit deletes the node pods it made. The agents run in static pods
// of their own (see agent.AgentPod), which the kubelet keeps whatever the
// API says and which take themselves out once done: from their start, each
// node finishes or rolls back by itself.
func Run(ctx context.Context, d Deps, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	pre, err := preflight(ctx, d, cfg)
	if err != nil {
		return nil, err
	}
	defer pre.plain.Close()
	if err := RenderPlan(cfg.Out, pre.plan); err != nil {
		return nil, err
	}
	if cfg.DryRun {
		cfg.notef("--dry-run: nothing was changed")
		return &Result{Plan: pre.plan}, nil
	}
	if err := cfg.Confirm(pre.plan); err != nil {
		return nil, err
	}
	r := newRun(d, cfg, pre)
	if err := r.prepare(ctx); err != nil {
		r.unstage(ctx)
		return nil, errors.Join(err, r.runner.Cleanup(ctx))
	}
	return r.execute(ctx)
}

// defaultPodLifetime bounds node pods that carry no snapshot.
const defaultPodLifetime int64 = 20 * 60

// withSnapshot gives the node pods of a restore of a size-byte snapshot
// the time to upload it too, when no lifetime was set.
func (c Config) withSnapshot(size int64) Config {
	if c.PodLifetime == defaultPodLifetime {
		c.PodLifetime += size / (4 << 20)
	}
	return c
}

func (c Config) withDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Poll == 0 {
		c.Poll = 2 * time.Second
	}
	if c.WaitTimeout == 0 {
		c.WaitTimeout = 15 * time.Minute
	}
	if c.PodLifetime == 0 {
		c.PodLifetime = defaultPodLifetime
	}
	if c.ErrOut == nil {
		c.ErrOut = io.Discard
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Confirm == nil {
		c.Confirm = func(*Plan) error { return errors.New("the restore was not confirmed") }
	}
	return c
}

func (c Config) notef(format string, args ...any) { fmt.Fprintf(c.ErrOut, format+"\n", args...) }

// run is one restore from the node pods on.
type run struct {
	d      Deps
	cfg    Config
	pre    *preflighted
	runner *nodepod.Runner
	nodes  map[string]*node // by node name
	start  time.Time
	// serverStart is start on the API server's clock: the creation time
	// of the first node pod, zero before one (or from a fake server).
	serverStart time.Time
	mu          sync.Mutex
}

// noteServerStart keeps the earliest creation time of this run's pods.
func (r *run) noteServerStart(p *nodepod.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !p.Created.IsZero() && (r.serverStart.IsZero() || p.Created.Before(r.serverStart)) {
		r.serverStart = p.Created
	}
}

func newRun(d Deps, cfg Config, pre *preflighted) *run {
	// A runner of its own: the command's runner deletes every pod it knows
	// on the way out, and these must outlive the command once agents run.
	rn := &nodepod.Runner{Client: d.Client, Exec: d.Exec, Log: cfg.ErrOut, PollInterval: cfg.Poll/4 + time.Millisecond}
	if pre.plain != nil {
		cfg = cfg.withSnapshot(pre.plain.Size)
	}
	return &run{d: d, cfg: cfg, pre: pre, runner: rn, nodes: map[string]*node{}, start: cfg.Now()}
}

// nodeCommands are the node-local commands that `restore verb` this
// restore with flags, without the API server (over ssh): the agent the
// plugin staged on each node.
func (r *run) nodeCommands(verb string, flags ...string) string {
	return r.nodeCommandsOn(func(*node) bool { return true }, verb, flags...)
}

// nodeCommandsOn are nodeCommands on the nodes where on holds.
func (r *run) nodeCommandsOn(on func(*node) bool, verb string, flags ...string) string {
	var b strings.Builder
	for _, m := range r.pre.plan.Members {
		n := r.nodes[m.Node]
		if n == nil || !on(n) {
			continue
		}
		fmt.Fprintf(&b, "  %s: %s restore %s --id %s %s --root /\n", m.Node, n.agent.NodePath(), verb, r.pre.plan.ID, strings.Join(flags, " "))
	}
	return strings.TrimRight(b.String(), "\n")
}

// recoveryCommands resume or roll back this restore over ssh, as the
// plugin would: a node held at the barrier takes the decision another
// node recorded (S5), and a rollback prepares every node before it
// releases any (S6).
func (r *run) recoveryCommands() string {
	return fmt.Sprintf("resume the restore:\n%s\n"+
		"(a node whose journal holds at the barrier, phase failed at %q, resumes only with the decision another node recorded in %s:\n"+
		"add --decision commit|abort, as that file says, and --from 'barrier.json of node NODE')\n"+
		"or roll it back, first on every node:\n%s\nthen, once every node has prepared, on every node:\n%s",
		r.nodeCommands("run", "--detach"), agentapi.StepBarrier, path.Join(r.pre.plan.Members[0].JournalDir, agentapi.BarrierFile),
		r.nodeCommands("rollback", "--prepare"), r.nodeCommands("rollback", "--release"))
}

// execute runs the steps that change the cluster.
func (r *run) execute(ctx context.Context) (*Result, error) {
	p := r.pre.plan
	// The bump's basis was read before the confirmation and the uploads.
	if err := recheckBump(p, readLive(ctx, r.d.Reads, r.pre.members)); err != nil {
		r.unstage(ctx)
		return nil, errors.Join(err, r.runner.Cleanup(ctx))
	}
	err := r.restoreData(ctx)
	r.unstage(ctx)
	if err != nil {
		return nil, errors.Join(err, r.runner.Cleanup(ctx))
	}
	started, err := r.startAgents(ctx)
	if len(started) == 0 {
		return nil, errors.Join(err, r.runner.Cleanup(ctx))
	}
	if err != nil {
		r.cfg.notef("Warning: %v", err)
		if c := p.coordinator(); r.nodes[c.Node] != nil && r.nodes[c.Node].started {
			r.cfg.notef("The nodes whose agent started roll back at the barrier by themselves; follow them with `kubectl etcd restore --status`.")
		} else {
			r.cfg.notef("The coordinator's agent (member %s on node %s) did not start, so the nodes whose agent started hold at the barrier with etcd stopped, and do not roll back by themselves.", c.Name, c.Node)
		}
		started := func(n *node) bool { return n.started }
		r.cfg.notef("If the API server does not come back, roll the nodes where an agent started back, as root, first on each:\n%s\nthen, once each has prepared, on each:\n%s",
			r.nodeCommandsOn(started, "rollback", "--prepare"), r.nodeCommandsOn(started, "rollback", "--release"))
	}
	// The node pods are done. The agents may already have stopped the API
	// server, so a delete can fail: those pods are deleted again once it is
	// back (the restored etcd does not know them, so nothing is usually
	// left), and only a pod still there then is reported.
	pending := r.runner.Cleanup(ctx) != nil
	r.cfg.notef("Agents started on %d of %d nodes; the API server goes away now. Waiting for it and every member (Ctrl-C is safe: the nodes carry on).", len(started), len(p.Members))
	werr := r.waitBack(ctx, p.Members, r.pre.live.ClusterID)
	if pending {
		if cerr := r.runner.Cleanup(ctx); cerr != nil {
			r.cfg.notef("Warning: %v", cerr)
		}
	}
	var back *rolledBackError
	if errors.As(werr, &back) {
		return &Result{Plan: p}, werr
	}
	res := &Result{Plan: p, Journals: r.journals(ctx)}
	if werr != nil {
		r.printJournals(res.Journals)
		return res, fmt.Errorf("%w: see `kubectl etcd restore --status` (which passes on a barrier's decision with --resume); `kubectl etcd restore --rollback` puts the old data back.\n"+
			"Both need the API server; without it, on every node as root, %s", werr, r.recoveryCommands())
	}
	cerr := r.check(ctx, res)
	r.removeLeftovers(ctx)
	r.summary(ctx, res)
	return res, cerr
}
