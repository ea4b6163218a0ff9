package schedule

import (
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func names(objs []Object) string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Name)
	}
	return strings.Join(out, " ")
}

// Retention removes only the schedule's own snapshots beyond its rule,
// newest kept first; files it did not write, another schedule's, and
// look-alikes are left alone; the newest is always kept.
func TestRuleApply(t *testing.T) {
	at := func(h int) string { return FileName("nightly", now.Add(-time.Duration(h)*time.Hour)) }
	objs := []Object{{Name: at(1)}, {Name: at(49)}, {Name: at(25)}, {Name: at(73)},
		{Name: "nightly-keep-this.db.zst.age"}, {Name: FileName("hourly", now)}, {Name: "nightly-20261207T110000Z.db"},
		{Name: "nightly-2026120xT110000Z.db.zst.age"}, {Name: "my-manual-backup.db"}}
	for _, tt := range []struct {
		name         string
		rule         Rule
		keep, remove string
		now          time.Time
	}{
		{name: "keep all", keep: at(1) + " " + at(25) + " " + at(49) + " " + at(73)},
		{name: "by count", rule: Rule{Count: 2}, keep: at(1) + " " + at(25), remove: at(49) + " " + at(73)},
		{name: "by age", rule: Rule{MaxAge: 48 * time.Hour}, keep: at(1) + " " + at(25), remove: at(49) + " " + at(73)},
		{name: "either keeps", rule: Rule{Count: 3, MaxAge: 24 * time.Hour}, keep: at(1) + " " + at(25) + " " + at(49), remove: at(73)},
		{name: "the newest whatever the age", rule: Rule{MaxAge: time.Hour}, now: now.Add(1000 * time.Hour), keep: at(1), remove: at(25) + " " + at(49) + " " + at(73)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := now
			if !tt.now.IsZero() {
				n = tt.now
			}
			p := tt.rule.Apply("nightly", objs, n)
			if names(p.Keep) != tt.keep || names(p.Remove) != tt.remove {
				t.Errorf("keep %q remove %q; want keep %q remove %q", names(p.Keep), names(p.Remove), tt.keep, tt.remove)
			}
			if len(p.NotOurs) != 5 {
				t.Errorf("not ours: %v", p.NotOurs)
			}
		})
	}
}

func TestRuleString(t *testing.T) {
	for rule, want := range map[Rule]string{
		{}:                                 "keep all",
		{Count: 7}:                         "keep the newest 7",
		{MaxAge: 30 * 24 * time.Hour}:      "keep the last 30d",
		{Count: 3, MaxAge: 36 * time.Hour}: "keep the newest 3, and all of the last 36h0m0s",
	} {
		if got := rule.String(); got != want {
			t.Errorf("%+v: %q, want %q", rule, got, want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"nightly": true, "etcd-6h": true, "Nightly": false, "-x": false, "a/b": false, "": false, strings.Repeat("a", 53): false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}
