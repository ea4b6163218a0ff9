package maint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/change"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// MoveLeaderConfig is what `kubectl etcd move-leader` asks for.
type MoveLeaderConfig struct {
	Options
	// To is the new leader's name or hex ID; "" picks the most
	// up-to-date healthy follower.
	To string
}

// MoveLeaderResult says who led before and after.
type MoveLeaderResult struct {
	From   cluster.MemberRef `json:"from"`
	To     cluster.MemberRef `json:"to"`
	DryRun bool              `json:"dryRun,omitempty"`
	Moved  bool              `json:"moved"`
	Took   time.Duration     `json:"-"`
	// TookText is Took for JSON and YAML.
	TookText string `json:"took,omitempty"`
}

// MoveLeader hands leadership to cfg.To, or to the best follower.
func MoveLeader(ctx context.Context, d etcd.Transport, pods []discovery.Member, cfg MoveLeaderConfig) (*MoveLeaderResult, error) {
	cfg.Defaults()
	// Only the leader and the new leader must answer: moving the
	// leadership off a struggling node is what this is for.
	c, from, err := openLeader(ctx, d, pods)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	to, err := target(c, from, cfg.To)
	if err != nil {
		return nil, err
	}
	if err := c.Health(ctx, to); err != nil {
		return nil, fmt.Errorf("member %s cannot take the leadership: it is not healthy: %w", to.Label(), err)
	}
	if p := c.Problems(nil); p != "" {
		cfg.Notef("Warning: some members are not reachable:%s", p)
	}
	res := &MoveLeaderResult{From: from.Ref(), To: to.Ref(), DryRun: cfg.DryRun}
	if to == from {
		cfg.Notef("%s is already the leader; nothing to do", from.Label())
		return res, nil
	}
	cfg.Notef("Plan: move leadership from %s to %s", from.Label(), to.Label())
	if cfg.DryRun {
		cfg.Notef("Dry run: nothing was changed")
		return res, nil
	}
	if err := cfg.Confirm("Move the leadership?"); err != nil {
		return nil, err
	}
	if res.Took, err = moveLeader(ctx, &cfg.Options, c, from, to); err != nil {
		return res, err
	}
	res.Moved, res.TookText = true, roundTook(res.Took).String()
	return res, nil
}

// openLeader opens the cluster, which must have a leader that answers.
func openLeader(ctx context.Context, d etcd.Transport, pods []discovery.Member) (*cluster.Cluster, *cluster.Member, error) {
	c, err := cluster.Open(ctx, d, pods)
	if err != nil {
		return nil, nil, err
	}
	l, err := c.NeedLeader()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, l, nil
}

// target is the member named want, which must be a healthy voting
// member, or the best follower.
func target(c *cluster.Cluster, leader *cluster.Member, want string) (*cluster.Member, error) {
	if want == "" {
		if best := c.BestFollower(leader); best != nil {
			return best, nil
		}
		return nil, hint.Permanent(errors.New("no healthy voting follower to move the leadership to"), "a single-member cluster keeps its leader; check `kubectl etcd status`")
	}
	m, err := c.Find(want)
	if err != nil {
		return nil, err
	}
	if m.IsLearner() {
		return nil, hint.Permanent(fmt.Errorf("member %s is a learner and cannot lead", m.Label()), "promote it first, or pick a voting member")
	}
	return m, nil
}

// moveLeader asks the leader to hand over to to, then waits until to
// says it leads.
func moveLeader(ctx context.Context, o *Options, c *cluster.Cluster, from, to *cluster.Member) (time.Duration, error) {
	o.Notef("Moving leadership from %s to %s", from.Label(), to.Label())
	took, err := o.During("moving leadership to "+to.Label(), func() error {
		if err := from.Client().MoveLeader(ctx, to.ID); err != nil {
			return err
		}
		return o.WaitFor(ctx, o.HealthTimeout, func() error {
			if err := c.Refresh(ctx, to); err != nil {
				return err
			}
			if !to.IsLeader() {
				return fmt.Errorf("%s does not lead yet", to.Label())
			}
			return nil
		})
	})
	if err != nil {
		return took, fmt.Errorf("moving leadership from %s to %s: %w", from.Label(), to.Label(), err)
	}
	_ = c.Refresh(ctx, from)
	o.Notef("Leadership moved to %s in %s", to.Label(), roundTook(took))
	return took, nil
}

func roundTook(d time.Duration) time.Duration { return change.RoundTook(d) }
