package plugin

import (
	"context"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// podMetrics serves each member's /metrics as a comment naming its pod.
type podMetrics struct{}

func (podMetrics) Get(_ context.Context, m discovery.Member, path string) (*etcd.HTTPResponse, error) {
	return &etcd.HTTPResponse{Code: 200, Body: []byte("# " + path + " of " + m.Pod + "\n")}, nil
}

// TestMetricsMember: --member takes what it takes in backup, ctl and
// move-leader (a name or a hex ID), and the ID costs a member list.
func TestMetricsMember(t *testing.T) {
	tests := []struct {
		name      string
		member    string
		want      string   // the raw text printed
		wantCalls []string // the etcdctl runs
		wantErr   string
	}{
		{name: "by name", member: "hc-cp2", want: "# /metrics of etcd-hc-cp2\n"},
		{name: "by pod", member: "etcd-hc-cp1", want: "# /metrics of etcd-hc-cp1\n"},
		{name: "by hex ID", member: "2d2a09cbbff63d10", want: "# /metrics of etcd-hc-cp2\n", wantCalls: []string{"member list"}},
		{name: "by 0x hex ID", member: "0x8E9E05C52164694D", want: "# /metrics of etcd-hc-cp1\n", wantCalls: []string{"member list"}},
		{name: "unknown name", member: "hc-cp9", wantErr: `no member named "hc-cp9" or with ID "hc-cp9"`},
		{name: "unknown hex ID", member: "abcdef", wantCalls: []string{"member list"}, wantErr: `no member named "abcdef" or with ID "abcdef"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			streams, _, out, _ := genericiooptions.NewTestIOStreams()
			g := NewGlobalOptions(streams)
			g.Client = fake.NewClientset(etcdPod("hc-cp1"), etcdPod("hc-cp2"))
			ex := &ctlFake{}
			g.Executor, g.HTTP = ex, podMetrics{}
			cmd := NewCmdEtcdWithOptions(g)
			cmd.SetArgs([]string{"metrics", "--raw", "--member", tc.member})
			err := cmd.ExecuteContext(context.Background())
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if out.String() != tc.want {
				t.Errorf("printed %q, want %q", out.String(), tc.want)
			}
			if got := strings.Join(ex.subcommands(), ","); got != strings.Join(tc.wantCalls, ",") {
				t.Errorf("etcdctl ran %q, want %q", got, tc.wantCalls)
			}
		})
	}
}
