package plugin

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/export"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

var snapshotExportLong = longDesc(`
	Write the objects of one namespace, as a snapshot file holds them, as
	clean manifests for kubectl apply: the namespace deleted by mistake comes
	back from last night's backup without restoring the cluster.

	The fields the servers set are stripped (uid, resourceVersion,
	creationTimestamp, managedFields, generation, status, owner references,
	finalizers, allocated cluster IPs, the last applied configuration), and
	what the controllers make again is left out: pods and replica sets owned
	by a controller, the endpoints of services with a selector, events, leases,
	the kube-root-ca.crt ConfigMap, the default service account, service
	account tokens the token controller made, finished jobs and pods. The rest
	comes in the order apply needs: the namespace, quotas, service accounts,
	secrets and config, claims and services, then the workloads and custom
	resources. What was left out, and why, is listed on standard error.

	The output is a YAML stream on standard output, or with -o a file, or
	with -o DIR/ one numbered file per object (kubectl apply -f DIR applies them
	in order). Files are made readable by their owner only: they hold the
	namespace's Secrets. An encrypted snapshot is decrypted into memory (an
	anonymous memfd): no plaintext reaches the disk on the way, except with
	--decrypt-dir. Values the API server encrypted at rest cannot be exported
	from etcd: they are listed.`)

var snapshotExportExample = templates.Examples(`
	# Bring back namespace prod from last night's backup
	kubectl etcd snapshot export etcd.db --namespace prod | kubectl apply -f -

	# Look first: one file per object, in apply order
	kubectl etcd snapshot export etcd.db.age -i key.txt -n prod -o prod/
	kubectl apply -f prod/

	# Only the ConfigMaps and Deployments
	kubectl etcd snapshot export etcd.db -n prod --kind configmap,deployment`)

// SnapshotExportOptions are the options of `kubectl etcd snapshot export`.
type SnapshotExportOptions struct {
	*GlobalOptions
	File       string
	Namespace  string
	Kinds      []string
	Output     string
	Revision   int64
	Identities []string
	DecryptDir string
}

// NewCmdSnapshotExport returns the export command.
func NewCmdSnapshotExport(g *GlobalOptions) *cobra.Command {
	o := &SnapshotExportOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:     "export FILE --namespace NAMESPACE",
		Short:   "Write a namespace's objects from a snapshot as manifests for kubectl apply",
		Long:    snapshotExportLong,
		Example: snapshotExportExample,
		Args:    cobra.ExactArgs(1),
		RunE:    runEArgs(o),
	}
	f := cmd.Flags()
	// This command reads no cluster: -n names the namespace to export,
	// not that of the etcd pods.
	f.StringVarP(&o.Namespace, "namespace", "n", "", "The namespace to export (required).")
	f.StringSliceVar(&o.Kinds, "kind", nil, "Export only these kinds (configmap, Deployment, widgets.example.com); repeatable, or comma-separated.")
	f.StringVarP(&o.Output, "output", "o", "", "Write to this file, or with a final / (or an existing directory) one file per object there, instead of standard output.")
	f.Int64Var(&o.Revision, "rev", 0, "Export the objects as they were at this revision of the snapshot (0: its newest).")
	f.StringSliceVarP(&o.Identities, "identity", "i", nil, "age identity file to decrypt an encrypted snapshot; repeatable.")
	f.StringVar(&o.DecryptDir, "decrypt-dir", "", "Decrypt into a private file in this directory, removed after, instead of into memory.")
	return cmd
}

// Complete takes FILE.
func (o *SnapshotExportOptions) Complete(args []string) error {
	o.File = args[0]
	return nil
}

// Validate checks the flags.
func (o *SnapshotExportOptions) Validate() error {
	switch {
	case o.Namespace == "":
		return fmt.Errorf("name the namespace to export: --namespace NAMESPACE")
	case o.Output == "yaml" || o.Output == "json":
		return fmt.Errorf("-o names a file or directory to write (the output is YAML); drop -o %s to write to standard output", o.Output)
	case o.Revision < 0:
		return fmt.Errorf("--rev must be 0 or more")
	}
	return validateSnapshotSource(o.File, o.Identities, o.DecryptDir)
}

// Run reads the snapshot and writes the manifests.
func (o *SnapshotExportOptions) Run(ctx context.Context) error {
	f, err := openSnapshotFile(o.GlobalOptions, o.File, o.Identities, o.DecryptDir)
	if err != nil {
		return err
	}
	defer f.Close()
	rev := o.Revision
	if rev == 0 {
		rev = f.Revision
	}
	res, err := export.Build(export.Config{Namespace: o.Namespace, Kinds: o.Kinds}, export.SourceWalk(ctx, f, rev))
	if err != nil {
		return err
	}
	o.report(res)
	if len(res.Objects) == 0 {
		return hint.Errorf(fmt.Sprintf("kubectl etcd get --prefix namespaces --keys-only --snapshot %s lists the namespaces it holds", o.File),
			"no object of namespace %s to export from %s at revision %d", o.Namespace, o.File, rev)
	}
	header := []string{
		fmt.Sprintf("Namespace %s, exported by kubectl etcd from %s at revision %d.", o.Namespace, o.File, rev),
		"Apply with: kubectl apply -f <this>",
	}
	return o.write(header, res)
}

// report lists on ErrOut what was left out and what to know.
func (o *SnapshotExportOptions) report(res *export.Result) {
	for _, s := range res.Skipped {
		what := strings.TrimSpace(s.Kind + " " + s.Name)
		fmt.Fprintf(o.ErrOut, "Left out %s (%s): %s\n", what, s.Key, s.Reason)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(o.ErrOut, "Warning: %s\n", w)
	}
}

// write writes the stream where -o says, and says what it wrote.
func (o *SnapshotExportOptions) write(header []string, res *export.Result) error {
	secrets := 0
	for _, u := range res.Objects {
		if u.GetKind() == "Secret" && u.GetAPIVersion() == "v1" {
			secrets++
		}
	}
	if o.Output == "" || o.Output == "-" {
		stream, err := export.Stream(header, res.Objects)
		if err != nil {
			return err
		}
		_, err = o.Out.Write(stream)
		return err
	}
	if fi, err := os.Stat(o.Output); strings.HasSuffix(o.Output, "/") || (err == nil && fi.IsDir()) {
		names, err := export.WriteDir(o.Output, header, res.Objects)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.ErrOut, "Wrote %d manifests to %s; apply them with: kubectl apply -f %s\n", len(names), o.Output, o.Output)
	} else {
		stream, err := export.Stream(header, res.Objects)
		if err != nil {
			return err
		}
		if err := export.WriteFile(o.Output, stream); err != nil {
			return err
		}
		fmt.Fprintf(o.ErrOut, "Wrote %d manifests to %s; apply them with: kubectl apply -f %s\n", len(res.Objects), o.Output, o.Output)
	}
	if secrets > 0 {
		fmt.Fprintf(o.ErrOut, "Warning: %s holds %d Secrets in plain text (base64 is no encryption): keep it safe, and delete it once applied.\n", o.Output, secrets)
	}
	return nil
}
