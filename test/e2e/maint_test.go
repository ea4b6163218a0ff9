//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// The maintenance commands on the real control plane, on every flavour and
// topology: they change etcd's state but lose nothing.
func TestMaintenance(t *testing.T) {
	scenario(t)
	// alarm list: none on a healthy cluster.
	r := mustSucceed(t, kubectl(t, "etcd", "alarm", "list", "-o", "json"))
	var alarms struct {
		ClusterID string
		Alarms    []struct{ MemberID, Alarm string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &alarms); err != nil || len(alarms.Alarms) != 0 || alarms.ClusterID == "" {
		t.Errorf("alarm list: %v %s", err, r.stdout)
	}

	// alarm disarm with none raised changes nothing and says so (a raised
	// NOSPACE is TestQuotaNospaceRecovery's).
	r = mustSucceed(t, kubectl(t, "etcd", "alarm", "disarm", "--yes"))
	if !strings.Contains(r.stderr, "No alarm is raised") {
		t.Errorf("alarm disarm with no alarm: %s", r.stderr)
	}

	// compact: the revision before and after, at least the current one.
	before, _ := getStatus(t)
	r = mustSucceed(t, kubectl(t, "etcd", "compact", "--yes", "-o", "json"))
	var c struct {
		RevisionBefore, CompactedRevision int64
	}
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil || c.CompactedRevision < before.Members[0].Revision || c.RevisionBefore < before.Members[0].Revision {
		t.Errorf("compact: %v %s (status revision %d)", err, r.stdout, before.Members[0].Revision)
	}

	// defrag --force: every member, followers first, the leader last with
	// its leadership moved away first.
	var leader string
	for _, m := range before.Members {
		if m.IsLeader {
			leader = m.Name
		}
	}
	r = mustSucceed(t, kubectl(t, "etcd", "defrag", "--force", "--yes", "-o", "json"))
	var d struct {
		Members []struct {
			Name, Role, Result string
			Before, After      *struct{ DBSize int64 }
		}
		LeaderMoves []struct{ From, To struct{ Name string } }
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || len(d.Members) != nodes {
		t.Fatalf("defrag: %v %s", err, r.stdout)
	}
	for i, m := range d.Members {
		if m.Result != "defragmented" || m.After == nil || m.After.DBSize <= 0 {
			t.Errorf("defrag: member %s %s, after %v", m.Name, m.Result, m.After)
		}
		if nodes > 1 && (i == len(d.Members)-1) != (m.Name == leader) {
			t.Errorf("defrag order: %s (the leader was %s) at position %d of %d", m.Name, leader, i+1, len(d.Members))
		}
	}
	if nodes > 1 && (len(d.LeaderMoves) != 1 || d.LeaderMoves[0].From.Name != leader) {
		t.Errorf("defrag did not move the leadership away from %s first: %+v", leader, d.LeaderMoves)
	}
	mustSucceed(t, kubectl(t, "etcd", "health"))

	if nodes == 1 {
		r = kubectl(t, "etcd", "move-leader", "--yes")
		if r.code == 0 || !strings.Contains(r.stderr, "member") {
			t.Errorf("move-leader on one member: exit %d, %s", r.code, r.stderr)
		}
		return
	}
	// move-leader: to a named follower.
	now, _ := getStatus(t)
	var target string
	for _, m := range now.Members {
		if !m.IsLeader && !m.IsLearner {
			target = m.Name
			break
		}
	}
	mustSucceed(t, kubectl(t, "etcd", "move-leader", target, "--yes"))
	after, _ := getStatus(t)
	for _, m := range after.Members {
		if m.IsLeader != (m.Name == target) {
			t.Errorf("after move-leader %s: %s leader=%t", target, m.Name, m.IsLeader)
		}
	}
}
