package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// Client reads and changes the cluster through one member, as kubeadm's
// etcd client does: membership, status and health, leadership, alarms,
// compaction, defragmentation, hashes, paged reads and snapshots. Both
// transports implement all of it: client/v3 over a port-forward (*V3Conn)
// and etcdctl in the member's container (exec). What a transport cannot
// do returns an *UnsupportedError (errors.Is(err, ErrUnsupported)), which
// names the transport, the operation and the way out, so no caller probes
// types. Consumers declare the part they use (maint.Client,
// doctor.Client, keyspace's pager) and take it from a Client by
// assignment, which the compiler checks. Calls are safe for concurrent
// use; each is bounded by the client's timeout unless it says otherwise.
type Client interface {
	MemberList(ctx context.Context) (clusterID uint64, members []MemberInfo, err error)
	// MemberAdd adds a member by its peer URLs. It returns the member
	// added (its name stays empty until it starts) and the new list.
	MemberAdd(ctx context.Context, peerURLs []string, asLearner bool) (added MemberInfo, members []MemberInfo, err error)
	MemberRemove(ctx context.Context, id uint64) ([]MemberInfo, error)
	MemberPromote(ctx context.Context, id uint64) ([]MemberInfo, error)
	Status(ctx context.Context) (*Status, error)
	// Health checks the member the way etcdctl endpoint health does: a
	// linearizable read succeeds and no alarm is raised. It returns how
	// long the check took inside the transport.
	Health(ctx context.Context) (time.Duration, error)
	// StatusAll asks the bound member for the status of every member
	// its member list names, in one call, each by its client URL, as
	// etcdctl endpoint status --cluster does. Over a port-forward the
	// other members' URLs are out of reach: ErrUnsupported.
	StatusAll(ctx context.Context) ([]EndpointStatus, error)
	// HealthAll is Health for every member the bound member's list
	// names, in one call (etcdctl endpoint health --cluster);
	// ErrUnsupported over a port-forward.
	HealthAll(ctx context.Context) ([]EndpointHealth, error)
	// MoveLeader hands leadership to toID. Only the leader can do that,
	// so the client must be bound to it.
	MoveLeader(ctx context.Context, toID uint64) error
	AlarmList(ctx context.Context) ([]Alarm, error)
	// AlarmDisarm disarms one alarm; the zero Alarm disarms them all.
	// It returns the alarms it disarmed.
	AlarmDisarm(ctx context.Context, a Alarm) ([]Alarm, error)
	// Defragment defragments the bound member's backend. It blocks the
	// member's reads and writes while it runs, as long as the database
	// is large, so only ctx bounds it.
	Defragment(ctx context.Context) error
	// Compact drops the history before rev. With physical it returns
	// once the backend has freed it; only ctx bounds that wait.
	Compact(ctx context.Context, rev int64, physical bool) error
	// HashKV hashes the bound member's keys up to rev (0: the latest).
	// Members that agree at one revision return the same hash.
	HashKV(ctx context.Context, rev int64) (*KVHash, error)
	// GetPage reads one page of a range; Page.Next asks for the next.
	GetPage(ctx context.Context, r PageRequest) (*Page, error)
	// Snapshot streams a snapshot of the member's backend; only ctx
	// bounds it.
	Snapshot(ctx context.Context) (*SnapshotStream, error)
	Close() error
}

var (
	_ Client = (*V3Conn)(nil)
	_ Client = (*execClient)(nil)
	_ Client = (*autoClient)(nil)
)

// ErrUnsupported matches every *UnsupportedError.
var ErrUnsupported = errors.New("not supported by this transport")

// UnsupportedError is an operation that a transport cannot do. Its hint
// (see unsupported) says what can.
type UnsupportedError struct {
	Transport string // "exec"
	Op        string // "stream snapshots"
	Why       string // optional, printed in parentheses
}

func (e *UnsupportedError) Error() string {
	s := fmt.Sprintf("the %s transport cannot %s", e.Transport, e.Op)
	if e.Why != "" {
		s += " (" + e.Why + ")"
	}
	return s
}

// Is makes errors.Is(err, ErrUnsupported) hold.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// unsupported is that error, with the way out as its hint; no retry heals it.
func unsupported(transport, op, why, wayOut string) error {
	return hint.Permanent(&UnsupportedError{Transport: transport, Op: op, Why: why}, "%s", wayOut)
}

// EndpointStatus is one member's answer to StatusAll: its status, or
// why it did not answer the member asked.
type EndpointStatus struct {
	Endpoint string
	Status   *Status
	Err      error
}

// EndpointHealth is one member's answer to HealthAll.
type EndpointHealth struct {
	Endpoint string
	Took     time.Duration
	Err      error
}

// KVHash is one member's hash of its keys.
type KVHash struct {
	MemberID        uint64
	Hash            uint32
	HashRevision    int64 // the revision hashed (0 from etcdctl 3.5, which prints none)
	CompactRevision int64
}

// PageRequest asks for keys in [Key, End) at Revision (0: the latest);
// End "" means the key alone, "\x00" every key from Key on.
type PageRequest struct {
	Key, End string
	Limit    int64 // 0: no limit
	KeysOnly bool
	Revision int64
	// Serializable reads the bound member's own store without a round
	// trip to the leader: on a follower, it keeps a long walk's load off
	// the leader. It may lag the leader by what the follower has not
	// applied yet.
	Serializable bool
	// SizesOnly measures the values without keeping them: KeyValue.Value
	// stays nil and ValueSize is its length. The values still cross the
	// wire (etcd cannot tell a size without them), but are never copied.
	SizesOnly bool
}

// KeyValue is one key of a page.
type KeyValue struct {
	Key, Value []byte
	// ValueSize is the value's length, also with SizesOnly.
	ValueSize      int64
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64
}

// Page is one page of a range read.
type Page struct {
	KVs []KeyValue
	// More reports keys past this page in the range.
	More bool
	// Count is the number of keys in [Key, End) of the request: on
	// later pages, the keys left.
	Count int64
	// Revision is the revision the page was read at: the request's, or
	// the latest when it asked for none.
	Revision int64
}

// Next is the request for the page after p: the same range and
// revision, from the key after p's last. It is the zero request when p
// was the last page.
func (p *Page) Next(r PageRequest) PageRequest {
	if !p.More || len(p.KVs) == 0 {
		return PageRequest{}
	}
	r.Key = string(p.KVs[len(p.KVs)-1].Key) + "\x00"
	r.Revision = p.Revision
	return r
}

// Client binds a client/v3 client to m over a port-forward; its Close
// ends the forward too.
func (d *ForwardTransport) Client(ctx context.Context, m discovery.Member) (Client, error) {
	c, err := d.dial(ctx, m)
	if err != nil {
		return nil, err // never a nil *V3Conn in a non-nil Client
	}
	return c, nil
}

func (c *V3Conn) MemberAdd(ctx context.Context, peerURLs []string, asLearner bool) (MemberInfo, []MemberInfo, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	add := c.Client.MemberAdd
	if asLearner {
		add = c.Client.MemberAddAsLearner
	}
	resp, err := add(ctx, peerURLs)
	if err != nil {
		return MemberInfo{}, nil, c.explain("adding a member", err)
	}
	var added MemberInfo
	if resp.Member != nil {
		added = fromPBMembers([]*pb.Member{resp.Member})[0]
	}
	return added, fromPBMembers(resp.Members), nil
}

func (c *V3Conn) MemberRemove(ctx context.Context, id uint64) ([]MemberInfo, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.Client.MemberRemove(ctx, id)
	if err != nil {
		return nil, c.explain("removing member "+HexID(id), err)
	}
	return fromPBMembers(resp.Members), nil
}

func (c *V3Conn) MemberPromote(ctx context.Context, id uint64) ([]MemberInfo, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.Client.MemberPromote(ctx, id)
	if err != nil {
		return nil, c.explain("promoting member "+HexID(id), err)
	}
	return fromPBMembers(resp.Members), nil
}

func (c *V3Conn) MoveLeader(ctx context.Context, toID uint64) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.Client.MoveLeader(ctx, toID)
	return c.explain("moving the leader to "+HexID(toID), err)
}

func (c *V3Conn) AlarmList(ctx context.Context) ([]Alarm, error) {
	as, err := c.alarms(ctx)
	return as, c.explain("listing alarms", err)
}

func (c *V3Conn) AlarmDisarm(ctx context.Context, a Alarm) ([]Alarm, error) {
	am := &clientv3.AlarmMember{MemberID: a.MemberID}
	if a.Type != "" {
		t, ok := pb.AlarmType_value[a.Type]
		if !ok {
			return nil, hint.Permanent(fmt.Errorf("unknown alarm %q", a.Type), "etcd's alarms are NOSPACE and CORRUPT")
		}
		am.Alarm = pb.AlarmType(t)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.Client.AlarmDisarm(ctx, am)
	if err != nil {
		return nil, c.explain("disarming alarms", err)
	}
	return fromPBAlarms(resp.Alarms), nil
}

func (c *V3Conn) Defragment(ctx context.Context) error {
	_, err := c.Client.Defragment(ctx, c.endpoint())
	return c.explain("defragmenting", err)
}

func (c *V3Conn) Compact(ctx context.Context, rev int64, physical bool) error {
	var opts []clientv3.CompactOption
	if physical {
		opts = append(opts, clientv3.WithCompactPhysical())
	} else {
		var cancel context.CancelFunc
		ctx, cancel = c.call(ctx)
		defer cancel()
	}
	_, err := c.Client.Compact(ctx, rev, opts...)
	return c.explain(fmt.Sprintf("compacting to revision %d", rev), err)
}

func (c *V3Conn) HashKV(ctx context.Context, rev int64) (*KVHash, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.Client.HashKV(ctx, c.endpoint(), rev)
	if err != nil {
		return nil, c.explain(fmt.Sprintf("hashing the keys at revision %d", rev), err)
	}
	h := &KVHash{Hash: resp.Hash, HashRevision: resp.HashRevision, CompactRevision: resp.CompactRevision}
	if resp.Header != nil {
		h.MemberID = resp.Header.MemberId
	}
	return h, nil
}

func (c *V3Conn) GetPage(ctx context.Context, r PageRequest) (*Page, error) {
	if r.SizesOnly && !r.KeysOnly {
		ctx, cancel := c.call(ctx)
		defer cancel()
		p, err := c.getSizes(ctx, r)
		return p, c.explain(fmt.Sprintf("reading %q", r.Key), err)
	}
	opts := []clientv3.OpOption{clientv3.WithLimit(r.Limit), clientv3.WithRev(r.Revision)}
	if r.End != "" {
		opts = append(opts, clientv3.WithRange(r.End))
	}
	if r.KeysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if r.Serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.Client.Get(ctx, r.Key, opts...)
	if err != nil {
		return nil, c.explain(fmt.Sprintf("reading %q", r.Key), err)
	}
	p := &Page{More: resp.More, Count: resp.Count, Revision: r.Revision, KVs: make([]KeyValue, 0, len(resp.Kvs))}
	// The header carries the latest revision, not the one read.
	if p.Revision == 0 && resp.Header != nil {
		p.Revision = resp.Header.Revision
	}
	for _, kv := range resp.Kvs {
		p.KVs = append(p.KVs, KeyValue{Key: kv.Key, Value: kv.Value, ValueSize: int64(len(kv.Value)), CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease})
	}
	return p, nil
}

// explain names what failed and on which member, and adds the fix for
// the errors etcd's operators meet. Permanent ones stop retry loops.
func (c *V3Conn) explain(what string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s on %s: %w", what, c.endpoint(), explainRPC(err))
	if h, perm, ok := rpcHint(err); ok {
		if perm {
			return hint.Permanent(err, "%s", h)
		}
		return hint.With(err, "%s", h)
	}
	return err
}

// rpcHint is the fix for an etcd error, and whether no retry heals it.
func rpcHint(err error) (h string, permanent, ok bool) {
	is := func(target error) bool { return errors.Is(err, target) }
	switch {
	case is(rpctypes.ErrPermissionDenied), is(rpctypes.ErrPermissionNotGranted), is(rpctypes.ErrUserEmpty):
		return "etcd auth is on and the client certificate's user lacks that permission; use a certificate whose common name is a user with the root role (kubeadm's apiserver-etcd-client is one)", true, true
	case is(rpctypes.ErrNotLeader):
		return "only the leader can do that; run it against the member that `kubectl etcd status` shows as leader", false, true
	case is(rpctypes.ErrBadLeaderTransferee):
		return "the new leader must be a started voting member other than the leader; check `kubectl etcd members`", true, true
	case is(rpctypes.ErrMemberNotFound):
		return "no member has that ID; IDs are hex, as `kubectl etcd members` shows them", true, true
	case is(rpctypes.ErrPeerURLExist), is(rpctypes.ErrMemberExist):
		return "a member already has that peer URL; remove it first, or reuse it", true, true
	case is(rpctypes.ErrMemberBadURLs):
		return "peer URLs look like https://10.0.0.4:2380", true, true
	case is(rpctypes.ErrTooManyLearners):
		return "etcd allows one learner at a time; promote or remove the one there is", true, true
	case is(rpctypes.ErrMemberNotLearner):
		return "only a learner can be promoted; the member already votes", true, true
	case is(rpctypes.ErrMemberLearnerNotReady):
		return "the learner has not caught up with the leader's log yet; retry in a few seconds", false, true
	case is(rpctypes.ErrUnhealthy):
		return "etcd changes membership only through a member connected to a quorum for the last 5 s (not so right after a start); retry shortly, and if it persists bring the stopped members back (`kubectl etcd health`)", false, true
	case is(rpctypes.ErrMemberNotEnoughStarted):
		return "removing or adding it would leave too few started members for quorum; start the stopped members first (`kubectl etcd health`)", false, true
	case is(rpctypes.ErrCompacted):
		return "that revision was compacted away; use a later one (`kubectl etcd status` shows the current revision)", true, true
	case is(rpctypes.ErrFutureRev):
		return "that revision does not exist yet; use one at most the current revision", true, true
	case is(rpctypes.ErrNoSpace):
		return "the database reached its quota (NOSPACE alarm): compact, defragment every member, then disarm the alarm", false, true
	}
	return "", false, false
}
