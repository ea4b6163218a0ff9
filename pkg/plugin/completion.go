package plugin

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"
)

var completionLong = longDesc(`
	Print the shell completion code for kubectl-etcd, for bash, zsh, fish or
	PowerShell.

	The code completes the kubectl-etcd binary when it is run on its own.
	To complete "kubectl etcd ..." as a kubectl plugin, kubectl 1.26+ calls
	the kubectl_complete-etcd executable shipped in the same archive: put it
	on your PATH next to kubectl-etcd and kubectl's own completion does the
	rest. Member names
	(backup --member) are read from the cluster as you type, with the
	connection flags already on the line.`)

var completionExample = templates.Examples(`
	# Load the bash completion in the current shell (needs bash-completion)
	source <(kubectl etcd completion bash)

	# Install the zsh completion for every new shell
	kubectl etcd completion zsh > "${fpath[1]}/_kubectl-etcd"

	# fish
	kubectl etcd completion fish > ~/.config/fish/completions/kubectl-etcd.fish

	# PowerShell
	kubectl etcd completion powershell | Out-String | Invoke-Expression`)

// completionShells maps each supported shell to cobra's generator.
var completionShells = map[string]func(root *cobra.Command, out io.Writer) error{
	"bash":       func(root *cobra.Command, out io.Writer) error { return root.GenBashCompletionV2(out, true) },
	"zsh":        func(root *cobra.Command, out io.Writer) error { return root.GenZshCompletion(out) },
	"fish":       func(root *cobra.Command, out io.Writer) error { return root.GenFishCompletion(out, true) },
	"powershell": func(root *cobra.Command, out io.Writer) error { return root.GenPowerShellCompletionWithDesc(out) },
}

// NewCmdCompletion returns the completion command. It replaces cobra's
// default one, which has neither kubectl's help style nor an example.
func NewCmdCompletion(streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:                   "completion bash|zsh|fish|powershell",
		DisableFlagsInUseLine: true,
		Short:                 "Print the shell completion code for bash, zsh, fish or PowerShell",
		Long:                  completionLong,
		Example:               completionExample,
		ValidArgs:             []string{"bash", "zsh", "fish", "powershell"},
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			gen, ok := completionShells[args[0]]
			if !ok {
				return fmt.Errorf("unsupported shell %q: use bash, zsh, fish or powershell", args[0])
			}
			return gen(cmd.Root(), streams.Out)
		},
	}
}

// completionTimeout bounds the API calls behind a <TAB>, so that an
// unreachable cluster does not hang the shell.
const completionTimeout = 5 * time.Second

// completeMembers completes member names, described by their node, from the
// cluster the flags already typed point at. Any failure completes nothing
// rather than printing an error into the user's prompt.
func completeMembers(g *GlobalOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if err := g.Complete(); err != nil {
			cobra.CompDebugln("member completion: "+err.Error(), true)
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmdContext(cmd), completionTimeout)
		defer cancel()
		members, err := g.Members(ctx)
		if err != nil {
			cobra.CompDebugln("member completion: "+err.Error(), true)
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var comps []cobra.Completion
		for _, m := range members {
			if m.Name != "" {
				comps = append(comps, cobra.CompletionWithDesc(m.Name, "member on node "+m.Node))
			}
		}
		return comps, cobra.ShellCompDirectiveNoFileComp
	}
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// firstArg completes the first positional argument only.
func firstArg(f cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}
