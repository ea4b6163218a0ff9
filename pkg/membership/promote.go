package membership

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/change"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// PromoteConfig is what `kubectl etcd member promote` asks for.
type PromoteConfig struct {
	Options
	// Member is the learner's name, node, pod or hex ID.
	Member string
}

// Promote makes a learner a voting member once it has caught up with
// the leader. etcd refuses to promote a learner that lags; Promote says
// how far it is and tries again, for at most HealthTimeout.
func Promote(ctx context.Context, t etcd.Transport, pods []discovery.Member, cfg PromoteConfig) (*Result, error) {
	cfg.Defaults()
	c, target, err := openTarget(ctx, t, pods, cfg.Member)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if !target.info.IsLearner {
		return nil, hint.Permanent(fmt.Errorf("member %s is not a learner: it votes already", target.label()), "see `kubectl etcd members`")
	}
	res := &Result{Op: "promote", Member: target.ref(), DryRun: cfg.DryRun, Members: c.MemberList()}
	voters, healthyVoters := votes(c, 0)
	cfg.Notef("Plan: promote the learner %s to a voting member", target.label())
	cfg.Notef("  %s", lag(ctx, c, target))
	cfg.Notef("  voting members: %d now (quorum %d, %d healthy); %d after (quorum %d)", voters, quorum(voters), healthyVoters, voters+1, quorum(voters+1))
	if cfg.DryRun {
		cfg.Notef("Dry run: nothing was changed")
		return res, nil
	}
	if err := cfg.Confirm(fmt.Sprintf("Promote member %s?", target.label())); err != nil {
		return nil, err
	}
	via, err := client(c, target.info.ID)
	if err != nil {
		return nil, err
	}
	var list []etcd.MemberInfo
	took, err := cfg.During("waiting for "+target.label()+" to catch up", func() error {
		return cfg.WaitFor(ctx, cfg.HealthTimeout, func() error {
			var err error
			list, err = via.MemberPromote(ctx, target.info.ID)
			if errors.Is(err, rpctypes.ErrMemberLearnerNotReady) {
				if l := c.Leader(); l != nil {
					_ = c.Refresh(ctx, l)
				}
				if _, now, lerr := via.MemberList(ctx); lerr == nil {
					target = refreshListed(c, now, target)
				}
				cfg.Notef("  not in sync with the leader yet: %s", lag(ctx, c, target))
			} else if err != nil {
				return hint.Permanent(err, "see `kubectl etcd members`")
			}
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("promoting %s: %w", target.label(), err)
	}
	target = refreshListed(c, list, target) // named, once it has started
	res.Done, res.Member, res.Members = true, target.ref(), after(c, list)
	cfg.Notef("Promoted %s in %s", target.label(), change.RoundTook(took))
	if target.m != nil {
		if err := cfg.WaitHealthy(ctx, c, target.m); err != nil {
			return res, err
		}
	}
	return res, nil
}

// lag says how far the learner's applied index is behind the leader's
// commit index, when both can be read. A learner without a pod (its
// node's kubelet cut off from the API, say) is asked through the
// leader, by its client URL, as etcdctl endpoint status --cluster does.
func lag(ctx context.Context, c *cluster.Cluster, l listed) string {
	leader := c.Leader()
	st := learnerStatus(ctx, c, l)
	switch {
	case st == nil && !l.info.Started():
		return "it has not started yet; etcd refuses the promotion until it is in sync with the leader"
	case st == nil:
		return "its status could not be read; etcd refuses the promotion until it is in sync with the leader"
	case leader == nil || leader.Status == nil:
		return fmt.Sprintf("it has applied raft index %d; the leader's could not be read", st.RaftAppliedIndex)
	}
	have, want := st.RaftAppliedIndex, leader.Status.RaftIndex
	if have >= want {
		return fmt.Sprintf("caught up: it has applied raft index %d, the leader %s is at %d", have, leader.Label(), want)
	}
	return fmt.Sprintf("it has applied raft index %d, the leader %s is at %d: %d entries behind", have, leader.Label(), want, want-have)
}

// learnerStatus is the learner's status: from its pod's client, else
// through the leader.
func learnerStatus(ctx context.Context, c *cluster.Cluster, l listed) *etcd.Status {
	if l.m != nil {
		if err := c.Refresh(ctx, l.m); err == nil {
			return l.m.Status
		}
	}
	leader := c.Leader()
	if leader == nil || len(l.info.ClientURLs) == 0 {
		return nil
	}
	all, err := leader.Client().StatusAll(ctx)
	if err != nil {
		return nil
	}
	for _, e := range all {
		for _, u := range l.info.ClientURLs {
			if e.Endpoint == u && e.Err == nil && e.Status != nil && e.Status.MemberID == l.info.ID {
				return e.Status
			}
		}
	}
	return nil
}
