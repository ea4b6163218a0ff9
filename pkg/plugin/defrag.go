package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

var defragLong = longDesc(`
	Defragment the etcd members one at a time, to give the space that
	compaction freed back to the file system, and to clear a NOSPACE alarm.

	Every member must be healthy first (a NOSPACE alarm is allowed). The
	followers go first, one after the other, and the leader last: its
	leadership is handed to the most up-to-date follower before, unless
	--no-move-leader. A member blocks its reads and writes while it is
	defragmented, so the next one starts only once it is healthy again. A
	member is skipped when less than --min-free bytes or --min-free-ratio of
	its database are free, unless --force or its NOSPACE alarm is raised.

	--compact first compacts the history up to the current revision and waits
	until every member has freed it, so that there is something to give back,
	then defragments every member whatever the skip rule says: etcd counts the
	space a compaction frees only after later writes. --disarm clears the NOSPACE alarms once
	every member is done. The plan is printed and must be confirmed, on a
	terminal or with --yes. The sizes before and after and the time each
	member took are printed at the end; a step that fails stops the run and
	the exit status is non-zero.`)

var defragExample = templates.Examples(`
	# See what would be done
	kubectl etcd defrag --dry-run

	# Recover from a NOSPACE alarm: compact, defragment every member, disarm
	kubectl etcd defrag --compact --disarm

	# Defragment every member whatever it would give back, without a prompt
	kubectl etcd defrag --force --yes`)

// DefragOptions are the options of `kubectl etcd defrag`.
type DefragOptions struct {
	ChangeOptions
	Compact       bool
	NoMoveLeader  bool
	MinFreeRatio  float64
	MinFree       string
	Force         bool
	Disarm        bool
	HealthTimeout time.Duration

	minFree int64
}

// NewCmdDefrag returns the defrag command.
func NewCmdDefrag(g *GlobalOptions) *cobra.Command {
	o := &DefragOptions{ChangeOptions: newChangeOptions(g)}
	cmd := &cobra.Command{
		Use:     "defrag",
		Aliases: []string{"defragment"},
		Short:   "Defragment every member, followers first and the leader last",
		Long:    withPolicy(defragLong, etcd.Maintenance),
		Example: defragExample,
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.Compact, "compact", false, "Compact the history up to the current revision first.")
	f.BoolVar(&o.NoMoveLeader, "no-move-leader", false, "Defragment the leader without handing its leadership to a follower first.")
	f.Float64Var(&o.MinFreeRatio, "min-free-ratio", maint.DefaultMinFreeRatio, "Skip a member when less than this share of its database is free.")
	f.StringVar(&o.MinFree, "min-free", humanize.IBytes(uint64(maint.DefaultMinFree)), "Skip a member when less than this is free in its database (16MiB, 1GiB...).")
	f.BoolVar(&o.Force, "force", false, "Defragment every member, however little it would give back.")
	f.BoolVar(&o.Disarm, "disarm", false, "Disarm the NOSPACE alarms once every member is done.")
	f.DurationVar(&o.HealthTimeout, "health-timeout", 2*time.Minute, "How long to wait for a member to be healthy again before the next one.")
	return cmd
}

// Validate checks the flags.
func (o *DefragOptions) Validate() error {
	n, err := humanize.ParseBytes(o.MinFree)
	if err != nil {
		return fmt.Errorf("--min-free %q is not a size: write it as 16MiB or 1GiB", o.MinFree)
	}
	o.minFree = int64(n)
	if o.MinFreeRatio < 0 || o.MinFreeRatio > 1 {
		return fmt.Errorf("--min-free-ratio must be between 0 and 1, got %g", o.MinFreeRatio)
	}
	if o.HealthTimeout <= 0 {
		return fmt.Errorf("--health-timeout must be positive, got %s", o.HealthTimeout)
	}
	return o.ChangeOptions.Validate()
}

// Run defragments and prints what each member gave back.
func (o *DefragOptions) Run(ctx context.Context) error {
	d, pods, err := o.maintTarget(ctx)
	if err != nil {
		return err
	}
	cfg := maint.DefragConfig{
		Options: o.options(), Compact: o.Compact, NoMoveLeader: o.NoMoveLeader,
		MinFreeRatio: o.MinFreeRatio, MinFree: o.minFree, Force: o.Force, Disarm: o.Disarm,
	}
	cfg.HealthTimeout = o.HealthTimeout
	res, err := maint.Defrag(ctx, d, pods, cfg)
	return printThen(&o.ClusterReadOptions, res, printers.DefragTable, err)
}
