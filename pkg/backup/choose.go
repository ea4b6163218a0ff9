package backup

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// chooseSource picks the member to take a snapshot from. With want set
// (see Names) it is that member. Otherwise it is a healthy
// follower with the newest applied index, so that the leader, which is
// busiest, is spared; the leader only when no follower answers.
func chooseSource(v *etcd.StatusListView, want string) (*etcd.StatusView, error) {
	if want != "" {
		for i := range v.Members {
			m := &v.Members[i]
			id, _ := strconv.ParseUint(m.ID, 16, 64)
			if etcd.Names(want, m.Name, m.Node, m.Pod, id) {
				if m.Error != "" {
					return nil, fmt.Errorf("member %s cannot serve a snapshot: %s", want, m.Error)
				}
				return m, nil
			}
		}
		return nil, etcd.NoSuchMember(want)
	}
	var best, leader *etcd.StatusView
	for i := range v.Members {
		m := &v.Members[i]
		switch {
		case m.Error != "" || m.IsLearner || len(m.Alarms) > 0:
			continue
		case m.IsLeader:
			leader = m
		case best == nil || m.RaftAppliedIndex > best.RaftAppliedIndex:
			best = m
		}
	}
	if best != nil && leader != nil && best.RaftAppliedIndex+1000 < leader.RaftAppliedIndex {
		// A follower far behind would give an old snapshot.
		best = leader
	}
	if best == nil {
		best = leader
	}
	if best == nil {
		return nil, fmt.Errorf("no healthy member to take a snapshot from:%s\nsee: kubectl etcd status", unusable(v))
	}
	return best, nil
}

// unusable says, member by member, why none could serve.
func unusable(v *etcd.StatusListView) string {
	var b strings.Builder
	for _, m := range v.Members {
		why := m.Error
		switch {
		case why != "":
		case m.IsLearner:
			why = "a learner"
		case len(m.Alarms) > 0:
			why = "alarm " + strings.Join(m.Alarms, ", ")
		default:
			continue
		}
		fmt.Fprintf(&b, "\n  %s: %s", m.Name, why)
	}
	if b.Len() == 0 {
		return " the cluster has no members"
	}
	return b.String()
}
