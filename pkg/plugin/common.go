package plugin

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

// runner is what every XOptions provides.
type runner interface {
	Complete() error
	Validate() error
	Run(ctx context.Context) error
}

// runE wires an XOptions into cobra in the kubectl order.
func runE(o runner) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if err := o.Complete(); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// argsRunner is an XOptions whose Complete takes the positional args.
type argsRunner interface {
	Complete(args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runEArgs is runE for commands with positional args.
func runEArgs(o argsRunner) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// ClusterReadOptions are the options of the commands that read the
// cluster and print a result: the shared flags plus -o.
type ClusterReadOptions struct {
	*GlobalOptions
	Output string
}

// Complete builds the clients.
func (o *ClusterReadOptions) Complete() error { return o.GlobalOptions.Complete() }

// Validate checks the flags.
func (o *ClusterReadOptions) Validate() error { return validateOutput(o.Output) }

func addOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", printers.Table, "Output format: table, wide, json or yaml.")
}

func validateOutput(f string) error { return printers.ValidateFormat(f) }

// longDesc is templates.LongDesc without the space its markdown renderer
// puts before every paragraph after the first.
func longDesc(s string) string {
	lines := strings.Split(templates.LongDesc(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, " ")
	}
	return strings.Join(lines, "\n")
}
