package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// NodeJournals are the restore journals found on one node.
type NodeJournals struct {
	Node     string
	Journals []agentapi.JournalStatus
	// Unchecked says, by restore ID, why --status could not check that
	// restore's way back: its paths lie outside what the read-only pod
	// mounts. `--rollback` checks it before it acts.
	Unchecked map[string]string
	Err       error
}

// Status reads every control-plane node's journals (`kubectl etcd restore
// --status`) and prints them to Out. A read needs no privilege (X3): each
// node's pod is a nodepod.ProfileFiles pod that mounts, read-only, the
// agent's dir (its journals and binary), the kubelet's static pod dir and
// the dir around etcd's data dir, and runs the agent installed there, or
// one it was handed in its own scratch dir. Nothing on the node changes.
func Status(ctx context.Context, d Deps, cfg Config) ([]NodeJournals, error) {
	cfg = cfg.withDefaults()
	ms, err := d.Members(ctx)
	if err != nil {
		return nil, err
	}
	agents, err := agentclient.ForNodes(ctx, d.Client, cfg.AgentDir, nodesOf(ms))
	if err != nil {
		return nil, err
	}
	dirs, warnings := staticPodDirs(ctx, d.StaticPodDir, nodesOf(ms))
	for _, w := range warnings {
		cfg.notef("Warning: %s", w)
	}
	rn := &nodepod.Runner{Client: d.Client, Exec: d.Exec, Log: cfg.ErrOut}
	var unchecked sync.Map
	out := onEveryNode(ms, func(m discovery.Member) ([]agentapi.JournalStatus, error) {
		r := readerFor(cfg, m.Node, m.DataDir, dirs[m.Node])
		p, err := rn.Start(ctx, r.spec)
		if err != nil {
			return nil, err
		}
		js, err := r.read(ctx, p, agents[m.Node], cfg.ID)
		if u := r.unchecked(js); len(u) > 0 {
			unchecked.Store(m.Node, u)
		}
		return js, err
	})
	for i := range out {
		if u, ok := unchecked.Load(out[i].Node); ok {
			out[i].Unchecked = u.(map[string]string)
		}
	}
	err = printStatus(cfg, out)
	return out, errors.Join(err, printHeld(cfg.Out, out, agents), rn.Cleanup(ctx))
}

// statusReader is the read-only pod that reads one node's journals, and
// the host dirs it shows.
type statusReader struct {
	spec               nodepod.Spec
	staticPodDir, data string
}

// readerFor is the reader of node's journals, where etcd runs on dataDir
// and the kubelet's static pod dir is staticPodDir ("": kubeadm's).
func readerFor(cfg Config, node, dataDir, staticPodDir string) statusReader {
	if staticPodDir == "" {
		staticPodDir = DefaultStaticPodDir
	}
	r := statusReader{staticPodDir: path.Clean(staticPodDir)}
	mounts := []nodepod.HostMount{
		// It holds the journals and the agents. A node that never had a
		// restore lacks it: the kubelet makes it, empty, as the restore
		// would.
		{HostPath: path.Dir(DefaultJournalRoot), Type: corev1.HostPathDirectoryOrCreate},
		{HostPath: r.staticPodDir},
	}
	// A restore's data dirs are siblings (agentapi.RestoredDataDir): the
	// parent of the one etcd runs on shows the others.
	if dd := path.Clean(dataDir); path.IsAbs(dd) {
		r.data = path.Dir(dd)
		if r.data == "/" {
			r.data = dd
		}
		mounts = append(mounts, nodepod.HostMount{HostPath: r.data})
	}
	r.spec = nodepod.Spec{Purpose: PurposeStatus, Node: node, Namespace: cfg.Namespace, Image: cfg.Image,
		Profile: nodepod.ProfileFiles, Mounts: mounts, Scratch: true, Lifetime: cfg.PodLifetime}
	return r
}

// read reads the journals of restore id (all with "") in p, the reader's
// pod, with agent a.
func (r statusReader) read(ctx context.Context, p *nodepod.Pod, a agentclient.Binary, id string) ([]agentapi.JournalStatus, error) {
	a, err := agentclient.Stage(ctx, p, a)
	if err != nil {
		return nil, err
	}
	return agentclient.Journals(ctx, p, a, id)
}

// unchecked lists the journals whose way back the reader could not check
// (their old data dir or static pod dir is not what it mounts), with why.
func (r statusReader) unchecked(js []agentapi.JournalStatus) map[string]string {
	out := map[string]string{}
	for _, j := range js {
		if j.Rollback == nil || j.Phase == agentapi.PhaseRolledBack {
			continue
		}
		var spec agentapi.RestoreSpec
		if json.Unmarshal(j.Spec, &spec) != nil {
			continue // the agent said so already
		}
		switch {
		case spec.OldDataDir != "" && (r.data == "" || !within(spec.OldDataDir, r.data)):
			out[j.ID] = fmt.Sprintf("its old data dir %s is outside the dir --status reads (%s)", spec.OldDataDir, r.data)
		case spec.StaticPodDir != "" && path.Clean(spec.StaticPodDir) != r.staticPodDir:
			out[j.ID] = fmt.Sprintf("its static pod dir %s is not the kubelet's %s, which --status reads", spec.StaticPodDir, r.staticPodDir)
		}
	}
	return out
}

// within says whether p is dir or inside it.
func within(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// failures joins the nodes' errors, nil when every node succeeded.
func failures(ns []NodeJournals) error {
	var errs []error
	for _, n := range ns {
		if n.Err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.Node, n.Err))
		}
	}
	return errors.Join(errs...)
}

func joinCleanup(ctx context.Context, rn *nodepod.Runner, err error) error {
	if cerr := rn.Cleanup(ctx); cerr != nil {
		return fmt.Errorf("%w; %v", err, cerr)
	}
	return err
}

// cpNodes are the control-plane nodes as the commands that follow a
// restore (--status, --resume, --rollback) reach them: the members, the
// agent for each node, and the runner of the node pods that read and act
// there.
type cpNodes struct {
	cfg     Config
	members []discovery.Member
	agents  map[string]agentclient.Binary
	runner  *nodepod.Runner
}

func openNodes(ctx context.Context, d Deps, cfg Config) (*cpNodes, error) {
	ms, err := d.Members(ctx)
	if err != nil {
		return nil, err
	}
	agents, err := agentclient.ForNodes(ctx, d.Client, cfg.AgentDir, nodesOf(ms))
	if err != nil {
		return nil, err
	}
	return &cpNodes{cfg: cfg, members: ms, agents: agents, runner: &nodepod.Runner{Client: d.Client, Exec: d.Exec, Log: cfg.ErrOut}}, nil
}

// read starts a privileged node pod on every node, installs the agent there and
// reads the journals of restore id (all with ""). The pods stay for the
// work that follows, until the runner's Cleanup.
func (c *cpNodes) read(ctx context.Context, id string) (map[string]*nodepod.Pod, []NodeJournals) {
	var mu sync.Mutex
	pods := map[string]*nodepod.Pod{}
	found := onEveryNode(c.members, func(m discovery.Member) ([]agentapi.JournalStatus, error) {
		p, err := c.runner.Start(ctx, nodeSpec(c.cfg, m.Node))
		if err != nil {
			return nil, err
		}
		mu.Lock()
		pods[m.Node] = p
		mu.Unlock()
		if err := agentclient.Install(ctx, p, c.agents[m.Node]); err != nil {
			return nil, err
		}
		return agentclient.Journals(ctx, p, c.agents[m.Node], id)
	})
	return pods, found
}

// memberPlans are the members as the wait for the control plane takes them.
func memberPlans(ms []discovery.Member) []MemberPlan {
	var plan []MemberPlan
	for _, m := range ms {
		plan = append(plan, MemberPlan{Node: m.Node, Name: m.Name})
	}
	return plan
}

func nodeSpec(cfg Config, node string) nodepod.Spec {
	return nodepod.Spec{Purpose: PurposeNode, Node: node, Namespace: cfg.Namespace, Image: cfg.Image, Profile: nodepod.ProfileNode, Lifetime: cfg.PodLifetime}
}

func onEveryNode(ms []discovery.Member, f func(discovery.Member) ([]agentapi.JournalStatus, error)) []NodeJournals {
	out := make([]NodeJournals, len(ms))
	par.Each(len(ms), func(i int) {
		js, err := f(ms[i])
		out[i] = NodeJournals{Node: ms[i].Node, Journals: js, Err: err}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

func printStatus(cfg Config, ns []NodeJournals) error {
	failed := 0
	for _, n := range ns {
		if n.Err != nil {
			failed++
			fmt.Fprintf(cfg.ErrOut, "node %s: %v\n", n.Node, n.Err)
			continue
		}
		if len(n.Journals) == 0 {
			fmt.Fprintf(cfg.Out, "node %s: no restore journal\n", n.Node)
		}
		for _, j := range n.Journals {
			fmt.Fprintf(cfg.Out, "node %s: restore %s %s (agent running: %t)%s\n", n.Node, j.ID, j.Phase, j.AgentRunning, errSuffix(j.Error))
			for _, s := range j.Steps {
				fmt.Fprintf(cfg.Out, "  %-8s %s%s\n", s.State, s.Name, errSuffix(s.Error))
			}
			if d := j.Barrier; d != nil {
				fmt.Fprintf(cfg.Out, "  barrier: %s, recorded %s%s\n", d.Decision, d.Recorded.UTC().Format(time.RFC3339), orEmpty(", from ", d.From))
			}
			if s := releaseState(j); s != "" {
				fmt.Fprintf(cfg.Out, "  rollback over the API: %s\n", s)
			}
			if c := j.Rollback; c != nil && j.Phase != agentapi.PhaseRolledBack {
				if why := n.Unchecked[j.ID]; why != "" {
					fmt.Fprintf(cfg.Out, "  rollback: not checked here: %s; `kubectl etcd restore --rollback --id %s` checks it before it acts\n", why, j.ID)
				} else if c.Refused != "" {
					fmt.Fprintf(cfg.Out, "  rollback: refused: %s\n", c.Refused)
				} else {
					fmt.Fprintf(cfg.Out, "  rollback: etcd goes back to %s\n", c.OldDataDir)
				}
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d nodes could not be read", failed, len(ns))
	}
	return nil
}

func orEmpty(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// releaseState says where a two-phase rollback stands on a node: prepared
// (nothing acts yet), released (its agent begins at NotBefore), or
// recalled (its agent gives up without acting); "" when none was prepared.
func releaseState(j agentapi.JournalStatus) string {
	if j.RollbackReleaseError != "" {
		return "its record is unreadable: " + j.RollbackReleaseError
	}
	r := j.RollbackRelease
	if r == nil {
		return ""
	}
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	s := "prepared " + at(r.Prepared)
	switch {
	case r.Recalled != nil:
		s += ", recalled " + at(*r.Recalled) + ": its agent gives up without acting"
	case r.Released != nil && r.NotBefore != nil:
		s += ", released " + at(*r.Released) + ", begins " + at(*r.NotBefore)
	default:
		s += ", not released: nothing acts on it (a new `kubectl etcd restore --rollback` prepares every node again)"
	}
	return s
}
