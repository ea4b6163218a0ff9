package doctor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// checkHashKV compares the members' hashes of their keys at one
// revision: equal raft indexes with diverging data have happened
// (etcd-io/etcd#13766).
func checkHashKV(fs *Facts) []Result {
	if fs.HashErr != nil {
		return []Result{notChecked("", fs.HashErr)}
	}
	groups := map[string][]string{}
	var out []Result
	for _, m := range fs.Members {
		switch {
		case m.HashErr != nil:
			out = append(out, notChecked(m.Name(), m.HashErr))
		case m.Hash == nil:
			out = append(out, notChecked(m.Name(), errOr(m.Err, "no hash")))
		default:
			k := fmt.Sprintf("%08x", m.Hash.Hash)
			if m.Hash.CompactRevision > 0 {
				k += fmt.Sprintf(" (compacted at %d)", m.Hash.CompactRevision)
			}
			groups[k] = append(groups[k], m.Name())
		}
	}
	switch {
	case len(groups) == 1:
		for k, ms := range groups {
			if len(ms) == 1 {
				out = append(out, ok("", "%s hashes to %s at revision %d (no other member to compare with)", ms[0], k, fs.HashRevision))
				continue
			}
			out = append(out, ok("", "%d members hash to %s at revision %d", len(ms), k, fs.HashRevision))
		}
	case len(groups) > 1 && compactRaced(fs):
		// A hash covers the history from the compacted revision on: two
		// members compacted at different revisions (a compaction ran
		// between their hashes, twice) cannot be compared.
		out = append(out, res("", NotChecked, "", "not checked: a compaction ran while the members were hashed at revision %d, twice; run check again", fs.HashRevision))
	case len(groups) > 1:
		var parts []string
		for k, ms := range groups {
			parts = append(parts, fmt.Sprintf("%s: %s", strings.Join(ms, ", "), k))
		}
		sort.Strings(parts)
		out = append(out, res("", Fail, "the members' data differ: take a snapshot from the member that is right, then replace the others (remove, wipe, add back), see etcd's data corruption guide",
			"hashes differ at revision %d: %s", fs.HashRevision, strings.Join(parts, "; ")))
	}
	return out
}

// readyzSince is the first release with /readyz (data_corruption,
// non_learner and read checks).
var readyzSince = version{3, 5, 11, true}

func checkReadyz(fs *Facts) []Result {
	var out []Result
	for _, m := range fs.Members {
		v := parseVersion(memberVersion(m))
		switch {
		case v.ok && v.less(readyzSince.major, readyzSince.minor, readyzSince.patch):
			out = append(out, res(m.Name(), NotChecked, "", "not checked: etcd %s has no /readyz (3.5.11+)", v))
		case m.ReadyErr != nil:
			out = append(out, notChecked(m.Name(), m.ReadyErr))
		case m.Ready == nil:
			out = append(out, notChecked(m.Name(), errOr(m.Err, "not asked")))
		case m.Ready.Code == 200:
			out = append(out, ok(m.Name(), "/readyz: ok"))
		default:
			out = append(out, res(m.Name(), Fail, "read the member's log for the failing check (data_corruption: see etcd's data corruption guide)",
				"/readyz answered %d: %s", m.Ready.Code, failedReadyz(string(m.Ready.Body))))
		}
	}
	return out
}

// failedReadyz keeps the failing lines of a verbose /readyz answer.
func failedReadyz(body string) string {
	var bad []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "[-]") {
			bad = append(bad, strings.TrimPrefix(l, "[-]"))
		}
	}
	if len(bad) == 0 {
		return hint.OneLine(body)
	}
	return strings.Join(bad, "; ")
}

// maxRaftLag is how far a follower's applied index may trail the
// leader's before it is reported.
const maxRaftLag = 1000

func checkRaftLag(fs *Facts) []Result {
	l := fs.leader()
	if l == nil {
		return []Result{res("", Fail, "see performance.has-leader and `kubectl etcd status`", "no member says it is the leader")}
	}
	return perMember(fs, func(m *MemberFacts) Result {
		lag := int64(l.Status.RaftAppliedIndex) - int64(m.Status.RaftAppliedIndex)
		if lag > maxRaftLag {
			return res(m.Name(), Warn, "the member is not keeping up: check its disk (performance.wal-fsync) and network (performance.peer-rtt)",
				"applied index %d, %d behind the leader", m.Status.RaftAppliedIndex, lag)
		}
		return ok(m.Name(), "applied index %d, leader %d", m.Status.RaftAppliedIndex, l.Status.RaftAppliedIndex)
	})
}
