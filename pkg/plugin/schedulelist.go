package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

// ScheduleListOptions are the options of `kubectl etcd schedule list`.
type ScheduleListOptions struct {
	ClusterReadOptions
	ScheduleNamespace string
}

// NewCmdScheduleList returns the schedule list command.
func NewCmdScheduleList(g *GlobalOptions) *cobra.Command {
	o := &ScheduleListOptions{ClusterReadOptions: ClusterReadOptions{GlobalOptions: g}}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the installed schedules and how their last runs went",
		Long: longDesc(`
			List the schedules kubectl etcd installed (their CronJobs, labelled
			app.kubernetes.io/managed-by=kubectl-etcd), with each one's destination,
			retention and the record its runs keep in its Lease: the last
			successful backup, its size (the snapshot's, before compression), how
			many of its files the retention kept, and the last run's error.`),
		Example: templates.Examples(`
			# Every schedule, in every namespace
			kubectl etcd schedule list

			# Those in one namespace, with the last file and attempt
			kubectl etcd schedule list --schedule-namespace kube-system -o wide`),
		Args: cobra.NoArgs,
		RunE: runE(o),
	}
	addOutputFlag(cmd, &o.Output)
	cmd.Flags().StringVar(&o.ScheduleNamespace, "schedule-namespace", "", "List only the schedules in this namespace (default: every namespace).")
	return cmd
}

// Run lists the schedules.
func (o *ScheduleListOptions) Run(ctx context.Context) error {
	ss, err := schedule.List(ctx, o.Client, o.ScheduleNamespace)
	if err != nil {
		return err
	}
	if len(ss) == 0 && (o.Output == printers.Table || o.Output == printers.Wide) {
		fmt.Fprintln(o.ErrOut, "No schedules installed; install one with kubectl etcd schedule backup.")
		return nil
	}
	return printers.Print(o.Out, o.Output, ss, printers.ScheduleTable(ss, o.Now()))
}
