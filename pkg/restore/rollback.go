package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// Rollback rolls one restore back on every node, in two phases (see
// rollbackInPhases), then waits for the control plane as a restore does.
func Rollback(ctx context.Context, d Deps, cfg Config) error {
	cfg = cfg.withDefaults()
	c, err := openNodes(ctx, d, cfg)
	if err != nil {
		return err
	}
	ms, rn := c.members, c.runner
	_, found := c.read(ctx, "")
	// The rollback is back when another cluster than this one serves.
	now := readLive(ctx, d.Reads, ms)
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
	pods, again := c.read(ctx, id)
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
	if err := rollbackInPhases(ctx, cfg, ms, pods, c.agents, id); err != nil {
		return joinCleanup(ctx, rn, err)
	}
	// The rollback agents run in static pods of their own.
	if cerr := rn.Cleanup(ctx); cerr != nil {
		cfg.notef("Warning: %v", cerr)
	}
	r := &run{d: d, cfg: cfg, runner: rn, start: cfg.Now()}
	if err := r.waitBack(ctx, memberPlans(ms), leavesCluster(again, id, now.ClusterID)); err != nil {
		return err
	}
	// The old data knows the pods the restore made before the API servers
	// stopped: the node pods and the agents' mirror pods.
	r.removeLeftovers(ctx)
	if pods, err := d.Members(ctx); err == nil {
		if v, err := cluster.Status(ctx, d.Reads, pods); err == nil {
			fmt.Fprintf(cfg.Out, "Rolled back restore %s: cluster ID %s (was %s)\n", id, v.ClusterID, now.ClusterID)
		}
	}
	// The old data's revisions are below those the watchers saw since.
	fmt.Fprintf(cfg.Out, "\nNext:\n")
	r.kubeletAdvice(ctx, "rollback (its revisions are below those they saw since the restore)")
	return nil
}

// leavesCluster is the cluster ID a rollback of restore id leaves, which
// the wait waits to see go: the one serving now, once any node swapped to
// the restored data; "" when none did (a restore held or stopped before
// the swap runs on the old data still, and the rollback stays on its
// cluster: the wait then waits for health alone, C4).
func leavesCluster(ns []NodeJournals, id, now string) string {
	for _, n := range ns {
		for _, j := range n.Journals {
			if j.ID != id {
				continue
			}
			if s := j.Step(agentapi.StepSwap); s != nil && (s.State == agentapi.Done || s.State == agentapi.Running) {
				return now
			}
		}
	}
	return ""
}

// rollbackInPhases rolls every node back in two phases, as a restore
// starts (S6). A rollback stops kube-apiserver first, so the first node
// to act could cut the exec sessions that start the others, through the
// API it takes down: some nodes would end on the old data, the others on
// the restored data. So every node first prepares (`restore rollback
// --prepare`: its checks, under the journal's lock and with no agent's
// static pod there, and the rollback's static pod written aside; nothing
// acts), and only once every node has are they released together
// (`--release`: a file write each, whose agent waits out a grace before
// it acts). A release that fails recalls the others (`--recall`) while
// their agents still wait.
func rollbackInPhases(ctx context.Context, cfg Config, ms []discovery.Member, pods map[string]*nodepod.Pod, agents map[string]agentclient.Binary, id string) error {
	phase := func(p string) error {
		out := onEveryNode(ms, func(m discovery.Member) ([]agentapi.JournalStatus, error) {
			b, err := agentRun(ctx, pods[m.Node], agents[m.Node], nil, "rollback", "--id", id, "--"+p)
			var st agentapi.Started
			if err == nil && p == "release" && json.Unmarshal(b, &st) == nil && st.NotBefore != nil {
				cfg.notef("node %s: rollback of restore %s released; it begins at %s", m.Node, id, st.NotBefore.UTC().Format(time.RFC3339))
			}
			return nil, err
		})
		if err := failures(out); err != nil {
			return fmt.Errorf("%s the rollback: %w", p, err)
		}
		return nil
	}
	if err := phase("prepare"); err != nil {
		return fmt.Errorf("%w\nnothing was rolled back on any node (a prepared rollback changes nothing): fix that, then retry", err)
	}
	err := phase("release")
	if err == nil {
		return nil
	}
	if rerr := phase("recall"); rerr != nil {
		return hint.Permanent(fmt.Errorf("%w\nand the recall failed on some nodes, which roll back while the others stay:\n%v", err, rerr),
			"once the API answers, `kubectl etcd restore --status` shows which; `kubectl etcd restore --rollback --id %s` then rolls the others back", id)
	}
	return fmt.Errorf("%w\nthe other nodes' rollbacks were recalled before they began, so nothing was rolled back: retry", err)
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
