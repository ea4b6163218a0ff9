package plugin

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

var compactLong = longDesc(`
	Compact etcd's history: drop every key revision older than REV (default:
	the current revision), through the leader, and wait until its backend has
	freed them. Prints the current revision before and after.

	This is for emergencies. The Kubernetes API server already compacts every
	5 minutes (--etcd-compaction-interval), keeping 5 minutes of history for
	its watches; compacting to the current revision drops that history, so
	watchers that fall behind must list again. What compaction frees stays in
	the database file until it is defragmented: kubectl etcd defrag --compact
	does both.`)

var compactExample = templates.Examples(`
	# Compact up to the current revision
	kubectl etcd compact

	# Up to a given revision, without a prompt
	kubectl etcd compact 123456 --yes`)

// CompactOptions are the options of `kubectl etcd compact`.
type CompactOptions struct {
	ChangeOptions
	Revision int64
}

// NewCmdCompact returns the compact command.
func NewCmdCompact(g *GlobalOptions) *cobra.Command {
	o := &CompactOptions{ChangeOptions: newChangeOptions(g)}
	cmd := &cobra.Command{
		Use:     "compact [REV]",
		Short:   "Compact the history up to a revision (for emergencies)",
		Long:    withPolicy(compactLong, etcd.Maintenance),
		Example: compactExample,
		Args:    cobra.MaximumNArgs(1),
		RunE:    runEArgs(o),
	}
	o.addFlags(cmd)
	return cmd
}

// Complete reads REV and builds the clients.
func (o *CompactOptions) Complete(args []string) error {
	if len(args) == 1 {
		rev, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || rev <= 0 {
			return fmt.Errorf("REV must be a positive revision number, got %q (kubectl etcd status -o wide shows the current one)", args[0])
		}
		o.Revision = rev
	}
	return o.ChangeOptions.Complete()
}

// Run compacts and prints the revisions.
func (o *CompactOptions) Run(ctx context.Context) error {
	d, pods, err := o.maintTarget(ctx)
	if err != nil {
		return err
	}
	res, err := maint.Compact(ctx, d, pods, maint.CompactConfig{Options: o.options(), Revision: o.Revision})
	return printThen(&o.ClusterReadOptions, res, printers.CompactTable, err)
}
