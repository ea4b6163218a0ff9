// Package etcd talks to etcd members through one of two transports: etcdctl
// exec'd in the member's own container, or client/v3 over a port-forward.
// Both implement one Client, so that the commands do not care which one is
// used; what one cannot do is an *UnsupportedError.
package etcd

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

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

// AlarmsIn are the alarms that st lists among its errors: etcd puts
// every alarm raised in the cluster in each member's status, as
// "memberID:ID alarm:TYPE" (protobuf's text form, whose spacing varies).
// ok is false when an error names an alarm that does not parse: then
// only the alarm list can tell.
func AlarmsIn(st *Status) (alarms []Alarm, ok bool) {
	alarms = []Alarm{}
	for _, e := range st.Errors {
		if !strings.Contains(e, "alarm:") {
			continue
		}
		m := alarmText.FindStringSubmatch(e)
		if m == nil {
			return nil, false
		}
		id, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil || m[2] == "NONE" {
			return nil, false
		}
		alarms = append(alarms, Alarm{MemberID: id, Type: m[2]})
	}
	return alarms, true
}

var alarmText = regexp.MustCompile(`^\s*memberID:\s*(\d+)\s+alarm:\s*([A-Z]+)\s*$`)

// SnapshotStream is a snapshot being streamed.
type SnapshotStream struct {
	io.ReadCloser
	// Version is the storage version etcd reports (3.6+; empty before).
	Version string
}

// Transport opens Clients to members: ExecTransport (etcdctl in each etcd
// container), ForwardTransport (client/v3 over a port-forward), or Auto over
// the two. Commands take one from Session.Transport with their Policy.
type Transport interface {
	// Name is "exec", "port-forward" or "auto", for messages.
	Name() string
	// Prepare is the cluster-wide set-up, done once before the members
	// are dialled in parallel (port-forward reads the TLS material in one
	// helper pod; exec has none). An error means the transport cannot
	// work here now; a caller that dials anyway meets it again, member by
	// member, in each member's row.
	Prepare(ctx context.Context, members []discovery.Member) error
	// Client binds a Client to member m.
	Client(ctx context.Context, m discovery.Member) (Client, error)
}

// HexID formats a member or cluster ID the way etcd does.
func HexID(id uint64) string { return fmt.Sprintf("%x", id) }
