package restore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// NodeJournals are the restore journals found on one node.
type NodeJournals struct {
	Node     string
	Journals []agentapi.JournalStatus
	Err      error
}

// Status reads every control-plane node's journals through a node pod
// each (`kubectl etcd restore --status`) and prints them to Out.
func Status(ctx context.Context, d Deps, cfg Config) ([]NodeJournals, error) {
	cfg = cfg.withDefaults()
	c, err := openNodes(ctx, d, cfg)
	if err != nil {
		return nil, err
	}
	_, out := c.read(ctx, cfg.ID)
	err = printStatus(cfg, out)
	return out, errors.Join(err, printHeld(cfg.Out, out, c.agents), c.runner.Cleanup(ctx))
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

// read starts a node pod on every node, installs the agent there and
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
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			js, err := f(m)
			out[i] = NodeJournals{Node: m.Node, Journals: js, Err: err}
		}()
	}
	wg.Wait()
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
				if c.Refused != "" {
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
