package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/metrics"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

var metricsLong = longDesc(`
	Show the numbers behind etcd's health, per member, without Prometheus:
	WAL fsync and backend commit latency (p99, and p50 with -o wide), the
	slowest peer round trip, leader changes, slow applies, failed and pending
	proposals, has_leader and the database size.

	Each member's metrics endpoint is read through a port-forward: the port of
	--listen-metrics-urls (kubeadm serves http://127.0.0.1:2381), else the
	client port with the TLS material the pod spec names. It is scraped twice
	--window apart, and the latencies come from the bucket deltas between the
	two, so they describe now rather than the member's whole life; counters
	show their total and, in brackets, their growth in the window. --raw prints
	the exposition text as etcd serves it.`)

var metricsExample = templates.Examples(`
	# Every member, over a 10 s window
	kubectl etcd metrics

	# One member, p50s too, over a minute
	kubectl etcd metrics --member hc-cp1 --window 1m -o wide

	# The raw exposition text of one member, named by its hex ID
	kubectl etcd metrics --member 8e9e05c52164694d --raw`)

// MetricsOptions are the options of `kubectl etcd metrics`.
type MetricsOptions struct {
	ClusterReadOptions
	Member string
	Window time.Duration
	Raw    bool
}

// NewCmdMetrics returns the metrics command.
func NewCmdMetrics(g *GlobalOptions) *cobra.Command {
	o := &MetricsOptions{ClusterReadOptions: ClusterReadOptions{GlobalOptions: g}}
	cmd := &cobra.Command{
		Use:     "metrics",
		Short:   "Show each member's latencies, leader changes and proposals from its metrics endpoint",
		Long:    metricsLong,
		Example: metricsExample,
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	addOutputFlag(cmd, &o.Output)
	f := cmd.Flags()
	f.StringVar(&o.Member, "member", "", "Only this member (name, node, pod or hex ID).")
	f.DurationVar(&o.Window, "window", 10*time.Second, "Time between the two scrapes; 0 shows the histograms since each member started.")
	f.BoolVar(&o.Raw, "raw", false, "Print the exposition text as etcd serves it.")
	_ = cmd.RegisterFlagCompletionFunc("member", completeMembers(g))
	return cmd
}

// Validate checks the flags.
func (o *MetricsOptions) Validate() error {
	if o.Transport == TransportExec {
		return fmt.Errorf("--transport exec cannot read metrics: etcd's images have no HTTP client to exec, so metrics always come through a port-forward to the metrics port; drop --transport")
	}
	if o.Window < 0 {
		return fmt.Errorf("--window must not be negative, got %s", o.Window)
	}
	return o.ClusterReadOptions.Validate()
}

// Run reads and prints the metrics.
func (o *MetricsOptions) Run(ctx context.Context) error {
	pods, err := o.Members(ctx)
	if err != nil {
		return err
	}
	if o.Member != "" {
		m, err := cluster.FindPod(ctx, o.TransportFor(etcd.Reads), pods, o.Member)
		if err != nil {
			return err
		}
		pods = []discovery.Member{m}
	}
	if o.Raw {
		return o.printRaw(ctx, pods)
	}
	ms, errs := metrics.ScrapeAll(ctx, o.HTTPGetter(), pods, o.Window, o.Now)
	rows := make([]metrics.Metrics, len(pods))
	for i, p := range pods {
		if errs[i] != nil {
			rows[i] = metrics.Metrics{Member: p.Name, Node: p.Node, Error: errs[i].Error()}
			continue
		}
		rows[i] = *ms[i]
	}
	return errors.Join(printers.Print(o.Out, o.Output, rows, printers.MetricsTable(rows)), failed(errs))
}

// printRaw prints each member's exposition text; with several members,
// a comment line names the member before its text.
func (o *MetricsOptions) printRaw(ctx context.Context, pods []discovery.Member) error {
	var errs []error
	for _, p := range pods {
		body, err := metrics.Raw(ctx, o.HTTPGetter(), p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(pods) > 1 {
			fmt.Fprintf(o.Out, "# kubectl-etcd member %s\n", p.Name)
		}
		if _, err := o.Out.Write(body); err != nil {
			return err
		}
	}
	return failed(errs)
}

// failed is nil when every member answered, else the errors.
func failed(errs []error) error {
	var bad []error
	for _, e := range errs {
		if e != nil {
			bad = append(bad, e)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of %d: %w", cluster.ErrSomeFailed, len(bad), len(errs), errors.Join(bad...))
}
