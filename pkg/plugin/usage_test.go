package plugin

import (
	"errors"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
)

func TestUsageCommand(t *testing.T) {
	t.Run("reads a follower", func(t *testing.T) {
		fc := maintCluster()
		out, errOut, err := runMaint(t, fc, "usage")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut, "from follower hc-cp2") {
			t.Errorf("notice %q", errOut)
		}
		golden.Assert(t, "cmd-usage", []byte(out))
	})
	t.Run("the leader when no follower answers", func(t *testing.T) {
		fc := maintCluster()
		fc.Fail["dial hc-cp2"], fc.Fail["status hc-cp3"] = errors.New("refused"), errors.New("timeout")
		out, errOut, err := runMaint(t, fc, "usage", "-o", "json")
		if err != nil || !strings.Contains(errOut, "from leader hc-cp1") || !strings.Contains(out, `"role": "leader"`) || strings.Contains(out, "serializable") {
			t.Errorf("%v\n%s%s", err, out, errOut)
		}
	})
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"identity without snapshot", []string{"usage", "--identity", "key.txt"}, "add --snapshot FILE"},
		{"negative top", []string{"usage", "--top", "-1"}, "--top and --top-keys must be 0 or more"},
		{"exec transport", []string{"usage", "--transport", "exec"}, "--transport exec cannot run this command"},
		{"missing snapshot", []string{"usage", "--snapshot", "/nonexistent/etcd.db"}, "no such file"},
		{"bad output", []string{"usage", "-o", "xml"}, "unknown output format"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runMaint(t, maintCluster(), c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}
