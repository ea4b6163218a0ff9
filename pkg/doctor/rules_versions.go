package doctor

import (
	"fmt"
	"sort"
	"strings"
)

// memberVersion is the version the member reports, else its image tag.
func memberVersion(m *MemberFacts) string {
	if m.Status != nil && m.Status.Version != "" {
		return m.Status.Version
	}
	return m.Pod.Version
}

// perVersion runs f on each member whose version is known.
func perVersion(fs *Facts, f func(m *MemberFacts, v version) Result) []Result {
	var out []Result
	for _, m := range fs.Members {
		v := parseVersion(memberVersion(m))
		if !v.ok {
			out = append(out, notChecked(m.Name(), errOr(m.Err, "the version is unknown: the member does not answer and its image has no version tag")))
			continue
		}
		out = append(out, f(m, v))
	}
	return out
}

// Below these, etcd has known data-inconsistency bugs.
func checkMinimumVersion(fs *Facts) []Result {
	return perVersion(fs, func(m *MemberFacts, v version) Result {
		switch {
		case v.less(3, 4, 0):
			return res(m.Name(), Fail, "upgrade: etcd before 3.4 is no longer supported", "etcd %s", v)
		case v.is(3, 4) && v.less(3, 4, 22):
			return res(m.Name(), Fail, "upgrade to 3.4.22 or later: older 3.4 releases have known data-inconsistency bugs", "etcd %s", v)
		case v.is(3, 5) && v.less(3, 5, 6):
			return res(m.Name(), Fail, "upgrade to 3.5.6 or later (3.5.26+ before any move to 3.6): older 3.5 releases have known data-inconsistency bugs", "etcd %s", v)
		}
		return ok(m.Name(), "etcd %s", v)
	})
}

func checkSameVersion(fs *Facts) []Result {
	seen := map[string][]string{}
	for _, m := range fs.Members {
		if v := memberVersion(m); v != "" {
			seen[v] = append(seen[v], m.Name())
		}
	}
	if len(seen) == 0 {
		return []Result{notChecked("", fmt.Errorf("no member's version is known"))}
	}
	if len(seen) == 1 {
		for v := range seen {
			return []Result{ok("", "every member runs %s", v)}
		}
	}
	var parts []string
	for v, ms := range seen {
		parts = append(parts, fmt.Sprintf("%s on %s", v, strings.Join(ms, ", ")))
	}
	sort.Strings(parts)
	return []Result{res("", Warn, "finish the rolling upgrade (or downgrade): mixed versions are meant only for its duration",
		"members run different versions: %s", strings.Join(parts, "; "))}
}

// checkStorageVersion: 3.6+ reports the storage version, which follows
// the cluster once every member runs the new minor.
func checkStorageVersion(fs *Facts) []Result {
	return perMember(fs, func(m *MemberFacts) Result {
		st := m.Status
		sv, v := parseVersion(st.StorageVersion), parseVersion(st.Version)
		switch {
		case st.StorageVersion == "":
			return ok(m.Name(), "etcd %s does not report a storage version (3.6+ does)", st.Version)
		case sv.ok && v.ok && (sv.major != v.major || sv.minor != v.minor):
			return res(m.Name(), Warn, "the storage version follows once every member runs the same minor version; finish the upgrade and check again",
				"storage version %s behind server version %s", st.StorageVersion, st.Version)
		}
		return ok(m.Name(), "storage version %s", st.StorageVersion)
	})
}

// etcd-io/etcd#20967: a 3.5 cluster before 3.5.26 can bring removed
// members back ("zombie members") when it moves to 3.6.
func checkUpgradeReadiness(fs *Facts) []Result {
	return perVersion(fs, func(m *MemberFacts, v version) Result {
		if v.is(3, 5) && v.less(3, 5, 26) {
			return res(m.Name(), Warn, "upgrade every member to 3.5.26 or later before moving to 3.6: only that path is safe (etcd-io/etcd#20967, zombie members)",
				"etcd %s is not ready for 3.6", v)
		}
		if v.is(3, 5) {
			return ok(m.Name(), "etcd %s can move to 3.6", v)
		}
		return ok(m.Name(), "etcd %s", v)
	})
}

// etcd-io/etcd#19557: 3.5.1 to 3.5.19 do not persist a learner's
// promotion in the v3 store; kubeadm adds members as learners.
//
// etcd-io/etcd#20793: 3.5.20 stops new damage, but a learner added in a
// rolling replacement can copy old damage from the snapshot of a member
// on 3.5.19 or older. 3.5 lists members from the v2 store and 3.6 from
// the v3 store, so it shows only after the move. 3.5.24 closes that
// path (etcd-io/etcd#20797); on 3.5.20-3.5.23 the maintainers' remedy
// is restarting every member before the move, which re-registers each
// and rewrites its entry (etcd blog, 2025-10-21, "Follow Up -
// Preventing Upgrade Failures from etcd v3.5 to v3.6").
func checkLearnerBug(fs *Facts) []Result {
	return perVersion(fs, func(m *MemberFacts, v version) Result {
		switch {
		case v.is(3, 5) && !v.less(3, 5, 1) && v.less(3, 5, 20):
			return res(m.Name(), Warn, "upgrade to 3.5.26 or later: members promoted from learner on this version can come back as learners after a move to 3.6 (etcd-io/etcd#19557)",
				"etcd %s has the learner-promotion bug", v)
		case v.is(3, 5) && !v.less(3, 5, 20) && v.less(3, 5, 24):
			return ok(m.Name(), "etcd %s prevents new etcd-io/etcd#19557 damage; damage from 3.5.19 or older can remain in the v3 store, unseen in the member list, "+
				"until every member restarts: before moving to 3.6, restart them all, or upgrade to 3.5.26+ as versions.upgrade-readiness asks (etcd-io/etcd#20793)", v)
		}
		if v.is(3, 5) && !v.less(3, 5, 24) {
			return ok(m.Name(), "etcd %s has the fixes for etcd-io/etcd#19557 and etcd-io/etcd#20793", v)
		}
		return ok(m.Name(), "etcd %s is not affected by etcd-io/etcd#19557", v)
	})
}
