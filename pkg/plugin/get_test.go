package plugin

import (
	"context"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
)

// TestGetAndExportRefusals checks the argument mistakes, which are
// caught before any cluster or file is read.
func TestGetAndExportRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get"}, "name a KEY, or add --prefix"},
		{[]string{"get", "pods"}, "add --prefix to read them all"},
		{[]string{"get", "gizmos/x"}, `unknown resource "gizmos"`},
		{[]string{"get", "/registry/x", "-o", "table"}, "get prints yaml or json"},
		{[]string{"get", "/registry/x", "--raw", "--keys-only"}, "do not go together"},
		{[]string{"get", "/registry/x", "--limit", "-1"}, "--limit and --rev must be 0 or more"},
		{[]string{"get", "/registry/x", "-i", "key.txt"}, "add --snapshot FILE"},
		{[]string{"get", "/registry/x", "--snapshot", "etcd.db", "--decrypt-dir", "/nonexistent"}, "is not a directory"},
		{[]string{"get", "/registry/x", "--transport", "exec"}, "--transport exec cannot run this command"},
		{[]string{"snapshot", "export", "etcd.db"}, "--namespace NAMESPACE"},
		{[]string{"snapshot", "export", "etcd.db", "-n", "prod", "-o", "yaml"}, "-o names a file or directory"},
		{[]string{"snapshot", "export", "/nonexistent/etcd.db", "-n", "prod"}, "no such file"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			g := NewGlobalOptions(streams)
			g.Client = fake.NewClientset()
			cmd := NewCmdEtcdWithOptions(g)
			cmd.SetArgs(tc.args)
			err := cmd.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
