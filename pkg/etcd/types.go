// Package etcd talks to etcd members through one of two transports: etcdctl
// exec'd in the member's own container, or client/v3 over a port-forward.
// Both hide behind Conn so that the commands do not care which one is used.
package etcd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

// MemberInfo is one entry of the member list.
type MemberInfo struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// Started reports whether the member has joined: etcd leaves the name of
// an added but unstarted member empty.
func (m MemberInfo) Started() bool { return m.Name != "" }

// Status is what one member says about itself.
type Status struct {
	ClusterID        uint64
	MemberID         uint64
	Revision         int64
	Version          string
	StorageVersion   string
	DBSize           int64
	DBSizeInUse      int64
	DBSizeQuota      int64
	Leader           uint64
	RaftTerm         uint64
	RaftIndex        uint64
	RaftAppliedIndex uint64
	IsLearner        bool
	Errors           []string
}

// Alarm is one raised alarm.
type Alarm struct {
	MemberID uint64
	Type     string
}

// Conn talks to etcd through one member. Calls are independent and safe
// for concurrent use.
type Conn interface {
	MemberList(ctx context.Context) (clusterID uint64, members []MemberInfo, err error)
	Status(ctx context.Context) (*Status, error)
	// Health checks the member the way etcdctl endpoint health does: a
	// linearizable read succeeds and no alarm is raised. It returns how
	// long the check took inside the transport.
	Health(ctx context.Context) (time.Duration, error)
	Alarms(ctx context.Context) ([]Alarm, error)
	Close() error
}

// Snapshotter streams a snapshot; only the client/v3 transport has it.
type Snapshotter interface {
	Snapshot(ctx context.Context) (*SnapshotStream, error)
}

// SnapshotStream is a snapshot being streamed.
type SnapshotStream struct {
	io.ReadCloser
	// Version is the storage version etcd reports (3.6+; empty before).
	Version string
}

// Dialer opens a Conn to a member.
type Dialer interface {
	Dial(ctx context.Context, m discovery.Member) (Conn, error)
	// Name is the transport's name, for messages.
	Name() string
}

// Preparer is a Dialer with cluster-wide set-up to do once before members
// are dialled.
type Preparer interface {
	Prepare(ctx context.Context, members []discovery.Member) error
}

// prepare runs d's set-up, if it has any. A failure is not returned: each
// member's Dial then reports it in that member's row.
func prepare(ctx context.Context, d Dialer, members []discovery.Member) {
	if p, ok := d.(Preparer); ok {
		_ = p.Prepare(ctx, members)
	}
}

// HexID formats a member or cluster ID the way etcd does.
func HexID(id uint64) string { return fmt.Sprintf("%x", id) }
