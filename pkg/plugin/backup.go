package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
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

	# Stream to another program; the exit status says whether it verified
	kubectl etcd backup - | aws s3 cp - s3://bucket/etcd.db`)

// BackupOptions are the options of `kubectl etcd backup`.
type BackupOptions struct {
	*GlobalOptions
	File           string
	Member         string
	Retries        int
	Quiet          bool
	Encrypt        bool
	Recipients     []string
	RecipientFiles []string

	now     func() time.Time
	encrypt func(io.Writer) (io.WriteCloser, error)
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Member, "member", "", "Take the snapshot from this member (name or hex ID) instead of choosing one.")
	f.IntVar(&o.Retries, "retries", 2, "How many times to start over when the stream breaks.")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "Print no progress.")
	f.BoolVar(&o.Encrypt, "encrypt", false, "Encrypt the snapshot with age for the recipients given.")
	f.StringSliceVar(&o.Recipients, "recipient", nil, "age recipient (public key, age1...) to encrypt for; repeatable.")
	f.StringSliceVar(&o.RecipientFiles, "recipients-file", nil, "File of age recipients, one per line; repeatable.")
	_ = cmd.RegisterFlagCompletionFunc("member", completeMembers(g))
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
	if len(o.Recipients)+len(o.RecipientFiles) > 0 {
		rs, err := snapshot.Recipients(o.Recipients, o.RecipientFiles)
		if err != nil {
			return err
		}
		o.encrypt = snapshot.Encrypter(rs)
	}
	if err := o.GlobalOptions.Complete(); err != nil {
		return err
	}
	if o.File == "" {
		o.File = DefaultSnapshotName(o.contextName(), o.now(), o.Encrypt)
	}
	return nil
}

// Validate checks the flags.
func (o *BackupOptions) Validate() error {
	if o.Retries < 0 {
		return fmt.Errorf("--retries must be 0 or more")
	}
	if o.Encrypt && len(o.Recipients)+len(o.RecipientFiles) == 0 {
		return fmt.Errorf("--encrypt needs at least one --recipient or --recipients-file")
	}
	if o.File != "-" {
		if _, err := os.Lstat(o.File); err == nil {
			return fmt.Errorf("%s already exists; choose another name or move it away", o.File)
		}
	}
	return nil
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

func (o *BackupOptions) contextName() string {
	if o.ConfigFlags == nil {
		return ""
	}
	if c := o.ConfigFlags.Context; c != nil && *c != "" {
		return *c
	}
	raw, err := o.ConfigFlags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return ""
	}
	return raw.CurrentContext
}

// Metadata is written beside the snapshot as FILE.json; restore plans
// from it.
type Metadata struct {
	File              string            `json:"file"`
	ClusterID         string            `json:"clusterID"`
	Member            string            `json:"member"`
	MemberID          string            `json:"memberID"`
	Node              string            `json:"node,omitempty"`
	Revision          int64             `json:"revision"`
	EtcdVersion       string            `json:"etcdVersion"`
	StorageVersion    string            `json:"storageVersion,omitempty"`
	KubernetesVersion string            `json:"kubernetesVersion,omitempty"`
	Context           string            `json:"context,omitempty"`
	Time              time.Time         `json:"time"`
	Size              int64             `json:"size"`
	SHA256            string            `json:"sha256"`
	SnapshotSHA256    string            `json:"snapshotSHA256"`
	Encrypted         bool              `json:"encrypted"`
	Members           []etcd.MemberView `json:"members"`
}

// Run takes the snapshot.
func (o *BackupOptions) Run(ctx context.Context) error {
	// The stream passes through in small messages; a soft heap limit keeps
	// the garbage of a large snapshot from piling up before GC runs.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(48 << 20))
	pods, err := o.Members(ctx)
	if err != nil {
		return err
	}
	fwd := o.ForwardDialer()
	status, src, err := o.chooseSource(ctx, pods, fwd)
	if err != nil {
		return err
	}
	member := podNamed(pods, src.Pod)
	if member == nil {
		return fmt.Errorf("member %s has no pod to port-forward to", src.Name)
	}
	o.notef("Taking a snapshot from member %s (%s) on node %s, DB size %s", src.Name, src.ID, src.Node, printers.Bytes(src.DBSize))

	stream := &memberStream{dialer: fwd, member: *member}
	defer stream.close()
	var sink snapshot.Sink = &snapshot.FileSink{Path: o.File}
	if o.File == "-" {
		sink = &snapshot.StreamSink{W: o.Out}
	}
	start := time.Now()
	res, err := snapshot.Save(ctx, stream.open, sink, snapshot.Options{
		Retries:  o.Retries,
		Encrypt:  o.encrypt,
		Progress: o.progress(src.DBSize),
		Notify:   o.notef,
	})
	if err != nil {
		return fmt.Errorf("snapshot not saved: %w", err)
	}
	took := time.Since(start)
	if o.File == "-" {
		o.notef("Snapshot streamed and verified: %s, sha256 %s, in %s", printers.Bytes(res.Size), res.FileSHA256, took.Round(time.Millisecond))
		return nil
	}
	meta := o.metadata(status, src, res, start)
	meta.StorageVersion = stream.version
	if err := writeMetadata(o.File+".json", meta); err != nil {
		return fmt.Errorf("snapshot saved at %s, but its metadata was not: %w", o.File, err)
	}
	o.notef("Saved %s (%s, revision %d) in %s, %s/s; sha256 %s",
		o.File, printers.Bytes(res.Size), meta.Revision, took.Round(time.Millisecond), printers.Bytes(int64(float64(res.Size)/took.Seconds())), res.FileSHA256)
	fmt.Fprintln(o.Out, o.File)
	return nil
}

// chooseSource asks every member for its status and picks the one to
// snapshot. Reading the TLS material takes a helper pod, so that starts
// at the same time.
func (o *BackupOptions) chooseSource(ctx context.Context, pods []discovery.Member, fwd *etcd.ForwardDialer) (*etcd.StatusListView, *etcd.StatusView, error) {
	prefetch := make(chan error, 1)
	go func() { prefetch <- fwd.Prepare(ctx, pods) }()
	status, serr := etcd.CollectStatus(ctx, o.Dialer(), pods)
	if err := <-prefetch; err != nil {
		return nil, nil, err
	}
	if serr != nil && !errors.Is(serr, etcd.ErrSomeFailed) {
		return nil, nil, serr
	}
	src, err := etcd.ChooseSource(status, o.Member)
	return status, src, err
}

// metadata describes a saved snapshot file for FILE.json.
func (o *BackupOptions) metadata(status *etcd.StatusListView, src *etcd.StatusView, res *snapshot.Result, start time.Time) *Metadata {
	meta := &Metadata{
		File: o.File, ClusterID: status.ClusterID, Member: src.Name, MemberID: src.ID, Node: src.Node,
		Revision: src.Revision, EtcdVersion: src.Version,
		Context: o.contextName(), Time: start.UTC(), Size: res.Size, SHA256: res.FileSHA256,
		SnapshotSHA256: res.SnapshotSHA256, Encrypted: o.Encrypt,
	}
	if status.List != nil {
		meta.Members = status.List.Members
	}
	if v, err := o.Client.Discovery().ServerVersion(); err == nil {
		meta.KubernetesVersion = v.GitVersion
	}
	if !o.Encrypt {
		// The status revision is from just before the stream; the file's
		// own is exact.
		if rev, err := snapshot.Revision(o.File); err == nil {
			meta.Revision = rev
		}
	}
	return meta
}

func podNamed(pods []discovery.Member, name string) *discovery.Member {
	for i := range pods {
		if pods[i].Pod == name {
			return &pods[i]
		}
	}
	return nil
}

func writeMetadata(path string, m *Metadata) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// progress shows bytes, rate and ETA on a terminal stderr.
func (o *BackupOptions) progress(size int64) func(io.Reader) io.Reader {
	f, ok := o.ErrOut.(*os.File)
	if o.Quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(r io.Reader) io.Reader {
		bar := progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(o.ErrOut),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetDescription("snapshot"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(o.ErrOut) }),
			progressbar.OptionClearOnFinish(),
		)
		pr := progressbar.NewReader(r, bar)
		return &pr
	}
}

func (o *BackupOptions) notef(format string, args ...any) {
	if !o.Quiet {
		fmt.Fprintf(o.ErrOut, format+"\n", args...)
	}
}

// memberStream opens a fresh port-forward and snapshot stream per attempt,
// since a broken stream often means a broken forward.
type memberStream struct {
	dialer  etcd.Dialer
	member  discovery.Member
	conn    etcd.Conn
	version string
}

func (s *memberStream) open(ctx context.Context) (io.ReadCloser, error) {
	s.close()
	c, err := s.dialer.Dial(ctx, s.member)
	if err != nil {
		return nil, err
	}
	s.conn = c
	sn, ok := c.(etcd.Snapshotter)
	if !ok {
		return nil, fmt.Errorf("the %s transport cannot stream snapshots", s.dialer.Name())
	}
	st, err := sn.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	s.version = st.Version
	return st, nil
}

func (s *memberStream) close() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}
