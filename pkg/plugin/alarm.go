package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

var alarmExample = templates.Examples(`
	# Which alarms are raised
	kubectl etcd alarm list

	# Disarm them, once the cause is gone
	kubectl etcd alarm disarm`)

// NewCmdAlarm returns the alarm command and its list and disarm
// subcommands.
func NewCmdAlarm(g *GlobalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alarm",
		Short: "List and disarm etcd alarms",
		Long: withPolicy(longDesc(`
			List and disarm etcd's alarms. NOSPACE is raised when a member's database
			reaches its quota (--quota-backend-bytes): etcd then refuses every write
			until the space is given back (kubectl etcd defrag --compact) and the
			alarm is disarmed. CORRUPT is raised when the members' data differ.`), etcd.Maintenance),
		Example: alarmExample,
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newCmdAlarmList(g), newCmdAlarmDisarm(g))
	return cmd
}

// AlarmListOptions are the options of `kubectl etcd alarm list`.
type AlarmListOptions struct {
	ChangeOptions
}

func newCmdAlarmList(g *GlobalOptions) *cobra.Command {
	o := &AlarmListOptions{newChangeOptions(g)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the raised alarms",
		Long:  withPolicy(longDesc(`List the alarms raised in the cluster: the member's hex ID, name and node, and the alarm.`), etcd.Maintenance),
		Example: templates.Examples(`
			kubectl etcd alarm list
			kubectl etcd alarm list -o json | jq -r '.alarms[].alarm'`),
		Args: cobra.NoArgs,
		RunE: runE(o),
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Run lists the alarms.
func (o *AlarmListOptions) Run(ctx context.Context) error {
	d, pods, err := o.maintTarget(ctx)
	if err != nil {
		return err
	}
	v, err := maint.ListAlarms(ctx, d, pods)
	if err != nil {
		return err
	}
	if len(v.Alarms) == 0 && o.Output != printers.JSON && o.Output != printers.YAML {
		fmt.Fprintln(o.ErrOut, "No alarm is raised.")
		return nil
	}
	return printers.Print(o.Out, o.Output, v, printers.AlarmTable(v.Alarms))
}

// AlarmDisarmOptions are the options of `kubectl etcd alarm disarm`.
type AlarmDisarmOptions struct {
	ChangeOptions
}

func newCmdAlarmDisarm(g *GlobalOptions) *cobra.Command {
	o := &AlarmDisarmOptions{newChangeOptions(g)}
	cmd := &cobra.Command{
		Use:   "disarm",
		Short: "Disarm every raised alarm",
		Long: withPolicy(longDesc(`
			Disarm every raised alarm and check that none comes back. A member whose
			database still fills its quota raises NOSPACE again at the next write:
			it is warned about; compact and defragment first (kubectl etcd defrag
			--compact --disarm does both and disarms).`), etcd.Maintenance),
		Example: templates.Examples(`
			# See which alarms would be disarmed
			kubectl etcd alarm disarm --dry-run

			# Disarm without a prompt
			kubectl etcd alarm disarm --yes`),
		Args: cobra.NoArgs,
		RunE: runE(o),
	}
	o.addFlags(cmd)
	return cmd
}

// Run disarms the alarms and prints those disarmed.
func (o *AlarmDisarmOptions) Run(ctx context.Context) error {
	d, pods, err := o.maintTarget(ctx)
	if err != nil {
		return err
	}
	v, err := maint.DisarmAlarms(ctx, d, pods, o.options())
	if v != nil && len(v.Alarms) == 0 {
		return err
	}
	return printThen(&o.ClusterReadOptions, v, func(v *maint.AlarmListView) printers.TableFunc { return printers.AlarmTable(v.Alarms) }, err)
}
