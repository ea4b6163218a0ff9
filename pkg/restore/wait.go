package restore

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// waitBack waits until the control plane runs on other data than before:
// the API server answers, every planned member is healthy, and the
// cluster ID is no longer oldID (until the agents stop it, the old
// cluster answers too). It prints each change once, with the time since
// the start.
func (r *run) waitBack(ctx context.Context, ms []MemberPlan, oldID string) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.WaitTimeout)
	defer cancel()
	began := r.cfg.Now()
	w := &waitState{healthy: map[string]bool{}, oldID: oldID,
		note: func(s string) { r.cfg.notef("%s: %s", r.cfg.Now().Sub(began).Round(time.Second), s) }}
	lastNote := ""
	for {
		note, done := r.probe(ctx, ms, w)
		if err := r.rolledBack(ctx, w); err != nil {
			return err
		}
		if done {
			w.note("control plane back: every member is healthy")
			return nil
		}
		if note != lastNote {
			w.note(note)
			lastNote = note
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the control plane was not back within %s (%s)", r.cfg.WaitTimeout, note)
			}
			return fmt.Errorf("stopped waiting (%w); the nodes carry on by themselves", ctx.Err())
		case <-time.After(r.cfg.Poll):
		}
	}
}

type waitState struct {
	healthy     map[string]bool
	oldID       string
	apiGone, up bool
	// oldBack: the API server came back on the old cluster (oldID), as
	// after a node's automatic rollback; journalsRead is when the wait
	// last read the journals for it.
	oldBack      bool
	journalsRead time.Time
	note         func(string)
}

func (r *run) probe(ctx context.Context, ms []MemberPlan, w *waitState) (string, bool) {
	pods, err := r.d.Members(ctx)
	if err != nil {
		wasGone := w.apiGone
		if !w.apiGone {
			w.apiGone, w.up = true, false
			w.note("the API server has stopped")
		}
		if wasGone && apierrors.IsForbidden(err) {
			// A starting API server refuses everyone until its authorizer
			// has read the cluster's RBAC.
			return "waiting for the API server (starting: it refuses requests until it has read the cluster's RBAC)", false
		}
		return "waiting for the API server (" + firstLine(err) + ")", false
	}
	if w.apiGone && !w.up {
		w.up = true
		w.note("the API server answers again")
	}
	if w.oldID != "" {
		v, err := cluster.Status(ctx, r.d.Reads, pods)
		if err != nil || v.ClusterID == "" {
			return "waiting for the members' status", false
		}
		if v.ClusterID == w.oldID {
			w.oldBack = w.apiGone
			return "waiting for the agents (cluster " + w.oldID + " still serves)", false
		}
	}
	hv, _ := cluster.Health(ctx, r.d.Reads, pods)
	for _, h := range hv {
		if h.Healthy && !w.healthy[h.Name] {
			w.healthy[h.Name] = true
			w.note(fmt.Sprintf("member %s on node %s is healthy", h.Name, h.Node))
		}
	}
	var waiting []string
	for _, m := range ms {
		if !w.healthy[m.Name] {
			waiting = append(waiting, m.Name)
		}
	}
	if len(waiting) == 0 {
		return "", true
	}
	return "waiting for member(s) " + strings.Join(waiting, ", "), false
}

// journalsEvery spaces the wait's reads of the journals, each through a
// node pod per node.
const journalsEvery = 10 * time.Second

// rolledBack ends the wait of a restore once a node has rolled it back by
// itself (a single member whose restored etcd failed after the point of
// no return, S2; every member, when the barrier aborted): the API server
// is back, on the old cluster, and would stay so. Only then, and at most
// every journalsEvery, does it read the journals.
func (r *run) rolledBack(ctx context.Context, w *waitState) error {
	if r.pre == nil || !w.oldBack || r.cfg.Now().Sub(w.journalsRead) < journalsEvery {
		return nil
	}
	w.journalsRead = r.cfg.Now()
	js := r.journals(ctx)
	for _, m := range r.pre.plan.Members {
		if j := js[m.Node]; j != nil && j.Phase == agentapi.PhaseRolledBack {
			return &rolledBackError{hint.Permanent(fmt.Errorf("node %s rolled restore %s back by itself%s: the cluster is back on its old data (cluster ID %s)", m.Node, j.ID, errSuffix(why(j)), w.oldID),
				"`kubectl etcd restore --status --id %s` shows each step; the restored data stays in %s for a look", j.ID, m.NewDataDir)}
		}
	}
	return nil
}

// rolledBackError is a restore that a node rolled back by itself: there
// is nothing left to resume or roll back.
type rolledBackError struct{ error }

func (e *rolledBackError) Unwrap() error { return e.error }

// why is a journal's error, else its first failed step's.
func why(j *agentapi.JournalStatus) string {
	if j.Error != "" {
		return j.Error
	}
	for _, s := range j.Steps {
		if s.Error != "" {
			return s.Name + ": " + s.Error
		}
	}
	return ""
}

func firstLine(err error) string { s, _, _ := strings.Cut(err.Error(), "\n"); return s }

// journals reads this restore's journal on every node, the nodes side by
// side, through a new node pod: the restored etcd does not know the pods
// made before it.
func (r *run) journals(ctx context.Context) map[string]*agentapi.JournalStatus {
	out := map[string]*agentapi.JournalStatus{}
	var mu sync.Mutex
	_ = r.parallel(func(n *node) error {
		js, err := r.freshStatus(ctx, n)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			r.cfg.notef("node %s: cannot read the journal: %v", n.m.Node, err)
		} else if len(js) == 1 {
			out[n.m.Node] = &js[0]
		}
		return nil
	})
	return out
}

// freshStatus reads a journal through a new pod, one that only reads as
// --status's do: the restored etcd does not know the pods made before it.
func (r *run) freshStatus(ctx context.Context, n *node) ([]agentapi.JournalStatus, error) {
	var js []agentapi.JournalStatus
	rd := readerFor(r.cfg, n.m.Node, n.m.NewDataDir, n.m.StaticPodDir)
	err := r.runner.Run(ctx, rd.spec, func(ctx context.Context, p *nodepod.Pod) error {
		var err error
		js, err = rd.read(ctx, p, n.agent, r.pre.plan.ID)
		return err
	})
	return js, err
}

func (r *run) printJournals(js map[string]*agentapi.JournalStatus) {
	for _, m := range r.pre.plan.Members {
		j := js[m.Node]
		if j == nil {
			continue
		}
		r.cfg.notef("node %s: restore %s is %s%s", m.Node, j.ID, j.Phase, errSuffix(j.Error))
	}
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

// check compares the restored cluster with the snapshot: a new cluster
// ID, the same on every member, a revision at or above the snapshot's
// plus the bump (the API server writes as soon as it is back), and the
// snapshot's keys and hash on every member. Right after the restore a
// member may not answer yet (its port-forward needs a pod on a node whose
// kubelet holds informers from before): reads are retried, each attempt
// bounded, for checkTimeout; only a check that really failed, or reads
// that never succeeded, fail it.
func (r *run) check(ctx context.Context, res *Result) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	last := ""
	for {
		actx, acancel := context.WithTimeout(ctx, checkAttemptTimeout)
		readErr, checkErr := r.checkOnce(actx, res)
		acancel()
		if readErr == nil {
			return checkErr
		}
		if msg := firstLine(readErr); msg != last {
			r.cfg.notef("checking the restored members: %s; retrying for up to %s", msg, checkTimeout)
			last = msg
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the restored members could not be read within %s, so the result is not checked: %w", checkTimeout, readErr)
		case <-time.After(r.cfg.Poll):
		}
	}
}

// checkTimeout bounds the result check; checkAttemptTimeout each read.
const (
	checkTimeout        = 2 * time.Minute
	checkAttemptTimeout = 45 * time.Second
)

// checkOnce reads every member once: readErr when a member could not be
// read (worth another try), checkErr when what was read is wrong.
func (r *run) checkOnce(ctx context.Context, res *Result) (readErr, checkErr error) {
	pods, err := r.d.Members(ctx)
	if err != nil {
		return err, nil
	}
	v, err := cluster.Status(ctx, r.d.Reads, pods)
	if err != nil {
		return fmt.Errorf("read the restored members' status: %w", err), nil
	}
	if v.ClusterID == "" {
		return fmt.Errorf("no member named the cluster ID"), nil
	}
	p := r.pre.plan
	want := p.Snapshot.Revision + p.Bump
	var errs []error
	for _, m := range v.Members {
		res.Revision = max(res.Revision, m.Revision)
		if m.Revision < want {
			errs = append(errs, fmt.Errorf("member %s is at revision %d, below the snapshot's %d plus the bump %d", m.Name, m.Revision, p.Snapshot.Revision, p.Bump))
		}
	}
	if r.pre.live.ClusterID != "" && v.ClusterID == r.pre.live.ClusterID {
		errs = append(errs, fmt.Errorf("the cluster ID is still %s: the members were not restored", v.ClusterID))
	}
	if r.d.Clients == nil {
		r.cfg.notef("Warning: the restored keys and hashes were not checked (no client/v3 transport)")
	} else {
		dc, rerr, derr := verifyData(ctx, r.d.Clients, pods, p)
		if rerr != nil {
			return rerr, nil
		}
		res.Data = dc
		if derr != nil {
			errs = append(errs, derr)
		}
	}
	res.ClusterID = v.ClusterID
	for _, m := range pods {
		for _, mp := range p.Members {
			if m.Name == mp.Name && m.DataDir != "" && m.DataDir != mp.NewDataDir {
				r.cfg.notef("Warning: the API still shows node %s's etcd pod as it was before (data dir %s): its kubelet holds informers from before the restore until it restarts", m.Node, m.DataDir)
			}
		}
	}
	for _, j := range res.Journals {
		if j.Unfinished() {
			errs = append(errs, fmt.Errorf("node %s: the journal says %s%s", j.Node, j.Phase, errSuffix(j.Error)))
		}
	}
	return nil, errors.Join(errs...)
}

// removeLeftovers waits until the agents' static pods have taken
// themselves out, and deletes the managed-by pods the snapshot brought
// back (older than this restore, such as a backup's certificate pod):
// their containers are long gone.
func (r *run) removeLeftovers(ctx context.Context) {
	pods := r.d.Client.CoreV1().Pods(r.cfg.Namespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: nodepod.ManagedByLabel + "=" + nodepod.ManagedByValue})
	if err == nil {
		// Compared on one clock, the API server's, when a pod of this run
		// gave its time: a workstation clock ahead of the server's would
		// take pods made since for older ones (L5).
		since := r.start
		if !r.serverStart.IsZero() {
			since = r.serverStart
		}
		for _, p := range list.Items {
			if p.CreationTimestamp.Time.Before(since) {
				if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err == nil {
					r.cfg.notef("deleted pod %s, which the snapshot brought back", p.Name)
				}
			}
		}
	}
	sel := metav1.ListOptions{LabelSelector: nodepod.PurposeLabel + "=" + agentapi.AgentPurpose}
	agents := r.d.Client.CoreV1().Pods(agentapi.AgentPodNamespace)
	err = wait.PollUntilContextTimeout(ctx, r.cfg.Poll, agentGoneTimeout, true, func(ctx context.Context) (bool, error) {
		l, err := agents.List(ctx, sel)
		return err == nil && len(l.Items) == 0, nil
	})
	if err != nil {
		r.cfg.notef("Warning: an agent's static pod is still there after %s: see `kubectl -n %s get pods -l %s` and `kubectl etcd restore --status`", agentGoneTimeout, agentapi.AgentPodNamespace, sel.LabelSelector)
	}
}

// agentGoneTimeout bounds the wait for the agents' static pods to go.
const agentGoneTimeout = 2 * time.Minute

// summary prints the result and what to do next.
func (r *run) summary(ctx context.Context, res *Result) {
	p := r.pre.plan
	w := r.cfg.Out
	if res.ClusterID == "" {
		fmt.Fprintf(w, "\nRestored %s in %s; the result could not be checked (see below): `kubectl etcd status` reads it\n",
			p.ID, r.cfg.Now().Sub(r.start).Round(time.Second))
	} else {
		fmt.Fprintf(w, "\nRestored %s: cluster ID %s, revision %d (snapshot %d + bump %d), in %s\n",
			p.ID, res.ClusterID, res.Revision, p.Snapshot.Revision, p.Bump, r.cfg.Now().Sub(r.start).Round(time.Second))
	}
	if dc := res.Data; dc != nil && len(dc.Keys) == len(p.Members) {
		fmt.Fprintf(w, "Checked at revision %d: every member holds the snapshot's %d keys, with hashkv %s\n", dc.Revision, p.Snapshot.Keys, strings.Join(distinctHashes(dc.Hashes), "; "))
	}
	for _, m := range p.Members {
		fmt.Fprintf(w, "  member %s on node %s: data %s; the old data stays in %s, the old manifests in %s\n", m.Name, m.Node, m.NewDataDir, m.OldDataDir, path.Join(m.JournalDir, "manifests"))
	}
	fmt.Fprintf(w, "\nNext:\n")
	r.kubeletAdvice(ctx, "restore")
	fmt.Fprintf(w, "  - to undo the restore: kubectl etcd restore --rollback --id %s (every write since the restore is lost)\n", p.ID)
	fmt.Fprintf(w, "  - only once you are sure you will not roll back, free the old data on each node:%s\n", oldDataCommands(p.Members))
	fmt.Fprintf(w, "    This ends the way back: --rollback refuses once the old data is gone.\n")
}

// oldDataCommands are the commands that free each member's old data dir:
// one when every node keeps it at the same path, else one per node.
func oldDataCommands(ms []MemberPlan) string {
	same := true
	for _, m := range ms {
		same = same && m.OldDataDir == ms[0].OldDataDir
	}
	if same {
		return " rm -rf " + ms[0].OldDataDir
	}
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "\n      %s: rm -rf %s", m.Node, m.OldDataDir)
	}
	return b.String()
}

// kubeletAdvice names every node, workers included: each kubelet keeps
// informers filled before the change (kubernetes#131115).
func (r *run) kubeletAdvice(ctx context.Context, what string) {
	fmt.Fprintf(r.cfg.Out, "  - restart the kubelet on every node, so that its informers drop what they held before the %s:\n", what)
	for _, n := range r.allNodes(ctx) {
		fmt.Fprintf(r.cfg.Out, "      %s: systemctl restart kubelet\n", n)
	}
}

func (r *run) allNodes(ctx context.Context) []string {
	var out []string
	if list, err := r.d.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		for _, n := range list.Items {
			out = append(out, n.Name)
		}
	}
	if len(out) == 0 {
		for _, m := range r.pre.plan.Members {
			out = append(out, m.Node)
		}
	}
	sort.Strings(out)
	return out
}
