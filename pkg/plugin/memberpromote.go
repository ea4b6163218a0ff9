package plugin

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

// MemberPromoteOptions are the options of `kubectl etcd member promote`.
type MemberPromoteOptions struct {
	memberArgOptions
}

func newCmdMemberPromote(g *GlobalOptions) *cobra.Command {
	o := &MemberPromoteOptions{memberArgOptions: memberArgOptions{ChangeOptions: newChangeOptions(g)}}
	cmd := &cobra.Command{
		Use:   "promote MEMBER",
		Short: "Promote a learner to a voting member",
		Long: withPolicy(longDesc(`
			Promote a learner (by name, node, pod or hex ID) to a voting member. The plan
			says how far the learner's applied index is behind the leader's; etcd
			refuses to promote a learner that lags, so the promotion is tried again,
			saying how far it is, until it has caught up.`), etcd.Maintenance),
		Example: templates.Examples(`
			kubectl etcd member promote hc-cp4`),
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: firstArg(completeMembers(g)),
		RunE:              runEArgs(o),
	}
	o.addFlags(cmd)
	return cmd
}

// Run promotes the learner and prints the member list after.
func (o *MemberPromoteOptions) Run(ctx context.Context) error {
	d, pods, err := o.maintTarget(ctx)
	if err != nil {
		return err
	}
	res, err := membership.Promote(ctx, d, pods, membership.PromoteConfig{Options: o.options(), Member: o.Member})
	return printThen(&o.ClusterReadOptions, res, printers.MembershipTable, err)
}
