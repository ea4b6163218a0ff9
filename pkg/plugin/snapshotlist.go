package plugin

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

var snapshotListLong = longDesc(`
	List the backups at a destination, as kubectl etcd schedule backup --to
	names it, newest first: each file's name, the schedule whose name it has,
	when it was taken (from its name, else when the destination says it was
	written) and its size.

	node:/DIR is read on each control-plane node (or on --node) by a short-lived
	pod that mounts only DIR, read-only, deleted after; a schedule keeps its
	files on whichever node ran it, so the NODE column says where each is, and a
	node without DIR has none. s3://BUCKET/PREFIX is read with --s3-endpoint and
	--s3-region and the keys in the Secret --s3-secret names, in -n's namespace
	(read into memory only, never printed), or in AWS_ACCESS_KEY_ID and
	AWS_SECRET_ACCESS_KEY. pvc:CLAIM is not read yet.

	--verify reads every file as it streams, to nothing on this machine's disk:
	with --identity, decrypted, decompressed and checked against etcd's sha256
	trailer; without, only its age header is read, and its content is not
	checked (VERIFIED says "header only"). The exit status is non-zero when a
	file does not verify or a node cannot be read.`)

var snapshotListExample = templates.Examples(`
	# The backups a schedule keeps on the control-plane nodes
	kubectl etcd snapshot list node:/var/lib/etcd-backups

	# In S3-compatible storage, with the schedule's own Secret, each one decrypted and verified
	kubectl etcd snapshot list s3://backups/etcd/prod --s3-endpoint https://minio.example:9000 --s3-secret etcd-backup-s3 --verify --identity key.txt

	# With the keys in the environment, as JSON
	AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... kubectl etcd snapshot list s3://backups/etcd/prod -o json`)

// SnapshotListOptions are the options of `kubectl etcd snapshot list`.
type SnapshotListOptions struct {
	ClusterReadOptions
	backupDest
	Verify bool
}

// NewCmdSnapshotList returns the snapshot list command.
func NewCmdSnapshotList(g *GlobalOptions) *cobra.Command {
	o := &SnapshotListOptions{ClusterReadOptions: ClusterReadOptions{GlobalOptions: g}}
	cmd := &cobra.Command{
		Use:     "list DEST",
		Short:   "List the backups at a schedule's destination (a node dir or S3), and verify them",
		Long:    snapshotListLong,
		Example: snapshotListExample,
		Args:    cobra.ExactArgs(1),
		RunE:    runEArgs(o),
	}
	addOutputFlag(cmd, &o.Output)
	cmd.Flags().BoolVar(&o.Verify, "verify", false, "Read each file as it streams (never to disk) and check it: the snapshot inside with --identity, else only the age header.")
	o.backupDest.addFlags(cmd.Flags())
	return cmd
}

// Complete reads DEST and the identities, and builds the clients.
func (o *SnapshotListOptions) Complete(args []string) error {
	return o.backupDest.complete(o.GlobalOptions, args[0])
}

// Validate checks the flags.
func (o *SnapshotListOptions) Validate() error {
	if err := o.backupDest.validate(); err != nil {
		return err
	}
	return o.ClusterReadOptions.Validate()
}

// Run lists, prints what it could, then fails if anything could not be
// read or verified.
func (o *SnapshotListOptions) Run(ctx context.Context) error {
	bs, err := schedule.ListBackups(ctx, o.deps(), schedule.ListConfig{Browse: o.browse, Verify: o.Verify})
	if len(bs) == 0 && (o.Output == printers.Table || o.Output == printers.Wide) {
		if err == nil {
			fmt.Fprintf(o.ErrOut, "No backups in %s.\n", o.browse.Dest.Arg())
		}
		return err
	}
	if bs == nil {
		bs = []schedule.Backup{}
	}
	if perr := printers.Print(o.Out, o.Output, bs, printers.BackupsTable(bs, o.Now(), o.browse.Dest.Kind == schedule.DestNode, o.Verify)); perr != nil {
		return perr
	}
	if o.Verify && len(o.browse.Identities) == 0 && len(bs) > 0 {
		fmt.Fprintln(o.ErrOut, "Without --identity only each file's age header was read: their content was not checked.")
	}
	return err
}

// backupDest is DEST of snapshot list and get, and the flags that say
// how to reach it.
type backupDest struct {
	Nodes      []string
	S3Endpoint string
	S3Region   string
	S3Secret   string
	Identities []string

	// Set by complete.
	browse schedule.Browse
	g      *GlobalOptions
}

func (d *backupDest) addFlags(f *pflag.FlagSet) {
	d.addPlaceFlags(f)
	f.StringSliceVarP(&d.Identities, "identity", "i", nil, "age identity file that decrypts the backups, to verify them as they stream; repeatable.")
}

// addPlaceFlags adds the flags that say how to reach DEST.
func (d *backupDest) addPlaceFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&d.Nodes, "node", nil, "With node:/DIR: the node whose dir to read; repeatable (default: every control-plane node).")
	f.StringVar(&d.S3Endpoint, "s3-endpoint", "", "With s3://: the storage's URL, such as https://minio.example:9000 (default: AWS, by --s3-region).")
	f.StringVar(&d.S3Region, "s3-region", "", "With s3://: its region (default us-east-1).")
	f.StringVar(&d.S3Secret, "s3-secret", "", "With s3://: the Secret, in -n's namespace, whose keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are read into memory (default: those environment variables).")
}

// complete reads DEST and the identities, and builds the clients.
func (d *backupDest) complete(g *GlobalOptions, arg string) error {
	dest, err := schedule.ParseDest(arg)
	if err != nil {
		return err
	}
	dest.Endpoint, dest.Region = d.S3Endpoint, d.S3Region
	ids, err := snapshot.Identities(d.Identities)
	if err != nil {
		return err
	}
	d.g = g
	d.browse = schedule.Browse{Dest: dest, Nodes: d.Nodes, Namespace: g.helperNamespace(), Image: g.Image,
		S3Secret: d.S3Secret, SecretNamespace: g.Namespace, Getenv: os.Getenv, Identities: ids,
		Log: func(format string, args ...any) { fmt.Fprintf(g.ErrOut, format+"\n", args...) }}
	if dest.Kind == schedule.DestS3 && d.S3Secret == "" {
		// The keys come from the environment: no cluster is needed.
		return g.Validate()
	}
	return g.Complete()
}

// validate refuses flags that do not go with DEST.
func (d *backupDest) validate() error {
	kind := d.browse.Dest.Kind
	switch {
	case kind != schedule.DestS3 && d.S3Endpoint+d.S3Region+d.S3Secret != "":
		return fmt.Errorf("--s3-endpoint, --s3-region and --s3-secret go with an s3:// destination, not %s", d.browse.Dest.Arg())
	case kind != schedule.DestNode && len(d.Nodes) > 0:
		return fmt.Errorf("--node goes with a node:/DIR destination, not %s", d.browse.Dest.Arg())
	}
	return nil
}

func (d *backupDest) deps() schedule.BrowseDeps {
	return schedule.BrowseDeps{Client: d.g.Client, Runner: d.g.Runner()}
}
