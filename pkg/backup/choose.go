package backup

import (
	"fmt"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
)

// chooseSource picks the member to take a snapshot from. With want set
// (see etcd.Names) it is that member. Otherwise it is a healthy
// follower with the newest applied index, so that the leader, which is
// busiest, is spared; the leader only when no follower answers.
func chooseSource(c *cluster.Cluster, want string) (*cluster.Member, error) {
	if want != "" {
		m, err := c.Find(want)
		if err != nil {
			return nil, err
		}
		if m.Err != nil {
			return nil, fmt.Errorf("member %s cannot serve a snapshot: %s", want, m.Err)
		}
		return m, nil
	}
	var best, leader *cluster.Member
	for _, m := range c.Members {
		switch {
		case unusable(c, m) != "":
			continue
		case m.IsLeader():
			leader = m
		case best == nil || m.Status.RaftAppliedIndex > best.Status.RaftAppliedIndex:
			best = m
		}
	}
	if best != nil && leader != nil && best.Status.RaftAppliedIndex+1000 < leader.Status.RaftAppliedIndex {
		// A follower far behind would give an old snapshot.
		best = leader
	}
	if best == nil {
		best = leader
	}
	if best == nil {
		return nil, fmt.Errorf("no healthy member to take a snapshot from:%s\nsee: kubectl etcd status", unusables(c))
	}
	return best, nil
}

// unusable says why m cannot serve a snapshot, or "".
func unusable(c *cluster.Cluster, m *cluster.Member) string {
	switch {
	case m.Err != nil:
		return m.Err.Error()
	case m.Status == nil:
		return "no status"
	case m.IsLearner():
		return "a learner"
	}
	var alarms []string
	for _, a := range c.Alarms {
		if a.MemberID == m.ID {
			alarms = append(alarms, a.Type)
		}
	}
	if len(alarms) > 0 {
		return "alarm " + strings.Join(alarms, ", ")
	}
	return ""
}

// unusables says, member by member, why none could serve.
func unusables(c *cluster.Cluster) string {
	var b strings.Builder
	for _, m := range c.Members {
		if why := unusable(c, m); why != "" {
			fmt.Fprintf(&b, "\n  %s: %s", m.Pod.Name, why)
		}
	}
	if b.Len() == 0 {
		return " the cluster has no members"
	}
	return b.String()
}
