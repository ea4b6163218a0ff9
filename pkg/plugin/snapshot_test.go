package plugin

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestSnapshotInspectDecryptDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing directory", []string{"inspect", "x.db.age", "--decrypt-dir", missing}, "--decrypt-dir " + missing + " is not a directory"},
		{"missing file", []string{"inspect", filepath.Join(t.TempDir(), "x.db"), "--decrypt-dir", t.TempDir()}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			cmd := NewCmdSnapshot(NewGlobalOptions(streams))
			cmd.SetArgs(tc.args)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Execute() = %v, want %q", err, tc.want)
			}
		})
	}
}
