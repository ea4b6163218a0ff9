package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/manifest"
)

// ReplaceEnv is how a replace's steps reach the node and the cluster.
type ReplaceEnv struct {
	Root   string
	Dialer Dialer
	HTTP   HTTPDoer
	// Members changes the membership through the other members; nil in a
	// plan, where nothing runs.
	Members Members
}

// refuseUnfinishedAny refuses an operation beside another that is not
// over on this node, of any kind: a restore and a replace move the same
// manifest.
func refuseUnfinishedAny(root, journalDir, id string) error {
	base := path.Dir(path.Dir(journalDir))
	for _, op := range []string{agentapi.RestoreOperation, agentapi.ReplaceOperation, agentapi.RecoverOperation} {
		all, err := agentapi.LoadJournals(under(root, path.Join(base, op)))
		if err != nil {
			return fmt.Errorf("%w: a new operation starts only once every journal on the node is readable", err)
		}
		for _, j := range all {
			if j.ID != id && j.Unfinished() {
				return agentapi.UnfinishedError(j)
			}
		}
	}
	return nil
}

// PrepareReplace reads the node before anything stops: it checks the spec
// against etcd's manifest and fills what the steps need from it. It
// changes nothing.
func PrepareReplace(root string, s *agentapi.ReplaceSpec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	src, m, err := memberOp{op: "replace", id: s.ID, journalDir: s.JournalDir, staticPodDir: s.StaticPodDir, member: s.Member,
		again: "plan the replace again", walDir: "a replace moves the data dir's member/ aside and would leave that WAL behind"}.prepare(root)
	if err != nil {
		return err
	}
	if len(m.InitialAdvertisePeerURLs) == 0 {
		return fmt.Errorf("etcd's manifest has no --initial-advertise-peer-urls: the new member joins with the old one's peer URL, which kubeadm sets there")
	}
	s.DataDir, s.PeerURLs = path.Clean(m.DataDir), m.InitialAdvertisePeerURLs
	if s.EtcdAddrs, s.MetricsURL, err = etcdAddrs(m); err != nil {
		return err
	}
	if len(m.ListenClientURLs) > 0 {
		a, _ := dialAddr(m.ListenClientURLs[0])
		s.ClientURL = "https://" + a
	}
	for flag, dst := range map[string]*string{"cert-file": &s.CertFile, "key-file": &s.KeyFile, "trusted-ca-file": &s.CAFile} {
		v, ok, err := manifest.Flag(src, flag)
		if err != nil {
			return fmt.Errorf("etcd's manifest: %w", err)
		}
		if !ok || !path.IsAbs(v) {
			return fmt.Errorf("etcd's manifest has no absolute --%s, etcd's client TLS, with which the agent asks the other members to change the membership", flag)
		}
		*dst = path.Clean(v)
	}
	if b, err := manifest.SetFlags(src, map[string]string{"initial-cluster-state": "existing"}); err != nil {
		return fmt.Errorf("etcd's manifest cannot be rewritten for the new member: %w", err)
	} else if _, err := manifest.SetAnnotation(b, agentapi.ReplacedAnnotation, s.ID); err != nil {
		return fmt.Errorf("etcd's manifest cannot be rewritten for the new member: %w", err)
	}
	return s.Validate()
}

// ReplaceSteps lists one member's replace, the procedure of Kubernetes'
// etcd guide: stop it, move its data aside, take its old ID out of the
// cluster and add it back as a learner (the point of no return: the old
// data then belongs to a removed member), start it with
// --initial-cluster-state=existing, promote it once it has caught up.
func ReplaceSteps(s *agentapi.ReplaceSpec, env ReplaceEnv) []Step {
	j, static := s.JournalDir, s.StaticPodDir
	in := path.Join(static, agentapi.EtcdManifest)
	out := path.Join(j, "manifests", agentapi.EtcdManifest)
	stop, poll := time.Duration(s.StopTimeout), time.Duration(s.PollInterval)

	stopEtcd := MoveStep("stop etcd", under(env.Root, in), under(env.Root, out))
	stopEtcd.Moves = []agentapi.Move{{From: in, To: out}}
	stopEtcd.Detail = "its manifest leaves the static pod dir; the kubelet stops it, crash-looping or not"
	gone := WaitStep("wait until etcd is gone", "etcd's ports to refuse", steady(allClosed(env.Dialer, s.EtcdAddrs), 5*poll), stop, poll)
	gone.Detail = "its client, peer and metrics ports refuse, for a while: a crash-looping etcd refuses between its restarts"

	member := path.Join(s.DataDir, "member")
	aside := agentapi.AsideDataDir(s.DataDir, s.ID)
	moveData := Step{
		Name:   "move the old data aside",
		Moves:  []agentapi.Move{{From: member, To: aside}},
		Detail: "kept, never deleted; nothing there (a disk that died) is fine",
		Do: func(context.Context) error {
			if _, err := os.Lstat(under(env.Root, member)); errors.Is(err, os.ErrNotExist) {
				return nil // no data to keep, or moved already
			}
			return MoveAside(under(env.Root, member), under(env.Root, aside))
		},
		Undo: func(context.Context) error {
			if _, err := os.Lstat(under(env.Root, aside)); errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return MoveAside(under(env.Root, aside), under(env.Root, member))
		},
	}

	swapID := Step{
		Name:            agentapi.StepReplaceMember,
		PointOfNoReturn: true,
		Detail:          replaceDetail(s),
		Do: func(ctx context.Context) error {
			return replaceMember(ctx, env.Members, s, under(env.Root, path.Join(j, swapBegun)))
		},
	}

	manifestPath := under(env.Root, path.Join(j, agentapi.ReplacedManifest))
	start := WriteStep("start etcd as the new member", under(env.Root, in), under(env.Root, path.Join(j, "undone", agentapi.EtcdManifest)), nil, false)
	start.Moves = []agentapi.Move{{To: in}}
	start.Detail = "the old manifest with the current --initial-cluster, --initial-cluster-state=existing and the annotation " + agentapi.ReplacedAnnotation + ": " + s.ID
	start.Do = func(ctx context.Context) error {
		b, err := os.ReadFile(manifestPath)
		if errors.Is(err, os.ErrNotExist) {
			if b, err = joinedManifest(ctx, env, s, out); err == nil {
				err = WriteFileAtomic(manifestPath, b, 0o600)
			}
		}
		if err != nil {
			return err
		}
		return WriteFileNew(under(env.Root, in), b, 0o600)
	}

	promote := Step{
		Name:   agentapi.StepPromote,
		Detail: "etcd promotes a learner only once it is in sync with the leader; at most " + time.Duration(s.HealthyTimeout).String(),
		Do: func(ctx context.Context) error {
			return promoteWhenReady(ctx, env.Members, s, time.Duration(s.HealthyTimeout), poll)
		},
	}
	healthy := WaitStep("wait until the member is healthy", "etcd's "+s.MetricsURL+"/health", EtcdHealthy(env.HTTP, s.MetricsURL), time.Duration(s.HealthyTimeout), poll)
	return []Step{stopEtcd, gone, moveData, swapID, start, promote, healthy}
}

func replaceDetail(s *agentapi.ReplaceSpec) string {
	if s.OldID == "" {
		return "member " + s.Member + ", no longer in the cluster, joins it again as a learner with its name and peer URL and a new ID; from here the old data belongs to a removed member, so there is no way back to it: a failure is resumed"
	}
	return "member " + s.Member + " (" + s.OldID + ") leaves the cluster and comes back as a learner with the same name and peer URL and a new ID; from here the old data belongs to a removed member, so there is no way back to it: a failure is resumed"
}

// ourMember finds the member with one of the spec's peer URLs.
func ourMember(ms []GWMember, s *agentapi.ReplaceSpec) *GWMember {
	for i, m := range ms {
		for _, u := range m.PeerURLs {
			for _, p := range s.PeerURLs {
				if sameURL(u, p) {
					return &ms[i]
				}
			}
		}
	}
	return nil
}

func sameURL(a, b string) bool {
	ua, ea := url.Parse(a)
	ub, eb := url.Parse(b)
	return ea == nil && eb == nil && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

// swapBegun, in the journal dir, says that the member swap has asked etcd
// to remove the old ID: from then on a failure of the swap holds, never
// rolls back, since the old data may belong to a removed member.
const swapBegun = "swap-begun"

// replaceMember removes the old ID and adds a learner at the peer URL.
// Run again it finds what it did: a member at the peer URL with another
// ID than the old one is the new member.
func replaceMember(ctx context.Context, ms Members, s *agentapi.ReplaceSpec, marker string) error {
	err := swapMember(ctx, ms, s, marker)
	if err != nil && !errors.Is(err, ErrHold) {
		if _, serr := os.Lstat(marker); serr == nil {
			// The old ID may be gone: its data belongs to a removed
			// member, and a rollback would start etcd on it. Hold; a
			// resume adds the learner.
			return fmt.Errorf("%w (%w)", err, ErrHold)
		}
	}
	return err
}

func swapMember(ctx context.Context, ms Members, s *agentapi.ReplaceSpec, marker string) error {
	list, err := ms.List(ctx)
	if err != nil {
		return fmt.Errorf("list the members: %w", err)
	}
	cur := ourMember(list, s)
	if cur != nil && (s.OldID == "" || hexID(cur.ID) != s.OldID) {
		return nil // added already
	}
	for _, m := range list {
		if s.OldID != "" && hexID(m.ID) == s.OldID && (cur == nil || cur.ID != m.ID) {
			// Adding a learner would leave the old voter in the quorum.
			return fmt.Errorf("member %s (%s) has the peer URLs %s, not this node's %s (--initial-advertise-peer-urls in etcd's manifest): nothing was changed; replace it by hand", m.Name, s.OldID, strings.Join(m.PeerURLs, ","), strings.Join(s.PeerURLs, ","))
		}
	}
	// From the first change on, a failure holds (replaceMember).
	if err := WriteFileAtomic(marker, []byte(s.OldID+"\n"), 0o600); err != nil && !errors.Is(err, ErrNotDurable) {
		return err
	}
	if cur != nil {
		if err := retryUnhealthy(ctx, time.Minute, func() error { return ms.Remove(ctx, cur.ID) }); err != nil {
			return fmt.Errorf("remove member %s (%s): %w", s.Member, s.OldID, err)
		}
	}
	return addLearner(ctx, ms, s)
}

func addLearner(ctx context.Context, ms Members, s *agentapi.ReplaceSpec) error {
	err := retryUnhealthy(ctx, 2*time.Minute, func() error {
		_, err := ms.AddLearner(ctx, s.PeerURLs)
		return err
	})
	if err != nil {
		return fmt.Errorf("add %s back as a learner at %s: %w", s.Member, strings.Join(s.PeerURLs, ","), err)
	}
	return nil
}

// steady holds once cond has held for at least d without a break.
func steady(cond Condition, d time.Duration) Condition {
	var since time.Time
	return func(ctx context.Context) error {
		if err := cond(ctx); err != nil {
			since = time.Time{}
			return err
		}
		if since.IsZero() {
			since = time.Now()
		}
		if held := time.Since(since); held < d {
			return fmt.Errorf("it has held for %s of %s", held.Round(time.Millisecond), d)
		}
		return nil
	}
}

// joinedManifest is the old manifest (moved aside to out) with the
// cluster's current members as --initial-cluster, the new one under its
// name, --initial-cluster-state=existing and the replace's annotation.
func joinedManifest(ctx context.Context, env ReplaceEnv, s *agentapi.ReplaceSpec, out string) ([]byte, error) {
	src, err := os.ReadFile(under(env.Root, out))
	if err != nil {
		return nil, fmt.Errorf("read etcd's old manifest: %w", err)
	}
	list, err := env.Members.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the members: %w", err)
	}
	if ourMember(list, s) == nil {
		// Removed since it was added (by hand?): past the point of no
		// return, adding it again is the way on.
		if err := addLearner(ctx, env.Members, s); err != nil {
			return nil, err
		}
		if list, err = env.Members.List(ctx); err != nil {
			return nil, fmt.Errorf("list the members: %w", err)
		}
	}
	var ic []string
	for _, m := range list {
		name := m.Name
		if ourMember([]GWMember{m}, s) != nil {
			name = s.Member
		}
		if name == "" {
			return nil, fmt.Errorf("member %s has not started yet, so it has no name for --initial-cluster: start it, or remove it, then resume", hexID(m.ID))
		}
		for _, u := range m.PeerURLs {
			ic = append(ic, name+"="+u)
		}
	}
	joined, err := manifest.SetFlags(src, map[string]string{"initial-cluster": strings.Join(ic, ","), "initial-cluster-state": "existing"})
	if err != nil {
		return nil, err
	}
	// A manifest that changed gives the pod a new UID: the kubelet starts
	// it afresh, not after the crash-loop back-off of the old member's pod
	// (up to 5 minutes), and updates its mirror pod.
	return manifest.SetAnnotation(joined, agentapi.ReplacedAnnotation, s.ID)
}

// promoteWhenReady promotes the learner at the spec's peer URL, retrying
// while etcd says it is not in sync yet.
func promoteWhenReady(ctx context.Context, ms Members, s *agentapi.ReplaceSpec, timeout, poll time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		list, err := ms.List(ctx)
		var last error
		if err == nil {
			cur := ourMember(list, s)
			switch {
			case cur == nil:
				return fmt.Errorf("no member has the peer URL %s any more: it was removed since it was added", strings.Join(s.PeerURLs, ","))
			case !cur.IsLearner:
				return nil
			}
			last = ms.Promote(ctx, cur.ID)
			if last == nil {
				return nil
			}
			if st, serr := ms.Status(ctx, s.ClientURL); serr == nil {
				last = fmt.Errorf("%w (learner at raft index %d)", last, st.RaftIndex)
			}
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the learner was not promoted within %s: %w; see its log (crictl logs on the node), then resume", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// PlanReplace lists the steps ReplaceSteps builds for s, for the plan.
func PlanReplace(spec *agentapi.ReplaceSpec) []PlannedStep {
	s := *spec
	_ = s.Validate()
	var out []PlannedStep
	for _, st := range ReplaceSteps(&s, ReplaceEnv{}) {
		out = append(out, PlannedStep{Name: st.Name, Detail: st.Detail, Moves: st.Moves, PointOfNoReturn: st.PointOfNoReturn})
	}
	return out
}

// memberOp is what preparing a replace and a recovery share: op's own
// words, and where its journal and etcd's manifest are.
type memberOp struct {
	op, id, journalDir, staticPodDir, member string
	// again is what to do when the node runs another member; walDir why
	// a WAL dir of etcd's own is refused.
	again, walDir string
}

// prepare checks that no journal of the op's id is there yet and no
// other operation is unfinished on the node, then reads etcd's manifest,
// which must run the op's member with no WAL dir of its own.
func (p memberOp) prepare(root string) ([]byte, *manifest.Member, error) {
	if _, err := os.Lstat(under(root, path.Join(p.journalDir, agentapi.JournalFile))); err == nil {
		return nil, nil, fmt.Errorf("%s %s already has a journal in %s: resume it; a second %s never starts on top", p.op, p.id, p.journalDir, p.op)
	}
	if err := refuseUnfinishedAny(root, p.journalDir, p.id); err != nil {
		return nil, nil, err
	}
	src, err := os.ReadFile(under(root, path.Join(p.staticPodDir, agentapi.EtcdManifest)))
	if err != nil {
		return nil, nil, fmt.Errorf("read etcd's manifest: %w: is %s the kubelet's static pod dir? A %s needs etcd's manifest where the kubelet runs it; put it back there (it may be crash-looping), then retry", err, p.staticPodDir, p.op)
	}
	m, err := manifest.ReadMember(src)
	if err != nil {
		return nil, nil, err
	}
	if m.Name != p.member {
		return nil, nil, fmt.Errorf("etcd's manifest on this node runs member %q, the plan expects %q: %s", m.Name, p.member, p.again)
	}
	if m.WALDir != "" {
		return nil, nil, fmt.Errorf("etcd's manifest sets a WAL dir of its own (%s): %s; remove --wal-dir (kubeadm does not set it), or %s by hand", m.WALDir, p.walDir, p.op)
	}
	return src, m, nil
}
