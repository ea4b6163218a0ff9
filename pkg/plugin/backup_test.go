package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultSnapshotName(t *testing.T) {
	at := time.Date(2026, 11, 21, 22, 5, 9, 0, time.FixedZone("KST", 9*3600))
	tests := []struct {
		ctx  string
		enc  bool
		want string
	}{
		{"kubernetes-admin@prod", false, "etcd-kubernetes-admin-prod-20261121T130509Z.db"},
		{"arn:aws:eks:eu-west-1:1234:cluster/x", true, "etcd-arn-aws-eks-eu-west-1-1234-cluster-x-20261121T130509Z.db.age"},
		{"", false, "etcd-cluster-20261121T130509Z.db"},
	}
	for _, tc := range tests {
		if got := DefaultSnapshotName(tc.ctx, at, tc.enc); got != tc.want {
			t.Errorf("DefaultSnapshotName(%q) = %q, want %q", tc.ctx, got, tc.want)
		}
	}
}

func TestBackupValidate(t *testing.T) {
	existing := filepath.Join(t.TempDir(), "etcd.db")
	os.WriteFile(existing, []byte("x"), 0o600)
	tests := []struct {
		name string
		o    BackupOptions
		want string
	}{
		{"existing file", BackupOptions{File: existing}, "already exists"},
		{"encrypt without recipient", BackupOptions{File: "-", Encrypt: true}, "--recipient"},
		{"negative retries", BackupOptions{File: "-", Retries: -1}, "--retries"},
		{"stdout", BackupOptions{File: "-"}, ""},
		{"an unknown way", BackupOptions{File: "-", Via: "ssh"}, `--via "ssh": want stream or node`},
		{"compression on the stream", BackupOptions{File: "-", Via: "stream", Compress: "zstd"}, "it needs --via node"},
		{"an unknown compression", BackupOptions{File: "-", Via: "node", Compress: "gzip"}, `--compress "gzip": want s2 or zstd`},
		{"node-side, compressed, to stdout", BackupOptions{File: "-", Via: "node", Compress: "zstd"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
