package doctor

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

// Lines as etcd 3.5 and 3.7 log them (zap JSON, raft's logger).
const (
	election35 = `{"level":"info","ts":"2026-12-02T08:01:02.345Z","logger":"raft","caller":"etcdserver/zap_raft.go:77","msg":"raft.node: 8e9e05c52164694d elected leader 8e9e05c52164694d at term 2"}`
	election37 = `{"level":"info","ts":"2026-12-02T08:01:02.345678Z","logger":"raft","caller":"v3@v3.6.0/node.go:370","msg":"raft.node: 5a8ae9fcb1ab3f0b elected leader 1c4b1c2e9a6c0f0d at term 7"}`
	lostLeader = `{"level":"info","ts":"2026-12-02T08:01:01.000Z","logger":"raft","caller":"v3@v3.6.0/node.go:376","msg":"raft.node: 5a8ae9fcb1ab3f0b lost leader 8e9e05c52164694d at term 6"}`
	applyLine  = `{"level":"warn","ts":"2026-12-02T08:03:00.000Z","caller":"etcdserver/util.go:170","msg":"apply request took too long","took":"120ms"}`
)

// ts leads a line as the kubelet's --timestamps do.
func ts(at time.Time, line string) string {
	return at.UTC().Format(time.RFC3339Nano) + " " + line + "\n"
}

const changed37 = `{"level":"info","ts":"2026-12-02T08:01:02.345678Z","logger":"raft","caller":"v3@v3.7.0/node.go:372","msg":"raft.node: 5a8ae9fcb1ab3f0b changed leader from 8e9e05c52164694d to 1c4b1c2e9a6c0f0d at term 8"}`

func TestCountElections(t *testing.T) {
	at := time.Date(2026, 12, 2, 8, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		log  string
		want LogElections
	}{
		{"none", ts(at, applyLine), LogElections{From: at}},
		{"3.5 start", ts(at, election35) + ts(at.Add(time.Second), applyLine), LogElections{Count: 1, From: at}},
		{"3.7 lost then elected, no trailing newline", ts(at, lostLeader) + strings.TrimSuffix(ts(at, election37), "\n"), LogElections{Count: 1, From: at}},
		{"3.7 straight from one leader to another", ts(at, changed37), LogElections{Count: 1, From: at}},
		{"two changes among long lines", ts(at, strings.Repeat("x", 200<<10)) + ts(at, election37) + ts(at, lostLeader) + ts(at, election35), LogElections{Count: 2, From: at}},
		{"empty", "", LogElections{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := CountElections(strings.NewReader(tc.log))
			if err != nil || e.Count != tc.want.Count || !e.From.Equal(tc.want.From) {
				t.Errorf("CountElections = %+v, %v; want %+v", e, err, tc.want)
			}
		})
	}
}

// fakeLogs serves a log per member, or an error.
type fakeLogs struct {
	logs  map[string]string
	err   error
	since []time.Duration
}

func (f *fakeLogs) Logs(_ context.Context, m discovery.Member, since time.Duration) (io.ReadCloser, error) {
	f.since = append(f.since, since)
	if f.err != nil {
		return nil, f.err
	}
	return io.NopCloser(strings.NewReader(f.logs[m.Name])), nil
}

func TestReadElections(t *testing.T) {
	at := now.Add(-50 * time.Minute)
	for _, tc := range []struct {
		name  string
		logs  LogReader
		count []int64 // per member; nil: not read
		err   string
	}{
		{"counted per member", &fakeLogs{logs: map[string]string{"cp1": ts(at, election35) + ts(at, changed37), "cp2": ts(at, applyLine)}}, []int64{2, 0, 0}, ""},
		{"denied", &fakeLogs{err: errors.New(`pods "etcd-cp1" is forbidden: cannot get resource "pods/log"`)}, nil, "pods/log"},
		{"no reader", nil, nil, errNoLogs.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := facts("3.6.8")
			readElections(context.Background(), tc.logs, f)
			for i, m := range f.Members {
				switch {
				case tc.count == nil && (m.Elections != nil || m.ElectionsErr == nil || !strings.Contains(m.ElectionsErr.Error(), tc.err)):
					t.Errorf("%s: %+v, %v; want an error with %q", m.Name(), m.Elections, m.ElectionsErr, tc.err)
				case tc.count != nil && (m.Elections == nil || m.Elections.Count != tc.count[i] || m.ElectionsErr != nil):
					t.Errorf("%s: %+v, %v; want %d", m.Name(), m.Elections, m.ElectionsErr, tc.count[i])
				}
			}
			if fl, ok := tc.logs.(*fakeLogs); ok {
				for _, s := range fl.since {
					if s != time.Hour {
						t.Errorf("asked for the log since %s, want 1h", s)
					}
				}
			}
		})
	}
}

// TestLeaderChangesOfTheLastHour: the window first; within the hour
// of a start the counter, checked against the log; beyond it the log,
// a lower bound when rotated; never ok on a guess.
func TestLeaderChangesOfTheLastHour(t *testing.T) {
	metrics := func(changes int, up time.Duration) string {
		return exposition([]int{1000}, map[string]float64{"etcd_server_has_leader": 1, "etcd_server_leader_changes_seen_total": float64(changes),
			"process_start_time_seconds": float64(now.Add(-up).Unix())})
	}
	// with sets every member's metrics and what its log says: from is
	// how long ago it begins, count < 0 that it could not be read.
	with := func(s string, count int64, from time.Duration) func(f *Facts) {
		return func(f *Facts) {
			for _, m := range f.Members {
				m.Metrics = metricsOf(t, s, s)
				if count < 0 {
					m.ElectionsErr = errors.New(`cannot get resource "pods/log"`)
					continue
				}
				m.Elections = &LogElections{Count: count, From: now.Add(-from)}
			}
		}
	}
	const id = "performance.leader-changes"
	runCases(t, "3.6.8", []ruleCase{
		{name: "up for days, a quiet log", id: id, edit: with(metrics(5, 48*time.Hour), 0, time.Hour), want: map[string]Severity{"cp1": OK},
			found: "no leader change in the last hour (its log; 4 since the member started 2 days ago)"},
		{name: "up for days, two changes in the last hour's log", id: id, edit: with(metrics(5, 48*time.Hour), 2, 59*time.Minute), want: map[string]Severity{"cp1": Warn},
			found: "2 leader change(s) in the last hour (its log; 4 since the member started 2 days ago)"},
		{name: "up for days, the log rotated 20 minutes ago, a change since", id: id, edit: with(metrics(5, 48*time.Hour), 1, 20*time.Minute), want: map[string]Severity{"cp1": Warn},
			found: "at least 1 leader change(s) in the last hour (its log, rotated, begins 20m0s ago)"},
		{name: "up for days, the log rotated 20 minutes ago, quiet since", id: id, edit: with(metrics(5, 48*time.Hour), 0, 20*time.Minute), want: map[string]Severity{"cp1": NotChecked},
			found: "the member's log was rotated 20m0s ago and shows no leader change since"},
		{name: "up for days, the log denied", id: id, edit: with(metrics(5, 48*time.Hour), -1, 0), want: map[string]Severity{"cp1": NotChecked},
			found: `which could not be read (cannot get resource "pods/log"); 4 since it started 2 days ago`},
		{name: "started 20 minutes ago, its first election logged", id: id, edit: with(metrics(1, 20*time.Minute), 1, 20*time.Minute), want: map[string]Severity{"cp1": OK},
			found: "no leader change since the member started 20m0s ago (its log agrees)"},
		{name: "started 20 minutes ago, three changes", id: id, edit: with(metrics(4, 20*time.Minute), 4, 20*time.Minute), want: map[string]Severity{"cp1": Warn},
			found: "3 leader change(s) since the member started 20m0s ago (its log agrees)"},
		{name: "started 20 minutes ago, the counter wins over the log", id: id, edit: with(metrics(4, 20*time.Minute), 2, 20*time.Minute), want: map[string]Severity{"cp1": Warn},
			found: "3 leader change(s) since the member started 20m0s ago (its log records 1)"},
		{name: "started 20 minutes ago, no log: the counter covers the hour", id: id, edit: with(metrics(1, 20*time.Minute), -1, 0), want: map[string]Severity{"cp1": OK},
			found: "no leader change since the member started 20m0s ago"},
	})
}
