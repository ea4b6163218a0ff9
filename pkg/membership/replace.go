package membership

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// NodeAgent is the agent on one node, reached through a node pod.
type NodeAgent interface {
	// Run runs `kubectl-etcd-agent args...` there.
	Run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error)
	// FreeBytes is the room left on the filesystem that holds dir.
	FreeBytes(ctx context.Context, dir string) (int64, error)
	// Close deletes the node pod.
	Close(ctx context.Context)
}

// NodeAgents starts a node's agent; Connected says whether a pod can start
// on the node now (its kubelet reaches the API).
type NodeAgents interface {
	Connected(ctx context.Context, node string) error
	Open(ctx context.Context, node string) (NodeAgent, error)
}

// ReplaceConfig is what `kubectl etcd member replace` asks for.
type ReplaceConfig struct {
	Options
	// Member is the member's name, node, pod or hex ID.
	Member string
	// ID names the replace (its journal dir); default the time, as
	// restore's.
	ID string
	// Status prints the node's replace journals and changes nothing.
	Status bool
	// StaticPodDir reads the node's kubelet static pod dir.
	StaticPodDir func(ctx context.Context, node string) (string, error)
	Agents       NodeAgents
	// Rediscover lists the etcd pods again, for the health at the end: the
	// replaced member's pod is a new one.
	Rediscover func(ctx context.Context) ([]discovery.Member, error)
	// Timeout bounds the wait for the agent's steps (default 20m): the
	// replace carries on past it, on the node.
	Timeout time.Duration
	// ScriptDir, when set, gets the node script that runs the replace on
	// the node itself, with the agents from AgentDir, instead of a node
	// pod: for a node whose kubelet cannot start a pod.
	ScriptDir, AgentDir string
	// Again replaces a member that a replace finished with lately: a
	// command re-run after it was cut off finds the replace done, and
	// without Again says so rather than replace the member once more.
	Again bool
}

// recentReplace is how long a finished replace keeps a re-run from
// starting another without Again.
const recentReplace = time.Hour

// ReplaceResult is what a replace did.
type ReplaceResult struct {
	Result
	ID      string                   `json:"id,omitempty"`
	Node    string                   `json:"node,omitempty"`
	OldID   string                   `json:"oldID,omitempty"`
	NewID   string                   `json:"newID,omitempty"`
	Journal []agentapi.JournalStatus `json:"journals,omitempty"`
	Took    string                   `json:"took,omitempty"`
	// Script is the node script written with --script-dir.
	Script string `json:"script,omitempty"`
}

// defaultStaticPodDir is kubeadm's.
const defaultStaticPodDir = "/etc/kubernetes/manifests"

// Replace replaces a member whose data is lost or bad, on a node that
// keeps its name, address and certificates: the agent on its node stops
// etcd, moves the data aside, swaps the member's ID for a learner's at
// the same peer URL, starts etcd to join as that learner, and promotes it.
// A replace already under way on the node is followed (and resumed when
// it stopped) rather than started again.
func Replace(ctx context.Context, t etcd.Transport, pods []discovery.Member, cfg ReplaceConfig) (*ReplaceResult, error) {
	cfg.Defaults()
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Minute
	}
	if cfg.ID == "" {
		cfg.ID = cfg.Now().UTC().Format("20060102T150405Z")
	}
	node, _, err := replaceNode(pods, cfg.Member)
	if cfg.Status {
		if err != nil {
			return nil, err
		}
		return replaceStatus(ctx, cfg, node)
	}
	c, target, err := openTarget(ctx, t, pods, cfg.Member)
	if err == nil && target.m == nil && cfg.Rediscover != nil {
		// A member just replaced has a new pod, which the API may not
		// list yet (its kubelet recreates the mirror pod): wait a little.
		c.Close()
		c, target, err = awaitPod(ctx, t, cfg)
	}
	if err != nil {
		// The member may be out of the list already (a replace cut off
		// after its remove): follow the node's replace, if any.
		if node != "" {
			if res, ok, ferr := followUnfinished(ctx, t, cfg, node); ok {
				return res, ferr
			}
		}
		return nil, err
	}
	defer c.Close()
	if target.m == nil {
		return nil, hint.Permanent(fmt.Errorf("no etcd pod runs member %s, so its node is unknown", target.label()),
			"a member whose node is gone is removed (kubectl etcd member remove) and a new node joins (kubeadm join); replace is for a node that keeps its name, address and certificates")
	}
	node = target.m.Pod.Node
	res := &ReplaceResult{Result: Result{Op: "replace", Member: target.ref(), DryRun: cfg.DryRun, Members: c.MemberList()}, ID: cfg.ID, Node: node, OldID: etcd.HexID(target.info.ID)}

	voters, _ := votes(c, 0)
	left, healthyLeft := votes(c, target.info.ID)
	healthySelf := healthy(c, target.info.ID)
	cfg.Notef("Plan: replace member %s on node %s: new data, new member ID, same name and peer URL", target.label(), node)
	state := "not healthy: " + hint.OneLine(errString(target.m.Err))
	if healthySelf {
		state = "healthy (its data is dropped all the same, and kept aside)"
	}
	cfg.Notef("  its etcd pod %s is %s", target.m.Pod.Pod, state)
	// From the stop until the remove commits, the member is a voter that
	// does not answer: the others must make the quorum of all voters.
	need := quorum(voters)
	if target.info.IsLearner {
		need = quorum(left)
	}
	cfg.Notef("  voting members: %d; while it is stopped the other %d must make a quorum of %d (%d healthy); %d after", voters, left, need, healthyLeft, voters)
	if left == 0 || healthyLeft < need {
		return nil, hint.Permanent(fmt.Errorf("refusing to replace %s: while it is stopped, the other %d voting members need %d healthy for a quorum and %s", target.label(), left, need, countIs(healthyLeft)),
			"a replace needs the rest of the cluster serving (see `kubectl etcd health`); with 2 voting members, add a learner first (kubectl etcd member add --learner); with the quorum lost, restore from a backup (kubectl etcd restore)")
	}
	spec := replaceSpec(ctx, cfg, c, target)
	if cfg.ScriptDir != "" {
		return res, replaceScript(cfg, spec, target, res)
	}
	// A member whose new pod is not listed as running yet may answer all
	// the same, through the leader.
	answers := healthySelf || learnerStatus(ctx, c, target) != nil
	if err := cfg.Agents.Connected(ctx, node); err != nil {
		if answers {
			// Its etcd answers, so its API server can, and its kubelet
			// comes back (a replace that just finished, say).
			cfg.Notef("  node %s takes no pod yet (%s), though its member answers: waiting up to 2m for its kubelet", node, hint.OneLine(err.Error()))
			err = cfg.WaitFor(ctx, 2*time.Minute, func() error { return cfg.Agents.Connected(ctx, node) })
		}
		if err != nil {
			return nil, cutOffReplace(err, node, healthySelf)
		}
	}
	a, err := cfg.Agents.Open(ctx, node)
	if err != nil {
		return nil, err
	}
	defer a.Close(context.WithoutCancel(ctx))
	if r, ok, err := followOn(ctx, t, cfg, a, node); ok {
		return r, err
	}
	if !cfg.Again {
		if done, err := recentlyDone(ctx, t, cfg, a, target, answers, res); done || err != nil {
			if err != nil {
				return nil, err
			}
			return res, nil
		}
	}
	if err := roomFor(ctx, cfg, c, a, target); err != nil {
		return nil, err
	}
	cfg.Notef("  steps on node %s, by the agent in a static pod (it carries on if this command stops; see --status):", node)
	printSteps(cfg, spec)
	cfg.Notef("  the old data: %s on node %s (kept)", agentapi.AsideDataDir(target.m.Pod.DataDir, cfg.ID), node)
	if cfg.DryRun {
		cfg.Notef("Dry run: nothing was changed")
		return res, nil
	}
	if err := cfg.Confirm(fmt.Sprintf("Replace member %s on node %s?", target.label(), node)); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	start := cfg.Now()
	out, err := a.Run(ctx, bytes.NewReader(raw), "replace", "start", "--spec", "-")
	if err != nil {
		return nil, fmt.Errorf("start the replace on node %s: %w", node, err)
	}
	var st agentapi.Started
	if json.Unmarshal(out, &st) == nil && st.PID != 0 {
		cfg.Notef("node %s: agent pid %d runs replace %s in the static pod %s; log %s", node, st.PID, cfg.ID, spec.Pod().PodName("run"), st.Log)
	}
	return finish(ctx, t, cfg, a, res, start)
}

// awaitPod reads the cluster again until the member that cfg names has
// an etcd pod, for at most a minute.
func awaitPod(ctx context.Context, t etcd.Transport, cfg ReplaceConfig) (*cluster.Cluster, listed, error) {
	deadline := cfg.Now().Add(time.Minute)
	cfg.Notef("Member %s has no etcd pod listed; waiting up to a minute for one (a pod just recreated)", cfg.Member)
	for {
		pods, err := cfg.Rediscover(ctx)
		if err != nil {
			return nil, listed{}, err
		}
		c, target, err := openTarget(ctx, t, pods, cfg.Member)
		if err != nil || target.m != nil || cfg.Now().After(deadline) {
			return c, target, err
		}
		c.Close()
		select {
		case <-ctx.Done():
			return nil, listed{}, ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
}

// replaceSpec is the agent's spec for the target's node.
func replaceSpec(ctx context.Context, cfg ReplaceConfig, c *cluster.Cluster, target listed) agentapi.ReplaceSpec {
	node := target.m.Pod.Node
	static := defaultStaticPodDir
	if cfg.StaticPodDir != nil {
		if d, err := cfg.StaticPodDir(ctx, node); err == nil {
			static = d
		} else {
			cfg.Notef("  warning: node %s's kubelet config cannot be read (%v): assuming the static pod dir %s", node, hint.OneLine(err.Error()), static)
		}
	}
	spec := agentapi.ReplaceSpec{ID: cfg.ID, Node: node, Member: target.info.Name, StaticPodDir: static,
		JournalDir: path.Join(agentapi.JournalRoot(agentapi.ReplaceOperation), cfg.ID), OldID: etcd.HexID(target.info.ID),
		AgentImage: target.m.Pod.Image, HealthyTimeout: agentapi.Duration(cfg.HealthTimeout * 5)}
	for _, mi := range c.List {
		if mi.ID != target.info.ID && healthy(c, mi.ID) {
			spec.Endpoints = append(spec.Endpoints, mi.ClientURLs...)
		}
	}
	return spec
}

// stepLines are the agent's steps as the plan and the script list them.
func stepLines(spec agentapi.ReplaceSpec) []string {
	return planLines(agent.PlanReplace(&spec))
}

func printSteps(cfg ReplaceConfig, spec agentapi.ReplaceSpec) {
	for i, l := range stepLines(spec) {
		cfg.Notef("    %d. %s", i+1, l)
	}
}

// replaceScript writes the node script instead of reaching the node.
func replaceScript(cfg ReplaceConfig, spec agentapi.ReplaceSpec, target listed, res *ReplaceResult) error {
	node := spec.Node
	cfg.Notef("  steps on node %s, by the script %s that you run there, then by the agent in a static pod:", node, ReplaceScript(node))
	cfg.Notef("    0. check the agent's sha256, install it under /var/lib/kubectl-etcd/bin, start its static pod")
	printSteps(cfg, spec)
	cfg.Notef("  the old data: %s on node %s (kept)", agentapi.AsideDataDir(target.m.Pod.DataDir, cfg.ID), node)
	if cfg.DryRun {
		cfg.Notef("Dry run: nothing was written")
		return nil
	}
	archs, err := writeReplaceScript(cfg.ScriptDir, cfg.AgentDir, spec, stepLines(spec))
	if err != nil {
		return err
	}
	res.Script = filepath.Join(cfg.ScriptDir, ReplaceScript(node))
	cfg.Notef("\nWrote %s: %s and the agents for %s", cfg.ScriptDir, ReplaceScript(node), strings.Join(archs, " and "))
	cfg.Notef("Next:\n  1. copy %s to node %s (scp -r, or any way you have)\n  2. on %s, as root: sh %s/%s\n     it follows the steps and exits 0 once the member is back and promoted (Ctrl-C is safe: the node carries on)\n  3. kubectl etcd member replace %s --status reads the journal once the node answers; kubectl etcd health shows the members",
		cfg.ScriptDir, node, node, filepath.Base(cfg.ScriptDir), ReplaceScript(node), node)
	return nil
}

// replaceNode is the node of the etcd pod that want names, when one does.
func replaceNode(pods []discovery.Member, want string) (string, *discovery.Member, error) {
	for i, p := range pods {
		if etcd.Names(want, p.Name, p.Node, p.Pod, 0) {
			return p.Node, &pods[i], nil
		}
	}
	return "", nil, hint.Permanent(fmt.Errorf("no etcd pod is member, node or pod %q", want), "see `kubectl etcd members`")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// cutOffReplace explains why nothing can start on the node.
func cutOffReplace(err error, node string, running bool) error {
	var h *hint.Error
	if errors.As(err, &h) {
		err = h.Err
	}
	why := "on kubeadm 1.33 and later (ControlPlaneKubeletLocalMode) a control-plane node's kubelet reaches the API through its own node's API server, which needs this etcd member: while the member is down, no pod starts there, the agent's included"
	if running {
		why = "see `kubectl describe node " + node + "`"
	}
	return hint.Permanent(fmt.Errorf("cannot replace on node %s: %w", node, err),
		"%s. Write a script to run on the node instead: kubectl etcd member replace %s --script-dir DIR; or bring the node's kubelet back to the API (a kubelet.conf pointed at a load-balanced or another node's API server serves too), then run this again", why, node)
}

// roomFor checks that the data dir's filesystem holds the cluster's
// database again, and some.
func roomFor(ctx context.Context, cfg ReplaceConfig, c *cluster.Cluster, a NodeAgent, target listed) error {
	var size int64
	for _, m := range c.Members {
		if m.Status != nil && m.Status.DBSize > size {
			size = m.Status.DBSize
		}
	}
	free, err := a.FreeBytes(ctx, target.m.Pod.DataDir)
	if err != nil {
		return fmt.Errorf("check the free disk space on node %s: %w", target.m.Pod.Node, err)
	}
	need := size + size/4 + 64<<20
	cfg.Notef("  disk: %s free for %s (the database is %s)", humanize.IBytes(uint64(free)), target.m.Pod.DataDir, humanize.IBytes(uint64(size)))
	if free < need {
		return hint.Permanent(fmt.Errorf("node %s has %s free for %s, and the new member needs about %s", target.m.Pod.Node, humanize.IBytes(uint64(free)), target.m.Pod.DataDir, humanize.IBytes(uint64(need))),
			"free some space there (the old data stays, moved aside), then retry")
	}
	return nil
}

// followUnfinished looks for a replace under way on node and follows it.
func followUnfinished(ctx context.Context, t etcd.Transport, cfg ReplaceConfig, node string) (*ReplaceResult, bool, error) {
	if cfg.Agents.Connected(ctx, node) != nil {
		return nil, false, nil
	}
	a, err := cfg.Agents.Open(ctx, node)
	if err != nil {
		return nil, false, nil
	}
	defer a.Close(context.WithoutCancel(ctx))
	return followOn(ctx, t, cfg, a, node)
}

// followOn follows (resuming when it stopped) an unfinished replace on
// the node; ok says there was one. An unfinished restore is refused.
func followOn(ctx context.Context, t etcd.Transport, cfg ReplaceConfig, a NodeAgent, node string) (*ReplaceResult, bool, error) {
	for _, op := range []string{agentapi.RestoreOperation, agentapi.ReplaceOperation} {
		js, err := journals(ctx, a, op, "")
		if err != nil {
			return nil, true, err
		}
		for _, j := range js {
			if !j.Unfinished() {
				continue
			}
			if op == agentapi.RestoreOperation {
				return nil, true, agentapi.UnfinishedError(&j.Journal)
			}
			res := &ReplaceResult{Result: Result{Op: "replace", Member: cluster.MemberRef{Name: specMember(j.Journal)}}, ID: j.ID, Node: node, OldID: specOldID(j.Journal)}
			cfg.Notef("Replace %s of member %s is under way on node %s (phase %s, agent running: %t): following it", j.ID, specMember(j.Journal), node, j.Phase, j.AgentRunning)
			if !j.AgentRunning && j.Phase == agentapi.PhaseFailed {
				cfg.Notef("  it stopped: %s", j.Error)
				if cfg.DryRun {
					cfg.Notef("Dry run: it would be resumed")
					return res, true, nil
				}
				if err := cfg.Confirm(fmt.Sprintf("Resume replace %s on node %s?", j.ID, node)); err != nil {
					return nil, true, err
				}
			}
			if !j.AgentRunning && !cfg.DryRun {
				if err := resume(ctx, cfg, a, j.ID); err != nil {
					return nil, true, err
				}
			}
			if cfg.DryRun {
				return res, true, nil
			}
			r, err := finish(ctx, t, cfg, a, res, cfg.Now())
			return r, true, err
		}
	}
	return nil, false, nil
}

// resume starts the agent again on a replace whose agent is not running:
// its static pod may be about to restart it, so it waits a little first.
func resume(ctx context.Context, cfg ReplaceConfig, a NodeAgent, id string) error {
	var last error
	for i := 0; i < 3; i++ {
		_, last = a.Run(ctx, nil, "replace", "run", "--id", id, "--detach")
		if last == nil {
			cfg.Notef("Resumed replace %s", id)
			return nil
		}
		if !strings.Contains(last.Error(), "is there already") && !strings.Contains(last.Error(), "running") {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
		}
	}
	if js, err := journals(ctx, a, agentapi.ReplaceOperation, id); err == nil && len(js) == 1 && js[0].AgentRunning {
		return nil // it came back by itself
	}
	return fmt.Errorf("resume replace %s: %w", id, last)
}

// recentlyDone reports a replace on the member's node that finished with
// it less than recentReplace ago (the newest such): a command re-run
// after it was cut off finds the work done, and says so. A member not
// healthy yet is waited for (its new pod may not be listed as running
// yet); one that does not come is refused: --again replaces it once more.
func recentlyDone(ctx context.Context, t etcd.Transport, cfg ReplaceConfig, a NodeAgent, target listed, healthyNow bool, res *ReplaceResult) (bool, error) {
	js, err := journals(ctx, a, agentapi.ReplaceOperation, "")
	if err != nil {
		return false, err
	}
	for i := len(js) - 1; i >= 0; i-- { // newest first: ids sort by time
		j := js[i]
		if j.Phase != agentapi.PhaseDone || specMember(j.Journal) != target.info.Name || len(j.Steps) == 0 {
			continue
		}
		end := j.Steps[len(j.Steps)-1].Ended
		if end == nil || cfg.Now().Sub(*end) >= recentReplace {
			return false, nil
		}
		ago := cfg.Now().Sub(*end).Round(time.Second)
		res.ID, res.OldID = j.ID, specOldID(j.Journal)
		if healthyNow {
			cfg.Notef("Replace %s finished with member %s on node %s %s ago; it is %s now and healthy: nothing to do (--again replaces it once more)", j.ID, target.info.Name, j.Node, ago, target.label())
			res.Done, res.NewID = true, etcd.HexID(target.info.ID)
			return true, nil
		}
		if cfg.DryRun {
			cfg.Notef("  note: replace %s finished with this member %s ago and it is not healthy: a run waits for it, and replaces it once more only with --again", j.ID, ago)
			return false, nil
		}
		cfg.Notef("Replace %s finished with member %s on node %s %s ago; waiting for every member to be healthy", j.ID, target.info.Name, j.Node, ago)
		if err := afterReplace(ctx, t, cfg, res); err != nil {
			return false, hint.Permanent(fmt.Errorf("replace %s finished with member %s %s ago, and it is not healthy: %w; nothing was changed", j.ID, target.info.Name, ago, err),
				"see `kubectl etcd health` and the member's log (kubectl -n kube-system logs etcd-%s); to replace it once more, add --again", j.Node)
		}
		return true, nil
	}
	return false, nil
}

func specOldID(j agentapi.Journal) string {
	var s agentapi.ReplaceSpec
	_ = json.Unmarshal(j.Spec, &s)
	return s.OldID
}

func specMember(j agentapi.Journal) string {
	var s agentapi.ReplaceSpec
	_ = json.Unmarshal(j.Spec, &s)
	return s.Member
}

func journals(ctx context.Context, a NodeAgent, op, id string) ([]agentapi.JournalStatus, error) {
	args := []string{op, "status"}
	if id != "" {
		args = append(args, "--id", id)
	}
	out, err := a.Run(ctx, nil, args...)
	if err != nil {
		return nil, fmt.Errorf("read the node's %s journals: %w", op, err)
	}
	var js []agentapi.JournalStatus
	if err := json.Unmarshal(out, &js); err != nil {
		return nil, fmt.Errorf("the agent's status is not JSON (%v): plugin and agent versions differ?", err)
	}
	return js, nil
}

// finish follows the journal until the replace ends, printing each step,
// then waits until every member is healthy.
func finish(ctx context.Context, t etcd.Transport, cfg ReplaceConfig, a NodeAgent, res *ReplaceResult, start time.Time) (*ReplaceResult, error) {
	seen := map[string]agentapi.State{}
	deadline := cfg.Now().Add(cfg.Timeout)
	var j *agentapi.JournalStatus
	misses := 0
	for {
		js, err := journals(ctx, a, agentapi.ReplaceOperation, res.ID)
		switch {
		case err == nil && len(js) == 1:
			misses = 0
			j = &js[0]
			for _, s := range j.Steps {
				if seen[s.Name] != s.State {
					seen[s.Name] = s.State
					if s.State != agentapi.Pending {
						cfg.Notef("%6s  %-8s %s%s", cfg.Now().Sub(start).Round(time.Second), s.State, s.Name, suffix(s.Error))
					}
				}
			}
		case err != nil:
			// The node pod's exec goes through the node's kubelet, which
			// a busy node may drop for a moment.
			if misses++; misses > 30 {
				return res, fmt.Errorf("cannot read replace %s on node %s any more: %w; it carries on there: see `kubectl etcd member replace %s --status`", res.ID, res.Node, err, res.Node)
			}
		}
		if j != nil && j.Terminal() && !j.AgentRunning {
			break
		}
		if j != nil && j.Phase == agentapi.PhaseFailed && !j.AgentRunning {
			break
		}
		if cfg.Now().After(deadline) {
			return res, fmt.Errorf("replace %s on node %s has not ended within %s; it carries on there: see `kubectl etcd member replace %s --status`", res.ID, res.Node, cfg.Timeout, res.Node)
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%w: replace %s carries on on node %s: see `kubectl etcd member replace %s --status`", ctx.Err(), res.ID, res.Node, res.Node)
		case <-time.After(2 * time.Second):
		}
	}
	res.Took = cfg.Now().Sub(start).Round(time.Second).String()
	switch j.Phase {
	case agentapi.PhaseDone:
	case agentapi.PhaseRolledBack:
		return res, fmt.Errorf("replace %s failed before the point of no return and was rolled back on node %s (etcd's manifest and data are back): %s", res.ID, res.Node, j.Error)
	default:
		return res, hint.Permanent(fmt.Errorf("replace %s stopped on node %s (phase %s): %s", res.ID, res.Node, j.Phase, j.Error),
			"fix what the error names, then run `kubectl etcd member replace %s` again: it resumes", res.Node)
	}
	cfg.Notef("Replaced on node %s in %s; waiting for every member to be healthy", res.Node, res.Took)
	return res, afterReplace(ctx, t, cfg, res)
}

func suffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + hint.OneLine(e)
}

// afterReplace reads the cluster again and waits for every member.
func afterReplace(ctx context.Context, t etcd.Transport, cfg ReplaceConfig, res *ReplaceResult) error {
	if cfg.Rediscover == nil {
		res.Done = true
		return nil
	}
	var c *cluster.Cluster
	err := cfg.WaitFor(ctx, cfg.HealthTimeout, func() error {
		pods, err := cfg.Rediscover(ctx)
		if err != nil {
			return err
		}
		if c != nil {
			c.Close()
		}
		c, err = open(ctx, t, pods)
		if err != nil {
			return err
		}
		var bad []string
		for _, m := range c.Members {
			if m.Err != nil {
				bad = append(bad, m.Pod.Pod+": "+hint.OneLine(m.Err.Error()))
			}
		}
		if len(c.Members) < len(c.List) {
			bad = append(bad, strconv.Itoa(len(c.List)-len(c.Members))+" listed member(s) without a pod yet")
		}
		if len(bad) > 0 {
			return errors.New(strings.Join(bad, "; "))
		}
		return nil
	})
	if c == nil {
		return err
	}
	defer c.Close()
	res.Members = c.MemberList()
	for _, mi := range c.List {
		if m := c.OfListed(mi); m != nil && m.Pod.Node == res.Node {
			res.NewID = etcd.HexID(mi.ID)
			res.Member = cluster.MemberRef{Name: mi.Name, ID: res.NewID}
		}
	}
	res.Done = err == nil
	if err != nil {
		return fmt.Errorf("replace %s is done on node %s, but not every member is healthy: %w", res.ID, res.Node, err)
	}
	cfg.Notef("Every member is healthy; member %s has the new ID %s (was %s)", res.Member.Name, res.NewID, res.OldID)
	return nil
}

// replaceStatus prints the node's replace journals.
func replaceStatus(ctx context.Context, cfg ReplaceConfig, node string) (*ReplaceResult, error) {
	if err := cfg.Agents.Connected(ctx, node); err != nil {
		return nil, cutOffReplace(err, node, false)
	}
	a, err := cfg.Agents.Open(ctx, node)
	if err != nil {
		return nil, err
	}
	defer a.Close(context.WithoutCancel(ctx))
	js, err := journals(ctx, a, agentapi.ReplaceOperation, "")
	if err != nil {
		return nil, err
	}
	res := &ReplaceResult{Result: Result{Op: "replace-status"}, Node: node, Journal: js}
	if len(js) == 0 {
		cfg.Notef("No replace on node %s", node)
	}
	for _, j := range js {
		cfg.Notef("Replace %s of member %s on node %s: %s (agent running: %t)%s", j.ID, specMember(j.Journal), node, j.Phase, j.AgentRunning, suffix(j.Error))
		for _, s := range j.Steps {
			took := ""
			if s.Started != nil && s.Ended != nil {
				took = " (" + s.Ended.Sub(*s.Started).Round(time.Second).String() + ")"
			}
			mark := ""
			if s.PointOfNoReturn {
				mark = " [point of no return]"
			}
			cfg.Notef("  %-8s %s%s%s%s", s.State, s.Name, mark, took, suffix(s.Error))
		}
	}
	return res, nil
}
