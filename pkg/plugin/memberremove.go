package plugin

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

// MemberRemoveOptions are the options of `kubectl etcd member remove`.
type MemberRemoveOptions struct {
	memberArgOptions
	Force bool
}

func newCmdMemberRemove(g *GlobalOptions) *cobra.Command {
	o := &MemberRemoveOptions{memberArgOptions: memberArgOptions{ChangeOptions: newChangeOptions(g)}}
	cmd := &cobra.Command{
		Use:   "remove MEMBER",
		Short: "Remove a member from the cluster",
		Long: withPolicy(longDesc(`
			Remove a member (by name, node, pod or hex ID; an unstarted member by its hex ID)
			from the etcd cluster: one whose node is gone for good, say. The plan names
			where it runs (its pod, or that its node no longer exists) and the quorum
			before and after. Refused when the members left would lack a quorum of
			healthy members or be an even count (--force removes it anyway), and
			always when it is the last healthy member.`), etcd.Maintenance),
		Example: templates.Examples(`
			kubectl etcd member remove hc-cp3 --dry-run
			kubectl etcd member remove 8e9e05c52164694d --yes`),
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: firstArg(completeMembers(g)),
		RunE:              runEArgs(o),
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&o.Force, "force", false, "Remove it even when the members left lack a quorum of healthy members or are an even count.")
	return cmd
}

// Run removes the member and prints the member list after.
func (o *MemberRemoveOptions) Run(ctx context.Context) error {
	d, pods, err := o.maintTarget(ctx)
	if err != nil {
		return err
	}
	res, err := membership.Remove(ctx, d, pods, membership.RemoveConfig{Options: o.options(), Member: o.Member, Force: o.Force, Nodes: o.nodeLookup()})
	return printThen(&o.ClusterReadOptions, res, printers.MembershipTable, err)
}
