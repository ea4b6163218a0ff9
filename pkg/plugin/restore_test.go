package plugin

import (
	"strings"
	"testing"
)

func TestRestoreFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"restore"}, "needs a snapshot FILE"},
		{"status and rollback", []string{"restore", "--status", "--rollback"}, "exclude each other"},
		{"status with a file", []string{"restore", "etcd.db", "--status"}, "take no FILE"},
		{"restart-kubelet", []string{"restore", "etcd.db", "--restart-kubelet"}, "not supported yet"},
		{"script-dir", []string{"restore", "etcd.db", "--script-dir", "d"}, "not supported yet"},
		{"corrupt snapshot", []string{"restore", "/nonexistent.db", "--dry-run", "--agent-dir", "/nonexistent"}, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(t, &etcdctlFake{}, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
