package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Freshness is how old a schedule's newest backup may be at a given
// time, from its cron expression alone:
//
//   - Interval is the longer of the two gaps around that time: from the
//     activation before last to the last, and from the last to the next.
//     Taking the longer one keeps a schedule of weekdays only from
//     warning over the weekend.
//   - MaxAge is 2 × Interval + JobDeadline: a run may be missed or fail
//     once; when the next one has not succeeded either by its deadline,
//     the newest backup is too old.
type Freshness struct {
	Interval time.Duration
	MaxAge   time.Duration
	// Next is the schedule's next activation.
	Next time.Time
}

// lookback bounds the search for a schedule's past activations: cron's
// own Next gives up after five years, and a 29 February can be eight
// years from the one before.
const lookback = 9 * 366 * 24 * time.Hour

// Fresh is the Freshness of the cron expression expr at now, in UTC as
// the CronJob runs it.
func Fresh(expr string, now time.Time) (Freshness, error) {
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return Freshness{}, fmt.Errorf("schedule %q: %w", expr, err)
	}
	now = now.UTC()
	next := s.Next(now)
	if next.IsZero() {
		return Freshness{}, fmt.Errorf("schedule %q never runs", expr)
	}
	last, before := previous(s, now)
	var gap time.Duration
	switch {
	case last.IsZero(): // its first activation is still to come
		gap = s.Next(next).Sub(next)
	case before.IsZero():
		gap = next.Sub(last)
	default:
		gap = max(next.Sub(last), last.Sub(before))
	}
	if gap <= 0 {
		return Freshness{}, fmt.Errorf("schedule %q runs once, not again", expr)
	}
	return Freshness{Interval: gap, MaxAge: 2*gap + JobDeadline, Next: next}, nil
}

// previous is the schedule's last two activations at or before now
// (zero when there are none): cron computes only forward, so it walks
// forward from ever further back.
func previous(s cron.Schedule, now time.Time) (last, before time.Time) {
	for back := time.Minute; back <= lookback; back *= 2 {
		last, before = time.Time{}, time.Time{}
		for t := s.Next(now.Add(-back)); !t.IsZero() && !t.After(now); t = s.Next(t) {
			before, last = last, t
		}
		if !before.IsZero() {
			break
		}
	}
	return last, before
}

// ShortDuration says d to the minute, without the zero units Go's
// String adds: 48h30m, 24h, 5m.
func ShortDuration(d time.Duration) string {
	s := d.Round(time.Minute).String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if s == "" {
		return "0m"
	}
	return s
}
