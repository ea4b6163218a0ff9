package restore

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"
)

// restorePodTimeout bounds one `snapshot restore`.
const restorePodTimeout = 10 * time.Minute

func barrierAddr(m MemberPlan) string {
	h := ""
	if len(m.PeerURLs) > 0 {
		if u, err := url.Parse(m.PeerURLs[0]); err == nil {
			h = u.Hostname()
		}
	}
	return net.JoinHostPort(h, BarrierPort)
}

// restoreData runs `snapshot restore` on every node, each in a pod of
// its member's image, which the node pod runner deletes whatever happens.
func (r *run) restoreData(ctx context.Context) error {
	return r.parallel(func(n *node) error {
		began := r.cfg.Now()
		if err := r.runner.Complete(ctx, BuildRestorePod(r.pre.plan, n.m, r.cfg.Namespace), restorePodTimeout); err != nil {
			return fmt.Errorf("restore the snapshot, so nothing was stopped: %w", err)
		}
		r.cfg.notef("node %s: restored the snapshot into %s in %s", n.m.Node, n.m.NewDataDir, r.cfg.Now().Sub(began).Round(time.Millisecond))
		return nil
	})
}
