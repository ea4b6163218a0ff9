package plugin

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

// MemberAddOptions are the options of `kubectl etcd member add`.
type MemberAddOptions struct {
	ChangeOptions
	Name     string
	PeerURLs []string
	Learner  bool
}

func newCmdMemberAdd(g *GlobalOptions) *cobra.Command {
	o := &MemberAddOptions{ChangeOptions: newChangeOptions(g)}
	cmd := &cobra.Command{
		Use:   "add NAME --peer-urls URL",
		Short: "Add a member to the cluster",
		Long: withPolicy(longDesc(`
			Add a member by its peer URLs, and print the --initial-cluster and
			--initial-cluster-state it must start with (on an empty data dir). With
			--learner it joins as a learner, which never changes the quorum: promote it
			once it has caught up (kubectl etcd member promote). A voting member is
			refused when the cluster would lack a quorum until it has started.`), etcd.Maintenance),
		Example: templates.Examples(`
			kubectl etcd member add hc-cp4 --peer-urls https://10.0.0.14:2380 --learner`),
		Args: cobra.ExactArgs(1),
		RunE: runEArgs(o),
	}
	o.addFlags(cmd)
	cmd.Flags().StringSliceVar(&o.PeerURLs, "peer-urls", nil, "The member's peer URLs (its --initial-advertise-peer-urls), comma-separated.")
	cmd.Flags().BoolVar(&o.Learner, "learner", false, "Add it as a learner: it votes only once promoted.")
	return cmd
}

// Complete takes the name.
func (o *MemberAddOptions) Complete(args []string) error {
	o.Name = args[0]
	return o.ChangeOptions.Complete()
}

// Run adds the member and prints the member list after.
func (o *MemberAddOptions) Run(ctx context.Context) error {
	d, pods, err := o.maintTarget(ctx)
	if err != nil {
		return err
	}
	res, err := membership.Add(ctx, d, pods, membership.AddConfig{Options: o.options(), Name: o.Name, PeerURLs: o.PeerURLs, Learner: o.Learner})
	return printThen(&o.ClusterReadOptions, res, printers.MembershipTable, err)
}
