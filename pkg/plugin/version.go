package plugin

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/version"
)

// NewCmdVersion returns the version command.
func NewCmdVersion(streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of kubectl-etcd",
		Long:    longDesc(`Print the version of kubectl-etcd, and where restore finds the node agents it uploads.`),
		Example: templates.Examples(`kubectl etcd version`),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(streams.Out, "kubectl-etcd %s (commit %s, built %s, %s %s/%s)\n%s\n",
				version.Version, version.Commit, version.Date, runtime.Version(), runtime.GOOS, runtime.GOARCH, agentLine(defaultAgentDir()))
			return err
		},
	}
}

// agentLine says which node agents restore would upload from dir.
func agentLine(dir string) string {
	if archs := agentclient.Archs(dir); len(archs) > 0 {
		return fmt.Sprintf("node agents: linux/%s in %s", strings.Join(archs, ", linux/"), dir)
	}
	plain := filepath.Join(dir, agentclient.Name)
	if st, err := os.Stat(plain); err == nil && st.Mode().IsRegular() {
		return "node agent: " + plain + " (a local build, for every node)"
	}
	return fmt.Sprintf("node agents: none in %s (restore needs %s-linux-<arch> there, or --agent-dir)", dir, agentclient.Name)
}
