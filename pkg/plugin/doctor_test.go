package plugin

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
)

func TestCheckAndMetricsRefuseBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"check", "--window", "-1s"}, "--window must not be negative"},
		{[]string{"check", "--skip", "nope"}, `no check or area "nope"`},
		{[]string{"check", "-o", "xml"}, "unknown output format"},
		{[]string{"metrics", "--transport", "exec"}, "--transport exec cannot read metrics"},
		{[]string{"metrics", "--window", "-2s"}, "--window must not be negative"},
		{[]string{"metrics", "--member", "nope"}, `no member named "nope"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			g := NewGlobalOptions(streams)
			g.Client = fake.NewClientset(etcdPod("hc-cp1"))
			cmd := NewCmdEtcdWithOptions(g)
			cmd.SetArgs(tc.args)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
