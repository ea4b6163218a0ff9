package restore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// BarrierPort is where each agent's barrier listens on its node's IP.
var BarrierPort = strconv.Itoa(agentapi.DefaultBarrierPort)

// node is one control-plane node's pod and agent.
type node struct {
	m       MemberPlan
	pod     *nodepod.Pod
	agent   agentclient.Binary
	started bool // the agent runs, in its static pod
	staged  bool // the snapshot was (perhaps partly) uploaded
	// prepared: the node's journal is written (restore start --prepare).
	prepared bool
}

// host maps a node path into the node pod.
func host(p string) string { return nodepod.HostPrefix + p }

// parallel runs f for every member's node and joins the errors.
func (r *run) parallel(f func(n *node) error) error {
	ms := r.pre.plan.Members
	errs := make([]error, len(ms))
	par.Each(len(ms), func(i int) {
		if err := f(r.nodes[ms[i].Node]); err != nil {
			errs[i] = fmt.Errorf("node %s: %w", ms[i].Node, err)
		}
	})
	return errors.Join(errs...) // in the plan's order
}

// prepare starts a node pod on every node and stages the agent and the
// snapshot there, refusing a node with an unfinished restore or too
// little room. Nothing on the node changes but the staged files.
func (r *run) prepare(ctx context.Context) error {
	for _, m := range r.pre.plan.Members {
		r.nodes[m.Node] = &node{m: m, agent: r.pre.agents[m.Node]}
	}
	return r.parallel(func(n *node) error {
		var err error
		n.pod, err = r.runner.Start(ctx, nodepod.Spec{Purpose: PurposeNode, Node: n.m.Node, Namespace: r.cfg.Namespace,
			Image: r.cfg.Image, Profile: nodepod.ProfileNode, Lifetime: r.cfg.PodLifetime})
		if err != nil {
			return err
		}
		r.noteServerStart(n.pod)
		if err := agentclient.Install(ctx, n.pod, n.agent); err != nil {
			return err
		}
		if err := refuseUnfinished(ctx, n); err != nil {
			return err
		}
		if err := checkRoom(ctx, n.pod, n.m, r.pre.plain.Size); err != nil {
			return err
		}
		return r.stageSnapshot(ctx, n)
	})
}

// agentRun runs `kubectl-etcd-agent restore args...` on the node.
func agentRun(ctx context.Context, p *nodepod.Pod, a agentclient.Binary, stdin io.Reader, args ...string) ([]byte, error) {
	return agentclient.Run(ctx, p, a, stdin, append([]string{"restore"}, args...)...)
}

// nodesOf lists the members' nodes.
func nodesOf(ms []discovery.Member) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Node)
	}
	return out
}

// refuseUnfinished keeps a second restore from starting on top of one; the
// agent checks again when it starts (agent.PrepareRestore).
func refuseUnfinished(ctx context.Context, n *node) error {
	js, err := agentclient.Journals(ctx, n.pod, n.agent, "")
	if err != nil {
		return err
	}
	for _, j := range js {
		if j.Unfinished() {
			return agentapi.UnfinishedError(&j.Journal)
		}
	}
	return nil
}

// checkRoom asks df for the free space where the snapshot is staged and
// where the data is restored: a snapshot's size each, twice on one
// filesystem.
func checkRoom(ctx context.Context, p *nodepod.Pod, m MemberPlan, size int64) error {
	var out bytes.Buffer
	// The journal dir holds the decrypted snapshot for a while: 0700 from
	// the start, parents too, and an existing one narrowed.
	script := `umask 077 && mkdir -p "$1" && chmod 0700 "$(dirname "$1")" "$1" && df -Pk "$1" "$2" "$3"`
	if err := p.Exec(ctx, []string{"sh", "-c", script, "df", host(m.JournalDir), host(path.Dir(m.NewDataDir)), host(m.OldDataDir)}, nil, &out, io.Discard); err != nil {
		return fmt.Errorf("check the free disk space: %w", err)
	}
	fs, err := parseDF(out.String())
	if err != nil || len(fs) != 3 {
		return fmt.Errorf("cannot read df's output %q: %v", out.String(), err)
	}
	// The restored dir is a sibling of the old one: where the old one is a
	// filesystem of its own (a dedicated etcd disk), it would land on
	// another one, and etcd would run from there for good (R3).
	if old := fs[2].mount; old == host(m.OldDataDir) && fs[1].mount != old {
		return hint.Permanent(fmt.Errorf("the data dir %s is a filesystem of its own (a dedicated etcd disk?), and the restored data would go beside it, onto %s: etcd would leave its disk, so nothing was changed",
			m.OldDataDir, strings.TrimPrefix(fs[1].mount, nodepod.HostPrefix)),
			"point etcd's --data-dir at a directory inside that filesystem (for example %s/data, as the local test cluster does), then restore", m.OldDataDir)
	}
	fs = fs[:2]
	need := map[string]int64{}
	for _, f := range fs {
		need[f.mount] += size
	}
	for _, f := range fs {
		if f.avail < need[f.mount] {
			return fmt.Errorf("%s has %d KiB free, the snapshot and the restored data need %d KiB: free some space, then retry", strings.TrimPrefix(f.mount, nodepod.HostPrefix), f.avail/1024, need[f.mount]/1024)
		}
		need[f.mount] = 0 // one filesystem listed twice is counted once
	}
	return nil
}

type dfRow struct {
	mount string
	avail int64 // bytes
}

// parseDF reads POSIX `df -P -k` output.
func parseDF(s string) ([]dfRow, error) {
	var rows []dfRow
	for i, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 6 {
			continue
		}
		kb, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return nil, err
		}
		rows = append(rows, dfRow{mount: f[len(f)-1], avail: kb * 1024})
	}
	return rows, nil
}

func (r *run) stageSnapshot(ctx context.Context, n *node) error {
	src := io.NewSectionReader(r.pre.plain.File, 0, r.pre.plain.Size)
	n.staged = true
	if _, err := n.pod.Upload(ctx, src, host(n.m.StagedSnapshot)); err != nil {
		return err
	}
	if e := n.m.EncryptionConfig; e != nil {
		// Its keys stay 0600 in the 0700 journal dir until the agent's
		// step moves the file into place.
		if _, err := n.pod.Upload(ctx, bytes.NewReader(e.Data), host(e.Staged)); err != nil {
			return fmt.Errorf("stage the bundle's encryption config: %w", err)
		}
	}
	return nil
}

// unstage removes the staged snapshot (the decrypted plaintext of an
// encrypted backup) from every node once the data is restored from it, or
// the restore ended before that; Ctrl-C included.
func (r *run) unstage(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = r.parallel(func(n *node) error {
		if !n.staged || n.pod == nil {
			return nil
		}
		if err := n.pod.Exec(ctx, []string{"rm", "-f", host(n.m.StagedSnapshot)}, nil, io.Discard, io.Discard); err != nil {
			r.cfg.notef("Warning: node %s: the staged snapshot %s is still there (%v): remove it, it holds every Secret in plain text", n.m.Node, n.m.StagedSnapshot, err)
			return nil
		}
		n.staged = false
		return nil
	})
}

// startAgents starts every node's agent with its spec, in two phases.
// First every node is prepared (`restore start --prepare`: all the node's
// checks, the barrier port free, the journal written; nothing stops), so
// that a node that cannot take part is found while nothing has stopped
// anywhere; a prepare failure on any node ends the restore there, and the
// journals already written are closed as rolled back. Then every agent is
// started (`restore run --detach`). A node whose start fails then has
// changed nothing; the others wait for it at the barrier and roll back.
func (r *run) startAgents(ctx context.Context) ([]string, error) {
	if err := r.parallel(func(n *node) error { return r.prepareAgent(ctx, n) }); err != nil {
		r.closePrepared(ctx)
		return nil, fmt.Errorf("%w; nothing was stopped on any node", err)
	}
	var mu sync.Mutex
	var started []string
	err := r.parallel(func(n *node) error {
		if err := r.startAgent(ctx, n); err != nil {
			return err
		}
		mu.Lock()
		started = append(started, n.m.Node)
		mu.Unlock()
		return nil
	})
	if err != nil {
		// A node whose agent did not start has changed nothing: its journal
		// is closed, so that it neither blocks the next restore nor runs
		// late (the started ones roll back at the barrier without it).
		r.closePrepared(ctx)
	}
	return started, err
}

// agentStartWindow is how long after its prepare an agent may begin: one
// that begins later closes the restore on its node instead (StartWithin).
const agentStartWindow = 10 * time.Minute

func (r *run) prepareAgent(ctx context.Context, n *node) error {
	as := r.pre.plan.AgentSpec(n.m)
	as.StartWithin = agentapi.Duration(agentStartWindow)
	spec, err := json.Marshal(as)
	if err != nil {
		return err
	}
	out, err := agentRun(ctx, n.pod, n.agent, bytes.NewReader(spec), "start", "--prepare", "--spec", "-")
	if err != nil {
		return fmt.Errorf("prepare the agent: %w", err)
	}
	var st agentapi.Started
	if err := json.Unmarshal(out, &st); err != nil || st.Journal == "" {
		return fmt.Errorf("the agent said %q, not where its journal is: plugin and agent versions differ?", out)
	}
	n.prepared = true
	return nil
}

// closePrepared ends the journals that were prepared but whose agent did
// not start,
// so that they do not block the next restore; nothing ran, so their
// rollback changes nothing.
func (r *run) closePrepared(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = r.parallel(func(n *node) error {
		if !n.prepared || n.started {
			return nil
		}
		if _, err := agentRun(ctx, n.pod, n.agent, nil, "rollback", "--id", r.pre.plan.ID); err != nil {
			r.cfg.notef("Warning: node %s: close the prepared journal of restore %s: %v (it changed nothing; `kubectl etcd restore --rollback --id %s` closes it)",
				n.m.Node, r.pre.plan.ID, err, r.pre.plan.ID)
		}
		return nil
	})
}

func (r *run) startAgent(ctx context.Context, n *node) error {
	out, err := agentRun(ctx, n.pod, n.agent, nil, "run", "--id", r.pre.plan.ID, "--detach")
	if err != nil {
		return fmt.Errorf("start the agent: %w", err)
	}
	var st agentapi.Started
	if err := json.Unmarshal(out, &st); err != nil || st.PID == 0 {
		return fmt.Errorf("the agent said %q, not where it runs: plugin and agent versions differ?", out)
	}
	n.started = true
	r.cfg.notef("node %s: agent pid %d runs the restore in the static pod %s; log %s", n.m.Node, st.PID, agentapi.AgentPodName(r.pre.plan.ID, "run"), st.Log)
	return nil
}

// AgentSpec is the node's part as its agent reads it. With several
// members every agent names the others, at their peer URL's host.
func (p *Plan) AgentSpec(m MemberPlan) agentapi.RestoreSpec {
	s := agentapi.RestoreSpec{ID: p.ID, Node: m.Node, Member: m.Name, StaticPodDir: m.StaticPodDir,
		JournalDir: m.JournalDir, OldDataDir: m.OldDataDir, NewDataDir: m.NewDataDir, AgentImage: m.Image,
		HealthyTimeout: agentapi.Duration(p.HealthyTimeout)}
	if e := m.EncryptionConfig; e != nil {
		s.EncryptionConfig = &agentapi.EncryptionConfigSwap{Path: e.Path, Staged: e.Staged, SHA256: e.SHA256}
	}
	var peers []agentapi.Peer
	for _, o := range p.Members {
		if o.Name != m.Name {
			peers = append(peers, agentapi.Peer{Member: o.Name, Addr: barrierAddr(o)})
		}
	}
	if len(peers) > 0 {
		s.Barrier = &agentapi.BarrierSpec{Addr: barrierAddr(m), Peers: peers}
	} else {
		// A single member whose restored etcd does not come up rolls back
		// by itself: no other node depends on it, and with its API server
		// down no --status or --rollback could reach it (S2).
		s.AfterSwapFailure = agentapi.AfterSwapRollback
	}
	return s
}
