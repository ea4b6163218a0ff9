package plugin

import (
	"context"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
)

var memberExample = templates.Examples(`
	# A member whose node was deleted without kubeadm reset: see the plan, then remove it
	kubectl etcd member remove hc-cp3 --dry-run
	kubectl etcd member remove hc-cp3

	# A member whose disk died, on a node that keeps its name and address
	kubectl etcd member replace hc-cp3

	# Add a member as a learner, then promote it once it has caught up
	kubectl etcd member add hc-cp4 --peer-urls https://10.0.0.14:2380 --learner
	kubectl etcd member promote hc-cp4`)

// NewCmdMember returns the member command: list, add, remove, promote
// and replace.
func NewCmdMember(g *GlobalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "List, add, remove, promote and replace etcd members",
		Long: withPolicy(longDesc(`
			Change who is in the etcd cluster. Each change prints its plan first (the
			voting members and the quorum before and after, and where the member
			runs), refuses what would stop the cluster, and asks for confirmation
			(--yes without a terminal; --dry-run for the plan alone).`), etcd.Maintenance),
		Example: memberExample,
		Args:    cobra.NoArgs,
	}
	list := NewCmdMembers(g)
	list.Use, list.Aliases = "list", nil
	cmd.AddCommand(list, newCmdMemberRemove(g), newCmdMemberAdd(g), newCmdMemberPromote(g), newCmdMemberReplace(g))
	return cmd
}

// nodeLookup says whether a node exists and is Ready, for the plans.
func (g *GlobalOptions) nodeLookup() membership.NodeLookup {
	return func(ctx context.Context, name string) (bool, bool, error) {
		n, err := g.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, false, nil
		}
		if err != nil {
			return false, false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return true, c.Status == corev1.ConditionTrue, nil
			}
		}
		return true, false, nil
	}
}

// memberArgOptions are those of a member subcommand that takes one
// member (name, node, pod or hex ID).
type memberArgOptions struct {
	ChangeOptions
	Member string
}

// Complete takes the member.
func (o *memberArgOptions) Complete(args []string) error {
	o.Member = args[0]
	return o.ChangeOptions.Complete()
}
