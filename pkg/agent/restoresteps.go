package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// RestoreEnv is how the restore's steps reach the node: its root and the
// probes; tests point them at a fake node.
type RestoreEnv struct {
	Root   string
	Dialer Dialer
	HTTP   HTTPDoer
	// Barrier holds the node before the swap until every member is ready;
	// nil for a single member.
	Barrier Barrier
	// Run and LookPath run the etcd tools in script mode (see
	// SnapshotRestore); nil runs processes found on $PATH.
	Run      Runner
	LookPath func(string) (string, error)
}

// RestoreSteps lists one node's restore, in the order of the issue: the
// API server goes before etcd so that nothing writes to the old data, etcd
// comes back before the API server, and the controller-manager and the
// scheduler restart so that they drop their caches. restored is the
// rewritten etcd manifest (PrepareRestore).
//
// The old data dir stays where it is, untouched: the restored manifest
// points etcd at the new one, and the old manifest, put back, at the old.
// (Moving it would fail where it is a mount point, a dedicated disk.)
//
// A rollback undoes the steps in reverse, and waits where the order
// matters: the new etcd must be gone before the old manifest comes back (two etcds must never run), and the API server must be gone
// before etcd changes under it.
func RestoreSteps(s *agentapi.RestoreSpec, restored []byte, env RestoreEnv) []Step {
	j, static := s.JournalDir, s.StaticPodDir
	in := func(f string) string { return path.Join(static, f) }
	out := func(f string) string { return path.Join(j, "manifests", f) }
	stop, poll := time.Duration(s.StopTimeout), time.Duration(s.PollInterval)
	apiGone := WaitStep("wait until kube-apiserver is gone", "kube-apiserver's port "+s.APIServerAddr+" to refuse", PortClosed(env.Dialer, s.APIServerAddr), stop, poll)
	etcdGone := WaitStep("wait until etcd is gone", "etcd's ports to refuse", allClosed(env.Dialer, s.EtcdAddrs), stop, poll)
	apiGone.Detail, etcdGone.Detail = "its port refuses", "its client, peer and metrics ports refuse"

	var steps []Step
	if s.SnapshotRestore != nil {
		steps = append(steps, snapshotRestoreStep(s, env))
	}
	for _, f := range agentapi.ControlPlaneManifests {
		steps = append(steps, env.move("stop "+component(f), in(f), out(f)))
	}
	steps = append(steps,
		apiGone,
		env.move("stop etcd", in(agentapi.EtcdManifest), out(agentapi.EtcdManifest)),
		etcdGone,
	)
	if s.EncryptionConfig != nil {
		steps = append(steps, encryptionConfigStep(s, env))
	}
	if env.Barrier != nil {
		// Once the barrier says commit, the other members swap: a failure of
		// this node's own swap must then not roll it back alone.
		barrier := Step{Name: agentapi.StepBarrier, Do: env.Barrier.Await, PointOfNoReturn: true}
		if s.Barrier != nil {
			barrier.Detail = "the agents ask each other over etcd's peer TLS, this one on " + s.Barrier.Addr + ": every member swaps, or every member rolls back"
		}
		steps = append(steps, barrier)
	}
	swap := WriteStep(agentapi.StepSwap, under(env.Root, in(agentapi.EtcdManifest)), under(env.Root, path.Join(j, "undone", agentapi.EtcdManifest)), restored, true)
	swap.Moves = []agentapi.Move{{To: in(agentapi.EtcdManifest)}}
	swap.Detail = "etcd's manifest with --data-dir, mountPath and hostPath " + s.NewDataDir
	swap.Do = then(func(context.Context) error { return syncRestoredData(osFiles, env.Root, s.NewDataDir) }, swap.Do)
	swap.Undo = then(swap.Undo, etcdGone.Do)
	what, quorum := "etcd's "+s.MetricsURL+"/health", s.Barrier != nil && len(s.Barrier.Peers) > 0
	if quorum {
		what += " (it needs a quorum of members)"
	}
	healthy := WaitStep("wait until the member is healthy", what, EtcdHealthy(env.HTTP, s.MetricsURL), time.Duration(s.HealthyTimeout), poll)
	healthy.Detail = "at most " + time.Duration(s.HealthyTimeout).String()
	if quorum {
		healthy.Detail += "; it needs a quorum of members: the other nodes' steps"
	}
	steps = append(steps, swap, healthy)
	for i, f := range agentapi.ControlPlaneManifests {
		st := env.putBack("start "+component(f), in(f), out(f))
		if i == 0 {
			st.Undo = then(st.Undo, apiGone.Do)
		}
		steps = append(steps, st)
	}
	return steps
}

// encryptionConfigStep puts the bundle's encryption config (staged in the
// journal dir) where kube-apiserver reads it, the node's own moved aside
// into the journal dir (or, where it had none, a marker saying so); the
// API server is stopped. Its undo puts the node's own back. Every file is
// kept: the keys a value needs may be in either.
func encryptionConfigStep(s *agentapi.RestoreSpec, env RestoreEnv) Step {
	e := s.EncryptionConfig
	live, staged, aside := under(env.Root, e.Path), under(env.Root, e.Staged), under(env.Root, s.EncryptionConfigAside())
	absent := aside + ".absent"
	return Step{
		Name:   "put the bundle's encryption config back",
		Moves:  []agentapi.Move{{From: e.Path, To: s.EncryptionConfigAside()}, {From: e.Staged, To: e.Path}},
		Detail: "the keys the restored Secrets were written with, from the bundle; the node's own config is kept in the journal dir",
		Do: func(context.Context) error {
			_, asideErr := os.Lstat(aside)
			_, absentErr := os.Lstat(absent)
			if got, err := agentapi.FileSHA256(live); err == nil && got == e.SHA256 {
				if asideErr != nil && absentErr != nil {
					// The node had the bundle's file already: the staged copy
					// of its keys is not needed.
					if err := os.Remove(staged); err != nil && !errors.Is(err, os.ErrNotExist) {
						return err
					}
				}
				return nil
			}
			if got, err := agentapi.FileSHA256(staged); err != nil || got != e.SHA256 {
				return fmt.Errorf("the bundle's encryption config staged at %s is not the one planned (sha256 %q, want %s, %v): nothing was changed; restore again", e.Staged, got, e.SHA256, err)
			}
			if _, err := os.Lstat(live); err == nil {
				if err := MoveAside(live, aside); err != nil {
					return err
				}
			} else if errors.Is(err, os.ErrNotExist) && asideErr != nil {
				if err := osFiles.mkdirAll(filepath.Dir(absent)); err != nil {
					return err
				}
				if err := WriteFileNew(absent, nil, 0o600); err != nil {
					return err
				}
			}
			return MoveAside(staged, live)
		},
		Undo: func(context.Context) error {
			_, asideErr := os.Lstat(aside)
			_, absentErr := os.Lstat(absent)
			if asideErr != nil && absentErr != nil {
				return nil // nothing was moved
			}
			if got, err := agentapi.FileSHA256(live); err == nil && got == e.SHA256 {
				if err := MoveAside(live, staged); err != nil {
					return err
				}
			}
			if asideErr == nil {
				return MoveAside(aside, live)
			}
			return os.Remove(absent)
		},
	}
}

func component(manifest string) string { return manifest[:len(manifest)-len(path.Ext(manifest))] }

// move and putBack act under the root and record node paths, which is what
// an operator reading --status finds on the node.
func (env RestoreEnv) move(name, from, to string) Step {
	s := MoveStep(name, under(env.Root, from), under(env.Root, to))
	s.Moves = []agentapi.Move{{From: from, To: to}}
	return s
}

func (env RestoreEnv) putBack(name, orig, aside string) Step {
	s := PutBackStep(name, under(env.Root, orig), under(env.Root, aside))
	s.Moves = []agentapi.Move{{From: aside, To: orig}}
	return s
}

// then runs a, then b.
func then(a, b func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a(ctx); err != nil {
			return err
		}
		return b(ctx)
	}
}

// allClosed holds when every address refuses.
func allClosed(d Dialer, addrs []string) Condition {
	return func(ctx context.Context) error {
		var errs []error
		for _, a := range addrs {
			errs = append(errs, PortClosed(d, a)(ctx))
		}
		return errors.Join(errs...)
	}
}

// syncRestoredData checks, right before the swap, that the new data dir
// still holds etcd's database, and makes it durable: the restore wrote it
// minutes ago with only etcd's own fsyncs. Pointed at a dir that vanished,
// the restored manifest would start an empty etcd there (hostPath
// DirectoryOrCreate), which its --initial-cluster flags would then join to
// nothing (D1).
func syncRestoredData(fo fileOps, root, dataDir string) error {
	dir := under(root, dataDir)
	db, err := os.Stat(filepath.Join(dir, "member", "snap", "db"))
	if err == nil && (!db.Mode().IsRegular() || db.Size() == 0) {
		err = errors.New("not a database file")
	}
	if err != nil {
		return fmt.Errorf("the restored data dir %s no longer holds member/snap/db (%v), though it did at the start: nothing was swapped. Put the restored data back there, then resume; or roll back (`kubectl etcd restore --status` shows the node)", dataDir, bare(err))
	}
	if err := fo.syncTree(dir); err != nil {
		return fmt.Errorf("make the restored data dir %s durable before the swap: %w; nothing was swapped: check the disk (dmesg)", dataDir, err)
	}
	return nil
}
