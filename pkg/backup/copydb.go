package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// CopyDBConfig is one `kubectl etcd copy-db`: the emergency copy of a
// member's database file from a node whose etcd is stopped or
// crash-looping, as the Kubernetes etcd guide does by hand.
type CopyDBConfig struct {
	Node string
	// File is where the copy goes, through FILE.part.
	File string
	// DataDir is the member's data dir when no etcd pod on the node says
	// it (its manifest moved away); the pod's wins otherwise.
	DataDir string
	// Namespace and Image are the node pod's.
	Namespace, Image string
	DryRun           bool
	Encrypt          func(io.Writer) (io.WriteCloser, error)
	Progress         func(size int64) func(io.Reader) io.Reader
	Notify           func(format string, args ...any)
	Now              func() time.Time
	// Answers asks the node's member for its status; nil means it
	// answered, so its etcd runs. Nil Answers trusts the pod's state,
	// which a crash-looping container flips between runs.
	Answers func(ctx context.Context, m discovery.Member) error
}

// CopyDBResult is a saved copy.
type CopyDBResult struct {
	Node       string `json:"node"`
	Source     string `json:"source"`
	File       string `json:"file"`
	DryRun     bool   `json:"dryRun,omitempty"`
	Size       int64  `json:"size"`
	FileSHA256 string `json:"fileSHA256,omitempty"`
	// DBSHA256 is the sha256 of the database file as it lies on the node.
	DBSHA256 string        `json:"dbSHA256,omitempty"`
	Took     time.Duration `json:"-"`
	TookText string        `json:"took,omitempty"`
}

// errLocked is what the node pod's flock exits with when etcd holds
// the database open.
const errLocked = 75

// CopyDB copies <data dir>/member/snap/db from cfg.Node to cfg.File. It
// refuses while that member's etcd runs (it answers, or holds the bbolt
// file lock): a running member's file changes under the copy,
// and `kubectl etcd backup` takes a consistent snapshot of it. The copy
// is read under a shared flock, so that an etcd starting meanwhile
// waits, and its sha256 is compared with the file's after.
func CopyDB(ctx context.Context, rn *nodepod.Runner, pods []discovery.Member, cfg CopyDBConfig) (*CopyDBResult, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Notify == nil {
		cfg.Notify = func(string, ...any) {}
	}
	dataDir, pod, err := copySource(pods, cfg)
	if err != nil {
		return nil, err
	}
	db := path.Join(dataDir, "member", "snap", "db")
	res := &CopyDBResult{Node: cfg.Node, Source: db, File: cfg.File, DryRun: cfg.DryRun}
	// Only a kubelet that reaches the API keeps the pod's state current
	// and serves an exec into it.
	reach := rn.KubeletConnected(ctx, cfg.Node, cfg.Now())
	var who string
	var running error
	switch {
	case pod == nil:
		who = "no etcd pod on the node; --data-dir given"
	case reach != nil:
		reach = cutOff(reach, cfg.Node, db)
		who = fmt.Sprintf("member %s, pod %s: its state is unknown, the node's kubelet is cut off", pod.Name, pod.Pod)
	default:
		who, running = memberState(ctx, *pod, cfg)
	}
	cfg.Notify("Plan: copy %s from node %s (%s) to %s", db, cfg.Node, who, cfg.File)
	cfg.Notify("  a copy of the member's database file as it lies on disk, NOT a consistent snapshot: no sha256 trailer vouches for it,")
	cfg.Notify("  and it holds what the member had written when it stopped; snapshot inspect, get and export read it, restore only with --skip-hash-check")
	cfg.Notify("  a node pod reads it (under a shared lock, which keeps etcd from opening it, when the image has flock),")
	cfg.Notify("  and its sha256 is checked against the file's after the copy")
	if cfg.DryRun {
		if reach != nil {
			cfg.Notify("  warning: %v", reach)
		}
		cfg.Notify("Dry run: nothing was copied")
		return res, nil
	}
	if reach != nil {
		return nil, reach
	}
	if running != nil {
		return nil, running
	}
	sink := &snapshot.FileSink{Path: cfg.File}
	if _, err := sink.Begin(); err != nil {
		return nil, err
	}
	spec := copyDBSpec(cfg, db)
	in := nodepod.HostPrefix + db
	start := cfg.Now()
	err = rn.Run(ctx, spec, func(ctx context.Context, p *nodepod.Pod) error {
		size, err := lockedSize(ctx, p, in, cfg.Node)
		if err != nil {
			return err
		}
		cfg.Notify("Copying %s (%s) from node %s", db, humanize.IBytes(uint64(size)), cfg.Node)
		opts := snapshot.Options{Raw: true, Encrypt: cfg.Encrypt, Notify: cfg.Notify}
		if cfg.Progress != nil {
			opts.Progress = cfg.Progress(size)
		}
		opts.Settle = func(got int64, sum string) error {
			after, err := p.SHA256(ctx, in)
			if err != nil {
				return err
			}
			if got != size || sum != after {
				return hint.Permanent(fmt.Errorf("the database on node %s changed while it was copied (%d bytes, sha256 %s copied; %d bytes before, sha256 %s after)", cfg.Node, got, sum, size, after),
					"did etcd start meanwhile? Stop it and copy again, or take a snapshot with `kubectl etcd backup` if it runs")
			}
			res.DBSHA256 = after
			return nil
		}
		src := func(ctx context.Context) (io.ReadCloser, error) { return streamFile(ctx, p, in), nil }
		saved, err := snapshot.Save(ctx, src, sink, opts)
		if err != nil {
			return err
		}
		res.Size, res.FileSHA256 = saved.Size, saved.FileSHA256
		return nil
	})
	if err != nil {
		sink.Abort()
		return nil, fmt.Errorf("copy of %s from node %s not saved: %w", db, cfg.Node, err)
	}
	res.Took = cfg.Now().Sub(start)
	res.TookText = res.Took.Round(time.Millisecond).String()
	return res, nil
}

// cutOff explains why no pod can start on a node whose etcd is down, and
// how to copy the file there by hand.
func cutOff(err error, node, db string) error {
	var h *hint.Error
	if errors.As(err, &h) {
		err = h.Err // this hint replaces the node check's
	}
	return hint.Permanent(fmt.Errorf("cannot copy from node %s: %w", node, err),
		"on kubeadm 1.33 and later (ControlPlaneKubeletLocalMode) a control-plane node's kubelet reaches the API "+
			"through its own node's API server, which needs this etcd member: while the member is down, no pod starts there. "+
			"Copy the file on the node itself (the shared lock keeps etcd from opening it meanwhile):\n"+
			"  flock -n -s %[1]s sh -c 'umask 077 && cp %[1]s /root/etcd-member-db && sha256sum %[1]s /root/etcd-member-db'", db)
}

// copyDBSpec is the node pod that reads the database file: the file
// alone, mounted read-only, and nothing else of the node.
func copyDBSpec(cfg CopyDBConfig, db string) nodepod.Spec {
	return nodepod.Spec{
		Purpose: "copydb", Node: cfg.Node, Namespace: cfg.Namespace, Image: cfg.Image,
		Profile: nodepod.ProfileFiles, Mounts: nodepod.FileMounts(db),
	}
}

// copySource is the data dir to copy from, and the node's etcd pod when
// there is one.
func copySource(pods []discovery.Member, cfg CopyDBConfig) (string, *discovery.Member, error) {
	for i, m := range pods {
		if m.Node != cfg.Node {
			continue
		}
		if m.DataDir == "" {
			return "", nil, fmt.Errorf("the etcd pod %s on node %s names no --data-dir", m.Pod, cfg.Node)
		}
		return m.DataDir, &pods[i], nil
	}
	if cfg.DataDir == "" {
		return "", nil, hint.Permanent(fmt.Errorf("no etcd pod on node %s says where its data dir is", cfg.Node),
			"give it with --data-dir (kubeadm's default is /var/lib/etcd); kubectl etcd members lists the nodes with a member")
	}
	if !path.IsAbs(cfg.DataDir) || path.Clean(cfg.DataDir) != cfg.DataDir {
		return "", nil, hint.Permanent(fmt.Errorf("--data-dir %q is not a clean absolute path", cfg.DataDir), "give the data dir as etcd's --data-dir names it, such as /var/lib/etcd")
	}
	return cfg.DataDir, nil, nil
}

// memberState says whether the member runs, and refuses it if it does:
// it answers (Answers), or else its pod says so.
func memberState(ctx context.Context, m discovery.Member, cfg CopyDBConfig) (string, error) {
	up := m.Running
	if cfg.Answers != nil {
		up = cfg.Answers(ctx, m) == nil
	}
	if up {
		return fmt.Sprintf("member %s, pod %s running", m.Name, m.Pod), hint.Permanent(fmt.Errorf("etcd on node %s (pod %s) is running: its database changes under a copy", cfg.Node, m.Pod),
			"take a consistent snapshot instead: kubectl etcd backup --member %s", m.Name)
	}
	state := string(m.PodPhase)
	if m.NotRunningReason != "" {
		state = m.NotRunningReason
	}
	if m.Running {
		state = "its container runs between restarts, and etcd does not answer"
	}
	return fmt.Sprintf("member %s, pod %s not running: %s", m.Name, m.Pod, state), nil
}

// lockedSize tries the shared lock etcd's exclusive one excludes, when
// the image has flock, and returns the file's size; errLocked says etcd
// holds it.
func lockedSize(ctx context.Context, p *nodepod.Pod, file, node string) (int64, error) {
	var out, errb bytes.Buffer
	script := `if command -v flock >/dev/null; then flock -n -s "$1" true || exit 75; fi; stat -c %s "$1"`
	err := p.Exec(ctx, []string{"sh", "-c", script, "copydb", file}, nil, &out, &errb)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Code == errLocked {
		return 0, hint.Permanent(fmt.Errorf("etcd on node %s holds its database open (it runs, or is starting)", node),
			"take a consistent snapshot instead (kubectl etcd backup), or stop it first")
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s on node %s: %w %s", file, node, err, strings.TrimSpace(errb.String()))
	}
	return strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
}

// streamFile streams the file from the node, under a shared flock when
// the image has one (busybox builds differ); the sha256 compared after
// the copy catches a change either way.
func streamFile(ctx context.Context, p *nodepod.Pod, file string) io.ReadCloser {
	script := `if command -v flock >/dev/null; then exec flock -n -s "$1" cat "$1"; fi; exec cat "$1"`
	return p.Stream(ctx, "streaming "+file, []string{"sh", "-c", script, "copydb", file})
}
