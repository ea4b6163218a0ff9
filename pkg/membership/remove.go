package membership

import (
	"context"
	"fmt"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// RemoveConfig is what `kubectl etcd member remove` asks for.
type RemoveConfig struct {
	Options
	// Member is the member's name, node, pod or hex ID.
	Member string
	// Force removes it even when the members left would lack a quorum
	// of healthy members or be an even count. Removing the last healthy
	// member is refused all the same.
	Force bool
	// Nodes says whether the node of a member without a pod exists.
	Nodes NodeLookup
}

// Remove removes a member from the cluster, after a plan that says what
// the quorum becomes.
func Remove(ctx context.Context, t etcd.Transport, pods []discovery.Member, cfg RemoveConfig) (*Result, error) {
	cfg.Defaults()
	c, target, err := openTarget(ctx, t, pods, cfg.Member)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res := &Result{Op: "remove", Member: target.ref(), DryRun: cfg.DryRun, Members: c.MemberList()}

	voters, healthyVoters := votes(c, 0)
	left, healthyLeft := votes(c, target.info.ID)
	cfg.Notef("Plan: remove %s from the cluster", target.label())
	cfg.Notef("  %s", where(ctx, cfg.Nodes, target))
	cfg.Notef("  voting members: %d now (quorum %d, %d healthy); %d after (quorum %d, %d healthy)",
		voters, quorum(voters), healthyVoters, left, quorum(left), healthyLeft)
	if target.m != nil && target.m.Err == nil {
		cfg.Notef("  its etcd stops serving once removed; move its manifest out of the kubelet's static pod dir on %s (kubeadm reset does), or the kubelet keeps restarting it", target.m.Pod.Node)
	}

	if others := healthyOthers(c, target.info.ID); others == 0 {
		return nil, hint.Permanent(fmt.Errorf("refusing to remove %s: it is the last healthy member, and no member would be left to serve", target.label()),
			"bring the other members back first (see `kubectl etcd health`); to start over from a backup, use `kubectl etcd restore`")
	}
	var risks []string
	if left > 0 && healthyLeft < quorum(left) {
		risks = append(risks, fmt.Sprintf("the %d voting members left need %d healthy for a quorum and only %s: the cluster would stop serving writes", left, quorum(left), countIs(healthyLeft)))
	}
	if !target.info.IsLearner && left > 0 && left%2 == 0 {
		risks = append(risks, fmt.Sprintf("it leaves %d voting members, an even count: they tolerate no more failed members than %d would", left, left-1))
	}
	for _, r := range risks {
		cfg.Notef("  warning: %s", r)
	}
	if len(risks) > 0 && !cfg.Force {
		return nil, hint.Permanent(fmt.Errorf("refusing to remove %s: %s", target.label(), risks[0]),
			"add or repair a member first (kubectl etcd member add); --force removes it anyway")
	}
	if cfg.DryRun {
		cfg.Notef("Dry run: nothing was changed")
		return res, nil
	}
	if err := cfg.Confirm(fmt.Sprintf("Remove member %s?", target.label())); err != nil {
		return nil, err
	}
	via, err := client(c, target.info.ID)
	if err != nil {
		return nil, err
	}
	var list []etcd.MemberInfo
	err = retry(ctx, &cfg.Options, func() (err error) { list, err = via.MemberRemove(ctx, target.info.ID); return err })
	if err != nil {
		return nil, fmt.Errorf("removing %s: %w", target.label(), err)
	}
	res.Done, res.Members = true, after(c, list)
	cfg.Notef("Removed %s; waiting for the members left to be healthy", target.label())
	if err := waitHealthy(ctx, &cfg.Options, c); err != nil {
		return res, err
	}
	return res, nil
}

// healthyOthers counts the listed members other than id that answered
// their health check.
func healthyOthers(c *cluster.Cluster, id uint64) int {
	n := 0
	for _, mi := range c.List {
		if mi.ID != id && healthy(c, mi.ID) {
			n++
		}
	}
	return n
}

// where says where the member runs: its pod and node, whether it is
// healthy, or that no pod runs it and whether its node still exists.
func where(ctx context.Context, nodes NodeLookup, l listed) string {
	if l.m != nil {
		if l.m.Err == nil {
			return fmt.Sprintf("its etcd pod %s runs on node %s, healthy", l.m.Pod.Pod, l.m.Pod.Node)
		}
		s := fmt.Sprintf("its etcd pod %s on node %s is not healthy: %s", l.m.Pod.Pod, l.m.Pod.Node, hint.OneLine(l.m.Err.Error()))
		if nodes == nil {
			return s
		}
		// A deleted node's pods stay listed until the pod garbage
		// collector takes them.
		switch exists, ready, err := nodes(ctx, l.m.Pod.Node); {
		case err == nil && !exists:
			return fmt.Sprintf("its node %s no longer exists (its etcd pod %s is left over until the pod garbage collector takes it)", l.m.Pod.Node, l.m.Pod.Pod)
		case err == nil && !ready:
			return s + "; its node is not Ready"
		}
		return s
	}
	s := "no etcd pod runs it"
	if !l.info.Started() {
		s = "it never started, and no etcd pod runs it"
	}
	if nodes == nil || l.info.Name == "" {
		return s
	}
	exists, ready, err := nodes(ctx, l.info.Name)
	switch {
	case err != nil:
		return fmt.Sprintf("%s (node %s could not be read: %s)", s, l.info.Name, hint.OneLine(err.Error()))
	case !exists:
		return fmt.Sprintf("%s, and its node %s no longer exists", s, l.info.Name)
	case !ready:
		return fmt.Sprintf("%s; its node %s exists but is not Ready", s, l.info.Name)
	}
	return fmt.Sprintf("%s; its node %s exists and is Ready", s, l.info.Name)
}

// countIs is "n is" or "n are".
func countIs(n int) string {
	if n == 1 {
		return "1 is"
	}
	return fmt.Sprintf("%d are", n)
}
