package plugin

import (
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
)

// TestClientSourceFollowsTransport: exec is etcdctl in the containers,
// port-forward the client API, auto the client API with etcdctl to fall
// back on; the maintenance commands and check choose alike.
func TestClientSourceFollowsTransport(t *testing.T) {
	for _, tc := range []struct {
		transport string
		want      string
	}{
		{TransportAuto, "fallback"},
		{TransportExec, "exec"},
		{TransportPortForward, "port-forward"},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			g := NewGlobalOptions(streams)
			g.Transport = tc.transport
			o := &ClusterReadOptions{GlobalOptions: g}
			kind := func(s any) string {
				switch s.(type) {
				case *etcd.Fallback[maint.Client], *etcd.Fallback[doctor.Client]:
					return "fallback"
				case etcd.ExecNarrowed[maint.Client], etcd.ExecNarrowed[doctor.Client]:
					return "exec"
				case etcd.Narrowed[maint.Client], etcd.Narrowed[doctor.Client]:
					return "port-forward"
				}
				return "unknown"
			}
			if got := kind(clientSource[maint.Client](o)); got != tc.want {
				t.Errorf("maintenance: %s, want %s", got, tc.want)
			}
			if got := kind(clientSource[doctor.Client](o)); got != tc.want {
				t.Errorf("check: %s, want %s", got, tc.want)
			}
		})
	}
}
