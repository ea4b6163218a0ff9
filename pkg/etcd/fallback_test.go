package etcd_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// namedDialer fails every dial with its name, and its preparation with
// prepErr.
type namedDialer struct {
	name    string
	prepErr error
}

func (d namedDialer) Prepare(context.Context, []discovery.Member) error { return d.prepErr }
func (d namedDialer) Client(context.Context, discovery.Member) (string, error) {
	return "", errors.New(d.name)
}

// TestFallback: the port-forward transport serves unless its helper pod
// cannot start; then exec does, for good, and the log says why.
func TestFallback(t *testing.T) {
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
			f := &etcd.Fallback[string]{Primary: namedDialer{name: "port-forward", prepErr: tt.prepErr}, Secondary: namedDialer{name: "exec"}, Log: &log}
			if tt.prepare {
				if err := f.Prepare(context.Background(), nil); err != nil {
					t.Fatalf("Prepare: %v", err)
				}
			}
			for range 2 {
				if _, err := f.Client(context.Background(), discovery.Member{}); err == nil || err.Error() != tt.want {
					t.Errorf("dialled %v, want %s", err, tt.want)
				}
			}
			if log.String() != tt.logged {
				t.Errorf("log %q, want %q", log.String(), tt.logged)
			}
			if strings.Count(log.String(), "\n") > 1 {
				t.Errorf("logged more than once: %q", log.String())
			}
		})
	}
}
