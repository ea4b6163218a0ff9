package doctor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

func voters(f *Facts) int {
	n := 0
	for _, mi := range f.List {
		if !mi.IsLearner {
			n++
		}
	}
	return n
}

func checkMemberCount(f *Facts) []Result {
	if f.ListErr != nil {
		return []Result{notChecked("", f.ListErr)}
	}
	n := voters(f)
	tolerate := (n - 1) / 2
	found := fmt.Sprintf("%d voting members: tolerates %d failure(s)", n, tolerate)
	switch {
	case n == 1:
		return []Result{res("", Warn, "add two members for high availability: a single member's failure stops the cluster", "%s", found)}
	case n%2 == 0:
		return []Result{res("", Warn, fmt.Sprintf("run an odd number of members: %d tolerate no more failures than %d, and need a larger quorum", n, n-1), "%s", found)}
	case n >= 7:
		return []Result{res("", Warn, "more than 5 members slow every write down for little gain; 5 is etcd's recommendation for large clusters", "%s", found)}
	}
	return []Result{ok("", "%s", found)}
}

func checkReachable(f *Facts) []Result {
	var out []Result
	for _, m := range f.Members {
		if m.Err != nil {
			out = append(out, res(m.Name(), Fail, fmt.Sprintf("the member counts against quorum while it is down: kubectl -n %s logs %s", m.Pod.Namespace, m.Pod.Pod),
				"member does not answer: %s", hint.OneLine(m.Err.Error())))
			continue
		}
		out = append(out, ok(m.Name(), "answers (id %s)", etcd.HexID(m.Status.MemberID)))
	}
	return out
}

func checkLearners(f *Facts) []Result {
	if f.ListErr != nil {
		return []Result{notChecked("", f.ListErr)}
	}
	var out []Result
	for _, mi := range f.List {
		if mi.IsLearner {
			out = append(out, res(memberName(mi), Warn, "promote it once it has caught up (kubectl etcd member promote "+etcd.HexID(mi.ID)+"), or remove it (kubectl etcd member remove "+etcd.HexID(mi.ID)+"); a learner does not vote",
				"member %s is a learner, not promoted", etcd.HexID(mi.ID)))
		}
	}
	if len(out) == 0 {
		out = append(out, ok("", "no learner left unpromoted"))
	}
	return out
}

func checkOnePerNode(f *Facts) []Result {
	byNode := map[string][]string{}
	for _, m := range f.Members {
		byNode[m.Pod.Node] = append(byNode[m.Pod.Node], m.Name())
	}
	var nodes []string
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var out []Result
	for _, n := range nodes {
		if ms := byNode[n]; len(ms) > 1 {
			out = append(out, res("", Fail, "spread the members over distinct nodes: losing that node loses several votes at once",
				"members %s run on one node, %s", strings.Join(ms, ", "), n))
		}
	}
	if len(out) == 0 {
		out = append(out, ok("", "%d members on %d nodes", len(f.Members), len(byNode)))
	}
	return out
}

func checkPodsAndMembers(f *Facts) []Result {
	if f.ListErr != nil {
		return []Result{notChecked("", f.ListErr)}
	}
	var out []Result
	for _, mi := range f.List {
		if podOf(f, mi) == nil {
			out = append(out, res(memberName(mi), Fail, "start its etcd pod again, or remove the member: kubectl etcd member remove "+etcd.HexID(mi.ID)+" (its plan says whether its node still exists); it counts against quorum",
				"member %s has no etcd pod", etcd.HexID(mi.ID)))
		}
	}
	for _, m := range f.Members {
		if m.Status != nil && !listed(f, m.Status.MemberID) {
			out = append(out, res(m.Name(), Fail, "the pod runs an etcd that is not in the member list: check its --initial-cluster and data dir",
				"pod %s runs member %s, which the member list does not have", m.Pod.Pod, etcd.HexID(m.Status.MemberID)))
		}
	}
	if len(out) == 0 {
		out = append(out, ok("", "every member has a pod and every pod a member"))
	}
	return out
}

func podOf(f *Facts, mi etcd.MemberInfo) *MemberFacts {
	for _, m := range f.Members {
		if m.Status != nil && m.Status.MemberID == mi.ID {
			return m
		}
		if mi.Name != "" && m.Pod.Name == mi.Name {
			return m
		}
	}
	return nil
}

func listed(f *Facts, id uint64) bool {
	for _, mi := range f.List {
		if mi.ID == id {
			return true
		}
	}
	return len(f.List) == 0
}

func memberName(mi etcd.MemberInfo) string {
	if mi.Name == "" {
		return "(unstarted)"
	}
	return mi.Name
}
