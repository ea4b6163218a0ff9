package metrics

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadScrape(t *testing.T, name string, at time.Time) *Scrape {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ParseScrape(f, at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The testdata files are /metrics of the first member of real
// three-member etcd 3.5.35 and 3.7.0 clusters, scraped twice with 100
// writes in between.
func TestSummarizeRealEtcd(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, v := range []string{"3.5.35", "3.7.0"} {
		t.Run(v, func(t *testing.T) {
			a := loadScrape(t, "etcd-"+v+"-a.prom", t0)
			b := loadScrape(t, "etcd-"+v+"-b.prom", t0.Add(10*time.Second))
			m := Summarize(a, b)
			if m.Version != v || !m.HasLeader || !m.IsLeader || m.WindowText != "10s" {
				t.Errorf("version %q hasLeader %v isLeader %v window %q", m.Version, m.HasLeader, m.IsLeader, m.WindowText)
			}
			if m.LeaderChanges != 1 || m.LeaderChangesInWindow != 0 || m.ProposalsFailed != 0 || m.SlowAppliesInWindow != 0 {
				t.Errorf("counters %+v", m)
			}
			whole := b.Histogram(mWALFsync, nil)
			if m.WALFsync.SinceStart || m.WALFsync.Samples <= 0 || m.WALFsync.Samples >= int64(whole.Count) {
				t.Errorf("WAL fsync should come from the window's deltas: %+v, %v since start", m.WALFsync, whole.Count)
			}
			if m.WALFsync.P50 <= 0 || m.WALFsync.P99 < m.WALFsync.P50 || m.WALFsync.P99 > 1 {
				t.Errorf("WAL fsync quantiles %+v", m.WALFsync)
			}
			if m.BackendCommit.Samples <= 0 || m.BackendCommit.P99 <= 0 {
				t.Errorf("backend commit %+v", m.BackendCommit)
			}
			if len(m.PeerRoundTrip) != 2 {
				t.Errorf("peer round trips %+v", m.PeerRoundTrip)
			}
			if m.Quota != 2<<30 || m.DBSize <= 0 || m.StartTime.IsZero() {
				t.Errorf("quota %d db %d start %v", m.Quota, m.DBSize, m.StartTime)
			}
			if got := Summarize(nil, b); got.WindowText != "since start" || !got.WALFsync.SinceStart || got.WALFsync.Samples != int64(whole.Count) {
				t.Errorf("no window: %+v", got.WALFsync)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name string
		h    Histogram
		q    float64
		want float64
		ok   bool
	}{
		{"empty", Histogram{}, 0.99, 0, false},
		{"linear in the bucket", Histogram{Bounds: []float64{0.001, 0.002, 0.004, inf}, Counts: []float64{0, 50, 100, 100}, Count: 100}, 0.5, 0.002, true},
		{"p99 inside the third bucket", Histogram{Bounds: []float64{0.001, 0.002, 0.004, inf}, Counts: []float64{0, 50, 100, 100}, Count: 100}, 0.99, 0.002 + 0.002*49/50, true},
		{"+Inf bucket gives the highest bound", Histogram{Bounds: []float64{0.001, 0.002, inf}, Counts: []float64{10, 20, 100}, Count: 100}, 0.99, 0.002, true},
		{"first bucket from zero", Histogram{Bounds: []float64{0.008, inf}, Counts: []float64{100, 100}, Count: 100}, 0.5, 0.004, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.h.Quantile(tc.q)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("Quantile(%g) = %g, %v; want %g, %v", tc.q, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestHistogramSub(t *testing.T) {
	old := Histogram{Bounds: []float64{1, 2}, Counts: []float64{5, 10}, Count: 10, Sum: 12}
	now := Histogram{Bounds: []float64{1, 2}, Counts: []float64{5, 30}, Count: 30, Sum: 50}
	d := now.Sub(old)
	if d.Count != 20 || d.Counts[0] != 0 || d.Counts[1] != 20 || d.Sum != 38 {
		t.Errorf("Sub = %+v", d)
	}
	if q, _ := d.Quantile(0.5); q <= 1 || q > 2 {
		t.Errorf("the window's p50 %g should be in (1, 2]: the old fast samples are gone", q)
	}
	restarted := Histogram{Bounds: []float64{1, 2}, Counts: []float64{1, 2}, Count: 2}
	if d := restarted.Sub(old); d.Count != 2 {
		t.Errorf("after a restart the new histogram is the window: %+v", d)
	}
}

func TestParseScrapeRejectsGarbage(t *testing.T) {
	if _, err := ParseScrape(strings.NewReader("this is not { metrics"), time.Now()); err == nil {
		t.Error("no error on garbage")
	}
}
