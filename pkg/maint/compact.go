package maint

import (
	"context"
	"fmt"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
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
// and waits until the leader's backend has freed it.
func Compact(ctx context.Context, d Dialer, pods []discovery.Member, cfg CompactConfig) (*CompactResult, error) {
	cfg.defaults()
	c, err := Open(ctx, d, pods)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	l, err := c.NeedLeader()
	if err != nil {
		return nil, err
	}
	res := &CompactResult{RevisionBefore: l.Status.Revision, Compacted: cfg.Revision, DryRun: cfg.DryRun}
	if res.Compacted == 0 {
		res.Compacted = res.RevisionBefore
	}
	if res.Compacted > res.RevisionBefore {
		return nil, hint.Permanent(fmt.Errorf("revision %d is after the current revision %d", res.Compacted, res.RevisionBefore), "give a revision up to the current one, or none for the current one")
	}
	cfg.notef("Plan: compact the history before revision %d (the current revision is %d), through the leader %s", res.Compacted, res.RevisionBefore, l.Label())
	if cfg.DryRun {
		cfg.notef("Dry run: nothing was changed")
		return res, nil
	}
	if err := cfg.Confirm(fmt.Sprintf("Compact up to revision %d?", res.Compacted)); err != nil {
		return nil, err
	}
	res.Took, err = cfg.during(fmt.Sprintf("compacting up to revision %d", res.Compacted), func() error {
		return l.client.Compact(ctx, res.Compacted, true)
	})
	if err != nil {
		return nil, fmt.Errorf("compacting up to revision %d: %w", res.Compacted, err)
	}
	res.TookText = roundTook(res.Took).String()
	if err := c.refresh(ctx, l); err == nil {
		res.RevisionAfter = l.Status.Revision
	}
	return res, nil
}
