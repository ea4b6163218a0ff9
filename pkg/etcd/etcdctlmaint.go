package etcd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// The maintenance verbs over exec: what the maintenance commands need when
// no helper pod can start to read the TLS material. That is the case a
// NOSPACE alarm makes, since the API server cannot create a pod while
// etcd refuses its writes, and the one the maintenance commands exist for.

// known are the etcd errors the operations tell apart.
var known = []error{rpctypes.ErrCompacted, rpctypes.ErrFutureRev, rpctypes.ErrNoSpace, rpctypes.ErrPermissionDenied,
	rpctypes.ErrNotLeader, rpctypes.ErrBadLeaderTransferee, rpctypes.ErrMemberNotFound}

type typedError struct {
	err, kind error
}

func (e *typedError) Error() string   { return e.err.Error() }
func (e *typedError) Unwrap() []error { return []error{e.err, e.kind} }

func typed(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range known {
		if strings.Contains(err.Error(), k.Error()) {
			return &typedError{err: err, kind: k}
		}
	}
	return err
}

// longCommand bounds the verbs that last as long as the database is
// large (defrag, a physical compaction): the caller's ctx is what
// bounds them.
const longCommand = time.Hour

// long is the same member's etcdctl with longCommand as its timeout.
func (c *execClient) long() *execClient {
	l := *c
	l.timeout = longCommand
	return &l
}

// AlarmDisarm disarms a, and the zero Alarm every alarm. etcdctl has no
// verb for one alarm alone: its alarm disarm clears them all. So the
// alarms are listed right before, and a raised alarm of another type
// stops it: a CORRUPT alarm raised during a long defrag must not be
// cleared with the NOSPACE one. It returns the alarms disarmed.
func (c *execClient) AlarmDisarm(ctx context.Context, a Alarm) ([]Alarm, error) {
	if a.Type != "" {
		raised, err := c.AlarmList(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the alarms before disarming %s: %w", a.Type, err)
		}
		if err := otherAlarm(a, raised); err != nil {
			return nil, err
		}
	}
	var resp pb.AlarmResponse
	if err := c.run(ctx, &resp, "alarm", "disarm"); err != nil {
		return nil, err
	}
	return fromPBAlarms(resp.Alarms), nil
}

// otherAlarm is the refusal to disarm a over etcdctl while an alarm of
// another type is raised, nil when none is.
func otherAlarm(a Alarm, raised []Alarm) error {
	for _, r := range raised {
		if r.Type == a.Type {
			continue
		}
		err := fmt.Errorf("refusing to disarm %s on member %s over exec: alarm %s is also raised on member %s, and etcdctl alarm disarm would disarm it too",
			a.Type, HexID(a.MemberID), r.Type, HexID(r.MemberID))
		fix := "disarm one alarm at a time with --transport=port-forward, or clear every alarm on purpose with: kubectl etcd ctl -- alarm disarm"
		if r.Type == pb.AlarmType_CORRUPT.String() {
			fix = "CORRUPT means the members' data differ: compare them (kubectl etcd ctl -- endpoint hashkv --cluster) and replace the member that differs before any alarm is disarmed; then " + fix
		} else {
			fix = "check why " + r.Type + " is raised first; then " + fix
		}
		return hint.Permanent(err, "%s", fix)
	}
	return nil
}

// Defragment defragments the member the client is bound to.
func (c *execClient) Defragment(ctx context.Context) error {
	return c.long().run(ctx, nil, "defrag")
}

// Compact compacts the history before rev.
func (c *execClient) Compact(ctx context.Context, rev int64, physical bool) error {
	args := []string{"compaction", strconv.FormatInt(rev, 10)}
	if physical {
		args = append(args, "--physical")
	}
	return c.long().run(ctx, nil, args...)
}

// MoveLeader hands the leadership to toID; the client must be bound to
// the leader.
func (c *execClient) MoveLeader(ctx context.Context, toID uint64) error {
	return c.run(ctx, nil, "move-leader", HexID(toID))
}

// needsClientAPI is what etcdctl's verbs cannot do: only etcd's client API
// can, over a port-forward.
func needsClientAPI(op, why string) error {
	return unsupported("exec", op, why, "use --transport=port-forward, which reads the TLS material in a helper pod")
}

// Snapshot implements Client: etcdctl writes a snapshot to a file inside
// the container, and images without cat or a shell cannot hand it out.
func (c *execClient) Snapshot(context.Context) (*SnapshotStream, error) {
	return nil, needsClientAPI("stream snapshots", "")
}

// MemberAdd implements Client with etcdctl member add. etcdctl wants a
// name, which only its own printout uses: etcd learns the name when the
// member starts.
func (c *execClient) MemberAdd(ctx context.Context, peerURLs []string, asLearner bool) (MemberInfo, []MemberInfo, error) {
	args := []string{"member", "add", "new-member", "--peer-urls=" + strings.Join(peerURLs, ",")}
	if asLearner {
		args = append(args, "--learner")
	}
	var resp pb.MemberAddResponse
	if err := c.run(ctx, &resp, args...); err != nil {
		return MemberInfo{}, nil, err
	}
	if resp.Member == nil {
		return MemberInfo{}, nil, fmt.Errorf("etcdctl member add printed no member")
	}
	return fromPBMembers([]*pb.Member{resp.Member})[0], fromPBMembers(resp.Members), nil
}

// MemberRemove implements Client with etcdctl member remove.
func (c *execClient) MemberRemove(ctx context.Context, id uint64) ([]MemberInfo, error) {
	var resp pb.MemberRemoveResponse
	if err := c.run(ctx, &resp, "member", "remove", HexID(id)); err != nil {
		return nil, err
	}
	return fromPBMembers(resp.Members), nil
}

// MemberPromote implements Client with etcdctl member promote.
func (c *execClient) MemberPromote(ctx context.Context, id uint64) ([]MemberInfo, error) {
	var resp pb.MemberPromoteResponse
	if err := c.run(ctx, &resp, "member", "promote", HexID(id)); err != nil {
		return nil, err
	}
	return fromPBMembers(resp.Members), nil
}

// GetPage reads a keys-only page with etcdctl get (a linearizable read
// unless Serializable, as the health check makes). Values are not served
// over exec: etcdctl prints them whole.
func (c *execClient) GetPage(ctx context.Context, r PageRequest) (*Page, error) {
	if !r.KeysOnly || r.SizesOnly || strings.Contains(r.Key, "\x00") || r.End != "\x00" && strings.Contains(r.End, "\x00") {
		return nil, needsClientAPI("read this range page by page", "etcdctl prints values whole, and takes no key with a NUL byte")
	}
	args := []string{"get", r.Key}
	switch r.End {
	case "":
	case "\x00":
		args = append(args, "--from-key")
	default:
		args = append(args, r.End)
	}
	args = append(args, "--keys-only", "--limit="+strconv.FormatInt(r.Limit, 10), "--rev="+strconv.FormatInt(r.Revision, 10))
	if r.Serializable {
		args = append(args, "--consistency=s")
	}
	var resp pb.RangeResponse
	if err := c.run(ctx, &resp, args...); err != nil {
		return nil, err
	}
	p := &Page{More: resp.More, Count: resp.Count, Revision: r.Revision}
	if p.Revision == 0 && resp.Header != nil {
		p.Revision = resp.Header.Revision
	}
	for _, kv := range resp.Kvs {
		p.KVs = append(p.KVs, KeyValue{Key: kv.Key, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease})
	}
	return p, nil
}

type endpointHashKV struct {
	Endpoint string             `json:"Endpoint"`
	HashKV   *pb.HashKVResponse `json:"HashKV"`
}

// HashKV hashes the member's keys up to rev (0: the latest) with
// etcdctl endpoint hashkv.
func (c *execClient) HashKV(ctx context.Context, rev int64) (*KVHash, error) {
	var resp []endpointHashKV
	if err := c.run(ctx, &resp, "endpoint", "hashkv", "--rev="+strconv.FormatInt(rev, 10)); err != nil {
		return nil, err
	}
	if len(resp) != 1 || resp[0].HashKV == nil {
		return nil, fmt.Errorf("etcdctl endpoint hashkv in %s returned no hash (%d results)", c.m.Pod, len(resp))
	}
	r := resp[0].HashKV
	h := &KVHash{Hash: r.Hash, HashRevision: r.HashRevision, CompactRevision: r.CompactRevision}
	if r.Header != nil {
		h.MemberID = r.Header.MemberId
	}
	return h, nil
}
