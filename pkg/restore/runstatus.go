package restore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// NodeJournals are the restore journals found on one node.
type NodeJournals struct {
	Node     string
	Journals []JournalStatus
	Err      error
}

// Status reads every control-plane node's journals through a node pod
// each (`kubectl etcd restore --status`) and prints them to Out.
func Status(ctx context.Context, d Deps, cfg Config) ([]NodeJournals, error) {
	cfg = cfg.withDefaults()
	ms, agents, err := membersAndAgents(ctx, d, cfg)
	if err != nil {
		return nil, err
	}
	rn := &nodepod.Runner{Client: d.Client, Exec: d.Exec, Log: cfg.ErrOut}
	out := onEveryNode(ms, func(m discovery.Member) ([]JournalStatus, error) {
		var js []JournalStatus
		err := rn.Run(ctx, nodeSpec(cfg, m.Node), func(ctx context.Context, p *nodepod.Pod) error {
			if err := ensureAgent(ctx, p, agents[m.Node]); err != nil {
				return err
			}
			var err error
			js, err = agentStatus(ctx, p, agents[m.Node], cfg.ID)
			return err
		})
		return js, err
	})
	return out, printStatus(cfg, out)
}

// Rollback runs `restore rollback --detach` for one restore on every
// node, then waits for the control plane as a restore does.
func Rollback(ctx context.Context, d Deps, cfg Config) error {
	cfg = cfg.withDefaults()
	ms, agents, err := membersAndAgents(ctx, d, cfg)
	if err != nil {
		return err
	}
	rn := &nodepod.Runner{Client: d.Client, Exec: d.Exec, Log: cfg.ErrOut}
	var mu sync.Mutex
	pods := map[string]*nodepod.Pod{}
	found := onEveryNode(ms, func(m discovery.Member) ([]JournalStatus, error) {
		var js []JournalStatus
		p, err := rn.Start(ctx, nodeSpec(cfg, m.Node))
		if err == nil {
			mu.Lock()
			pods[m.Node] = p
			mu.Unlock()
			if err = ensureAgent(ctx, p, agents[m.Node]); err == nil {
				js, err = agentStatus(ctx, p, agents[m.Node], "")
			}
		}
		return js, err
	})
	// The rollback is back when another cluster than this one serves.
	now := readLive(ctx, d.Dialer, ms)
	id, err := rollbackID(cfg.ID, found)
	if err != nil {
		return joinCleanup(ctx, rn, err)
	}
	// Every node rolls back, or none: an agent still at work on one node
	// would refuse, and the others would roll back alone.
	for _, n := range found {
		for _, j := range n.Journals {
			if j.ID == id && j.AgentRunning {
				return joinCleanup(ctx, rn, fmt.Errorf("the agent on node %s still runs restore %s (phase %s), so nothing was rolled back: it ends by itself; see `kubectl etcd restore --status`, then retry", n.Node, id, j.Phase))
			}
		}
	}
	prompt, err := rollbackPlan(id, found, cfg.Now())
	if err != nil {
		return joinCleanup(ctx, rn, err)
	}
	fmt.Fprint(cfg.Out, prompt)
	// No node pod waits behind the prompt: they go now, and new ones come
	// once it is answered, which check every node again (a prompt may
	// stay open for a long time).
	if err := rn.Cleanup(ctx); err != nil {
		return err
	}
	if err := cfg.Confirm(nil); err != nil {
		return err
	}
	again := onEveryNode(ms, func(m discovery.Member) ([]JournalStatus, error) {
		p, err := rn.Start(ctx, nodeSpec(cfg, m.Node))
		if err != nil {
			return nil, err
		}
		mu.Lock()
		pods[m.Node] = p
		mu.Unlock()
		return agentStatus(ctx, p, agents[m.Node], id)
	})
	for _, n := range again {
		if n.Err != nil {
			return joinCleanup(ctx, rn, fmt.Errorf("node %s: %w; nothing was rolled back", n.Node, n.Err))
		}
		for _, j := range n.Journals {
			if j.AgentRunning {
				return joinCleanup(ctx, rn, fmt.Errorf("the agent on node %s runs restore %s now (phase %s), so nothing was rolled back: see `kubectl etcd restore --status`, then retry", n.Node, id, j.Phase))
			}
		}
	}
	if _, err := rollbackPlan(id, again, cfg.Now()); err != nil {
		return joinCleanup(ctx, rn, err)
	}
	errs := onEveryNode(ms, func(m discovery.Member) ([]JournalStatus, error) {
		cmd := []string{host(agents[m.Node].NodePath()), "restore", "rollback", "--id", id, "--detach", "--root", nodepod.HostPrefix}
		var errb strings.Builder
		if err := pods[m.Node].Exec(ctx, cmd, nil, &errb, &errb); err != nil {
			return nil, fmt.Errorf("%w: %s", err, errb.String())
		}
		cfg.notef("node %s: rolling back restore %s", m.Node, id)
		return nil, nil
	})
	for _, e := range errs {
		if e.Err != nil {
			cfg.notef("node %s: %v", e.Node, e.Err)
		}
	}
	// The rollback agents run in static pods of their own.
	if cerr := rn.Cleanup(ctx); cerr != nil {
		cfg.notef("Warning: %v", cerr)
	}
	r := &run{d: d, cfg: cfg, runner: rn, start: cfg.Now()}
	var plan []MemberPlan
	for _, m := range ms {
		plan = append(plan, MemberPlan{Node: m.Node, Name: m.Name})
	}
	if err := r.waitBack(ctx, plan, now.ClusterID); err != nil {
		return err
	}
	// The old data knows the pods the restore made before the API servers
	// stopped: the node pods and the agents' mirror pods.
	r.removeLeftovers(ctx)
	if pods, err := d.Members(ctx); err == nil {
		if v, err := etcd.CollectStatus(ctx, d.Dialer, pods); err == nil {
			fmt.Fprintf(cfg.Out, "Rolled back restore %s: cluster ID %s (was %s)\n", id, v.ClusterID, now.ClusterID)
		}
	}
	// The old data's revisions are below those the watchers saw since.
	fmt.Fprintf(cfg.Out, "\nNext:\n")
	r.kubeletAdvice(ctx, "rollback (its revisions are below those they saw since the restore)")
	return nil
}

// rollbackPlan is what the rollback of restore id does on each node, as
// the prompt shows it; it refuses, before anything changes anywhere, when
// any node's own check refuses (agent.CheckRollback): a rollback on some
// nodes only would split the cluster.
func rollbackPlan(id string, found []NodeJournals, now time.Time) (string, error) {
	var b strings.Builder
	var refused []string
	var created time.Time
	for _, n := range found {
		for _, j := range n.Journals {
			if j.ID != id {
				continue
			}
			created = j.Created
			switch c := j.Rollback; {
			case c == nil:
				fmt.Fprintf(&b, "  node %s: the old etcd manifest goes back in (this node's agent does not check the old data)\n", n.Node)
			case c.Refused != "":
				refused = append(refused, fmt.Sprintf("node %s: %s", n.Node, c.Refused))
			case c.OldDataWritten != nil:
				fmt.Fprintf(&b, "  node %s: etcd goes back to %s, last written %s (%s ago)\n", n.Node, c.OldDataDir,
					c.OldDataWritten.UTC().Format(time.RFC3339), now.Sub(*c.OldDataWritten).Round(time.Second))
			default:
				fmt.Fprintf(&b, "  node %s: etcd goes back to %s\n", n.Node, c.OldDataDir)
			}
		}
	}
	if len(refused) > 0 {
		return "", hint.Permanent(fmt.Errorf("restore %s is not rolled back, and nothing was changed on any node:\n  %s", id, strings.Join(refused, "\n  ")),
			"the cluster stays on the restored data; `kubectl etcd restore --status` shows every journal")
	}
	head := fmt.Sprintf("Roll back restore %s: the old etcd manifests go back in, and the API servers stop meanwhile.\n", id)
	if !created.IsZero() {
		head += fmt.Sprintf("Every write since the restore began (%s, %s ago) is lost.\n", created.UTC().Format(time.RFC3339), now.Sub(created).Round(time.Second))
	}
	return head + b.String(), nil
}

func joinCleanup(ctx context.Context, rn *nodepod.Runner, err error) error {
	if cerr := rn.Cleanup(ctx); cerr != nil {
		return fmt.Errorf("%w; %v", err, cerr)
	}
	return err
}

// rollbackID is the id asked for, or the one unfinished restore.
func rollbackID(want string, found []NodeJournals) (string, error) {
	ids := map[string]bool{}
	for _, n := range found {
		if n.Err != nil {
			return "", fmt.Errorf("node %s: %w", n.Node, n.Err)
		}
		for _, j := range n.Journals {
			if want == "" && j.Unfinished() || j.ID == want {
				ids[j.ID] = true
			}
		}
	}
	var list []string
	for id := range ids {
		list = append(list, id)
	}
	sort.Strings(list)
	switch {
	case len(list) == 1:
		return list[0], nil
	case want != "":
		return "", fmt.Errorf("no node has a journal of restore %s: see `kubectl etcd restore --status`", want)
	case len(list) == 0:
		return "", fmt.Errorf("no unfinished restore to roll back: name a finished one with --id (see `kubectl etcd restore --status`)")
	}
	return "", fmt.Errorf("several unfinished restores (%s): name one with --id", strings.Join(list, ", "))
}

func nodeSpec(cfg Config, node string) nodepod.Spec {
	return nodepod.Spec{Purpose: PurposeNode, Node: node, Namespace: cfg.Namespace, Image: cfg.Image, Profile: nodepod.ProfileNode, Lifetime: cfg.PodLifetime}
}

func membersAndAgents(ctx context.Context, d Deps, cfg Config) ([]discovery.Member, map[string]agentBinary, error) {
	ms, err := d.Members(ctx)
	if err != nil {
		return nil, nil, err
	}
	agents, err := findAgents(ctx, d, cfg.AgentDir, ms)
	return ms, agents, err
}

func onEveryNode(ms []discovery.Member, f func(discovery.Member) ([]JournalStatus, error)) []NodeJournals {
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
			if c := j.Rollback; c != nil && j.Phase != agent.PhaseRolledBack {
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
