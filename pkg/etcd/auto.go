package etcd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
)

// Auto is `--transport auto`: First until it cannot work in this cluster,
// then Then for the rest of the command, said once on Log. First cannot
// work when its Prepare fails (port-forward's helper pod cannot start:
// under a NOSPACE alarm the API server creates no pod), or when a call
// fails with exec.ErrNotFound (etcdctl missing from the image) or
// exec.ErrForbidden (RBAC denies the verb). A member that is down is no
// such failure, and neither is a cancelled command (Ctrl-C). Which
// transport comes first is the command's Policy.
type Auto struct {
	First, Then Transport
	Log         io.Writer

	mu       sync.Mutex
	switched bool
}

var _ Transport = (*Auto)(nil)

// Name implements Transport.
func (a *Auto) Name() string { return "auto" }

// Prepare prepares First, and switches to Then for good when that fails.
// Then is not prepared: its members are dialled one by one, as each is
// needed. It never fails: a member's row says what went wrong.
func (a *Auto) Prepare(ctx context.Context, ms []discovery.Member) error {
	if a.on() == a.First {
		if err := a.First.Prepare(ctx, ms); err != nil && ctx.Err() == nil {
			a.switchOver(err)
		}
	}
	return nil
}

// Client implements Transport. A member that First cannot dial is
// reported as such: dialling is no proof that First cannot work.
func (a *Auto) Client(ctx context.Context, m discovery.Member) (Client, error) {
	if a.on() == a.Then {
		return a.Then.Client(ctx, m)
	}
	c, err := a.First.Client(ctx, m)
	if err != nil {
		return nil, err
	}
	return &autoClient{a: a, m: m, first: c}, nil
}

func (a *Auto) on() Transport {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.switched {
		return a.Then
	}
	return a.First
}

func (a *Auto) switchOver(cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.switched && a.Log != nil {
		fmt.Fprintf(a.Log, "%s transport unavailable (%s); using %s\n", a.First.Name(), firstOf(cause), describe(a.Then))
	}
	a.switched = true
}

// describe names a transport for the switch's message.
func describe(t Transport) string {
	if t.Name() == "exec" {
		return "etcdctl in the etcd containers"
	}
	return t.Name()
}

// firstOf is err on one line: the first of joined errors (one per
// node, often alike), with how many more there are.
func firstOf(err error) string {
	n := 1
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) && len(j.Unwrap()) > 0 {
		err, n = j.Unwrap()[0], len(j.Unwrap())
	}
	s := strings.Join(strings.Fields(err.Error()), " ")
	if n > 1 {
		s += fmt.Sprintf("; and %d more", n-1)
	}
	return s
}

// cannotWork reports the call errors that mean a transport cannot work
// at all, as opposed to a member that is down.
func cannotWork(err error) bool {
	return errors.Is(err, exec.ErrNotFound) || errors.Is(err, exec.ErrForbidden)
}

// autoClient is one member's client under Auto: First's, and Then's once
// a call proved that First cannot work.
type autoClient struct {
	a     *Auto
	m     discovery.Member
	first Client

	mu   sync.Mutex
	then Client
}

// fallback dials Then for this member once First has proved unusable.
func (c *autoClient) fallback(ctx context.Context, cause error) (Client, error) {
	c.a.switchOver(cause)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.then == nil {
		t, err := c.a.Then.Client(ctx, c.m)
		if err != nil {
			return nil, err
		}
		c.then = t
	}
	return c.then, nil
}

func (c *autoClient) current() Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.then != nil {
		return c.then
	}
	return c.first
}

// call runs f on the current client, and once more on Then if First
// cannot work.
func call[T any](ctx context.Context, c *autoClient, f func(Client) (T, error)) (T, error) {
	v, err := f(c.current())
	if err == nil || !cannotWork(err) || ctx.Err() != nil {
		return v, err
	}
	tc, terr := c.fallback(ctx, err)
	if terr != nil {
		return v, fmt.Errorf("%v; %s also failed: %w", err, c.a.Then.Name(), terr)
	}
	return f(tc)
}

// do is call for the methods that return only an error.
func do(ctx context.Context, c *autoClient, f func(Client) error) error {
	_, err := call(ctx, c, func(x Client) (struct{}, error) { return struct{}{}, f(x) })
	return err
}

type memberList struct {
	id uint64
	ms []MemberInfo
}

func (c *autoClient) MemberList(ctx context.Context) (uint64, []MemberInfo, error) {
	r, err := call(ctx, c, func(x Client) (memberList, error) {
		id, ms, err := x.MemberList(ctx)
		return memberList{id, ms}, err
	})
	return r.id, r.ms, err
}

func (c *autoClient) MemberAdd(ctx context.Context, peerURLs []string, asLearner bool) (MemberInfo, []MemberInfo, error) {
	var added MemberInfo
	ms, err := call(ctx, c, func(x Client) ([]MemberInfo, error) {
		var ms []MemberInfo
		var err error
		added, ms, err = x.MemberAdd(ctx, peerURLs, asLearner)
		return ms, err
	})
	return added, ms, err
}

func (c *autoClient) MemberRemove(ctx context.Context, id uint64) ([]MemberInfo, error) {
	return call(ctx, c, func(x Client) ([]MemberInfo, error) { return x.MemberRemove(ctx, id) })
}

func (c *autoClient) MemberPromote(ctx context.Context, id uint64) ([]MemberInfo, error) {
	return call(ctx, c, func(x Client) ([]MemberInfo, error) { return x.MemberPromote(ctx, id) })
}

func (c *autoClient) Status(ctx context.Context) (*Status, error) {
	return call(ctx, c, func(x Client) (*Status, error) { return x.Status(ctx) })
}

func (c *autoClient) Health(ctx context.Context) (time.Duration, error) {
	return call(ctx, c, func(x Client) (time.Duration, error) { return x.Health(ctx) })
}

func (c *autoClient) StatusAll(ctx context.Context) ([]EndpointStatus, error) {
	return call(ctx, c, func(x Client) ([]EndpointStatus, error) { return x.StatusAll(ctx) })
}

func (c *autoClient) HealthAll(ctx context.Context) ([]EndpointHealth, error) {
	return call(ctx, c, func(x Client) ([]EndpointHealth, error) { return x.HealthAll(ctx) })
}

func (c *autoClient) MoveLeader(ctx context.Context, toID uint64) error {
	return do(ctx, c, func(x Client) error { return x.MoveLeader(ctx, toID) })
}

func (c *autoClient) AlarmList(ctx context.Context) ([]Alarm, error) {
	return call(ctx, c, func(x Client) ([]Alarm, error) { return x.AlarmList(ctx) })
}

func (c *autoClient) AlarmDisarm(ctx context.Context, a Alarm) ([]Alarm, error) {
	return call(ctx, c, func(x Client) ([]Alarm, error) { return x.AlarmDisarm(ctx, a) })
}

func (c *autoClient) Defragment(ctx context.Context) error {
	return do(ctx, c, func(x Client) error { return x.Defragment(ctx) })
}

func (c *autoClient) Compact(ctx context.Context, rev int64, physical bool) error {
	return do(ctx, c, func(x Client) error { return x.Compact(ctx, rev, physical) })
}

func (c *autoClient) HashKV(ctx context.Context, rev int64) (*KVHash, error) {
	return call(ctx, c, func(x Client) (*KVHash, error) { return x.HashKV(ctx, rev) })
}

func (c *autoClient) GetPage(ctx context.Context, r PageRequest) (*Page, error) {
	return call(ctx, c, func(x Client) (*Page, error) { return x.GetPage(ctx, r) })
}

func (c *autoClient) Snapshot(ctx context.Context) (*SnapshotStream, error) {
	return call(ctx, c, func(x Client) (*SnapshotStream, error) { return x.Snapshot(ctx) })
}

func (c *autoClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.first.Close()
	if c.then != nil {
		err = errors.Join(err, c.then.Close())
	}
	return err
}
