package plugin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

var checkLong = longDesc(`
	Check the etcd cluster against what keeps it safe, and say for each
	finding what to do: ok, warn or fail, what was found, and the fix.

	topology: an odd number of voting members (3, or 5 for large clusters),
	no learner left unpromoted, one member per node, a pod for every member.
	versions: at least 3.4.22 or 3.5.6 (older releases have known
	data-inconsistency bugs), one version everywhere, the storage version, and
	upgrade readiness: 3.5.26+ before 3.6 (etcd-io/etcd#20967), the
	learner-promotion bug of 3.5.1-3.5.19 (etcd-io/etcd#19557), and the old
	damage it can leave on 3.5.20-3.5.23 (etcd-io/etcd#20793).
	consistency: the members' hashkv at one revision, /readyz (3.5.11+), raft lag.
	security: https client and peer URLs with client-cert-auth on both, the
	metrics URL on loopback or https, certificates (server, peer, CA) not
	expiring within 30 days (warn) or 7 (fail), and a 0700 data dir. The
	certificates and the data dir's mode are read on each node by a short-lived
	pod that mounts just those paths read-only; nothing is written to disk.
	capacity: the database against its quota (warn above 80%), fragmentation,
	alarms, history that nothing compacts.
	performance, from each member's metrics endpoint (--listen-metrics-urls,
	else the client port), scraped twice --window apart: WAL fsync and backend
	commit p99 against etcd's hardware guide, leader changes in the last hour
	(the elections each member's log records, else etcd's counter), slow applies,
	has_leader, peer round trip, failed and pending proposals.
	backups: each schedule kubectl etcd schedule backup installed (in every
	namespace), by the record its runs keep in its Lease: a warning when it is
	suspended, never succeeded, or its newest backup is older than twice the
	gap between its runs around now, plus the job's 30-minute deadline (a
	nightly schedule warns once its backup is 48h30m old: one missed run
	passes, two do not); with no schedule at all, a warning, unless
	--backup-dir is given. With --backup-dir: the age of the newest snapshot
	there, and whether it verifies.

	check speaks etcd's client API over a port-forward; when no helper pod can
	start (under a NOSPACE alarm the API server creates none) it reads the
	members with etcdctl in their containers instead, as --transport exec
	asks. The metrics and /readyz always come through a port-forward to the
	metrics port. The leader changes of the last hour are read from the etcd
	pods' logs (get on pods/log).

	The exit status is non-zero when a check fails, or warns with --strict, so
	check fits CI and cron. --only and --skip take areas (security) or checks
	(security.cert-expiry).`)

var checkExample = templates.Examples(`
	# Check everything
	kubectl etcd check

	# Fail on warnings too, and check the backups kept in a directory
	kubectl etcd check --strict --backup-dir /var/backups/etcd

	# Only the backups: the schedules' records, and the newest snapshot in a directory
	kubectl etcd check --only backups --backup-dir /var/backups/etcd

	# Only the certificates and the quota, as JSON
	kubectl etcd check --only security.cert-expiry,capacity.quota -o json

	# Quickly: no metrics window, no node pods
	kubectl etcd check --window 0 --skip security.cert-expiry,security.data-dir`)

// CheckOptions are the options of `kubectl etcd check`.
type CheckOptions struct {
	ClusterReadOptions
	Window    time.Duration
	BackupDir string
	Only      []string
	Skip      []string
	Strict    bool
}

// NewCmdCheck returns the check command.
func NewCmdCheck(g *GlobalOptions) *cobra.Command {
	o := &CheckOptions{ClusterReadOptions: ClusterReadOptions{GlobalOptions: g}}
	cmd := &cobra.Command{
		Use:     "check",
		Aliases: []string{"doctor"},
		Short:   "Check topology, versions, consistency, security, capacity, performance and backups",
		Long:    withPolicy(checkLong, etcd.Maintenance),
		Example: checkExample,
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	addOutputFlag(cmd, &o.Output)
	f := cmd.Flags()
	f.DurationVar(&o.Window, "window", 10*time.Second, "Time between the two metrics scrapes the latencies come from; 0 uses the histograms since each member started.")
	f.StringVar(&o.BackupDir, "backup-dir", "", "Directory on this machine where snapshots are kept; its newest is checked for age and verified.")
	f.StringSliceVar(&o.Only, "only", nil, "Run only these areas or checks (comma-separated).")
	f.StringSliceVar(&o.Skip, "skip", nil, "Skip these areas or checks (comma-separated).")
	f.BoolVar(&o.Strict, "strict", false, "Exit non-zero on warnings too.")
	for _, name := range []string{"only", "skip"} {
		_ = cmd.RegisterFlagCompletionFunc(name, completeChecks)
	}
	return cmd
}

// Validate checks the flags.
func (o *CheckOptions) Validate() error {
	if o.Window < 0 {
		return fmt.Errorf("--window must not be negative, got %s", o.Window)
	}
	if err := o.selection().Validate(); err != nil {
		return err
	}
	return o.ClusterReadOptions.Validate()
}

// completeChecks completes the areas and checks --only and --skip take.
func completeChecks(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, n := range append(append([]string{}, doctor.Areas...), doctor.Checks...) {
		if strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (o *CheckOptions) selection() doctor.Selection {
	return doctor.Selection{Only: o.Only, Skip: o.Skip}
}

// Run checks, prints the findings, and fails when a check did.
func (o *CheckOptions) Run(ctx context.Context) error {
	pods, err := o.Members(ctx)
	if err != nil {
		return err
	}
	src := doctor.Sources{Clients: o.TransportFor(etcd.Maintenance), HTTP: o.HTTPGetter(), Nodes: o.NodeReader(),
		Logs: discovery.PodLogs{Client: o.Client},
		APIServers: func(ctx context.Context) ([]discovery.APIServer, error) {
			return discovery.APIServers(ctx, o.Client, o.Namespace)
		},
		Schedules: func(ctx context.Context) ([]schedule.Status, error) { return schedule.List(ctx, o.Client, "") }}
	cfg := doctor.Config{Selection: o.selection(), Window: o.Window, BackupDir: o.BackupDir, Now: o.Now, Log: o.ErrOut}
	rep, err := doctor.Check(ctx, src, pods, cfg)
	if err != nil {
		return err
	}
	if err := printers.Print(o.Out, o.Output, rep, printers.CheckTable(rep)); err != nil {
		return err
	}
	s := rep.Summary
	fmt.Fprintf(o.ErrOut, "%d ok, %d warn, %d fail, %d not checked\n", s.OK, s.Warn, s.Fail, s.NotChecked)
	switch {
	case s.Fail > 0:
		return hint.Permanent(fmt.Errorf("%w: %d of %d", doctor.ErrFailed, s.Fail, len(rep.Results)), "the FIX column says what to do for each")
	case o.Strict && s.Warn > 0:
		return hint.Permanent(fmt.Errorf("%w: %d of %d warned, and --strict fails on warnings", doctor.ErrFailed, s.Warn, len(rep.Results)), "the FIX column says what to do for each")
	}
	return nil
}
