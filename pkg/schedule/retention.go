// Package schedule is kubectl etcd's scheduled backups: the CronJob that
// takes them in the cluster, the names it writes, and the retention that
// removes only what it wrote.
package schedule

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A schedule writes each snapshot as <prefix><name>-<UTC time><ext>, and
// retention considers only names of that exact shape: a file a person
// put beside them, or another schedule's, is never removed (k3s#13769:
// retention that deleted snapshots users meant to keep).

// timeLayout is the time in a snapshot's name.
const timeLayout = "20060102T150405Z"

// validName is a schedule's name: a DNS label, as its CronJob's.
var validName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$`)

// CheckName refuses a schedule name that cannot name its CronJob and
// its files.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("schedule name %q: use lower-case letters, digits and '-', at most 52, starting and ending with a letter or digit", name)
	}
	return nil
}

// Ext is the extension of a scheduled snapshot: always compressed and
// encrypted (a schedule has no way to keep a key in the cluster).
const Ext = ".db.zst.age"

// FileName is the name the schedule gives a snapshot taken at t.
func FileName(schedule string, t time.Time) string {
	return schedule + "-" + t.UTC().Format(timeLayout) + Ext
}

// Taken is when the schedule took the snapshot named name, and whether
// the name is one the schedule writes at all.
func Taken(schedule, name string) (time.Time, bool) {
	s, t, ok := ParseFileName(name)
	return t, ok && s == schedule
}

// ParseFileName is the schedule and the time in a name FileName made,
// and whether name is one.
func ParseFileName(name string) (schedule string, taken time.Time, ok bool) {
	stem, ok := strings.CutSuffix(name, Ext)
	cut := len(stem) - len(timeLayout) - 1
	if !ok || cut < 1 || stem[cut] != '-' || CheckName(stem[:cut]) != nil {
		return "", time.Time{}, false
	}
	t, err := time.Parse(timeLayout, stem[cut+1:])
	if err != nil {
		return "", time.Time{}, false
	}
	return stem[:cut], t, true
}

// Rule is what a schedule keeps: the newest Count snapshots, and every
// one younger than MaxAge. Zero in both keeps everything.
type Rule struct {
	Count  int           `json:"count,omitempty"`
	MaxAge time.Duration `json:"maxAge,omitempty"`
}

// String says the rule as schedule list prints it.
func (r Rule) String() string {
	switch {
	case r.Count == 0 && r.MaxAge == 0:
		return "keep all"
	case r.MaxAge == 0:
		return fmt.Sprintf("keep the newest %d", r.Count)
	case r.Count == 0:
		return fmt.Sprintf("keep %s", ageText(r.MaxAge))
	}
	return fmt.Sprintf("keep the newest %d, and all of %s", r.Count, ageText(r.MaxAge))
}

func ageText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("the last %dd", d/(24*time.Hour))
	}
	return "the last " + d.String()
}

// Object is a file or object at a destination.
type Object struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Modified is when the destination says it was last written; not
	// recorded: a schedule's names say when it took them.
	Modified time.Time `json:"-"`
}

// Plan is what retention does at a destination: the schedule's snapshots
// it keeps and removes, newest first, and the names it leaves alone
// because the schedule did not write them.
type Plan struct {
	Keep, Remove []Object
	NotOurs      []string
}

// Apply decides, at now, which of objs the rule removes. The newest of
// the schedule's snapshots is always kept, whatever the rule, so that a
// clock gone wrong never leaves a destination without one.
func (r Rule) Apply(schedule string, objs []Object, now time.Time) Plan {
	type dated struct {
		Object
		t time.Time
	}
	var ours []dated
	var p Plan
	for _, o := range objs {
		if t, ok := Taken(schedule, o.Name); ok {
			ours = append(ours, dated{o, t})
		} else {
			p.NotOurs = append(p.NotOurs, o.Name)
		}
	}
	sort.Slice(ours, func(i, j int) bool { return ours[i].t.After(ours[j].t) })
	for i, o := range ours {
		keep := i == 0 || r.Count == 0 && r.MaxAge == 0 ||
			r.Count > 0 && i < r.Count ||
			r.MaxAge > 0 && now.Sub(o.t) < r.MaxAge
		if keep {
			p.Keep = append(p.Keep, o.Object)
		} else {
			p.Remove = append(p.Remove, o.Object)
		}
	}
	sort.Strings(p.NotOurs)
	return p
}

// ParseAge reads --max-age: a count of days (30d) or a Go duration
// (36h, 90m).
func ParseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("--max-age %q: want a positive age in days or hours, such as 30d or 36h", s)
}
