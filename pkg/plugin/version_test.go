package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAgentLine(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{name: "a release", files: []string{"kubectl-etcd-agent-linux-amd64", "kubectl-etcd-agent-linux-arm64"}, want: "node agents: linux/amd64, linux/arm64 in DIR"},
		{name: "a local build", files: []string{"kubectl-etcd-agent"}, want: "node agent: DIR/kubectl-etcd-agent (a local build, for every node)"},
		{name: "none", want: "node agents: none in DIR (restore needs kubectl-etcd-agent-linux-<arch> there, or --agent-dir)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			want := strings.Replace(tc.want, "DIR", dir, 1)
			if got := agentLine(dir); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}
