package agentcli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEveryOperationParses runs each operation's commands far enough to
// parse their flags and fail on the node's state, never on the flag set.
func TestEveryOperationParses(t *testing.T) {
	root := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"restore", "start", "--spec", "/nonexistent"}, "read the spec"},
		{[]string{"replace", "start", "--spec", "/nonexistent", "--follow"}, "read the spec"},
		{[]string{"recover", "start", "--spec", "/nonexistent", "--follow"}, "read the spec"},
		{[]string{"recover", "survey", "--static-pod-dir", "/etc/kubernetes/manifests"}, "read etcd's manifest"},
		{[]string{"recover", "run", "--id", "X", "--detach"}, "X"},
		{[]string{"recover", "status"}, ""},
		{[]string{"recover", "wait", "--id", "X", "--timeout", "1s"}, "X"},
		{[]string{"recover", "rollback"}, "unknown command `recover rollback`"},
	} {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), append(tt.args, "--root", root), strings.NewReader(""), &out, &errb)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("%v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}
