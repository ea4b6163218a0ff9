package plugin

import (
	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"
)

// NewCmdSchedule returns the schedule command group: backups taken in
// the cluster by a CronJob.
func NewCmdSchedule(g *GlobalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Take encrypted etcd backups on a schedule, in the cluster",
		Long: longDesc(`
			Install, list and remove scheduled backups: a CronJob on a control-plane
			node takes the member's snapshot there, compresses and age-encrypts it as
			it streams, verifies it, keeps it in a node dir, a PVC or S3, and removes
			only its own older files. Each run records its outcome in the schedule's
			Lease, which schedule list reads.`),
		Example: templates.Examples(`
			# Every six hours, to a dir on the control-plane node, the newest 7 kept
			kubectl etcd schedule backup every6h --schedule "0 */6 * * *" --to node:/var/lib/etcd-backups --recipient age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq

			# What is installed, and how its last runs went
			kubectl etcd schedule list`),
	}
	cmd.AddCommand(NewCmdScheduleBackup(g), NewCmdScheduleList(g), NewCmdScheduleRun(g))
	return cmd
}
