package plugin

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

var getLong = longDesc(`
	Read keys from etcd, for debugging, and decode the Kubernetes objects in
	them with the API machinery's own serializers: protobuf (what the API server
	stores by default), JSON (custom resources) and CBOR. YAML is a stream of
	documents, each headed by its key in a comment; JSON a stream of objects.
	A value encrypted at rest by the API server (k8s:enc:<provider>:...) is
	reported with its provider and key name, never printed: only the API server
	can decrypt it. A kind this build does not know shows its type and metadata
	with a note; --raw prints the bytes as stored.

	KEY is an etcd key (/registry/pods/prod/web) or a kubectl-style reference:
	RESOURCE/NAMESPACE/NAME, RESOURCE/NAME (the default namespace, or a
	cluster-wide resource), with kubectl's resource names (pods, svc,
	leases.coordination.k8s.io, widgets.example.com for a custom resource),
	mapped to the keys as the API server lays them out: its own groups'
	resources under /registry/RESOURCE/, custom resources under
	/registry/GROUP/RESOURCE/. With
	--prefix it reads every key under it: pods, pods/prod, /registry/. (-n is
	the namespace of the etcd pods, as for every command: name the object's
	namespace in KEY.)

	It only reads. Live, the keys come from a healthy follower, serializable,
	a page at a time; with --snapshot FILE, from a snapshot file (--identity for
	an age-encrypted one, decrypted into memory).`)

var getExample = templates.Examples(`
	# A pod as etcd stores it
	kubectl etcd get pods/prod/web-7d4b9c6f5-abcde

	# The same key by its name, as JSON
	kubectl etcd get /registry/pods/prod/web-7d4b9c6f5-abcde -o json

	# Every ConfigMap key in kube-system
	kubectl etcd get --prefix configmaps/kube-system --keys-only

	# The bytes of one value, for a hex dump
	kubectl etcd get /registry/secrets/prod/db --raw | hexdump -C

	# A namespace's deployments as last night's backup holds them
	kubectl etcd get --prefix deployments/prod --snapshot etcd.db.age -i key.txt`)

// GetOptions are the options of `kubectl etcd get`.
type GetOptions struct {
	ClusterReadOptions
	Key        string
	Prefix     bool
	Raw        bool
	KeysOnly   bool
	Limit      int64
	Revision   int64
	Snapshot   string
	Identities []string
	DecryptDir string
}

// NewCmdGet returns the get command.
func NewCmdGet(g *GlobalOptions) *cobra.Command {
	o := &GetOptions{ClusterReadOptions: ClusterReadOptions{GlobalOptions: g}}
	cmd := &cobra.Command{
		Use:     "get KEY",
		Short:   "Read keys and decode the Kubernetes objects in them (read-only)",
		Long:    withPolicy(getLong, etcd.ClientAPI),
		Example: getExample,
		Args:    cobra.MaximumNArgs(1),
		RunE:    runEArgs(o),
	}
	f := cmd.Flags()
	f.StringVarP(&o.Output, "output", "o", printers.YAML, "Output format: yaml or json.")
	f.BoolVar(&o.Prefix, "prefix", false, "Read every key that starts with KEY (no KEY: every key).")
	f.BoolVar(&o.Raw, "raw", false, "Print the values as stored, undecoded: one KEY's value alone, or a key line and a value line per key with --prefix.")
	f.BoolVar(&o.KeysOnly, "keys-only", false, "Print the keys alone, one a line.")
	f.Int64Var(&o.Limit, "limit", 0, "Read at most this many keys (0: no limit).")
	f.Int64Var(&o.Revision, "rev", 0, "Read the keys as they were at this revision (0: the newest).")
	addSnapshotSourceFlags(cmd, &o.Snapshot, &o.Identities, &o.DecryptDir)
	return cmd
}

// addSnapshotSourceFlags adds the flags that read a snapshot file
// instead of the live cluster.
func addSnapshotSourceFlags(cmd *cobra.Command, file *string, ids *[]string, dir *string) {
	f := cmd.Flags()
	f.StringVar(file, "snapshot", "", "Read this snapshot file instead of the live cluster.")
	f.StringSliceVarP(ids, "identity", "i", nil, "age identity file to decrypt an encrypted --snapshot; repeatable.")
	f.StringVar(dir, "decrypt-dir", "", "With --snapshot, decrypt into a private file in this directory, removed after, instead of into memory.")
}

// Complete resolves KEY and builds the clients, unless a snapshot file
// is read.
func (o *GetOptions) Complete(args []string) error {
	if len(args) == 1 {
		key, err := decode.RegistryKey(args[0], o.Prefix)
		if err != nil {
			return err
		}
		o.Key = key
	}
	if o.Snapshot != "" {
		return nil
	}
	return o.ClusterReadOptions.Complete()
}

// Validate checks the flags.
func (o *GetOptions) Validate() error {
	switch {
	case o.Key == "" && !o.Prefix:
		return fmt.Errorf("name a KEY, or add --prefix to read every key")
	case o.Output != printers.YAML && o.Output != printers.JSON:
		return fmt.Errorf("unknown output format %q: get prints yaml or json", o.Output)
	case o.Raw && o.KeysOnly:
		return fmt.Errorf("--raw and --keys-only do not go together: pick one")
	case o.Limit < 0 || o.Revision < 0:
		return fmt.Errorf("--limit and --rev must be 0 or more")
	case o.Snapshot == "" && o.Transport == TransportExec:
		return fmt.Errorf("--transport exec cannot run this command: it pages through keys with etcd's client API, over a port-forward; drop --transport")
	}
	return validateSnapshotSource(o.Snapshot, o.Identities, o.DecryptDir)
}

// validateSnapshotSource checks --identity and --decrypt-dir against
// --snapshot.
func validateSnapshotSource(file string, ids []string, dir string) error {
	if file == "" && (len(ids) > 0 || dir != "") {
		return fmt.Errorf("--identity and --decrypt-dir read a --snapshot file; add --snapshot FILE or drop them")
	}
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("--decrypt-dir %s is not a directory; create it (on an encrypted disk, mode 0700) or name another", dir)
		}
	}
	return nil
}

// Run reads the keys and prints them as they come.
func (o *GetOptions) Run(ctx context.Context) error {
	src, closeSrc, err := o.source(ctx)
	if err != nil {
		return err
	}
	defer closeSrc()
	p := &printers.EntryPrinter{
		Objects:  printers.ObjectPrinter{Out: o.Out, ErrOut: o.ErrOut, Format: o.Output},
		KeysOnly: o.KeysOnly, Raw: o.Raw, Single: !o.Prefix,
	}
	detail := keyspace.Values
	if o.KeysOnly {
		detail = keyspace.KeysOnly
	}
	q := keyspace.Query{Key: o.Key, Prefix: o.Prefix, Limit: o.Limit, Revision: o.Revision, Detail: detail}
	res, err := src.Walk(ctx, q, func(page keyspace.Page) error {
		for _, e := range page.Entries {
			if err := p.Print(e.Key, e.Value, e.ModRevision); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case res.Keys == 0 && !o.Prefix:
		return hint.Errorf("kubectl etcd get --prefix --keys-only PREFIX lists the keys there", "key %s not found at revision %d", o.Key, res.Revision)
	case res.More:
		fmt.Fprintf(o.ErrOut, "%d keys shown; more are past --limit %d.\n", res.Keys, o.Limit)
	}
	return nil
}

// source opens the snapshot file or the live reader.
func (o *GetOptions) source(ctx context.Context) (keyspace.Source, func(), error) {
	return openKeySource(ctx, o.GlobalOptions, o.Snapshot, o.Identities, o.DecryptDir)
}

// openKeySource opens the snapshot file when one is named, else the
// live cluster's best follower.
func openKeySource(ctx context.Context, g *GlobalOptions, file string, idFiles []string, dir string) (keyspace.Source, func(), error) {
	if file == "" {
		pods, err := g.Members(ctx)
		if err != nil {
			return nil, nil, err
		}
		r, err := keyspace.OpenReader(ctx, g.TransportFor(etcd.ClientAPI), pods, nil)
		if err != nil {
			return nil, nil, err
		}
		return r, r.Close, nil
	}
	f, err := openSnapshotFile(g, file, idFiles, dir)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// openSnapshotFile opens a snapshot file's keys, decrypted with the
// identities in idFiles: into memory, or into dir, which it warns of.
func openSnapshotFile(g *GlobalOptions, file string, idFiles []string, dir string) (*keyspace.File, error) {
	o, err := snapshotFileOptions(g, idFiles, dir)
	if err != nil {
		return nil, err
	}
	return keyspace.OpenFile(file, o)
}

// snapshotFileOptions reads the identities in idFiles, and warns when
// the plaintext is to be written to dir.
func snapshotFileOptions(g *GlobalOptions, idFiles []string, dir string) (keyspace.FileOptions, error) {
	ids, err := snapshot.Identities(idFiles)
	if err != nil {
		return keyspace.FileOptions{}, err
	}
	if dir != "" && len(ids) > 0 {
		fmt.Fprintf(g.ErrOut, "Warning: the decrypted snapshot, every Secret of the cluster in plain text, is written to %s while it is read, and removed after.\n", dir)
	}
	return keyspace.FileOptions{Identities: ids, DecryptDir: dir}, nil
}
