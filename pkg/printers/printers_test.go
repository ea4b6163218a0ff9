package printers

import (
	"bytes"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
)

var members = &cluster.MemberListView{ClusterID: "f9f44c4ba0e96dd8", Members: []cluster.MemberView{
	{ID: "8e9e05c52164694d", Name: "hc-cp1", Node: "hc-cp1", Pod: "etcd-hc-cp1", Status: "started", PeerURLs: []string{"https://10.250.1.11:2380"}, ClientURLs: []string{"https://10.250.1.11:2379"}},
	{ID: "2d2b4e1f3c7a9b10", Name: "hc-cp2", Node: "hc-cp2", Pod: "etcd-hc-cp2", Status: "started", IsLearner: true, PeerURLs: []string{"https://10.250.1.12:2380"}, ClientURLs: []string{"https://10.250.1.12:2379"}},
	{ID: "ffffffffffffffff", Status: "unstarted", PeerURLs: []string{"https://10.250.1.13:2380"}, ClientURLs: []string{}},
}}

var health = []cluster.HealthView{
	{Name: "hc-cp1", Node: "hc-cp1", Pod: "etcd-hc-cp1", Endpoint: "https://127.0.0.1:2379", Healthy: true, Took: 8 * time.Millisecond, TookText: "8ms"},
	{Name: "hc-cp2", Node: "hc-cp2", Pod: "etcd-hc-cp2", Endpoint: "https://127.0.0.1:2379", Healthy: false, TookText: "5s", Error: "context deadline exceeded\nsecond line"},
}

var status = &cluster.StatusListView{ClusterID: "f9f44c4ba0e96dd8", Members: []cluster.StatusView{
	{Name: "hc-cp1", Node: "hc-cp1", Pod: "etcd-hc-cp1", ID: "8e9e05c52164694d", Version: "3.5.35", StorageVersion: "3.5.0",
		DBSize: 20 << 20, DBSizeInUse: 5 << 20, Quota: 2 << 30, IsLeader: true, Leader: "8e9e05c52164694d",
		RaftTerm: 3, RaftIndex: 12345, RaftAppliedIndex: 12345, Revision: 9876, Alarms: []string{"NOSPACE"}},
	{Name: "hc-cp2", Node: "hc-cp2", Pod: "etcd-hc-cp2", ID: "2d2b4e1f3c7a9b10", Version: "3.5.35", DBSize: 0, DBSizeInUse: 0, Quota: 8 << 30, Leader: "8e9e05c52164694d"},
	{Name: "hc-cp3", Node: "hc-cp3", Pod: "etcd-hc-cp3", Error: "port-forward to member hc-cp3: pod is not running"},
}}

func TestPrinters(t *testing.T) {
	tables := map[string]struct {
		v     any
		table TableFunc
	}{
		"members":     {members, MembersTable(members)},
		"health":      {health, HealthTable(health)},
		"status":      {status, StatusTable(status)},
		"defrag":      {defrag, DefragTable(defrag)},
		"alarms":      {&maint.AlarmListView{ClusterID: "f9f44c4ba0e96dd8", Alarms: alarms}, AlarmTable(alarms)},
		"move-leader": {moveLeader, MoveLeaderTable(moveLeader)},
		"compact":     {compact, CompactTable(compact)},
		"check":       {checkReport, CheckTable(checkReport)},
		"metrics":     {metricsRows, MetricsTable(metricsRows)},
		"schedules":   {schedules, ScheduleTable(schedules, scheduleNow)},
		"backups":     {backups, BackupsTable(backups, scheduleNow, true, true)},
	}
	for name, tc := range tables {
		for _, format := range []string{Table, Wide, JSON, YAML} {
			t.Run(name+"-"+format, func(t *testing.T) {
				var b bytes.Buffer
				if err := Print(&b, format, tc.v, tc.table); err != nil {
					t.Fatal(err)
				}
				golden.Assert(t, name+"-"+format, b.Bytes())
			})
		}
	}
}

func TestValidateFormat(t *testing.T) {
	for f, ok := range map[string]bool{"": true, "table": true, "wide": true, "json": true, "yaml": true, "xml": false, "jsonpath": false} {
		if err := ValidateFormat(f); (err == nil) != ok {
			t.Errorf("ValidateFormat(%q) = %v", f, err)
		}
	}
}

func TestInUseZeroSize(t *testing.T) {
	if got := inUse(0, 0); got != "0 B" {
		t.Errorf("inUse(0,0) = %q", got)
	}
	if got := inUse(5<<20, 20<<20); got != "5.0 MiB (25%)" {
		t.Errorf("inUse = %q", got)
	}
}
