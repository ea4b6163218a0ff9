package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// ExecClient is the part of Client that etcdctl's own verbs cover, run in
// the member's etcd container: what the maintenance commands need when
// no helper pod can start to read the TLS material. That is the case a
// NOSPACE alarm makes, since the API server cannot create a pod while
// etcd refuses its writes, and the one the maintenance commands exist for.
type ExecClient struct{ *execConn }

// ExecClient binds an ExecClient to m. Like Dial, it does no I/O.
func (d *ExecDialer) ExecClient(m discovery.Member) (*ExecClient, error) {
	c, err := d.Dial(context.Background(), m)
	if err != nil {
		return nil, err
	}
	return &ExecClient{c.(*execConn)}, nil
}

// run is execConn's, with etcd's errors that etcdctl printed made the
// client's again (errors.Is(err, rpctypes.ErrCompacted)...), as the
// operations tell them apart.
func (c *ExecClient) run(ctx context.Context, v any, sub ...string) error {
	return typed(c.execConn.run(ctx, v, sub...))
}

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
func (c *ExecClient) long() *ExecClient {
	l := *c.execConn
	l.timeout = longCommand
	return &ExecClient{&l}
}

// AlarmList lists the cluster's alarms.
func (c *ExecClient) AlarmList(ctx context.Context) ([]Alarm, error) { return c.Alarms(ctx) }

// AlarmDisarm disarms a, and the zero Alarm every alarm. etcdctl has no
// verb for one alarm alone: its alarm disarm clears them all. So the
// alarms are listed right before, and a raised alarm of another type
// stops it: a CORRUPT alarm raised during a long defrag must not be
// cleared with the NOSPACE one. It returns the alarms disarmed.
func (c *ExecClient) AlarmDisarm(ctx context.Context, a Alarm) ([]Alarm, error) {
	if a.Type != "" {
		raised, err := c.Alarms(ctx)
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
func (c *ExecClient) Defragment(ctx context.Context) error {
	return c.long().run(ctx, nil, "defrag")
}

// Compact compacts the history before rev.
func (c *ExecClient) Compact(ctx context.Context, rev int64, physical bool) error {
	args := []string{"compaction", strconv.FormatInt(rev, 10)}
	if physical {
		args = append(args, "--physical")
	}
	return c.long().run(ctx, nil, args...)
}

// MoveLeader hands the leadership to toID; the client must be bound to
// the leader.
func (c *ExecClient) MoveLeader(ctx context.Context, toID uint64) error {
	return c.run(ctx, nil, "move-leader", HexID(toID))
}

// ErrNeedsClientAPI is the error of what etcdctl's verbs cannot do.
var ErrNeedsClientAPI = errors.New("etcdctl in the etcd container cannot read this range page by page (it prints values whole, and takes no key with a NUL byte): it needs --transport=port-forward, which reads the TLS material in a helper pod")

// GetPage reads a keys-only page with etcdctl get (a linearizable read
// unless Serializable, as the health check makes). Values are not served
// over exec: etcdctl prints them whole.
func (c *ExecClient) GetPage(ctx context.Context, r PageRequest) (*Page, error) {
	if !r.KeysOnly || r.SizesOnly || strings.Contains(r.Key, "\x00") || r.End != "\x00" && strings.Contains(r.End, "\x00") {
		return nil, ErrNeedsClientAPI
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
func (c *ExecClient) HashKV(ctx context.Context, rev int64) (*KVHash, error) {
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
