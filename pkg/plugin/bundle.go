package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/confirm"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// NewCmdBundle is `kubectl etcd bundle`.
func NewCmdBundle(g *GlobalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Lay out a DR bundle's files for rebuilding a node (no cluster needed)",
		Long: longDesc(`
			A DR bundle (kubectl etcd backup --bundle) holds the snapshot and, from each
			control-plane node, kubeadm's PKI, the static pod manifests and the API
			server's encryption config, and the kubeadm-config and kubelet-config
			ConfigMaps, age-encrypted. snapshot inspect, snapshot verify and restore read
			its snapshot directly.`),
		Example: templates.Examples(`
			# Write a bundle, then lay out hc-cp1's files from it
			kubectl etcd backup etcd.bundle.age --bundle --recipient age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq
			kubectl etcd bundle extract etcd.bundle.age --identity key.txt --node hc-cp1 --to ./hc-cp1`),
	}
	cmd.AddCommand(newCmdBundleExtract(g))
	return cmd
}

// BundleExtractOptions are the options of `kubectl etcd bundle extract`.
type BundleExtractOptions struct {
	*GlobalOptions
	File, To, Node string
	Identities     []string
	Yes, DryRun    bool
}

func newCmdBundleExtract(g *GlobalOptions) *cobra.Command {
	o := &BundleExtractOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "extract FILE --to DIR [--node NODE]",
		Short: "Write one node's PKI, manifests and encryption config from a bundle into a new dir",
		Long: longDesc(`
			Decrypts the bundle in memory, checks every file against the bundle's index
			(sha256), and writes one node's files into DIR, new or empty: pki/ as kubeadm
			init expects /etc/kubernetes/pki, manifests/, encryption/, and the cluster's
			kubeadm-config.yaml and kubelet-config.yaml. Every file is 0600 and every dir
			0700; the snapshot is not written. The files are the cluster's keys: it asks
			before writing them (--yes skips that).`),
		Example: templates.Examples(`
			# Rebuild hc-cp1: its PKI and configs into ./hc-cp1
			kubectl etcd bundle extract etcd.bundle.age --identity key.txt --node hc-cp1 --to ./hc-cp1`),
		Args: cobra.ExactArgs(1),
		RunE: runEArgs(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.To, "to", "", "The dir to write into: new or empty.")
	f.StringVar(&o.Node, "node", "", "The node whose files to write (default: the only one the bundle holds).")
	f.StringSliceVarP(&o.Identities, "identity", "i", nil, "age identity file that decrypts the bundle; repeatable.")
	f.BoolVarP(&o.Yes, "yes", "y", false, "Write the keys without asking (needed without a terminal).")
	f.BoolVar(&o.DryRun, "dry-run", false, "List the files it would write, and write nothing.")
	return cmd
}

// Complete takes FILE.
func (o *BundleExtractOptions) Complete(args []string) error {
	o.File = args[0]
	return nil
}

// Validate checks the flags.
func (o *BundleExtractOptions) Validate() error {
	if o.To == "" {
		return fmt.Errorf("--to DIR is required: the new or empty dir that gets the node's files")
	}
	if len(o.Identities) == 0 {
		return fmt.Errorf("--identity is required: a bundle is always age-encrypted")
	}
	return nil
}

// Run writes the node's files.
func (o *BundleExtractOptions) Run(context.Context) error {
	ids, err := snapshot.Identities(o.Identities)
	if err != nil {
		return err
	}
	b, rc, err := snapshot.OpenBundle(o.File, ids)
	if err != nil {
		return err
	}
	rc.Close()
	nodes := b.Index.Nodes()
	if o.Node == "" {
		if len(nodes) != 1 {
			return fmt.Errorf("the bundle holds the files of %d nodes (%s): pick one with --node", len(nodes), strings.Join(nodes, ", "))
		}
		o.Node = nodes[0]
	}
	plan, err := b.ExtractPlan(o.Node)
	if err != nil {
		return err
	}
	if err := snapshot.CheckExtractDir(o.To); err != nil {
		return err
	}
	if o.DryRun {
		fmt.Fprintf(o.ErrOut, "Would write %d files of node %s into %s (0600, dirs 0700); dry run, nothing written\n", len(plan), o.Node, o.To)
		for _, p := range plan {
			fmt.Fprintln(o.Out, p)
		}
		return nil
	}
	fmt.Fprintf(o.ErrOut, "Extract: %d files of node %s into %s, 0600 in 0700 dirs (--dry-run lists them); the snapshot is not written\n", len(plan), o.Node, o.To)
	q := fmt.Sprintf("Write node %s's keys (the cluster CA, the etcd CA, the service-account key%s) into %s?", o.Node, keysNote(b, o.Node), o.To)
	if err := confirm.Ask(o.In, o.ErrOut, o.StdinIsTerminal(), o.Yes, confirm.YesNo(q), confirm.Yes...); err != nil {
		return err
	}
	written, err := b.Extract(o.Node, o.To)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.ErrOut, "Wrote %d files of node %s into %s (0600, dirs 0700): copy pki/ to /etc/kubernetes/pki on the new node before kubeadm init, and encryption/ where its kube-apiserver manifest names it\n", len(written), o.Node, o.To)
	for _, w := range written {
		fmt.Fprintln(o.Out, w)
	}
	return nil
}

func keysNote(b *snapshot.Bundle, node string) string {
	if k := b.Index.EncryptionKeys[node]; len(k) > 0 {
		return ", the encryption-at-rest keys " + strings.Join(k, ", ")
	}
	return ""
}
