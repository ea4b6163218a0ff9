package plugin

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// TestEveryCommandDocumented keeps the help in kubectl's style: each command
// has a short description and at least one example that runs kubectl etcd.
// The README reference is generated from the same fields.
func TestEveryCommandDocumented(t *testing.T) {
	root := NewCmdEtcd(genericiooptions.NewTestIOStreamsDiscard())
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.Hidden {
			return
		}
		t.Run(cmd.CommandPath(), func(t *testing.T) {
			if cmd.Short == "" {
				t.Error("Short is empty")
			}
			if strings.HasSuffix(cmd.Short, ".") {
				t.Errorf("Short %q ends with a period, unlike kubectl's", cmd.Short)
			}
			if !strings.Contains(cmd.Example, "kubectl etcd") {
				t.Errorf("Example has no kubectl etcd invocation: %q", cmd.Example)
			}
		})
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
