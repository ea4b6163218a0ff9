package etcd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// stub is a transport whose preparation fails with prepErr and whose
// clients answer Status with its name as the version, or with callErr.
type stub struct {
	name             string
	prepErr, callErr error
	dials            *atomic.Int32
}

func (s stub) Name() string                                      { return s.name }
func (s stub) Prepare(context.Context, []discovery.Member) error { return s.prepErr }
func (s stub) Client(context.Context, discovery.Member) (etcd.Client, error) {
	if s.dials != nil {
		s.dials.Add(1)
	}
	return stubClient{s: s}, nil
}

// stubClient answers Status; the rest of etcd.Client is not called here.
type stubClient struct {
	etcd.Client
	s stub
}

func (c stubClient) Status(context.Context) (*etcd.Status, error) {
	if c.s.callErr != nil {
		return nil, c.s.callErr
	}
	return &etcd.Status{Version: c.s.name}, nil
}

func (c stubClient) Close() error { return nil }

// TestAutoMaintenance: port-forward serves unless its helper pod cannot
// start; then exec does, for good, and the log says why, once.
func TestAutoMaintenance(t *testing.T) {
	tests := []struct {
		name    string
		prepErr error
		prepare bool
		want    string
		logged  string
	}{
		{"prepared", nil, true, "port-forward", ""},
		{"not prepared yet", nil, false, "port-forward", ""},
		{"no helper pod under NOSPACE", errors.New("creating helper pod on node cp1: etcdserver: mvcc: database space exceeded"), true, "exec",
			"port-forward transport unavailable (creating helper pod on node cp1: etcdserver: mvcc: database space exceeded); using etcdctl in the etcd containers\n"},
		{"no helper pod on two nodes, one line", errors.Join(errors.New("creating helper pod on node cp1: no space"), errors.New("creating helper pod on node cp2: no space")), true, "exec",
			"port-forward transport unavailable (creating helper pod on node cp1: no space; and 1 more); using etcdctl in the etcd containers\n"},
		{"a hint on its own line", errors.New("helper image \"busybox\" cannot be pulled on node cp1\nUse --image with an image the node can pull"), true, "exec",
			"port-forward transport unavailable (helper image \"busybox\" cannot be pulled on node cp1 Use --image with an image the node can pull); using etcdctl in the etcd containers\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			a := &etcd.Auto{First: stub{name: "port-forward", prepErr: tt.prepErr}, Then: stub{name: "exec"}, Log: &log}
			if tt.prepare {
				if err := a.Prepare(context.Background(), nil); err != nil {
					t.Fatalf("Prepare: %v", err)
				}
			}
			for range 2 {
				if got := status(t, a); got != tt.want {
					t.Errorf("served by %s, want %s", got, tt.want)
				}
			}
			if log.String() != tt.logged {
				t.Errorf("log %q, want %q", log.String(), tt.logged)
			}
		})
	}
}

// TestAutoReads: exec serves, with no helper pod, until etcdctl is missing
// or RBAC denies pods/exec; then port-forward does, for good, said once.
// A member that is down, or a cancelled command, is no reason to switch.
func TestAutoReads(t *testing.T) {
	forbidden := fmt.Errorf("pods \"etcd-a\" is forbidden: %w", exec.ErrForbidden)
	for _, tt := range []struct {
		name    string
		callErr error
		cancel  bool
		want    string // which transport answered; "" for an error
	}{
		{"exec works", nil, false, "exec"},
		{"RBAC denies pods/exec", forbidden, false, "port-forward"},
		{"no etcdctl in the image", fmt.Errorf("x: %w", exec.ErrNotFound), false, "port-forward"},
		{"a member down is no reason", errors.New("context deadline exceeded"), false, ""},
		{"Ctrl-C is no reason", forbidden, true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			var fwdDials atomic.Int32
			a := &etcd.Auto{First: stub{name: "exec", callErr: tt.callErr}, Then: stub{name: "port-forward", prepErr: errors.New("never prepared"), dials: &fwdDials}, Log: &log}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			if err := a.Prepare(ctx, nil); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				c, err := a.Client(ctx, discovery.Member{})
				if err != nil {
					t.Fatal(err)
				}
				st, err := c.Status(ctx)
				got := ""
				if err == nil {
					got = st.Version
				}
				if got != tt.want {
					t.Errorf("served by %q (%v), want %q", got, err, tt.want)
				}
			}
			switched := tt.callErr != nil && strings.HasPrefix(log.String(), "exec transport unavailable (") && strings.HasSuffix(log.String(), "); using port-forward\n")
			if switched != (tt.want == "port-forward") || !switched && log.Len() > 0 {
				t.Errorf("log %q, switched %t, want a switch %t", log.String(), switched, tt.want == "port-forward")
			}
			if strings.Count(log.String(), "\n") > 1 {
				t.Errorf("logged more than once: %q", log.String())
			}
			if tt.want != "port-forward" && fwdDials.Load() != 0 {
				t.Errorf("dialled port-forward %d times without a reason", fwdDials.Load())
			}
		})
	}
}

func status(t *testing.T, tr etcd.Transport) string {
	t.Helper()
	c, err := tr.Client(context.Background(), discovery.Member{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Version
}

// What a transport cannot do is a type: its name, the operation and the
// way out, and no retry heals it.
func TestUnsupported(t *testing.T) {
	c, err := (&etcd.ExecTransport{}).Client(context.Background(), discovery.Member{Name: "m1", Pod: "etcd-m1", Running: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Snapshot(context.Background())
	var ue *etcd.UnsupportedError
	if !errors.Is(err, etcd.ErrUnsupported) || !errors.As(err, &ue) || ue.Transport != "exec" || ue.Op != "stream snapshots" {
		t.Fatalf("Snapshot over exec: %v", err)
	}
	if !hint.IsPermanent(err) || !strings.Contains(err.Error(), "the exec transport cannot stream snapshots") {
		t.Errorf("Snapshot over exec: %q, want a permanent error naming the transport", err)
	}
	if _, err := c.GetPage(context.Background(), etcd.PageRequest{Key: "/registry/", End: "\x00"}); !errors.Is(err, etcd.ErrUnsupported) {
		t.Errorf("GetPage with values over exec: %v", err)
	}
}

// A member that cannot be dialled gives a nil Client, not a Client that
// holds a nil pointer, which a caller's `c != nil` would take for one.
func TestFailedDialIsNil(t *testing.T) {
	stopped := discovery.Member{Name: "m1", Pod: "etcd-m1", Running: false}
	for _, tr := range []etcd.Transport{&etcd.ExecTransport{}, &etcd.ForwardTransport{}} {
		c, err := tr.Client(context.Background(), stopped)
		if err == nil || c != nil {
			t.Errorf("%s: Client of a stopped member = %#v, %v; want nil and an error", tr.Name(), c, err)
		}
	}
}
