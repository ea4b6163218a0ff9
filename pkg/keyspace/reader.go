package keyspace

import (
	"context"
	"fmt"
	"io"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// Reader is a live key source on the member best placed for a long
// read (cluster.Cluster.ReadMember): a healthy follower, read
// serializable, so that the leader serves none of it; the leader when no
// follower is healthy. Close it.
type Reader struct {
	*Live
	Member *cluster.Member
	// Role is follower or leader.
	Role    string
	cluster *cluster.Cluster
}

// OpenReader opens the Reader of the cluster behind pods, and says on
// log which member it reads and how.
func OpenReader(ctx context.Context, d etcd.Transport, pods []discovery.Member, log io.Writer) (*Reader, error) {
	c, err := cluster.Open(ctx, d, pods)
	if err != nil {
		return nil, err
	}
	m, role, err := c.ReadMember()
	if err != nil {
		c.Close()
		return nil, err
	}
	r := &Reader{Live: &Live{Client: m.Client(), Serializable: role == "follower"}, Member: m, Role: role, cluster: c}
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
