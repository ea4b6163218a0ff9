package plugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/util/templates"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/compression"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodefacts"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

var backupLong = longDesc(`
	Take a snapshot of etcd and save it on this machine, verified.

	The snapshot streams from one member over a port-forward into FILE.part,
	is fsynced, checked against the sha256 trailer etcd appends, and only then
	renamed to FILE with mode 0600. A failure at any point leaves nothing under
	FILE. A metadata file FILE.json records the cluster, the member, the
	revision and the members' peer URLs, for restore.

	By default the snapshot comes from a healthy follower with the newest data,
	so the leader is not loaded. Snapshots hold every Secret of the cluster:
	--encrypt with age recipients encrypts them as they stream.`)

var backupExample = templates.Examples(`
	# Save to etcd-<context>-<UTC time>.db in the current directory
	kubectl etcd backup

	# Save to a given file, from a given member
	kubectl etcd backup /backups/etcd.db --member hc-cp2

	# Encrypt for an age recipient
	kubectl etcd backup etcd.db.age --encrypt --recipient age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq

	# A DR bundle: the snapshot, every control-plane node's PKI, manifests and encryption config
	kubectl etcd backup --bundle --recipient age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq

	# Stream to another program; the exit status says whether it verified
	kubectl etcd backup - | aws s3 cp - s3://bucket/etcd.db`)

// BackupOptions are the options of `kubectl etcd backup`.
type BackupOptions struct {
	*GlobalOptions
	File         string
	Member       string
	Retries      int
	StallTimeout time.Duration
	Quiet        bool
	Encrypt      bool
	Bundle       bool
	Via          string
	Compress     string
	AgentDir     string
	ageRecipients

	now func() time.Time
}

// NewCmdBackup returns the backup command.
func NewCmdBackup(g *GlobalOptions) *cobra.Command {
	o := &BackupOptions{GlobalOptions: g, now: time.Now}
	cmd := &cobra.Command{
		Use:     "backup [FILE|-]",
		Aliases: []string{"snapshot-save", "save"},
		Short:   "Save a verified etcd snapshot to this machine",
		Long:    backupLong,
		Example: backupExample,
		Args:    cobra.MaximumNArgs(1),
		RunE:    runEArgs(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.Member, "member", "", "Take the snapshot from this member (name, node, pod or hex ID) instead of choosing one.")
	f.IntVar(&o.Retries, "retries", 2, "How many times to start over, from the next healthy member, when the stream breaks or stalls.")
	f.DurationVar(&o.StallTimeout, "stall-timeout", 30*time.Second, "Fail an attempt whose stream sends nothing for this long, and retry it (0 waits forever).")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "Print no progress.")
	f.BoolVar(&o.Encrypt, "encrypt", false, "Encrypt the snapshot with age for the recipients given.")
	f.BoolVar(&o.Bundle, "bundle", false, "Write a DR bundle: the snapshot with each control-plane node's PKI, static pod manifests and API server encryption config, and the kubeadm-config and kubelet-config ConfigMaps, read by node pods into memory. It holds keys, so it needs age recipients.")
	f.StringVar(&o.Via, "via", backup.ViaStream, "How the snapshot leaves the member: stream (etcd's snapshot stream, read here through a port-forward) or node (the node agent takes it on the member's node and serves it here through one port-forward, in large writes).")
	f.StringVar(&o.Compress, "compress", "", "With --via node: compress the snapshot on the node, so fewer bytes cross the API server: s2 (fast; about 2.5 times smaller for a cluster's objects) or zstd (slower; about 3.3 times). The file holds it compressed (inside the encryption), and inspect, verify, restore and get --snapshot read it as it is.")
	f.StringVar(&o.AgentDir, "agent-dir", "", "With --via node: directory holding kubectl-etcd-agent-linux-<arch> (default: beside this executable, symlinks resolved, as krew installs it).")
	o.ageRecipients.addFlags(f)
	_ = cmd.RegisterFlagCompletionFunc("member", completeMembers(g))
	_ = cmd.RegisterFlagCompletionFunc("via", cobra.FixedCompletions([]string{backup.ViaStream, backup.ViaNode}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("compress", cobra.FixedCompletions(compression.Names, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete fills in the file name and builds the clients.
func (o *BackupOptions) Complete(args []string) error {
	if len(args) == 1 {
		o.File = args[0]
	}
	if len(o.Recipients)+len(o.RecipientFiles) > 0 {
		o.Encrypt = true
	}
	o.QuietPods = o.Quiet
	if o.AgentDir == "" {
		o.AgentDir = defaultAgentDir()
	}
	if err := o.ageRecipients.complete(); err != nil {
		return err
	}
	if err := o.GlobalOptions.Complete(); err != nil {
		return err
	}
	if o.File == "" {
		o.File = DefaultSnapshotName(o.ContextName(), o.now(), o.Encrypt)
		if o.Bundle {
			o.File = strings.TrimSuffix(strings.TrimSuffix(o.File, ".age"), ".db") + ".bundle.age"
		}
	}
	return nil
}

// Validate checks the flags.
func (o *BackupOptions) Validate() error {
	if o.Retries < 0 {
		return fmt.Errorf("--retries must be 0 or more")
	}
	if o.Bundle && !o.Encrypt {
		return fmt.Errorf("--bundle needs --recipient or --recipients-file: a bundle holds the cluster's CA and service-account keys (and the encryption-at-rest keys), so it is only ever written age-encrypted, never in plain text")
	}
	if o.Bundle && o.File == "-" {
		return fmt.Errorf("--bundle writes a file: give FILE, not -")
	}
	if o.Encrypt && len(o.Recipients)+len(o.RecipientFiles) == 0 {
		return fmt.Errorf("--encrypt needs at least one --recipient or --recipients-file")
	}
	if o.StallTimeout < 0 {
		return fmt.Errorf("--stall-timeout must be 0 (wait forever) or more")
	}
	switch {
	case o.Via != "" && o.Via != backup.ViaStream && o.Via != backup.ViaNode:
		return fmt.Errorf("--via %q: want stream or node", o.Via)
	case compression.Check(o.Compress) != nil:
		return fmt.Errorf("--compress %q: want %s", o.Compress, strings.Join(compression.Names, " or "))
	case o.Compress != "" && o.Via != backup.ViaNode:
		return fmt.Errorf("--compress compresses on the node: it needs --via node")
	}
	return backup.Check(o.File)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// DefaultSnapshotName is etcd-<context>-<UTC time>.db(.age).
func DefaultSnapshotName(context string, now time.Time, encrypted bool) string {
	if context == "" {
		context = "cluster"
	}
	name := fmt.Sprintf("etcd-%s-%s.db", strings.Trim(unsafeChars.ReplaceAllString(context, "-"), "-"), now.UTC().Format("20060102T150405Z"))
	if encrypted {
		name += ".age"
	}
	return name
}

// Run takes the snapshot.
func (o *BackupOptions) Run(ctx context.Context) error {
	// The stream passes through in small messages; a soft heap limit keeps
	// the garbage of a large snapshot from piling up before GC runs.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(48 << 20))
	res, err := backup.Run(ctx, o.Session(), backup.Config{
		File:              o.File,
		Out:               o.Out,
		Member:            o.Member,
		Retries:           o.Retries,
		StallTimeout:      o.StallTimeout,
		Encrypt:           o.encrypt,
		Progress:          o.progress,
		Notify:            o.notef,
		Context:           o.ContextName(),
		KubernetesVersion: o.kubernetesVersion,
		Now:               o.now,
		APIServers:        o.apiServers,
		Bundle:            o.bundleSource(ctx),
		Via:               o.Via,
		Node:              o.nodeSource(),
	})
	if err != nil {
		return err
	}
	took := res.Took.Round(time.Millisecond)
	if res.Meta == nil {
		o.notef("Snapshot streamed and verified: %s, sha256 %s, in %s", printers.Bytes(res.Save.Size), res.Save.FileSHA256, took)
		return nil
	}
	rate := int64(float64(res.Save.Size) / max(res.Took.Seconds(), 1e-3))
	o.notef("Saved %s (%s, revision %d, from member %s) in %s, %s/s; sha256 %s",
		o.File, printers.Bytes(res.Save.Size), res.Meta.Revision, res.Meta.Member, took, printers.Bytes(rate), res.Save.FileSHA256)
	fmt.Fprintln(o.Out, o.File)
	return nil
}

// nodeSource is what --via node starts on the member's node.
func (o *BackupOptions) nodeSource() *backup.NodeSource {
	if o.Via != backup.ViaNode {
		return nil
	}
	return &backup.NodeSource{Runner: o.Runner(), Forward: o.Forwarder, Namespace: o.helperNamespace(), Image: o.Image, Compress: o.Compress,
		Agent: func(ctx context.Context, node string) (agentclient.Binary, error) {
			bins, err := agentclient.ForNodes(ctx, o.Client, o.AgentDir, []string{node})
			return bins[node], err
		}}
}

func (o *BackupOptions) apiServers(ctx context.Context) ([]discovery.APIServer, error) {
	return discovery.APIServers(ctx, o.Client, o.Namespace)
}

// bundleSource is where --bundle reads its files: the etcd pods' nodes,
// through node pods, and the ConfigMaps through the API.
func (o *BackupOptions) bundleSource(ctx context.Context) *backup.BundleSource {
	if !o.Bundle {
		return nil
	}
	var nodes []string
	if pods, err := o.Members(ctx); err == nil {
		for _, p := range pods {
			nodes = append(nodes, p.Node)
		}
	}
	files := &nodefacts.NodeFiles{Runner: o.Runner(), Namespace: o.helperNamespace(), Image: o.Image}
	return &backup.BundleSource{Nodes: nodes, ReadTrees: files.ReadTrees, ConfigMaps: o.kubeadmConfigMaps}
}

// kubeadmConfigMaps are kubeadm's kubeadm-config and kubelet-config, as
// YAML without the server's bookkeeping.
func (o *BackupOptions) kubeadmConfigMaps(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, name := range []string{"kubeadm-config", "kubelet-config"} {
		cm, err := o.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, discovery.ExplainAPIError(err, "get", "configmaps", "kube-system")
		}
		cm.ManagedFields, cm.ResourceVersion, cm.UID = nil, "", ""
		cm.APIVersion, cm.Kind = "v1", "ConfigMap"
		b, err := yaml.Marshal(cm)
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
	return out, nil
}

func (o *BackupOptions) kubernetesVersion() string {
	if v, err := o.Client.Discovery().ServerVersion(); err == nil {
		return v.GitVersion
	}
	return ""
}

// ageRecipients are the flags that encrypt a file with age as it
// streams, and the encrypter they make.
type ageRecipients struct {
	Recipients     []string
	RecipientFiles []string
	recipients     []age.Recipient
	encrypt        func(io.Writer) (io.WriteCloser, error)
}

func (a *ageRecipients) addFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&a.Recipients, "recipient", nil, "age recipient (public key, age1...) to encrypt for; repeatable.")
	f.StringSliceVar(&a.RecipientFiles, "recipients-file", nil, "File of age recipients, one per line; repeatable.")
}

// complete reads the recipients; none leaves encrypt nil.
func (a *ageRecipients) complete() error {
	if len(a.Recipients)+len(a.RecipientFiles) == 0 {
		return nil
	}
	rs, err := snapshot.Recipients(a.Recipients, a.RecipientFiles)
	if err != nil {
		return err
	}
	a.recipients, a.encrypt = rs, snapshot.Encrypter(rs)
	return nil
}

// progress shows bytes, rate and ETA on a terminal stderr.
func (o *BackupOptions) progress(size int64) func(io.Reader) io.Reader {
	return progressBar(o.ErrOut, o.Quiet, "snapshot")(size)
}

// progressBar shows bytes, rate and ETA of a stream of about size bytes
// on a terminal errOut; nil elsewhere or when quiet.
func progressBar(errOut io.Writer, quiet bool, what string) func(size int64) func(io.Reader) io.Reader {
	return func(size int64) func(io.Reader) io.Reader {
		f, ok := errOut.(*os.File)
		if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
			return nil
		}
		return func(r io.Reader) io.Reader {
			bar := progressbar.NewOptions64(size,
				progressbar.OptionSetWriter(errOut),
				progressbar.OptionShowBytes(true),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetDescription(what),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(errOut) }),
				progressbar.OptionClearOnFinish(),
			)
			pr := progressbar.NewReader(r, bar)
			return &pr
		}
	}
}

func (o *BackupOptions) notef(format string, args ...any) {
	if !o.Quiet {
		fmt.Fprintf(o.ErrOut, format+"\n", args...)
	}
}
