// Package doctor checks an etcd cluster against what keeps it safe:
// topology, versions, consistency, security, capacity, performance and
// backups. Gather reads the facts through narrow interfaces (the etcd
// client, an HTTP getter for /metrics and /readyz, a reader of files on
// the nodes); the rules are pure functions of those facts, so that each
// is tested on crafted input.
package doctor

import (
	"fmt"
	"sort"
	"strings"
)

// Severity is how bad a finding is.
type Severity string

// Severities, from good to bad. NotChecked says a check could not look
// (a node that could not be read, a version without /readyz); it never
// fails a run.
const (
	OK         Severity = "ok"
	NotChecked Severity = "not-checked"
	Warn       Severity = "warn"
	Fail       Severity = "fail"
)

func (s Severity) rank() int {
	switch s {
	case Warn:
		return 2
	case Fail:
		return 3
	case NotChecked:
		return 1
	}
	return 0
}

// Areas, in the order the report shows them.
const (
	AreaTopology    = "topology"
	AreaVersions    = "versions"
	AreaConsistency = "consistency"
	AreaSecurity    = "security"
	AreaCapacity    = "capacity"
	AreaPerformance = "performance"
	AreaBackups     = "backups"
)

// Areas lists every area in report order.
var Areas = []string{AreaTopology, AreaVersions, AreaConsistency, AreaSecurity, AreaCapacity, AreaPerformance, AreaBackups}

// Result is one finding: what a check found on one member (or on the
// cluster, with Member empty) and how to fix it.
type Result struct {
	Area     string   `json:"area"`
	Check    string   `json:"check"`
	Member   string   `json:"member,omitempty"`
	Severity Severity `json:"severity"`
	Found    string   `json:"found"`
	Fix      string   `json:"fix,omitempty"`
}

// ID is the check's name for --only and --skip: area.check.
func (r Result) ID() string { return r.Area + "." + r.Check }

// Report is the answer of `kubectl etcd check`.
type Report struct {
	ClusterID string   `json:"clusterID,omitempty"`
	Results   []Result `json:"results"`
	Summary   Summary  `json:"summary"`
}

// Summary counts results by severity.
type Summary struct {
	OK         int `json:"ok"`
	Warn       int `json:"warn"`
	Fail       int `json:"fail"`
	NotChecked int `json:"notChecked"`
}

// Worst is the worst severity in the report.
func (r *Report) Worst() Severity {
	w := OK
	for _, x := range r.Results {
		if x.Severity.rank() > w.rank() {
			w = x.Severity
		}
	}
	return w
}

func (r *Report) finish() {
	order := map[string]int{}
	for i, a := range Areas {
		order[a] = i
	}
	sort.SliceStable(r.Results, func(i, j int) bool { return order[r.Results[i].Area] < order[r.Results[j].Area] })
	r.Summary = Summary{}
	for _, x := range r.Results {
		switch x.Severity {
		case OK:
			r.Summary.OK++
		case Warn:
			r.Summary.Warn++
		case Fail:
			r.Summary.Fail++
		case NotChecked:
			r.Summary.NotChecked++
		}
	}
}

// Selection is --only and --skip: areas ("security") or checks
// ("security.cert-expiry").
type Selection struct {
	Only, Skip []string
}

// Validate rejects names that are no area and no check.
func (s Selection) Validate() error {
	known := map[string]bool{}
	for _, a := range Areas {
		known[a] = true
	}
	for _, c := range Checks {
		known[c] = true
	}
	for _, n := range append(append([]string{}, s.Only...), s.Skip...) {
		if !known[n] {
			return fmt.Errorf("no check or area %q; areas are %s, checks are area.name as `kubectl etcd check -o json` shows", n, strings.Join(Areas, ", "))
		}
	}
	return nil
}

// wants reports whether the check (area.check) is selected.
func (s Selection) wants(id string) bool {
	area, _, _ := strings.Cut(id, ".")
	match := func(list []string) bool {
		for _, n := range list {
			if n == id || n == area {
				return true
			}
		}
		return false
	}
	if len(s.Only) > 0 && !match(s.Only) {
		return false
	}
	return !match(s.Skip)
}

// wantsArea reports whether any check of the area is selected, so
// that Gather reads only what the selected checks need.
func (s Selection) wantsArea(area string) bool {
	for _, c := range Checks {
		if strings.HasPrefix(c, area+".") && s.wants(c) {
			return true
		}
	}
	return false
}
