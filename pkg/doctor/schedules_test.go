package doctor

import (
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

// TestScheduleRules judges crafted schedules at now (Tuesday 1 December
// 2026, 12:00 UTC); the command's test reads them from a fake cluster.
func TestScheduleRules(t *testing.T) {
	nightly := func(success, attempt time.Duration, lastErr string) schedule.Status {
		s := schedule.Status{Name: "nightly", Namespace: "kube-system", Schedule: "0 2 * * *"}
		if success != 0 {
			s.Record.LastSuccess, s.Record.LastFile = now.Add(-success), "nightly-x.db.zst.age"
		}
		if attempt != 0 {
			s.Record.LastAttempt, s.Record.LastError = now.Add(-attempt), lastErr
		}
		return s
	}
	edit := func(s schedule.Status, f func(*schedule.Status)) schedule.Status { f(&s); return s }
	forbidden := discovery.ExplainAPIError(apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "cronjobs"}, "", errors.New("no")), "list", "cronjobs", "")
	for _, tc := range []struct {
		name      string
		facts     *ScheduleFacts
		backupDir bool
		want      Severity
		found     string // a piece of what it found
		fix       string // a piece of the fix
	}{
		{"not read", nil, false, NotChecked, "not read", ""},
		{"RBAC denied", &ScheduleFacts{Err: forbidden}, false, NotChecked, "RBAC denied: you cannot list cronjobs across the cluster", "ClusterRole"},
		{"no schedule", &ScheduleFacts{}, false, Warn, "no scheduled backups", "kubectl etcd schedule backup"},
		{"no schedule, backups in a dir", &ScheduleFacts{}, true, NotChecked, "checked by backups.newest", ""},
		{"fresh", &ScheduleFacts{List: []schedule.Status{nightly(10*time.Hour, 10*time.Hour, "")}}, false, OK,
			`newest backup 10h old (nightly-x.db.zst.age), within the 48h30m "0 2 * * *" allows (a run every 24h)`, ""},
		{"one run failed", &ScheduleFacts{List: []schedule.Status{nightly(34*time.Hour, 10*time.Hour, "snapshot not kept: timeout")}}, false, OK,
			"its last run, 10h ago, failed: snapshot not kept: timeout", ""},
		{"two runs failed", &ScheduleFacts{List: []schedule.Status{nightly(58*time.Hour, 10*time.Hour, "snapshot not kept: timeout")}}, false, Warn,
			`newest backup 2d10h old (nightly-x.db.zst.age), more than the 48h30m "0 2 * * *" allows`, "kubectl -n kube-system get jobs -l kubectl-etcd.io/schedule=nightly"},
		{"never succeeded", &ScheduleFacts{List: []schedule.Status{nightly(0, time.Hour, "the schedule's recipients: bad key")}}, false, Warn,
			"never succeeded; its last run, 60m ago, failed: the schedule's recipients: bad key", "schedule list"},
		{"never ran", &ScheduleFacts{List: []schedule.Status{nightly(0, 0, "")}}, false, Warn, `has never run: "0 2 * * *" should every 24h`, "get jobs"},
		{"just installed", &ScheduleFacts{List: []schedule.Status{edit(nightly(0, 0, ""), func(s *schedule.Status) { s.Created = now.Add(-time.Hour) })}}, false, OK,
			"installed 60m ago, no run yet; the first is due in 14h", ""},
		{"installed long ago, never ran", &ScheduleFacts{List: []schedule.Status{edit(nightly(0, 0, ""), func(s *schedule.Status) { s.Created = now.Add(-72 * time.Hour) })}}, false, Warn,
			"installed 3d ago, has never run", ""},
		{"suspended", &ScheduleFacts{List: []schedule.Status{edit(nightly(10*time.Hour, 10*time.Hour, ""), func(s *schedule.Status) { s.Suspended = true })}}, false, Warn,
			"is suspended, so it takes no backup; newest backup 10h old", `kubectl -n kube-system patch cronjob kubectl-etcd-backup-nightly -p '{"spec":{"suspend":false}}'`},
		{"a config it cannot read", &ScheduleFacts{List: []schedule.Status{edit(nightly(10*time.Hour, 10*time.Hour, ""), func(s *schedule.Status) { s.Problem = "the schedule's config: unexpected end of JSON input" })}}, false, Warn,
			"within the 48h30m", "install it again"},
		{"a cron it cannot read", &ScheduleFacts{List: []schedule.Status{edit(nightly(time.Hour, time.Hour, ""), func(s *schedule.Status) { s.Schedule = "0 0 30 2 *" })}}, false, Warn,
			"never runs", "a valid --schedule"},
		{"a clock ahead of this one", &ScheduleFacts{List: []schedule.Status{nightly(-time.Hour, -time.Hour, "")}}, false, OK, "within", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := facts("3.6.8")
			f.Schedules = tc.facts
			if tc.backupDir {
				f.Backup = &BackupFacts{Dir: "/var/backups/etcd"}
			}
			rep := Evaluate(f, Selection{Only: []string{"backups.schedules"}})
			if len(rep.Results) != 1 {
				t.Fatalf("%d results: %+v", len(rep.Results), rep.Results)
			}
			r := rep.Results[0]
			if r.Severity != tc.want || !strings.Contains(r.Found, tc.found) || !strings.Contains(r.Fix, tc.fix) {
				t.Errorf("%s: %s\nfix: %s\nwant %s with %q, fix with %q", r.Severity, r.Found, r.Fix, tc.want, tc.found, tc.fix)
			}
			if r.Severity == Warn && r.Fix == "" {
				t.Errorf("a warning without a fix: %s", r.Found)
			}
		})
	}
}
