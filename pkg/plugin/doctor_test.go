package plugin

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster/clustertest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
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

// TestCheckStrict: a warning alone exits 0, and non-zero with --strict;
// a run without warnings passes --strict too.
func TestCheckStrict(t *testing.T) {
	learner := func(c *clustertest.Cluster) { c.Member("hc-cp3").Learner = true }
	tests := []struct {
		name    string
		args    []string
		setup   func(c *clustertest.Cluster)
		summary string // a piece of the summary on stderr
		wantErr string
	}{
		{name: "no warning passes --strict", args: []string{"--strict"}, summary: " 0 warn, 0 fail,"},
		{name: "a warning passes without --strict", setup: learner, summary: " 2 warn, 0 fail,"},
		{name: "a warning fails with --strict", args: []string{"--strict"}, setup: learner, summary: " 2 warn, 0 fail,",
			wantErr: "2 of 7 warned, and --strict fails on warnings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := maintCluster()
			if tc.setup != nil {
				tc.setup(fc)
			}
			args := append([]string{"check", "--window", "0", "--only", "topology"}, tc.args...)
			out, errOut, err := runMaint(t, fc, args...)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v\n%s%s", err, out, errOut)
			}
			if tc.wantErr != "" && (!errors.Is(err, doctor.ErrFailed) || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want doctor.ErrFailed with %q", err, tc.wantErr)
			}
			if !strings.Contains(errOut, tc.summary) {
				t.Errorf("summary lacks %q:\n%s", tc.summary, errOut)
			}
		})
	}
}
