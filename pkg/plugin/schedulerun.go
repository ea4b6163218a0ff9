package plugin

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

// ScheduleRunOptions are the options of `kubectl etcd schedule run`,
// which a schedule's CronJob runs in its pod.
type ScheduleRunOptions struct {
	*GlobalOptions
	ConfigFile string
}

// NewCmdScheduleRun returns the hidden schedule run command.
func NewCmdScheduleRun(g *GlobalOptions) *cobra.Command {
	o := &ScheduleRunOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Take one scheduled backup (what a schedule's CronJob runs in its pod)",
		Long: longDesc(`
			Take one backup of a schedule, in its CronJob's pod: read the schedule,
			take the member's snapshot on this node, keep it encrypted at the
			destination once verified, apply the retention, and record the outcome
			in the schedule's Lease, through the pod's service account. It exits
			non-zero when the run failed, after recording it.`),
		Example: templates.Examples(`
			kubectl etcd schedule run --config /etc/kubectl-etcd/schedule.json`),
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   runE(o),
	}
	cmd.Flags().StringVar(&o.ConfigFile, "config", schedule.ConfigFile, "The schedule, as its ConfigMap holds it.")
	return cmd
}

// Complete builds the in-cluster client, unless a test set one.
func (o *ScheduleRunOptions) Complete() error {
	if o.Client != nil {
		return nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("schedule run runs in a schedule's pod, with its service account: %w", err)
	}
	o.Client, err = kubernetes.NewForConfig(cfg)
	return err
}

// Validate checks the flags.
func (o *ScheduleRunOptions) Validate() error {
	if o.ConfigFile == "" {
		return fmt.Errorf("--config is required")
	}
	return nil
}

// Run takes the backup and records it.
func (o *ScheduleRunOptions) Run(ctx context.Context) error {
	// The pod's memory limit is 256Mi: at most two S3 parts and the
	// stream's buffers are live; collect before garbage piles up.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(160 << 20))
	c, err := schedule.ReadConfig(o.ConfigFile)
	if err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }
	logf("Schedule %s in namespace %s: one backup to %s; retention: %s.", c.Name, c.Namespace, c.Dest.Arg(), c.Keep)
	_, err = schedule.RunJob(ctx, c, schedule.Job{Root: schedule.HostRoot, Dir: schedule.DestMount, Getenv: os.Getenv,
		Leases: o.Client.CoordinationV1().Leases(c.Namespace), Now: o.Now, Log: logf})
	return err
}
