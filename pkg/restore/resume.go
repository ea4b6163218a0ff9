package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
)

// heldNode is a node that holds at a restore's barrier without a
// decision, and the decision that another node recorded there (S5): the
// agents serve a decision only while they run, so a node that held (its
// coordinator gone, or it came late) never learns it by itself.
type heldNode struct {
	ID, Node string
	// Decision is what node Source recorded at Recorded; empty when no
	// node recorded one.
	Decision agentapi.Decision
	Source   string
	Recorded time.Time
	// Waiting: its agent still waits at the barrier, holding the journal,
	// and takes a decision only once it has given up.
	Waiting bool
}

// heldNodes finds the nodes that hold at a barrier without a decision,
// each with the decision the other nodes of its restore recorded. It
// never makes one up: only a decision that a node recorded in its
// agentapi.BarrierFile is passed on, and none for a restore whose nodes
// recorded different ones, or whose record cannot be read.
func heldNodes(found []NodeJournals) ([]heldNode, error) {
	type record struct {
		node string
		r    *agentapi.DecisionRecord
	}
	recorded := map[string][]record{}
	unsure := map[string]bool{}
	var held []heldNode
	var errs []error
	for _, n := range found {
		for _, j := range n.Journals {
			switch {
			case j.BarrierError != "":
				unsure[j.ID] = true
				errs = append(errs, fmt.Errorf("node %s: %s", n.Node, j.BarrierError))
			case j.Barrier != nil:
				recorded[j.ID] = append(recorded[j.ID], record{n.Node, j.Barrier})
			case j.AtBarrier():
				held = append(held, heldNode{ID: j.ID, Node: n.Node, Waiting: j.AgentRunning})
			}
		}
	}
	for id, rs := range recorded {
		for _, r := range rs[1:] {
			if r.r.Decision != rs[0].r.Decision {
				unsure[id] = true
				errs = append(errs, fmt.Errorf("restore %s: node %s recorded %s at the barrier, node %s %s, though a barrier decides once: inspect their %s by hand; no decision is passed on",
					id, rs[0].node, rs[0].r.Decision, r.node, r.r.Decision, agentapi.BarrierFile))
				break
			}
		}
	}
	for i, h := range held {
		rs := recorded[h.ID]
		if unsure[h.ID] || len(rs) == 0 {
			continue
		}
		// A record the node made at the barrier itself before one that
		// was passed on to it.
		sort.SliceStable(rs, func(a, b int) bool { return rs[a].r.From == "" && rs[b].r.From != "" })
		held[i].Decision, held[i].Source, held[i].Recorded = rs[0].r.Decision, rs[0].node, rs[0].r.Recorded.UTC()
	}
	return held, errors.Join(errs...)
}

// from is where h's decision comes from, as the agent records it.
func (h heldNode) from() string {
	return fmt.Sprintf("%s of node %s, recorded %s", agentapi.BarrierFile, h.Source, h.Recorded.Format(time.RFC3339))
}

// recorded says which node recorded h's decision, and when.
func (h heldNode) recorded() string {
	return fmt.Sprintf("node %s recorded %s there at %s", h.Source, h.Decision, h.Recorded.Format(time.RFC3339))
}

// args are the agent's arguments that pass the decision on to h.
func (h heldNode) args() []string {
	return []string{"run", "--id", h.ID, "--decision", string(h.Decision), "--from", h.from(), "--detach"}
}

// nodeCommand is h's pass-on as an operator runs it on the node, as root.
func (h heldNode) nodeCommand(a agentclient.Binary) string {
	return fmt.Sprintf("%s restore run --id %s --decision %s --from '%s' --detach --root /", a.NodePath(), h.ID, h.Decision, h.from())
}

// printHeld says, for each node that holds at a barrier, how it learns
// the decision: the plugin's --resume, or the node command over ssh.
func printHeld(w io.Writer, found []NodeJournals, agents map[string]agentclient.Binary) error {
	held, err := heldNodes(found)
	for _, h := range held {
		switch {
		case h.Decision == "":
			fmt.Fprintf(w, "\nNode %s holds at the barrier of restore %s, and no node recorded a decision: resume it with `restore run` on the node once its coordinator is back, or roll every node back: kubectl etcd restore --rollback --id %s\n", h.Node, h.ID, h.ID)
		case h.Waiting:
			fmt.Fprintf(w, "\nNode %s waits at the barrier of restore %s; %s. Once its agent gives up waiting, pass it on with `kubectl etcd restore --resume --id %s`, or on node %s as root:\n  %s\n",
				h.Node, h.ID, h.recorded(), h.ID, h.Node, h.nodeCommand(agents[h.Node]))
		default:
			fmt.Fprintf(w, "\nNode %s holds at the barrier of restore %s; %s. Pass it on:\n  kubectl etcd restore --resume --id %s\nor, without the API, on node %s as root:\n  %s\n",
				h.Node, h.ID, h.recorded(), h.ID, h.Node, h.nodeCommand(agents[h.Node]))
		}
	}
	if err != nil {
		return fmt.Errorf("the barrier's decisions: %w", err)
	}
	return nil
}

// Resume passes on, to every node that holds at the barrier of a restore
// without a decision, the decision that another node recorded there
// (`kubectl etcd restore --resume`): each node's agent records it, with
// where it came from, and resumes on it (`restore run --decision`). It
// refuses when no node recorded a decision, or two recorded different
// ones. Then it waits for the control plane.
func Resume(ctx context.Context, d Deps, cfg Config) error {
	cfg = cfg.withDefaults()
	c, err := openNodes(ctx, d, cfg)
	if err != nil {
		return err
	}
	rn := c.runner
	pods, found := c.read(ctx, cfg.ID)
	todo, err := passOns(found)
	if err != nil {
		return joinCleanup(ctx, rn, fmt.Errorf("%w; nothing was passed on", err))
	}
	var errs []error
	for _, h := range todo {
		if _, err := agentRun(ctx, pods[h.Node], c.agents[h.Node], nil, h.args()...); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", h.Node, err))
			continue
		}
		cfg.notef("node %s: passed on %s (%s); its agent resumes restore %s", h.Node, h.Decision, h.recorded(), h.ID)
	}
	if err := errors.Join(errs...); err != nil {
		return joinCleanup(ctx, rn, err)
	}
	if err := rn.Cleanup(ctx); err != nil {
		cfg.notef("Warning: %v", err)
	}
	r := &run{d: d, cfg: cfg, runner: rn, start: cfg.Now()}
	if err := r.waitBack(ctx, memberPlans(c.members), ""); err != nil {
		return fmt.Errorf("%w: see `kubectl etcd restore --status`", err)
	}
	fmt.Fprintf(cfg.Out, "Passed the barrier's decision %s of restore %s on to %s; every member is healthy\n", todo[0].Decision, todo[0].ID, nodeList(todo))
	return nil
}

// passOns are the held nodes to pass a decision on to: every one of a
// single restore, none still waiting, each with a recorded decision.
func passOns(found []NodeJournals) ([]heldNode, error) {
	if err := failures(found); err != nil {
		return nil, err
	}
	held, err := heldNodes(found)
	if err != nil {
		return nil, err
	}
	var todo []heldNode
	ids := map[string]bool{}
	for _, h := range held {
		switch {
		case h.Decision == "":
			return nil, fmt.Errorf("node %s holds at the barrier of restore %s, and no node recorded a decision to pass on: resume it on the node once its coordinator is back, or roll every node back (kubectl etcd restore --rollback --id %s)", h.Node, h.ID, h.ID)
		case h.Waiting:
			return nil, fmt.Errorf("the agent on node %s still waits at the barrier of restore %s: it takes a decision only once it gives up waiting (at twice the barrier's timeout); retry then", h.Node, h.ID)
		}
		todo = append(todo, h)
		ids[h.ID] = true
	}
	switch {
	case len(todo) == 0:
		return nil, errors.New("no node holds at a barrier: there is no decision to pass on; `kubectl etcd restore --status` shows every journal")
	case len(ids) > 1:
		return nil, fmt.Errorf("nodes of several restores hold at their barrier: name one with --id (see `kubectl etcd restore --status`)")
	}
	return todo, nil
}

func nodeList(hs []heldNode) string {
	var out []string
	for _, h := range hs {
		out = append(out, "node "+h.Node)
	}
	return strings.Join(out, ", ")
}
