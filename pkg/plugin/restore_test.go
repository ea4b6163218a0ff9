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
		{"script-dir with status", []string{"restore", "--status", "--script-dir", "d"}, "takes a FILE"},
		{"resume and rollback", []string{"restore", "--resume", "--rollback"}, "exclude each other"},
		{"resume with a file", []string{"restore", "etcd.db", "--resume"}, "take no FILE"},
		{"id without a journal flag", []string{"restore", "etcd.db", "--id", "r1"}, "--id is for"},
		{"healthy timeout too short", []string{"restore", "etcd.db", "--healthy-timeout", "1s"}, "--healthy-timeout 1s is too short"},
		{"--from without a name", []string{"restore", "--from", "node:/var/lib/etcd-backups"}, "needs the NAME of a snapshot there"},
		{"--from with status", []string{"restore", "--status", "--from", "node:/b"}, "goes with NAME"},
		{"--s3-secret without --from", []string{"restore", "etcd.db", "--s3-secret", "s"}, "which is not given"},
		{"--node with S3", []string{"restore", "x.db.age", "--from", "s3://b/p", "--node", "n1"}, "--node goes with a node:/DIR destination"},
		{"--from a PVC", []string{"restore", "x.db.age", "--from", "pvc:backups"}, "do not read a PersistentVolumeClaim"},
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
