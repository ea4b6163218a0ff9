package restore

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// semver is major.minor.patch of an etcd image tag.
type semver [3]int

func parseVersion(v string) (semver, bool) {
	var s semver
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) != 3 {
		return s, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.SplitN(p, "-", 2)[0])
		if err != nil {
			return s, false
		}
		s[i] = n
	}
	return s, true
}

func (s semver) less(o semver) bool {
	for i := range s {
		if s[i] != o[i] {
			return s[i] < o[i]
		}
	}
	return false
}

// bumpSince is the first release whose `snapshot restore` has
// --bump-revision and --mark-compacted: etcdctl v3.5.10 (etcd commit
// 4425ef572), and etcdutl in every 3.6 and 3.7 release.
var bumpSince = semver{3, 5, 10}

// restoreTool picks the binary in the member's own image: etcdutl from
// 3.6, whose etcdctl has no `snapshot restore`; etcdctl on 3.5, whose image
// has no etcdutl.
func restoreTool(m discovery.Member, bump bool) (string, error) {
	v, ok := parseVersion(m.Version)
	switch {
	case !ok:
		return "", fmt.Errorf("cannot tell the etcd version of member %s from its image %q: restore runs that image's own tools and needs a tag such as 3.5.35-0", m.Name, m.Image)
	case v.less(semver{3, 5, 0}):
		return "", fmt.Errorf("member %s runs etcd %s; restore supports 3.5 and later: upgrade etcd first", m.Name, m.Version)
	case bump && v.less(bumpSince):
		return "", fmt.Errorf("member %s runs etcd %s, whose snapshot restore cannot bump the revision (3.5.10+ can), so watch caches would see revisions go back: upgrade etcd, or pass --no-bump-revision and restart every kubelet afterwards", m.Name, m.Version)
	case v.less(semver{3, 6, 0}):
		return "etcdctl", nil
	}
	return "etcdutl", nil
}

// checkStorageVersion refuses a snapshot whose storage version (the etcd
// that wrote it, major.minor) is newer than the member's etcd: etcd does
// not start on data of a newer version, and that would show only after
// the point of no return, on every node (S3).
func checkStorageVersion(storage string, m discovery.Member) error {
	sv, ok := parseVersion(storage)
	if !ok {
		return nil // 3.4's snapshots carry none; unknown is not newer
	}
	mv, ok := parseVersion(m.Version)
	if !ok {
		return nil // restoreTool has said why, or script mode reads it on the node
	}
	if mv.less(semver{sv[0], sv[1], 0}) {
		return hint.Permanent(fmt.Errorf("the snapshot was written by etcd %d.%d (its storage version %s), newer than etcd %s of member %s, which would not start on it: nothing was changed", sv[0], sv[1], storage, m.Version, m.Name),
			"restore it on a cluster running etcd %d.%d or later (upgrade etcd first), or restore an older snapshot", sv[0], sv[1])
	}
	return nil
}

// chooseBump follows OpenShift's cluster restore (cluster-etcd-operator,
// bindata/etcd/restore-pod.yaml): bump by the last live raft index plus
// 20%, or by 1e9 when nothing live is known. It also covers a live revision
// far above the raft index, as after an earlier bumped restore.
func chooseBump(snapRev int64, live Live, off bool) (int64, string) {
	if off {
		return 0, "no bump (--no-bump-revision): revisions restart at the snapshot's, below what watchers saw; restart every kubelet after the restore"
	}
	basis, what := live.MaxRaftIndex, "the live cluster's highest raft index"
	if gap := live.Revision - snapRev; gap > basis {
		basis, what = gap, "the live revision's lead over the snapshot"
	}
	if basis <= 0 {
		return FallbackBump, "no live revision is known, so 1,000,000,000 as OpenShift's restore does (an etcd at 1000 writes/s for about eleven days)"
	}
	if basis/5 < BumpFloor {
		bump := basis + BumpFloor
		return bump, fmt.Sprintf("%d, %s (%d) plus %d for the writes until etcd stops (20%%, as OpenShift's restore adds, is less), so the restored revision (%d) is above any revision a watcher saw",
			bump, what, basis, BumpFloor, snapRev+bump)
	}
	bump := basis + basis/5
	return bump, fmt.Sprintf("%d, %s (%d) plus 20%% as OpenShift's restore does, so the restored revision (%d) is above any revision a watcher saw", bump, what, basis, snapRev+bump)
}

// BumpFloor is the least margin over the live basis: the cluster takes
// writes between the plan and the moment its etcd stops (a human reading
// the plan, the uploads, the restore pods). A million covers a cluster at
// 1000 writes/s for about 17 minutes; a margin of 20% alone is small for a
// young cluster, or right after an earlier restore, when the raft index
// starts again near 0. The basis is read again before anything changes
// (recheckBump), and a restore whose margin was overtaken stops there.
const BumpFloor = 1_000_000

// recheckBump reads the live cluster again right before the data is
// restored: if it took more writes since the plan than the bump leaves
// room for, the restored revisions could fall below ones a watcher saw,
// and the restore stops with nothing changed.
func recheckBump(p *Plan, live Live) error {
	if p.Bump == 0 {
		return nil // --no-bump-revision: the user chose to restart every kubelet
	}
	need, what := live.MaxRaftIndex, "raft index"
	if gap := live.Revision - p.Snapshot.Revision; gap > need {
		need, what = gap, "revision's lead over the snapshot"
	}
	if need >= p.Bump {
		return hint.Permanent(fmt.Errorf("the live cluster's %s is %d now, above the planned revision bump %d: it took more writes since the plan than the bump leaves room for, so nothing was changed", what, need, p.Bump),
			"run the restore again: its plan reads the cluster anew")
	}
	return nil
}

// checkSnapshot refuses a snapshot of another cluster unless forced.
func (p *Plan) checkSnapshot(ms []discovery.Member, live Live, force bool) error {
	meta := p.Snapshot.Meta
	if meta == nil {
		p.Warnings = append(p.Warnings, "no FILE.json beside the snapshot: it cannot be checked to belong to this cluster")
		return nil
	}
	if meta.Revision != 0 && meta.Revision != p.Snapshot.Revision {
		return fmt.Errorf("the snapshot holds revision %d but its FILE.json says %d: the two files do not belong together; pass the right FILE.json or remove it", p.Snapshot.Revision, meta.Revision)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	want := append([]string{}, meta.MemberNames...)
	sort.Strings(want)
	var diffs []string
	if live.ClusterID != "" && meta.ClusterID != "" && live.ClusterID != meta.ClusterID {
		diffs = append(diffs, fmt.Sprintf("cluster ID %s, but this cluster's is %s", meta.ClusterID, live.ClusterID))
	}
	if len(want) > 0 && strings.Join(want, ",") != strings.Join(names, ",") {
		diffs = append(diffs, fmt.Sprintf("members %s, but this cluster's are %s", strings.Join(want, ","), strings.Join(names, ",")))
	}
	if len(diffs) == 0 {
		return nil
	}
	msg := "the snapshot was taken from " + strings.Join(diffs, ", and ")
	if !force {
		return fmt.Errorf("%s: if this control plane was rebuilt and you mean to restore it here, pass --force", msg)
	}
	p.Warnings = append(p.Warnings, msg+" (--force: the member flags come from the pods running now)")
	return nil
}
