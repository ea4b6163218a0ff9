package agent

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/manifest"
)

// RecoverEnv is how a recovery's steps reach the node.
type RecoverEnv struct {
	Root   string
	Dialer Dialer
	HTTP   HTTPDoer
}

// PrepareRecover reads the node before anything stops: the member must
// be the surveyed one, and the disk must hold a copy of its data. It
// changes nothing.
func PrepareRecover(root string, s *agentapi.RecoverSpec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	src, m, err := memberOp{op: "recover", id: s.ID, journalDir: s.JournalDir, staticPodDir: s.StaticPodDir, member: s.Member,
		again: "survey the nodes again", walDir: "a recovery copies the data dir's member/ only"}.prepare(root)
	if err != nil {
		return err
	}
	s.DataDir = path.Clean(m.DataDir)
	if s.EtcdAddrs, s.MetricsURL, err = etcdAddrs(m); err != nil {
		return err
	}
	if s.DataDir != s.Expect.DataDir {
		return fmt.Errorf("etcd's data dir on this node is %s, the survey read %s: survey the nodes again", s.DataDir, s.Expect.DataDir)
	}
	if _, err := forcedManifest(src, s.ID); err != nil {
		return fmt.Errorf("etcd's manifest cannot be rewritten: %w", err)
	}
	member := under(root, path.Join(s.DataDir, "member"))
	size, err := treeSize(member)
	if err != nil {
		return fmt.Errorf("measure %s: %w", path.Join(s.DataDir, "member"), err)
	}
	if free, ok := freeBytes(under(root, s.DataDir)); ok && free < size+64<<20 {
		return fmt.Errorf("%s has %s free; the copy of the data kept before --force-new-cluster needs %s and 64 MiB to spare: free space there, then retry", s.DataDir, humanize.IBytes(free), humanize.IBytes(size))
	}
	return s.Validate()
}

func treeSize(dir string) (uint64, error) {
	var n uint64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += uint64(info.Size())
		}
		return nil
	})
	return n, err
}

// forcedManifest is etcd's manifest with --force-new-cluster, annotated so
// that the pod gets a new UID.
func forcedManifest(src []byte, id string) ([]byte, error) {
	b, err := manifest.SetFlags(src, map[string]string{"force-new-cluster": "true"})
	if err != nil {
		return nil, err
	}
	return manifest.SetAnnotation(b, agentapi.RecoveredAnnotation, id+"-forced")
}

// RecoverSteps lists the recovery of the most advanced survivor, the
// procedure of etcd's disaster-recovery guide for a cluster that lost its
// quorum and not its data: stop the member, copy its data aside, start it
// once with --force-new-cluster (a cluster of itself, its data kept up to
// the commit index it knew), then again without the flag, which must not
// stay: every restart with it would throw the membership away again.
func RecoverSteps(s *agentapi.RecoverSpec, env RecoverEnv) []Step {
	j, static := s.JournalDir, s.StaticPodDir
	in := path.Join(static, agentapi.EtcdManifest)
	out := path.Join(j, "manifests", agentapi.EtcdManifest)
	stop, poll, healthy := time.Duration(s.StopTimeout), time.Duration(s.PollInterval), time.Duration(s.HealthyTimeout)

	stopEtcd := MoveStep("stop etcd", under(env.Root, in), under(env.Root, out))
	stopEtcd.Moves = []agentapi.Move{{From: in, To: out}}
	stopEtcd.Detail = "its manifest leaves the static pod dir; the kubelet stops it"
	gone := WaitStep("wait until etcd is gone", "etcd's ports to refuse", steady(allClosed(env.Dialer, s.EtcdAddrs), 5*poll), stop, poll)

	check := Step{
		Name:   "check the data against the survey",
		Detail: fmt.Sprintf("member %s of cluster %s, its WAL committed up to index %d at least", s.Expect.MemberID, s.Expect.ClusterID, s.Expect.WAL.Commit),
		Do: func(context.Context) error {
			return checkSurveyed(under(env.Root, path.Join(s.DataDir, "member", "wal")), s)
		},
	}

	member := path.Join(s.DataDir, "member")
	kept := agentapi.BeforeRecoverDataDir(s.DataDir, s.ID)
	copyData := Step{
		Name:   "copy the data aside",
		Moves:  []agentapi.Move{{From: member, To: kept}},
		Detail: "a copy, kept: the way back by hand to the data as it was before --force-new-cluster",
		Do: func(context.Context) error {
			return copyTree(under(env.Root, member), under(env.Root, kept))
		},
	}

	forced := Step{
		Name:            agentapi.StepForceNewCluster,
		PointOfNoReturn: true,
		Moves:           []agentapi.Move{{To: in}},
		Detail:          "a cluster of this member alone, with its data up to the commit index it knew; the other members leave the membership, and rejoin one by one",
		Do: func(context.Context) error {
			src, err := os.ReadFile(under(env.Root, out))
			if err != nil {
				return fmt.Errorf("read etcd's old manifest: %w", err)
			}
			b, err := forcedManifest(src, s.ID)
			if err != nil {
				return err
			}
			return WriteFileNew(under(env.Root, in), b, 0o600)
		},
	}
	alone := WaitStep("wait until etcd serves as a cluster of one", "etcd's "+s.MetricsURL+"/health", EtcdHealthy(env.HTTP, s.MetricsURL), healthy, poll)

	forcedOut := path.Join(j, "forced", agentapi.EtcdManifest)
	stopForced := MoveStep("stop etcd again", under(env.Root, in), under(env.Root, forcedOut))
	stopForced.Moves = []agentapi.Move{{From: in, To: forcedOut}}
	stopForced.Detail = "--force-new-cluster must not stay: every start with it would throw the membership away again"
	goneForced := WaitStep("wait until etcd is gone again", "etcd's ports to refuse", steady(allClosed(env.Dialer, s.EtcdAddrs), 5*poll), stop, poll)

	restart := Step{
		Name:   "start etcd without --force-new-cluster",
		Moves:  []agentapi.Move{{To: in}},
		Detail: "the old manifest, with the annotation " + agentapi.RecoveredAnnotation + ": " + s.ID,
		Do: func(context.Context) error {
			src, err := os.ReadFile(under(env.Root, out))
			if err != nil {
				return fmt.Errorf("read etcd's old manifest: %w", err)
			}
			b, err := manifest.SetAnnotation(src, agentapi.RecoveredAnnotation, s.ID)
			if err != nil {
				return err
			}
			return WriteFileNew(under(env.Root, in), b, 0o600)
		},
	}
	again := WaitStep("wait until the member is healthy", "etcd's "+s.MetricsURL+"/health", EtcdHealthy(env.HTTP, s.MetricsURL), healthy, poll)
	return []Step{stopEtcd, gone, check, copyData, forced, alone, stopForced, goneForced, restart, again}
}

// checkSurveyed refuses a data dir that is not the surveyed member's, or
// whose WAL lost committed entries since the survey.
func checkSurveyed(walDir string, s *agentapi.RecoverSpec) error {
	w, err := readWAL(walDir)
	if err != nil {
		return fmt.Errorf("read the WAL: %w", err)
	}
	e := s.Expect
	switch {
	case hexID(w.memberID) != e.MemberID || hexID(w.clusterID) != e.ClusterID:
		return fmt.Errorf("the WAL here is of member %s in cluster %s, the survey read member %s in cluster %s: survey the nodes again", hexID(w.memberID), hexID(w.clusterID), e.MemberID, e.ClusterID)
	case w.Commit < e.WAL.Commit:
		return fmt.Errorf("the WAL's commit index is %d, below the %d the survey read: survey the nodes again", w.Commit, e.WAL.Commit)
	}
	return nil
}

// copyTree copies dir to dst through dst.part: every file and dir
// fsynced, then renamed. A copy there already is kept as it is.
func copyTree(dir, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	part := dst + ".part"
	if err := os.RemoveAll(part); err != nil { // our own unfinished copy
		return err
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		to := filepath.Join(part, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(to, 0o700)
		case d.Type().IsRegular():
			return copyFile(p, to, 0o600)
		}
		return fmt.Errorf("%s is neither a file nor a dir: copy the data by hand", p)
	})
	if err == nil {
		err = osFiles.syncTree(part)
	}
	if err == nil {
		err = os.Rename(part, dst)
	}
	if err == nil {
		err = osFiles.syncDirs(filepath.Dir(dst))
	}
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", dir, dst, err)
	}
	return nil
}

// PlanRecover lists the steps RecoverSteps builds for s, for the plan.
func PlanRecover(spec *agentapi.RecoverSpec) []PlannedStep {
	s := *spec
	_ = s.Validate()
	if s.Expect.WAL == nil {
		s.Expect.WAL = &agentapi.WALState{}
	}
	if s.DataDir == "" {
		s.DataDir = s.Expect.DataDir
	}
	var out []PlannedStep
	for _, st := range RecoverSteps(&s, RecoverEnv{}) {
		out = append(out, PlannedStep{Name: st.Name, Detail: st.Detail, Moves: st.Moves, PointOfNoReturn: st.PointOfNoReturn})
	}
	return out
}
