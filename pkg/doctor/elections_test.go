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

func TestCountElections(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  string
		want int64
	}{
		{"none", applyLine + "\n", 0},
		{"3.5 start", election35 + "\n" + applyLine + "\n", 1},
		{"3.7 change, no trailing newline", lostLeader + "\n" + election37, 1},
		{"two changes among long lines", strings.Repeat("x", 200<<10) + "\n" + election37 + "\n" + lostLeader + "\n" + election35 + "\n", 2},
		{"empty", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := CountElections(strings.NewReader(tc.log))
			if err != nil || n != tc.want {
				t.Errorf("CountElections = %d, %v; want %d", n, err, tc.want)
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
	f := cluster("3.6.8")
	lr := &fakeLogs{logs: map[string]string{"cp1": election35 + "\n" + election37 + "\n", "cp2": applyLine}}
	readElections(context.Background(), lr, f)
	for i, want := range []int64{2, 0, 0} {
		if m := f.Members[i]; m.Elections == nil || *m.Elections != want || m.ElectionsErr != nil {
			t.Errorf("%s: %v, %v; want %d", m.Name(), m.Elections, m.ElectionsErr, want)
		}
	}
	for _, s := range lr.since {
		if s != time.Hour {
			t.Errorf("asked for the log since %s, want 1h", s)
		}
	}
	f = cluster("3.6.8")
	readElections(context.Background(), &fakeLogs{err: errors.New(`pods "etcd-cp1" is forbidden: cannot get resource "pods/log"`)}, f)
	if m := f.Members[0]; m.Elections != nil || m.ElectionsErr == nil {
		t.Errorf("a denied log: %v, %v", m.Elections, m.ElectionsErr)
	}
	f = cluster("3.6.8")
	readElections(context.Background(), nil, f)
	if m := f.Members[0]; m.Elections != nil || !errors.Is(m.ElectionsErr, errNoLogs) {
		t.Errorf("no log reader: %v, %v", m.Elections, m.ElectionsErr)
	}
}

// TestLeaderChangesOfTheLastHour: the window first, then the log, then
// the metric while it covers the hour; never OK on a guess.
func TestLeaderChangesOfTheLastHour(t *testing.T) {
	metrics := func(changes int, up time.Duration) string {
		return exposition([]int{1000}, map[string]float64{"etcd_server_has_leader": 1, "etcd_server_leader_changes_seen_total": float64(changes),
			"process_start_time_seconds": float64(now.Add(-up).Unix())})
	}
	with := func(s string, elections int64, logErr error) func(f *Facts) {
		return func(f *Facts) {
			for _, m := range f.Members {
				m.Metrics = metricsOf(t, s, s)
				if logErr != nil {
					m.ElectionsErr = logErr
				} else if elections >= 0 {
					m.Elections = &elections
				}
			}
		}
	}
	const id = "performance.leader-changes"
	denied := errors.New(`cannot get resource "pods/log"`)
	runCases(t, "3.6.8", []ruleCase{
		{name: "up for days, a quiet log", id: id, edit: with(metrics(5, 48*time.Hour), 0, nil), want: map[string]Severity{"cp1": OK},
			found: "no leader change in the last hour (its log; 4 since the member started 2 days ago)"},
		{name: "up for days, two elections in the last hour's log", id: id, edit: with(metrics(5, 48*time.Hour), 2, nil), want: map[string]Severity{"cp1": Warn},
			found: "2 leader change(s) in the last hour (its log; 4 since the member started 2 days ago)"},
		{name: "up for days, the log denied", id: id, edit: with(metrics(5, 48*time.Hour), -1, denied), want: map[string]Severity{"cp1": NotChecked},
			found: `which could not be read (cannot get resource "pods/log"); 4 since it started 2 days ago`},
		{name: "started 20 minutes ago, its first election logged", id: id, edit: with(metrics(1, 20*time.Minute), 1, nil), want: map[string]Severity{"cp1": OK},
			found: "no leader change since the member started 20m0s ago (its log)"},
		{name: "started 20 minutes ago, three changes logged", id: id, edit: with(metrics(4, 20*time.Minute), 4, nil), want: map[string]Severity{"cp1": Warn},
			found: "3 leader change(s) since the member started 20m0s ago (its log)"},
		{name: "started 20 minutes ago, no log: the metric covers the hour", id: id, edit: with(metrics(1, 20*time.Minute), -1, denied), want: map[string]Severity{"cp1": OK},
			found: "no leader change since the member started 20m0s ago"},
	})
}
