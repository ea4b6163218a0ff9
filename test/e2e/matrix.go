package e2e

// The matrix: which scenario runs on which pair of flavour and topology.
// It is the one place that says so: every test looks itself up here first
// (scenario), each e2e run prints it (PrintMatrix), a unit test checks that
// every Test function is in it and that each family covers every flavour
// and topology, and hack/testreport checks after a whole run that every
// scenario passed on at least one pair.
//
// E2E_MATRIX=pairwise (the default, CI's) runs the diagonal, 1.33 on 1
// node and 1.37 on 3 nodes. Every read-only scenario runs on both pairs.
// A scenario that restarts etcd or replaces the cluster's data costs one
// to four minutes a pair, so each of those runs on one pair of the
// diagonal (its Pair), chosen so that every family still covers both
// flavours and both topologies; CheckMatrix holds that rule. The smoke
// scenarios also run on a pair off the diagonal when hack/test.sh is told
// to run one (E2E_PAIRS). E2E_MATRIX=full: every scenario on every pair it
// can run on, the four pairs (run it before resolving work on transports,
// discovery, restore or the agent).

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Family groups scenarios by what they do to the cluster.
type Family string

const (
	ReadOnly Family = "read-only" // reads, or writes its own objects and removes them
	Manifest Family = "manifest"  // edits an etcd manifest or its certificates: etcd restarts
	Fault    Family = "fault"     // stops or freezes a member, a kubelet or a database
	Restore  Family = "restore"   // replaces the cluster's data
)

// Scenario is one e2e test and where it runs.
type Scenario struct {
	Name     string // the Go test, or Test/subtest
	Family   Family
	MinNodes int    // 3 for scenarios that need a quorum with one member gone
	MaxNodes int    // 1 for scenarios of a single member (0: any)
	Smoke    bool   // also on the pairs off the diagonal
	Pair     string // under pairwise, only this pair of the diagonal ("": both)
}

// The pairs, "flavour/nodes".
var (
	Diagonal    = []string{"1.33/1", "1.37/3"}
	OffDiagonal = []string{"1.33/3", "1.37/1"}
)

// Scenarios is the table. Order is informative only: Go runs a package's
// tests in file order, destructive files last.
var Scenarios = []Scenario{
	{Name: "TestBackupInspectVerify", Family: ReadOnly, Smoke: true},
	{Name: "TestBackupEncryptedAndStdout", Family: ReadOnly},
	{Name: "TestCtrlC", Family: ReadOnly},
	{Name: "TestCheckClean", Family: ReadOnly},
	{Name: "TestCheckPeerCertNearExpiry", Family: Manifest},
	{Name: "TestCheckEncryptionAtRest", Family: Manifest, Pair: "1.33/1"},
	{Name: "TestRestoreBundleBringsBackKeys", Family: Restore, Pair: "1.33/1"},
	{Name: "TestMetricsMatchesRawScrape", Family: ReadOnly},
	{Name: "TestPluginIsDiscoveredByKubectl", Family: ReadOnly, Smoke: true},
	{Name: "TestMembers", Family: ReadOnly, Smoke: true},
	{Name: "TestHealth", Family: ReadOnly, Smoke: true},
	{Name: "TestStatus", Family: ReadOnly, Smoke: true},
	{Name: "TestClearErrors", Family: ReadOnly},
	{Name: "TestRBACDenied", Family: ReadOnly},
	{Name: "TestCtl", Family: ReadOnly},
	{Name: "TestGetDecodes", Family: ReadOnly},
	{Name: "TestGetEveryBuiltInKind", Family: ReadOnly, Pair: "1.37/3"}, // 52 kinds, a minute: the newest API
	{Name: "TestSnapshotExportBringsBackNamespace", Family: ReadOnly},
	{Name: "TestConcurrentBackupsOneFile", Family: ReadOnly},
	{Name: "TestInspectEncryptedLeavesNoPlaintext", Family: ReadOnly},
	{Name: "TestBackupBundle", Family: ReadOnly},
	{Name: "TestBackupViaNode", Family: ReadOnly},
	{Name: "TestSignalsLeaveNoPod", Family: ReadOnly},
	{Name: "TestHelperNamespaceRestricted", Family: ReadOnly},
	{Name: "TestPortForwardBackupOneHelperPod", Family: ReadOnly},
	// Installs a schedule in a namespace of its own and removes it; on
	// three nodes its job may run on a node other than the S3 server's.
	{Name: "TestScheduleToS3", Family: ReadOnly, MinNodes: 1},
	{Name: "TestFrozenMember", Family: Fault, MinNodes: 3},
	{Name: "TestNotReadyNode", Family: Fault, Pair: "1.33/1"},
	{Name: "TestMaintenance", Family: ReadOnly},
	{Name: "TestUsage", Family: ReadOnly},
	{Name: "TestMemberDown", Family: Fault, MinNodes: 3, Smoke: true},
	{Name: "TestMemberRemoveThenAddBack", Family: Fault, MinNodes: 3},
	{Name: "TestCopyDB", Family: Fault, MinNodes: 3},
	{Name: "TestMemberReplace", Family: Fault, MinNodes: 3},
	{Name: "TestMemberReplaceLoadBalancedKubelet", Family: Fault, MinNodes: 3},
	{Name: "TestMemberReplaceSurvivesKilledPlugin", Family: Fault, MinNodes: 3},
	{Name: "TestRecoverAfterQuorumLoss", Family: Fault, MinNodes: 3},
	// One etcd restart for both: the manifest edits are made together.
	{Name: "TestManifestEdited/insecure-flag", Family: Manifest, Pair: "1.33/1"},
	{Name: "TestManifestEdited/quota-nospace-recovery", Family: Manifest, Pair: "1.33/1"},
	// A quorum lost is two members of three on 1.37; 1.33's etcd 3.5
	// restores with etcdctl (its image has no etcdutl) in the rollback's
	// restore, with the summary checked.
	{Name: "TestRestoreScriptsAfterQuorumLoss", Family: Restore, Pair: "1.37/3"},
	{Name: "TestRestoreRefusals", Family: Restore, Smoke: true},
	{Name: "TestRestoreThenRollback", Family: Restore, Pair: "1.33/1"},
	{Name: "TestRestoreRollsBackByItself", Family: Restore, MaxNodes: 1, Pair: "1.33/1"}, // a single member rolls back by itself
	{Name: "TestRestoreSurvivesKilledPlugin", Family: Restore, Pair: "1.37/3"},
	{Name: "TestRestoreFromSchedule", Family: Restore, Pair: "1.37/3"},
}

// Lookup finds a scenario by its test name.
func Lookup(name string) (Scenario, bool) {
	for _, s := range Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Pairs lists the pairs the scenario runs on under matrix ("pairwise" or
// "full").
func (s Scenario) Pairs(matrix string) []string {
	var out []string
	for _, p := range append(append([]string{}, Diagonal...), OffDiagonal...) {
		if s.RunsOn(p, matrix) {
			out = append(out, p)
		}
	}
	return out
}

// RunsOn says whether the scenario runs on pair under matrix.
func (s Scenario) RunsOn(pair, matrix string) bool {
	var n int
	if _, after, ok := strings.Cut(pair, "/"); ok {
		fmt.Sscan(after, &n)
	}
	if n < s.MinNodes || s.MaxNodes > 0 && n > s.MaxNodes {
		return false
	}
	if matrix == "full" {
		return true
	}
	for _, d := range Diagonal {
		if d == pair {
			return s.Pair == "" || s.Pair == pair
		}
	}
	return s.Smoke
}

// CheckMatrix is the table's own rules: known families, unique names, a
// Pair on the diagonal, and every family on each flavour and each topology
// of the diagonal (what CI runs) in the pairwise matrix.
func CheckMatrix() []string { return checkMatrix(Scenarios) }

func checkMatrix(table []Scenario) []string {
	var bad []string
	seen := map[string]bool{}
	cover := map[Family]map[string]bool{}
	for _, s := range table {
		if seen[s.Name] {
			bad = append(bad, "duplicate scenario "+s.Name)
		}
		seen[s.Name] = true
		switch s.Family {
		case ReadOnly, Manifest, Fault, Restore:
		default:
			bad = append(bad, fmt.Sprintf("%s: unknown family %q", s.Name, s.Family))
		}
		if s.Pair != "" && s.Pair != Diagonal[0] && s.Pair != Diagonal[1] {
			bad = append(bad, fmt.Sprintf("%s: Pair %s is not on the diagonal %v", s.Name, s.Pair, Diagonal))
		}
		var pairs []string
		for _, p := range Diagonal {
			if s.RunsOn(p, "pairwise") {
				pairs = append(pairs, p)
			}
		}
		if len(pairs) == 0 {
			bad = append(bad, s.Name+" runs nowhere on the diagonal")
		}
		if cover[s.Family] == nil {
			cover[s.Family] = map[string]bool{}
		}
		for _, p := range pairs {
			f, n, _ := strings.Cut(p, "/")
			cover[s.Family]["flavour "+f] = true
			cover[s.Family]["topology "+n] = true
		}
	}
	for fam, c := range cover {
		for _, want := range []string{"flavour 1.33", "flavour 1.37", "topology 1", "topology 3"} {
			if !c[want] {
				bad = append(bad, fmt.Sprintf("family %s never runs on %s", fam, want))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// PrintMatrix writes the table for matrix, marking the pair of this run.
func PrintMatrix(w io.Writer, matrix, here string) {
	fmt.Fprintf(w, "e2e: matrix %s, this run %s (* = runs here)\n", matrix, here)
	fmt.Fprintf(w, "e2e:   %-46s %-10s %s\n", "SCENARIO", "FAMILY", "PAIRS")
	for _, s := range Scenarios {
		mark := " "
		if s.RunsOn(here, matrix) {
			mark = "*"
		}
		fmt.Fprintf(w, "e2e: %s %-46s %-10s %s\n", mark, s.Name, s.Family, strings.Join(s.Pairs(matrix), " "))
	}
}
