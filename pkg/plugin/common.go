package plugin

import (
	"context"

	"github.com/spf13/cobra"

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
