package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

var snapshotGetLong = longDesc(`
	Copy the backup NAME at a destination (as snapshot list shows it) to FILE on
	this machine (default: NAME in the current directory), and print FILE: for
	a restore, run kubectl etcd restore FILE after (or restore from DEST in one
	step: kubectl etcd restore NAME --from DEST).

	It is written as backup writes a snapshot: into FILE.part, created 0600
	and exclusively, then fsynced and renamed to FILE, never over an existing
	file. It is verified as it streams, before it is named: by its size, by the
	file's sha256 on the node for node:/DIR, and with --identity decrypted and
	checked against etcd's sha256 trailer (without, only its age header is read:
	kubectl etcd restore checks it all). NAME is refused if it could reach
	outside the destination ('/', '..').

	node:/DIR is looked for on each control-plane node in turn (or on --node)
	by a short-lived pod that mounts only DIR, read-only, deleted after.
	s3://BUCKET/PREFIX is read with --s3-endpoint, --s3-region and the keys in
	the Secret --s3-secret names, in -n's namespace, or in AWS_ACCESS_KEY_ID and
	AWS_SECRET_ACCESS_KEY.`)

var snapshotGetExample = templates.Examples(`
	# Fetch last night's backup from the control-plane nodes, then restore it
	kubectl etcd snapshot get node:/var/lib/etcd-backups nightly-20261207T020000Z.db.zst.age etcd.db.zst.age --identity key.txt
	kubectl etcd restore etcd.db.zst.age --identity key.txt

	# From S3-compatible storage, with the schedule's own Secret
	kubectl etcd snapshot get s3://backups/etcd/prod hourly-20261207T110000Z.db.zst.age --s3-endpoint https://minio.example:9000 --s3-secret etcd-backup-s3`)

// SnapshotGetOptions are the options of `kubectl etcd snapshot get`.
type SnapshotGetOptions struct {
	*GlobalOptions
	backupDest
	Name string
	File string
}

// NewCmdSnapshotGet returns the snapshot get command.
func NewCmdSnapshotGet(g *GlobalOptions) *cobra.Command {
	o := &SnapshotGetOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:     "get DEST NAME [FILE]",
		Short:   "Copy a backup from a schedule's destination to a verified local file, for restore",
		Long:    snapshotGetLong,
		Example: snapshotGetExample,
		Args:    cobra.RangeArgs(2, 3),
		RunE:    runEArgs(o),
	}
	o.backupDest.addFlags(cmd.Flags())
	return cmd
}

// Complete reads DEST, NAME and FILE, and builds the clients.
func (o *SnapshotGetOptions) Complete(args []string) error {
	o.Name, o.File = args[1], args[1]
	if len(args) == 3 {
		o.File = args[2]
	}
	return o.backupDest.complete(o.GlobalOptions, args[0])
}

// Validate checks the flags.
func (o *SnapshotGetOptions) Validate() error { return o.backupDest.validate() }

// Run copies the file and prints its path.
func (o *SnapshotGetOptions) Run(ctx context.Context) error {
	got, err := schedule.GetBackup(ctx, o.deps(), schedule.GetConfig{Browse: o.browse, Name: o.Name, File: o.File})
	if got == nil {
		return err
	}
	checked := "its snapshot decrypted and checked against etcd's sha256 trailer"
	if !got.Verified.Content {
		checked = "only its age header was read (give --identity to check the snapshot inside; restore checks it)"
	}
	fmt.Fprintf(o.ErrOut, "Kept %s from %s as %s: %s, sha256 %s; %s.\n", got.Name, got.From, got.File, printers.Bytes(got.Size), got.Verified.SHA256, checked)
	fmt.Fprintln(o.Out, got.File)
	return err
}
