package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// NewCmdSnapshot returns the snapshot command group.
func NewCmdSnapshot(g *GlobalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Inspect, verify and export snapshot files on this machine; list and fetch a schedule's backups",
		Long: longDesc(`
			inspect, verify and export read snapshot files on this machine, with no
			cluster. list and get read the backups at a schedule's destination: a dir
			on the control-plane nodes, or S3.`),
		Example: templates.Examples(`
			kubectl etcd snapshot inspect etcd.db
			kubectl etcd snapshot verify etcd.db
			kubectl etcd snapshot export etcd.db --namespace prod
			kubectl etcd snapshot list node:/var/lib/etcd-backups
			kubectl etcd snapshot get node:/var/lib/etcd-backups nightly-20261207T020000Z.db.zst.age`),
	}
	cmd.AddCommand(NewCmdSnapshotInspect(g), NewCmdSnapshotVerify(g), NewCmdSnapshotExport(g), NewCmdSnapshotList(g), NewCmdSnapshotGet(g))
	return cmd
}

// SnapshotInspectOptions are the options of `kubectl etcd snapshot inspect`.
type SnapshotInspectOptions struct {
	*GlobalOptions
	File       string
	Identities []string
	DecryptDir string
	Top        int
	Output     string
}

// NewCmdSnapshotInspect returns the inspect command.
func NewCmdSnapshotInspect(g *GlobalOptions) *cobra.Command {
	o := &SnapshotInspectOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show a snapshot's hash, revision, keys, size and what fills it",
		Long: longDesc(`
			Verify a snapshot file, then print the numbers etcdutl snapshot status
			prints (hash, revision, total keys, total size) and, per Kubernetes
			resource prefix, the live keys and bytes and the stored revisions, the
			most stored first: the rows of usage --snapshot. Encrypted files are read with --identity and decrypted into memory
			(an anonymous memfd on Linux), since the plaintext holds every Secret of
			the cluster. Where that is not possible (other systems), --decrypt-dir
			names a directory for a private plaintext file, removed after.`),
		Example: templates.Examples(`
			# What fills this snapshot?
			kubectl etcd snapshot inspect etcd.db --top 10

			# An age-encrypted snapshot
			kubectl etcd snapshot inspect etcd.db.age --identity ~/.config/age/key.txt

			# The same where there is no memfd (macOS, Windows), on an encrypted disk
			kubectl etcd snapshot inspect etcd.db.age -i key.txt --decrypt-dir ~/private`),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmdContext(cmd))
		},
	}
	cmd.Flags().StringSliceVarP(&o.Identities, "identity", "i", nil, "age identity file to decrypt an encrypted snapshot; repeatable.")
	cmd.Flags().StringVar(&o.DecryptDir, "decrypt-dir", "", "Decrypt into a private file in this directory, removed after, instead of into memory.")
	cmd.Flags().IntVar(&o.Top, "top", 20, "Show the N prefixes that store the most (0 for all).")
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Validate checks the flags.
func (o *SnapshotInspectOptions) Validate() error {
	if o.Top < 0 {
		return fmt.Errorf("--top must be 0 or more")
	}
	if err := validateSnapshotSource(o.File, o.Identities, o.DecryptDir); err != nil {
		return err
	}
	return validateOutput(o.Output)
}

// Run inspects the file: its resources are summed as usage --snapshot
// sums them, by the same code.
func (o *SnapshotInspectOptions) Run(ctx context.Context) error {
	fo, err := snapshotFileOptions(o.GlobalOptions, o.Identities, o.DecryptDir)
	if err != nil {
		return err
	}
	rep, err := keyspace.Inspect(ctx, o.File, fo, o.Top)
	if err != nil {
		return err
	}
	if rep.Raw {
		fmt.Fprintf(o.ErrOut, "Warning: %s is a member's database copied from its data dir (copy-db), not a snapshot: no sha256 trailer vouches for it, and it holds whatever the member had written when it stopped\n", o.File)
	}
	return printers.PrintInspect(o.Out, o.Output, rep)
}

// SnapshotVerifyOptions are the options of `kubectl etcd snapshot verify`.
type SnapshotVerifyOptions struct {
	*GlobalOptions
	Files      []string
	Identities []string
}

// NewCmdSnapshotVerify returns the verify command.
func NewCmdSnapshotVerify(g *GlobalOptions) *cobra.Command {
	o := &SnapshotVerifyOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "verify FILE...",
		Short: "Check snapshot files against their sha256 trailer; exit 1 if any is bad",
		Example: templates.Examples(`
			# In a backup job
			kubectl etcd snapshot verify /backups/*.db || alert "bad etcd backup"`),
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Files = args
			return o.Run()
		},
	}
	cmd.Flags().StringSliceVarP(&o.Identities, "identity", "i", nil, "age identity file for encrypted snapshots; repeatable.")
	return cmd
}

// Run verifies every file and fails if any is bad.
func (o *SnapshotVerifyOptions) Run() error {
	ids, err := snapshot.Identities(o.Identities)
	if err != nil {
		return err
	}
	bad := 0
	for _, f := range o.Files {
		v, err := snapshot.Verify(f, ids)
		if err != nil {
			bad++
			fmt.Fprintf(o.Out, "%s: FAILED: %v\n", f, err)
			continue
		}
		what := ""
		if v.Bundle != nil {
			what = fmt.Sprintf("bundle of %s, its %d files checked against its index; snapshot ", strings.Join(v.Bundle.Nodes(), ", "), len(v.Bundle.Files))
		}
		fmt.Fprintf(o.Out, "%s: OK (%s%s, sha256 %s)\n", f, what, printers.Bytes(v.Size), v.FileSHA256)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d snapshots failed verification", bad, len(o.Files))
	}
	return nil
}
