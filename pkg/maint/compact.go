package maint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// CompactConfig is what `kubectl etcd compact` asks for.
type CompactConfig struct {
	Options
	// Revision is the first revision kept; 0 is the current one.
	Revision int64
}

// CompactResult is the current revision before and after, and the
// revision compacted up to.
type CompactResult struct {
	RevisionBefore int64         `json:"revisionBefore"`
	Compacted      int64         `json:"compactedRevision"`
	RevisionAfter  int64         `json:"revisionAfter,omitempty"`
	DryRun         bool          `json:"dryRun,omitempty"`
	Took           time.Duration `json:"-"`
	TookText       string        `json:"took,omitempty"`
}

// Compact drops the history before cfg.Revision, through the leader,
// and waits until every member's backend has freed it.
func Compact(ctx context.Context, d etcd.Transport, pods []discovery.Member, cfg CompactConfig) (*CompactResult, error) {
	cfg.Defaults()
	c, l, err := openLeader(ctx, d, pods)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res := &CompactResult{RevisionBefore: l.Status.Revision, Compacted: cfg.Revision, DryRun: cfg.DryRun}
	if res.Compacted == 0 {
		res.Compacted = res.RevisionBefore
	}
	if res.Compacted > res.RevisionBefore {
		return nil, hint.Permanent(fmt.Errorf("revision %d is after the current revision %d", res.Compacted, res.RevisionBefore), "give a revision up to the current one, or none for the current one")
	}
	cfg.Notef("Plan: compact the history before revision %d (the current revision is %d), through the leader %s", res.Compacted, res.RevisionBefore, l.Label())
	if cfg.DryRun {
		cfg.Notef("Dry run: nothing was changed")
		return res, nil
	}
	if err := cfg.Confirm(fmt.Sprintf("Compact up to revision %d?", res.Compacted)); err != nil {
		return nil, err
	}
	// The current revision compacted already (nothing written since)
	// leaves nothing to do; a revision given is the user's to check.
	res.Took, err = cfg.During(fmt.Sprintf("compacting up to revision %d", res.Compacted), func() error {
		return compact(c, ctx, l, res.Compacted, cfg.Revision == 0)
	})
	if err != nil {
		return nil, err
	}
	res.TookText = roundTook(res.Took).String()
	if err := c.Refresh(ctx, l); err == nil {
		res.RevisionAfter = l.Status.Revision
	}
	return res, nil
}

// compact compacts up to rev through l, then waits for every other
// member to have freed the history too. etcd waits only for the member
// it asks; asking the others for the same compaction is refused as
// compacted already, but only once their own compaction has finished,
// so that a defragmentation right after gives everything back.
// With already, a revision compacted before is no error.
func compact(c *cluster.Cluster, ctx context.Context, l *cluster.Member, rev int64, already bool) error {
	if err := l.Client().Compact(ctx, rev, true); err != nil && !(already && errors.Is(err, rpctypes.ErrCompacted)) {
		return fmt.Errorf("compacting up to revision %d: %w", rev, err)
	}
	for _, m := range c.Members {
		if m == l || m.Client() == nil || m.Err != nil {
			continue
		}
		if err := m.Client().Compact(ctx, rev, true); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
			return fmt.Errorf("waiting for %s to free the history compacted up to revision %d: %w", m.Label(), rev, err)
		}
	}
	return nil
}
