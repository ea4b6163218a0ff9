package etcd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
)

// AutoDialer uses exec, which needs no helper pod, and switches to
// port-forward for good when exec cannot work in this cluster: etcdctl is
// missing from the image, or RBAC denies pods/exec.
type AutoDialer struct {
	Exec    Dialer
	Forward Dialer
	Log     io.Writer

	mu       sync.Mutex
	switched bool
}

// Name implements Dialer.
func (d *AutoDialer) Name() string { return "auto" }

// Dial implements Dialer.
func (d *AutoDialer) Dial(ctx context.Context, m discovery.Member) (Conn, error) {
	if d.useForward() {
		return d.Forward.Dial(ctx, m)
	}
	c, err := d.Exec.Dial(ctx, m)
	if err != nil {
		return nil, err
	}
	return &autoConn{d: d, m: m, exec: c}, nil
}

func (d *AutoDialer) useForward() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.switched
}

func (d *AutoDialer) switchOver(cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.switched && d.Log != nil {
		fmt.Fprintf(d.Log, "exec transport unavailable (%v); using port-forward\n", cause)
	}
	d.switched = true
}

// canFallBack reports errors that mean exec cannot work at all, as opposed
// to a member that is down.
func canFallBack(err error) bool {
	return errors.Is(err, exec.ErrNotFound) || errors.Is(err, exec.ErrForbidden)
}

type autoConn struct {
	d    *AutoDialer
	m    discovery.Member
	exec Conn

	mu  sync.Mutex
	fwd Conn
}

// fallback dials port-forward for this member once exec has proved unusable.
func (c *autoConn) fallback(ctx context.Context, cause error) (Conn, error) {
	c.d.switchOver(cause)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fwd == nil {
		f, err := c.d.Forward.Dial(ctx, c.m)
		if err != nil {
			return nil, err
		}
		c.fwd = f
	}
	return c.fwd, nil
}

func (c *autoConn) current() Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fwd != nil {
		return c.fwd
	}
	return c.exec
}

// do runs f on exec, and once more on port-forward if exec cannot work.
func do[T any](ctx context.Context, c *autoConn, f func(Conn) (T, error)) (T, error) {
	v, err := f(c.current())
	if err == nil || !canFallBack(err) {
		return v, err
	}
	fc, ferr := c.fallback(ctx, err)
	if ferr != nil {
		return v, fmt.Errorf("%v; port-forward also failed: %w", err, ferr)
	}
	return f(fc)
}

type memberList struct {
	id uint64
	ms []MemberInfo
}

func (c *autoConn) MemberList(ctx context.Context) (uint64, []MemberInfo, error) {
	r, err := do(ctx, c, func(x Conn) (memberList, error) {
		id, ms, err := x.MemberList(ctx)
		return memberList{id, ms}, err
	})
	return r.id, r.ms, err
}

func (c *autoConn) Status(ctx context.Context) (*Status, error) {
	return do(ctx, c, func(x Conn) (*Status, error) { return x.Status(ctx) })
}

func (c *autoConn) Health(ctx context.Context) (time.Duration, error) {
	return do(ctx, c, func(x Conn) (time.Duration, error) { return x.Health(ctx) })
}

func (c *autoConn) Alarms(ctx context.Context) ([]Alarm, error) {
	return do(ctx, c, func(x Conn) ([]Alarm, error) { return x.Alarms(ctx) })
}

func (c *autoConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fwd != nil {
		return c.fwd.Close()
	}
	return c.exec.Close()
}
