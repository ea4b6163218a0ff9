package doctor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

// readSchedules lists the schedules, as schedule list does; nil when
// nothing lists them.
func readSchedules(ctx context.Context, src Sources) *ScheduleFacts {
	if src.Schedules == nil {
		return nil
	}
	ss, err := src.Schedules(ctx)
	return &ScheduleFacts{List: ss, Err: err}
}

// installHint is how to install a first schedule.
const installHint = `install one: kubectl etcd schedule backup nightly --schedule "0 2 * * *" --to node:/var/lib/etcd-backups --recipient age1... (see kubectl etcd schedule backup --help)`

// checkSchedules judges each schedule by its record: its newest backup
// must be younger than schedule.Fresh allows (two intervals and the
// job's deadline), and it must not be suspended.
func checkSchedules(fs *Facts) []Result {
	sf := fs.Schedules
	switch {
	case sf == nil:
		return []Result{res("", NotChecked, "", "not checked: the schedules were not read")}
	case sf.Err != nil:
		found, fix := split(sf.Err)
		return []Result{res("", NotChecked, fix, "not checked: %s", found)}
	case len(sf.List) == 0 && fs.Backup != nil:
		return []Result{res("", NotChecked, "", "not checked: no schedule is installed; the snapshots in %s are checked by backups.newest", fs.Backup.Dir)}
	case len(sf.List) == 0:
		return []Result{res("", Warn, installHint, "no scheduled backups: no schedule is installed in any namespace")}
	}
	var out []Result
	for _, s := range sf.List {
		out = append(out, judgeSchedule(s, fs.Now))
	}
	return out
}

// split is err's words and its hint, apart.
func split(err error) (found, fix string) {
	var h *hint.Error
	if errors.As(err, &h) && error(h) == err {
		return hint.OneLine(h.Err.Error()), h.Hint
	}
	return hint.OneLine(err.Error()), hint.Of(err)
}

func judgeSchedule(s schedule.Status, now time.Time) Result {
	r := judgeRecord(s, now)
	if s.Problem == "" {
		return r
	}
	if r.Severity == OK {
		r.Severity, r.Fix = Warn, fmt.Sprintf("install it again with kubectl etcd schedule backup %s (its record stays)", s.Name)
	}
	r.Found += "; " + hint.OneLine(s.Problem)
	return r
}

// judgeRecord is the finding of one schedule's record at now.
func judgeRecord(s schedule.Status, now time.Time) Result {
	name, rec := s.Namespace+"/"+s.Name, s.Record
	runs := fmt.Sprintf("see its runs: kubectl etcd schedule list --schedule-namespace %s -o wide, its jobs: kubectl -n %s get jobs -l %s=%s, and the failed one's log: kubectl -n %s logs job/JOB",
		s.Namespace, s.Namespace, schedule.ScheduleLabel, s.Name, s.Namespace)
	fresh, err := schedule.Fresh(s.Schedule, now)
	if err != nil {
		return res("", Warn, fmt.Sprintf("install it again with a valid --schedule: kubectl etcd schedule backup %s --schedule ...", s.Name), "schedule %s: %v", name, err)
	}
	allows := fmt.Sprintf("the %s %q allows (a run every %s)", schedule.ShortDuration(fresh.MaxAge), s.Schedule, schedule.ShortDuration(fresh.Interval))
	newest := "no backup yet"
	if !rec.LastSuccess.IsZero() {
		newest = fmt.Sprintf("newest backup %s old", since(rec.LastSuccess, now))
		if rec.LastFile != "" {
			newest += " (" + rec.LastFile + ")"
		}
	}
	failed := ""
	if rec.LastError != "" && rec.LastAttempt.After(rec.LastSuccess) {
		failed = fmt.Sprintf("; its last run, %s ago, failed: %s", since(rec.LastAttempt, now), hint.OneLine(rec.LastError))
	}
	switch {
	case s.Suspended:
		return res("", Warn, fmt.Sprintf(`resume it: kubectl -n %s patch cronjob %s -p '{"spec":{"suspend":false}}'`, s.Namespace, (schedule.Config{Name: s.Name}).ObjectName()),
			"schedule %s is suspended, so it takes no backup; %s", name, newest)
	case rec.LastSuccess.IsZero() && rec.LastAttempt.IsZero() && !s.Created.IsZero() && now.Sub(s.Created) <= fresh.MaxAge:
		return ok("", "schedule %s: installed %s ago, no run yet; the first is due in %s", name, since(s.Created, now), since(now, fresh.Next))
	case rec.LastSuccess.IsZero() && rec.LastAttempt.IsZero():
		installed := ""
		if !s.Created.IsZero() {
			installed = fmt.Sprintf(", installed %s ago,", since(s.Created, now))
		}
		return res("", Warn, runs, "schedule %s%s has never run: %q should every %s", name, installed, s.Schedule, schedule.ShortDuration(fresh.Interval))
	case rec.LastSuccess.IsZero():
		return res("", Warn, runs, "schedule %s has never succeeded%s", name, failed)
	case now.Sub(rec.LastSuccess) > fresh.MaxAge:
		return res("", Warn, runs, "schedule %s: %s, more than %s%s", name, newest, allows, failed)
	}
	return ok("", "schedule %s: %s, within %s%s", name, newest, allows, failed)
}

// since is how long after t now is, as kubectl says ages; a time ahead
// of this clock is no time ago.
func since(t, now time.Time) string { return duration.HumanDuration(max(now.Sub(t), 0)) }
