package maint

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
)

// Reader is a live key source on the member best placed for a long
// read: a healthy follower, read serializable, so that the leader serves
// none of it; the leader when no follower is healthy. Close it.
type Reader struct {
	*keyspace.Live
	Member MemberRef
	// Role is follower or leader.
	Role    string
	cluster *Cluster
}

// OpenReader opens the Reader of the cluster behind pods, and says on
// log which member it reads and how.
func OpenReader(ctx context.Context, d Dialer, pods []discovery.Member, log io.Writer) (*Reader, error) {
	c, err := Open(ctx, d, pods)
	if err != nil {
		return nil, err
	}
	m, role := c.BestFollower(nil), "follower"
	if m == nil {
		m, role = c.Leader(), "leader"
	}
	if m == nil {
		c.Close()
		return nil, errors.New("no member to read: none is a healthy follower or the leader" + c.problems(nil))
	}
	r := &Reader{Live: &keyspace.Live{Client: m.client, Serializable: role == "follower"}, Member: refOf(m), Role: role, cluster: c}
	how := "linearizable, through the leader: no follower is healthy"
	if r.Serializable {
		how = "serializable, so the leader serves none of it"
	}
	if log != nil {
		fmt.Fprintf(log, "Reading the keys from %s %s (%s).\n", role, m.Label(), how)
	}
	return r, nil
}

// Close closes the clients.
func (r *Reader) Close() { r.cluster.Close() }
