package plugin

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

var usageLong = longDesc(`
	Show what fills etcd's database: keys and bytes per Kubernetes resource
	(the /registry/<resource>/ or /registry/<group>/<resource>/ prefix), or per
	namespace with --by-namespace, the largest first, beside the database's size,
	the bytes in use and the quota. Then the churn of events and leases, and
	the keys with the most history: what fills a database is often history,
	not live objects.

	Live, the keys are read from a healthy follower, serializable, so that the
	leader serves none of it, three pages of about a MiB at a time: memory
	stays flat however large the database. A live range shows only each key's
	newest revision, so the history shown is etcd's VERSION per key: its
	changes since it was created, compacted ones included.

	With --snapshot FILE the keys come from a snapshot file instead (no cluster
	needed; --identity for an age-encrypted one, decrypted into memory). A
	snapshot holds every revision not compacted yet, so REVISIONS and HISTORY
	count what is really stored, deleted keys included.`)

var usageExample = templates.Examples(`
	# What fills the database?
	kubectl etcd usage

	# The 5 namespaces and resources that store the most
	kubectl etcd usage --by-namespace --top 5

	# The same from last night's backup, with the stored history
	kubectl etcd usage --snapshot etcd-20260101.db.age --identity ~/.config/age/key.txt

	# The largest resource, for a script
	kubectl etcd usage -o json | jq -r '.resources[0].resource'`)

// usageMemoryLimit is the soft heap limit while usage runs.
const usageMemoryLimit = 32 << 20

// UsageOptions are the options of `kubectl etcd usage`.
type UsageOptions struct {
	ChangeOptions
	Prefix      string
	ByNamespace bool
	Top         int
	TopKeys     int
	Snapshot    string
	Identities  []string
	DecryptDir  string
}

// NewCmdUsage returns the usage command.
func NewCmdUsage(g *GlobalOptions) *cobra.Command {
	o := &UsageOptions{ChangeOptions: newChangeOptions(g)}
	cmd := &cobra.Command{
		Use:     "usage",
		Short:   "Show what fills the database: keys, bytes and history per resource",
		Long:    withPolicy(usageLong, etcd.Maintenance),
		Example: usageExample,
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	f := cmd.Flags()
	addOutputFlag(cmd, &o.Output)
	f.StringVar(&o.Prefix, "prefix", "", "Only the keys under this prefix (default: every key).")
	f.BoolVar(&o.ByNamespace, "by-namespace", false, "One row per resource and namespace.")
	f.IntVar(&o.Top, "top", 20, "Show the N rows that store the most, and sum the rest (0 for all).")
	f.IntVar(&o.TopKeys, "top-keys", 10, "List the N keys with the most history (0 for none).")
	addSnapshotSourceFlags(cmd, &o.Snapshot, &o.Identities, &o.DecryptDir)
	return cmd
}

// Complete builds the clients, unless a snapshot file is read.
func (o *UsageOptions) Complete() error {
	if o.Snapshot != "" {
		return nil
	}
	return o.ChangeOptions.Complete()
}

// Validate checks the flags.
func (o *UsageOptions) Validate() error {
	if o.Top < 0 || o.TopKeys < 0 {
		return fmt.Errorf("--top and --top-keys must be 0 or more")
	}
	if err := validateSnapshotSource(o.Snapshot, o.Identities, o.DecryptDir); err != nil {
		return err
	}
	if o.Snapshot != "" {
		return o.ClusterReadOptions.Validate()
	}
	if o.Transport == TransportExec {
		// etcdctl prints values whole: usage pages through them.
		return fmt.Errorf("--transport exec cannot run this command: it uses etcd's client API, over a port-forward; drop --transport")
	}
	return o.ChangeOptions.Validate()
}

// Run sums the keys and prints the report.
func (o *UsageOptions) Run(ctx context.Context) error {
	// Pages are garbage as soon as they are summed: a soft limit makes
	// the collector reclaim them before the heap doubles, as in backup.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(usageMemoryLimit))
	cfg := keyspace.UsageConfig{Prefix: o.Prefix, ByNamespace: o.ByNamespace, Top: o.Top, TopKeys: o.TopKeys, Log: o.ErrOut}
	var rep *keyspace.UsageReport
	var err error
	if o.Snapshot != "" {
		rep, err = o.fromFile(ctx, cfg)
	} else {
		d, pods, terr := o.maintTarget(ctx)
		if terr != nil {
			return terr
		}
		rep, err = keyspace.KeyUsage(ctx, d, pods, cfg)
	}
	if err != nil {
		return err
	}
	return printers.PrintUsage(o.Out, o.Output, rep)
}

// fromFile sums the keys of the --snapshot file.
func (o *UsageOptions) fromFile(ctx context.Context, cfg keyspace.UsageConfig) (*keyspace.UsageReport, error) {
	f, err := openSnapshotFile(o.GlobalOptions, o.Snapshot, o.Identities, o.DecryptDir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return keyspace.KeyUsageFile(ctx, f, cfg)
}
