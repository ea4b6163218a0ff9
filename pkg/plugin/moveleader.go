package plugin

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

var moveLeaderExample = templates.Examples(`
	# Hand the leadership to the most up-to-date healthy follower
	kubectl etcd move-leader

	# To a given member, by name or hex ID
	kubectl etcd move-leader hc-cp2
	kubectl etcd move-leader af8c59769039ff21`)

// MoveLeaderOptions are the options of `kubectl etcd move-leader`.
type MoveLeaderOptions struct {
	ChangeOptions
	To string
}

// NewCmdMoveLeader returns the move-leader command.
func NewCmdMoveLeader(g *GlobalOptions) *cobra.Command {
	o := &MoveLeaderOptions{ChangeOptions: newChangeOptions(g)}
	cmd := &cobra.Command{
		Use:   "move-leader [MEMBER]",
		Short: "Hand the leadership to another member",
		Long: withPolicy(longDesc(`
			Hand the raft leadership to the member given (by name, node, pod or hex ID), or else to
			the healthy voting follower with the newest applied index, and wait until
			it leads. Before maintenance on the leader's node, this turns an election
			timeout into a planned hand-over. Only the leader and the new leader need
			to answer.`), etcd.Maintenance),
		Example:           moveLeaderExample,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: firstArg(completeMembers(g)),
		RunE:              runEArgs(o),
	}
	o.addFlags(cmd)
	return cmd
}

// Complete takes the member and builds the clients.
func (o *MoveLeaderOptions) Complete(args []string) error {
	if len(args) == 1 {
		o.To = args[0]
	}
	return o.ChangeOptions.Complete()
}

// Run moves the leadership and prints who leads.
func (o *MoveLeaderOptions) Run(ctx context.Context) error {
	d, pods, err := o.maintTarget(ctx)
	if err != nil {
		return err
	}
	res, err := maint.MoveLeader(ctx, d, pods, maint.MoveLeaderConfig{Options: o.options(), To: o.To})
	return printThen(&o.ClusterReadOptions, res, printers.MoveLeaderTable, err)
}
