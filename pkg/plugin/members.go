package plugin

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
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
	ClusterReadOptions
}

// NewCmdMembers returns the members command.
func NewCmdMembers(g *GlobalOptions) *cobra.Command {
	o := &MembersOptions{ClusterReadOptions{GlobalOptions: g}}
	cmd := &cobra.Command{
		Use:     "members",
		Aliases: []string{"member-list"},
		Short:   "List the etcd members",
		Long:    withPolicy(longDesc(`List the etcd members: hex ID, name, node, whether started, whether a learner, peer and client URLs.`), etcd.Reads),
		Example: membersExample,
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Run lists the members.
func (o *MembersOptions) Run(ctx context.Context) error {
	pods, err := o.Members(ctx)
	if err != nil {
		return err
	}
	v, err := cluster.Members(ctx, o.TransportFor(etcd.Reads), pods)
	if err != nil {
		return err
	}
	return printers.Print(o.Out, o.Output, v, printers.MembersTable(v))
}
