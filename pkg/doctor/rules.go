package doctor

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// rule is one check: it judges the facts and returns its findings,
// one per member or one for the cluster.
type rule struct {
	id  string
	run func(f *Facts) []Result
}

// rules are every check, in report order within each area.
var rules = []rule{
	{"topology.member-count", checkMemberCount},
	{"topology.reachable", checkReachable},
	{"topology.learners", checkLearners},
	{"topology.one-per-node", checkOnePerNode},
	{"topology.pods-and-members", checkPodsAndMembers},
	{"versions.minimum", checkMinimumVersion},
	{"versions.same", checkSameVersion},
	{"versions.storage", checkStorageVersion},
	{"versions.upgrade-readiness", checkUpgradeReadiness},
	{"versions.learner-bug", checkLearnerBug},
	{"consistency.hashkv", checkHashKV},
	{"consistency.readyz", checkReadyz},
	{"consistency.raft-lag", checkRaftLag},
	{"security.client-tls", checkClientTLS},
	{"security.peer-tls", checkPeerTLS},
	{"security.metrics-url", checkMetricsURL},
	{"security.cert-expiry", checkCertExpiry},
	{"security.data-dir", checkDataDir},
	{"security.encryption", checkEncryption},
	{"capacity.quota", checkQuota},
	{"capacity.fragmentation", checkFragmentation},
	{"capacity.alarms", checkAlarms},
	{"capacity.compaction", checkCompaction},
	{"performance.has-leader", checkHasLeader},
	{"performance.wal-fsync", checkWALFsync},
	{"performance.backend-commit", checkBackendCommit},
	{"performance.leader-changes", checkLeaderChanges},
	{"performance.slow-applies", checkSlowApplies},
	{"performance.peer-rtt", checkPeerRTT},
	{"performance.proposals", checkProposals},
	{"backups.schedules", checkSchedules},
	{"backups.newest", checkBackupAge},
	{"backups.verify", checkBackupVerify},
}

// Checks are the IDs of every check, for --only and --skip.
var Checks = func() []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.id
	}
	return out
}()

// Evaluate runs the selected rules on the facts.
func Evaluate(f *Facts, sel Selection) *Report {
	rep := &Report{Results: []Result{}}
	if f.ClusterID != 0 {
		rep.ClusterID = fmt.Sprintf("%x", f.ClusterID)
	}
	for _, r := range rules {
		if !sel.wants(r.id) {
			continue
		}
		area, check, _ := strings.Cut(r.id, ".")
		for _, x := range r.run(f) {
			x.Area, x.Check = area, check
			rep.Results = append(rep.Results, x)
		}
	}
	rep.finish()
	return rep
}

// res builds a result; the rule's ID is filled in by Evaluate.
func res(member string, s Severity, fix, format string, args ...any) Result {
	r := Result{Member: member, Severity: s, Found: fmt.Sprintf(format, args...)}
	if s != OK {
		r.Fix = fix
	}
	return r
}

func ok(member, format string, args ...any) Result { return res(member, OK, "", format, args...) }

func notChecked(member string, why error) Result {
	return res(member, NotChecked, "", "not checked: %s", hint.OneLine(why.Error()))
}

// perMember runs f on each member whose status was read; the others
// are reported as not checked.
func perMember(fs *Facts, f func(m *MemberFacts) Result) []Result {
	var out []Result
	for _, m := range fs.Members {
		if m.Err != nil || m.Status == nil {
			out = append(out, notChecked(m.Name(), errOr(m.Err, "no status")))
			continue
		}
		out = append(out, f(m))
	}
	return out
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%s", msg)
}

// version is a parsed etcd version; ok is false for "" or a non-release.
type version struct {
	major, minor, patch int
	ok                  bool
}

func parseVersion(s string) version {
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return version{}
	}
	var n [3]int
	for i := 0; i < len(parts) && i < 3; i++ {
		v, err := strconv.Atoi(parts[i])
		if err != nil {
			return version{}
		}
		n[i] = v
	}
	return version{n[0], n[1], n[2], true}
}

func (v version) less(major, minor, patch int) bool {
	if v.major != major {
		return v.major < major
	}
	if v.minor != minor {
		return v.minor < minor
	}
	return v.patch < patch
}

func (v version) is(major, minor int) bool { return v.major == major && v.minor == minor }

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }
