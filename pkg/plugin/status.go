package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

var statusExample = templates.Examples(`
	# Per-member version, DB size, leader, raft indexes and alarms
	kubectl etcd status

	# With storage version, revision and pod names
	kubectl etcd status -o wide

	# Exact numbers for scripts
	kubectl etcd status -o json`)

// StatusOptions are the options of `kubectl etcd status`.
type StatusOptions struct {
	ClusterReadOptions
}

// NewCmdStatus returns the status command.
func NewCmdStatus(g *GlobalOptions) *cobra.Command {
	o := &StatusOptions{ClusterReadOptions{GlobalOptions: g}}
	cmd := &cobra.Command{
		Use:     "status",
		Aliases: []string{"endpoint-status"},
		Short:   "Show the status of every etcd member",
		Long: withPolicy(longDesc(`
			Show each member's node, hex ID, etcd version, storage version, DB size,
			bytes in use, quota, leadership, learner state, raft term and indexes,
			alarms and errors. A member that cannot be reached is reported while the
			others are still shown, and the exit status is then non-zero.`), etcd.Reads),
		Example: statusExample,
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Run collects and prints the status; failures are reported after the table.
func (o *StatusOptions) Run(ctx context.Context) error {
	pods, err := o.Members(ctx)
	if err != nil {
		return err
	}
	v, serr := cluster.Status(ctx, o.TransportFor(etcd.Reads), pods)
	if err := printers.Print(o.Out, o.Output, v, printers.StatusTable(v)); err != nil {
		return err
	}
	if serr != nil && len(v.Members) > 0 && allFailed(v) {
		return fmt.Errorf("no member answered: %s", v.Members[0].Error)
	}
	return serr
}

func allFailed(v *cluster.StatusListView) bool {
	for _, m := range v.Members {
		if m.Error == "" {
			return false
		}
	}
	return true
}
