package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// CopyDBOptions are the options of `kubectl etcd copy-db`.
type CopyDBOptions struct {
	*GlobalOptions
	Node    string
	File    string
	DataDir string
	DryRun  bool
	Quiet   bool
	Output  string
	ageRecipients

	now func() time.Time
}

// NewCmdCopyDB returns the copy-db command.
func NewCmdCopyDB(g *GlobalOptions) *cobra.Command {
	o := &CopyDBOptions{GlobalOptions: g, now: time.Now}
	cmd := &cobra.Command{
		Use:   "copy-db NODE [FILE]",
		Short: "Copy a stopped member's database file from its node (not a snapshot)",
		Long: longDesc(`
			The emergency copy of member/snap/db from a node whose etcd is stopped or
			crash-looping, when no member can take a snapshot of it: a node pod
			streams the file (under a shared lock, which keeps etcd from opening it,
			when the image has flock) into FILE.part here, which is fsynced, checked against the file's sha256 on the
			node after the copy, and renamed to FILE with mode 0600. It is NOT a
			consistent snapshot: it has no sha256 trailer, and holds what the member had
			written when it stopped. snapshot inspect, get --snapshot and snapshot
			export read it; restore takes it only with --skip-hash-check. Refused while that member's etcd runs:
			take a snapshot with backup instead. The data dir comes from the node's
			etcd pod, or --data-dir when its manifest is gone.`),
		Example: templates.Examples(`
			# See what would be copied
			kubectl etcd copy-db hc-cp3 --dry-run

			# Copy it, encrypted for an age recipient
			kubectl etcd copy-db hc-cp3 hc-cp3-db.age --recipient age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq

			# Its etcd manifest is gone: say where the data dir is
			kubectl etcd copy-db hc-cp3 --data-dir /var/lib/etcd`),
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: firstArg(completeMembers(g)),
		RunE:              runEArgs(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "The member's data dir on the node, when no etcd pod there names it.")
	f.BoolVar(&o.DryRun, "dry-run", false, "Print the plan and copy nothing.")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "Print no progress.")
	o.ageRecipients.addFlags(f)
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Complete takes the node and the file name.
func (o *CopyDBOptions) Complete(args []string) error {
	o.Node = args[0]
	if len(args) == 2 {
		o.File = args[1]
	}
	o.QuietPods = o.Quiet
	if err := o.ageRecipients.complete(); err != nil {
		return err
	}
	if err := o.GlobalOptions.Complete(); err != nil {
		return err
	}
	if o.File == "" {
		name := DefaultSnapshotName(o.ContextName()+"-"+o.Node+"-member-db", o.now(), o.encrypt != nil)
		o.File = name
	}
	return nil
}

// Validate checks the flags and that FILE is free.
func (o *CopyDBOptions) Validate() error {
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if o.File == "-" {
		return fmt.Errorf("copy-db writes a file: give FILE, not -")
	}
	return snapshot.CheckTargets(o.File)
}

// Run copies the database file.
func (o *CopyDBOptions) Run(ctx context.Context) error {
	pods, err := o.Members(ctx)
	if err != nil {
		return err
	}
	res, err := backup.CopyDB(ctx, o.Runner(), pods, backup.CopyDBConfig{
		Node: o.Node, File: o.File, DataDir: o.DataDir,
		Namespace: o.helperNamespace(), Image: o.Image, DryRun: o.DryRun,
		Encrypt: o.encrypt, Progress: progressBar(o.ErrOut, o.Quiet, "copy-db"), Notify: o.notef, Now: o.now,
		Answers: o.answers,
	})
	if err != nil {
		return err
	}
	if !res.DryRun {
		o.notef("Saved %s (%s from %s on node %s) in %s; sha256 %s. Not a snapshot: see kubectl etcd snapshot inspect %s", res.File, printers.Bytes(res.Size), res.Source, res.Node, res.TookText, res.FileSHA256, res.File)
	}
	return printers.Print(o.Out, o.Output, res, printers.CopyDBTable(res))
}

// answers asks the member for its status with etcdctl in its own
// container: no helper pod, which a crash-looping member's node may not
// start.
func (o *CopyDBOptions) answers(ctx context.Context, m discovery.Member) error {
	c, err := o.TransportFor(etcd.Etcdctl).Client(ctx, m)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Status(ctx)
	return err
}

func (o *CopyDBOptions) notef(format string, args ...any) {
	if !o.Quiet {
		fmt.Fprintf(o.ErrOut, format+"\n", args...)
	}
}
