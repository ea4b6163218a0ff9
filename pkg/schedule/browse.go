package schedule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// What snapshot list and get read: the files at a destination, from the
// workstation. A node dir is read on each node by a pod that mounts only
// it, read-only; a bucket with the S3 client. Nothing is written but the
// file get keeps, and nothing read reaches this machine's disk before it
// is verified, or at all when it is only listed.

// Store is one place that holds a destination's files.
type Store interface {
	List(ctx context.Context) ([]Object, error)
	// Open streams the named file, one List listed.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	String() string
}

// digester is a Store that hashes its files where they are, so that a
// copy is checked against the file itself.
type digester interface {
	SHA256(ctx context.Context, name string) (string, error)
}

// Place is a Store and how to reach it: Visit calls fn with it, and holds
// what reaching it takes (a node pod) only meanwhile.
type Place struct {
	// Node is the node whose dir it is; "" for object storage.
	Node  string
	Visit func(ctx context.Context, fn func(ctx context.Context, s Store) error) error
}

// Browse is a destination and how to reach it from the workstation.
type Browse struct {
	Dest Dest
	// Nodes are the nodes whose dir a node: destination is read on;
	// none is every control-plane node.
	Nodes []string
	// Namespace and Image are the node pods'.
	Namespace, Image string
	// S3Secret names the Secret, in SecretNamespace, that holds S3's
	// keys; without it they come from Getenv.
	S3Secret, SecretNamespace string
	Getenv                    func(string) string
	// Identities decrypt what is verified; without, only an age file's
	// header is read.
	Identities []age.Identity
	// Log takes notices: a node without the dir.
	Log func(format string, args ...any)
}

// BrowseDeps are what a Browse reaches.
type BrowseDeps struct {
	Client kubernetes.Interface
	Runner *nodepod.Runner
}

// Backup is a file at a destination, as snapshot list shows it.
type Backup struct {
	Name string `json:"name"`
	// Schedule is the schedule whose name the file has; "" for a file
	// no schedule named.
	Schedule string `json:"schedule,omitempty"`
	// Taken is the time in a schedule's name, else when the destination
	// says the file was written.
	Taken time.Time `json:"taken,omitzero"`
	Size  int64     `json:"size"`
	// Node is the node whose dir holds it (node: destinations).
	Node     string        `json:"node,omitempty"`
	Verified *Verification `json:"verified,omitempty"`
}

// Verification is what reading a file through found.
type Verification struct {
	// Content: the snapshot inside (decrypted, decompressed) matched
	// etcd's sha256 trailer. Without it, an age file read without an
	// identity: only its header was checked.
	Content bool `json:"content"`
	// SHA256 is the file's own, as it arrived.
	SHA256 string `json:"sha256,omitempty"`
	// Error is why it failed.
	Error string `json:"error,omitempty"`
}

// ListConfig is one snapshot list.
type ListConfig struct {
	Browse
	// Verify reads each file, streaming, and checks it.
	Verify bool
}

// ListBackups lists the files at the destination, newest first: on each
// node at once for a node dir. With Verify each is read as it streams,
// never to disk. It returns what it could list with the errors of the
// places it could not, and of the files that did not verify.
func ListBackups(ctx context.Context, deps BrowseDeps, c ListConfig) ([]Backup, error) {
	places, err := c.places(ctx, deps)
	if err != nil {
		return nil, err
	}
	found := make([][]Backup, len(places))
	errs := make([]error, len(places))
	par.Each(len(places), func(i int) {
		p := places[i]
		errs[i] = c.visit(ctx, p, func(ctx context.Context, s Store) error {
			objs, err := listed(ctx, s)
			if err != nil {
				return err
			}
			for _, o := range objs {
				b := describe(o, p.Node)
				if c.Verify {
					v, err := fetch(ctx, s, o, io.Discard, c.Identities)
					b.Verified = &Verification{Content: !v.HeaderOnly, SHA256: v.FileSHA256}
					if err != nil {
						b.Verified = &Verification{Error: hint.OneLine(err.Error())}
					}
				}
				found[i] = append(found[i], b)
			}
			return nil
		})
	})
	out := slices.Concat(found...)
	slices.SortStableFunc(out, func(a, b Backup) int {
		return cmp.Or(b.Taken.Compare(a.Taken), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Node, b.Node))
	})
	bad := 0
	for _, b := range out {
		if b.Verified != nil && b.Verified.Error != "" {
			bad++
		}
	}
	if bad > 0 {
		errs = append(errs, fmt.Errorf("%d of %d backups failed verification", bad, len(out)))
	}
	return out, errors.Join(errs...)
}

// listed is what s lists but files being written (NAME.part) and names
// get would refuse.
func listed(ctx context.Context, s Store) ([]Object, error) {
	objs, err := s.List(ctx)
	return slices.DeleteFunc(objs, func(o Object) bool {
		return strings.HasSuffix(o.Name, snapshot.PartPath("")) || checkObjectName(o.Name) != nil
	}), err
}

// describe is o as snapshot list shows it.
func describe(o Object, node string) Backup {
	b := Backup{Name: o.Name, Size: o.Size, Node: node, Taken: o.Modified}
	if s, t, ok := ParseFileName(o.Name); ok {
		b.Schedule, b.Taken = s, t
	}
	return b
}

// GetConfig is one snapshot get: the file Name at the destination to
// File on this machine.
type GetConfig struct {
	Browse
	Name, File string
}

// Got is what snapshot get kept.
type Got struct {
	Name string `json:"name"`
	// From is where it was, Node its node for a node dir.
	From string `json:"from"`
	Node string `json:"node,omitempty"`
	File string `json:"file"`
	Size int64  `json:"size"`
	// Verified says what was checked before it was kept.
	Verified Verification `json:"verified"`
}

// GetBackup copies the file Name to File as backup writes a snapshot:
// into FILE.part (0600, created exclusively), verified as it streams, by
// size and, on a node, by the file's sha256 there, fsynced and renamed,
// never over an existing file. A node dir is looked for on one node after
// the other, and the first that has the file gives it.
func GetBackup(ctx context.Context, deps BrowseDeps, c GetConfig) (*Got, error) {
	if err := checkObjectName(c.Name); err != nil {
		return nil, err
	}
	sink := &snapshot.FileSink{Path: c.File}
	if err := sink.Check(); err != nil {
		return nil, err
	}
	places, err := c.places(ctx, deps)
	if err != nil {
		return nil, err
	}
	var errs []error
	var looked []string
	for _, p := range places {
		var got *Got
		found := false
		err := c.visit(ctx, p, func(ctx context.Context, s Store) error {
			looked = append(looked, cmp.Or(p.Node, s.String()))
			objs, err := listed(ctx, s)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(objs, func(o Object) bool { return o.Name == c.Name })
			if found = i >= 0; found {
				got, err = keep(ctx, s, objs[i], sink, c)
			}
			return err
		})
		if found || ctx.Err() != nil {
			for _, e := range errs {
				c.logf("Warning: %v", e)
			}
			if got != nil {
				got.Node = p.Node
			}
			return got, err
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	where := c.Dest.Arg()
	switch {
	case c.Dest.Kind == DestNode && len(looked) == 0:
		where += ": no node has that dir"
	case c.Dest.Kind == DestNode:
		where += " on node " + strings.Join(looked, ", ")
	}
	notFound := hint.Permanent(fmt.Errorf("no file %s in %s", c.Name, where), "kubectl etcd snapshot list %s shows what is there", c.Dest.Arg())
	return nil, errors.Join(append([]error{notFound}, errs...)...)
}

// keep copies o from s through sink, and commits it only once it is
// verified.
func keep(ctx context.Context, s Store, o Object, sink *snapshot.FileSink, c GetConfig) (*Got, error) {
	w, err := sink.Begin()
	if err != nil {
		return nil, err
	}
	v, err := fetch(ctx, s, o, w, c.Identities)
	if err == nil {
		err = sink.Commit()
	}
	if err != nil {
		sink.Abort()
		return nil, fmt.Errorf("%s from %s not kept: %w", o.Name, s, err)
	}
	return &Got{Name: o.Name, From: s.String(), File: c.File, Size: v.FileSize,
		Verified: Verification{Content: !v.HeaderOnly, SHA256: v.FileSHA256}}, nil
}

// fetch streams o from s into w and checks it on the way: the snapshot
// inside with identities (or when it is plain), an age file's header
// without; then that all of it came, and, where s can hash it, that it
// is the file there.
func fetch(ctx context.Context, s Store, o Object, w io.Writer, ids []age.Identity) (snapshot.Verified, error) {
	rc, err := s.Open(ctx, o.Name)
	if err != nil {
		return snapshot.Verified{}, err
	}
	defer rc.Close()
	v, err := snapshot.VerifyStream(rc, o.Name, ids, w)
	switch {
	case err != nil:
		return v, err
	case v.FileSize != o.Size:
		return v, fmt.Errorf("%d bytes arrived of the %d listed: the transfer was cut", v.FileSize, o.Size)
	}
	if d, ok := s.(digester); ok {
		sum, err := d.SHA256(ctx, o.Name)
		if err != nil {
			return v, err
		}
		if sum != v.FileSHA256 {
			return v, fmt.Errorf("it changed, or was damaged on the way: sha256 %s there, %s here", sum, v.FileSHA256)
		}
	}
	return v, nil
}

// visit visits p, and says where a failure was. A node without the dir
// has no file of it: that is said, and is no failure.
func (c Browse) visit(ctx context.Context, p Place, fn func(ctx context.Context, s Store) error) error {
	err := p.Visit(ctx, fn)
	switch {
	case err == nil:
		return nil
	case p.Node != "" && errors.Is(err, nodepod.ErrHostPath):
		c.logf("Node %s has no dir %s: no schedule has written to it there.", p.Node, c.Dest.Path)
		return nil
	case p.Node != "":
		return fmt.Errorf("node %s: %w", p.Node, err)
	}
	return err
}

func (c Browse) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

// places are where the destination's files are.
func (c Browse) places(ctx context.Context, deps BrowseDeps) ([]Place, error) {
	switch c.Dest.Kind {
	case DestNode:
		return c.nodePlaces(ctx, deps)
	case DestS3:
		s, err := c.s3(ctx, deps.Client)
		if err != nil {
			return nil, err
		}
		return []Place{{Visit: func(ctx context.Context, fn func(context.Context, Store) error) error { return fn(ctx, s) }}}, nil
	case DestPVC:
		return nil, hint.Permanent(fmt.Errorf("snapshot list and get do not read a PersistentVolumeClaim (%s) yet", c.Dest.Arg()),
			"run a pod in the claim's namespace that mounts it read-only, copy the file out with kubectl cp, and check the copy with kubectl etcd snapshot verify FILE --identity KEY (kubectl cp can cut large files)")
	}
	return nil, fmt.Errorf("destination kind %q: want node, pvc or s3", c.Dest.Kind)
}

// s3 is the bucket, with the keys in the Secret, or in the environment.
func (c Browse) s3(ctx context.Context, cs kubernetes.Interface) (*S3, error) {
	cfg := S3Config{Endpoint: c.Dest.Endpoint, Region: c.Dest.Region, Bucket: c.Dest.Bucket, Prefix: c.Dest.Prefix}
	if c.S3Secret != "" {
		var err error
		if cfg.AccessKeyID, cfg.SecretAccessKey, err = S3Credentials(ctx, cs, c.SecretNamespace, c.S3Secret); err != nil {
			return nil, err
		}
		cfg.CredentialsFrom = fmt.Sprintf("Secret %s/%s", c.SecretNamespace, c.S3Secret)
	} else {
		cfg.AccessKeyID, cfg.SecretAccessKey = c.Getenv(EnvAccessKeyID), c.Getenv(EnvSecretAccessKey)
		cfg.CredentialsFrom = "the environment (or give --s3-secret NAME)"
	}
	return NewS3(cfg)
}

// nodePlaces are the dir on each node: a ProfileFiles pod that mounts
// only the dir, read-only, started when visited and deleted after.
func (c Browse) nodePlaces(ctx context.Context, deps BrowseDeps) ([]Place, error) {
	nodes := c.Nodes
	if len(nodes) == 0 {
		var err error
		if nodes, err = controlPlaneNodes(ctx, deps.Client); err != nil {
			return nil, err
		}
	}
	var out []Place
	for _, n := range nodes {
		spec := nodepod.Spec{Purpose: "backups", Node: n, Namespace: c.Namespace, Image: c.Image, Profile: nodepod.ProfileFiles,
			Mounts: []nodepod.HostMount{{HostPath: c.Dest.Path, ReadOnly: true}}}
		out = append(out, Place{Node: n, Visit: func(ctx context.Context, fn func(context.Context, Store) error) error {
			return deps.Runner.Run(ctx, spec, func(ctx context.Context, p *nodepod.Pod) error {
				return fn(ctx, nodeDir{pod: p, dir: c.Dest.Path})
			})
		}})
	}
	return out, nil
}

// controlPlaneNodes are the nodes a schedule's pod may run on.
func controlPlaneNodes(ctx context.Context, cs kubernetes.Interface) ([]string, error) {
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: ControlPlaneLabel})
	if err != nil {
		return nil, hint.With(discovery.ExplainAPIError(err, "list", "nodes", ""), "or name the node whose dir to read with --node")
	}
	var out []string
	for _, n := range list.Items {
		out = append(out, n.Name)
	}
	if len(out) == 0 {
		return nil, hint.Permanent(fmt.Errorf("no node is labelled %s", ControlPlaneLabel), "name the node whose dir to read with --node")
	}
	slices.Sort(out)
	return out, nil
}

// FetchForRestore copies the file Name from the destination into a new
// directory of its own (0700) under tmp, verified as GetBackup verifies,
// for a restore to read: the file is a schedule's, age-encrypted, and the
// restore decrypts it in memory. done removes the copy and its directory;
// the destination keeps the file.
func FetchForRestore(ctx context.Context, deps BrowseDeps, c GetConfig, tmp string) (got *Got, done func(), err error) {
	if err := checkObjectName(c.Name); err != nil {
		return nil, func() {}, err
	}
	dir, err := os.MkdirTemp(tmp, "kubectl-etcd-restore-")
	if err != nil {
		return nil, func() {}, fmt.Errorf("a directory for the copy of %s: %w", c.Name, err)
	}
	done = func() { _ = os.RemoveAll(dir) }
	c.File = filepath.Join(dir, c.Name)
	got, err = GetBackup(ctx, deps, c)
	if err != nil {
		done()
		return nil, func() {}, err
	}
	return got, done, nil
}
