package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestFresh(t *testing.T) {
	// A Wednesday, between two of every schedule's runs.
	wed := time.Date(2026, 12, 9, 12, 0, 30, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name     string
		expr     string
		now      time.Time
		interval time.Duration
		next     time.Time
		err      string
	}{
		{name: "nightly", expr: "0 2 * * *", now: wed, interval: day, next: time.Date(2026, 12, 10, 2, 0, 0, 0, time.UTC)},
		{name: "hourly", expr: "@hourly", now: wed, interval: time.Hour},
		{name: "every six hours", expr: "0 */6 * * *", now: wed, interval: 6 * time.Hour},
		{name: "every five minutes", expr: "*/5 * * * *", now: wed, interval: 5 * time.Minute},
		{name: "weekdays, midweek", expr: "0 2 * * 1-5", now: wed, interval: day},
		// Friday's run to Monday's: the weekend does not warn.
		{name: "weekdays, on Sunday", expr: "0 2 * * 1-5", now: wed.Add(4 * day), interval: 3 * day},
		{name: "weekdays, on Monday after its run", expr: "0 2 * * 1-5", now: wed.Add(5 * day), interval: 3 * day},
		{name: "weekdays, on Tuesday", expr: "0 2 * * 1-5", now: wed.Add(6 * day), interval: day},
		{name: "twice a day, unevenly", expr: "0 2,8 * * *", now: wed, interval: 18 * time.Hour},
		{name: "in a time zone", expr: "CRON_TZ=Europe/Berlin 0 2 * * *", now: wed, interval: day},
		{name: "leap days", expr: "0 0 29 2 *", now: wed, interval: time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC).Sub(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC))},
		{name: "a day that never comes", expr: "0 0 30 2 *", now: wed, err: "never runs"},
		{name: "not cron", expr: "every night", now: wed, err: `schedule "every night"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Fresh(tc.expr, tc.now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Fresh = %+v, %v; want an error with %q", f, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Interval != tc.interval || f.MaxAge != 2*tc.interval+JobDeadline {
				t.Errorf("interval %s, max age %s; want %s and %s", f.Interval, f.MaxAge, tc.interval, 2*tc.interval+JobDeadline)
			}
			if !tc.next.IsZero() && !f.Next.Equal(tc.next) {
				t.Errorf("next %s, want %s", f.Next, tc.next)
			}
		})
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		48*time.Hour + 30*time.Minute: "48h30m",
		24 * time.Hour:                "24h",
		5 * time.Minute:               "5m",
		20 * time.Second:              "0m",
		90 * time.Second:              "2m",
	} {
		if got := ShortDuration(d); got != want {
			t.Errorf("ShortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
