package plugin

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

var membersExample = templates.Examples(`
	# List the etcd members with their nodes and URLs
	kubectl etcd members

	# The same as JSON, with hex member IDs, for jq
	kubectl etcd members -o json | jq -r '.members[].id'`)

// MembersOptions are the options of `kubectl etcd members`.
type MembersOptions struct {
	*GlobalOptions
	Output string
}

// NewCmdMembers returns the members command.
func NewCmdMembers(g *GlobalOptions) *cobra.Command {
	o := &MembersOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:     "members",
		Aliases: []string{"member", "member-list"},
		Short:   "List the etcd members",
		Long:    templates.LongDesc(`List the etcd members: hex ID, name, node, whether started, whether a learner, peer and client URLs.`),
		Example: membersExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Complete builds the clients.
func (o *MembersOptions) Complete() error { return o.GlobalOptions.Complete() }

// Validate checks the flags.
func (o *MembersOptions) Validate() error { return validateOutput(o.Output) }

// Run lists the members.
func (o *MembersOptions) Run(ctx context.Context) error {
	pods, err := o.Members(ctx)
	if err != nil {
		return err
	}
	v, err := etcd.ListMembers(ctx, o.Dialer(), pods)
	if err != nil {
		return err
	}
	return printers.Print(o.Out, o.Output, v, printers.MembersTable(v))
}

func addOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", printers.Table, "Output format: table, wide, json or yaml.")
}

func validateOutput(f string) error { return printers.ValidateFormat(f) }
