// Package metrics reads etcd members' Prometheus metrics (through a port-forward
// to their metrics endpoint) and sums them up into the numbers `kubectl
// etcd metrics` prints and `check` judges.
package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one reading of a member's /metrics.
type Scrape struct {
	At       time.Time
	families map[string]*dto.MetricFamily
}

// ParseScrape parses the Prometheus text exposition etcd serves, with
// Prometheus' own parser.
func ParseScrape(r io.Reader, at time.Time) (*Scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing the metrics text: %w", err)
	}
	return &Scrape{At: at, families: fams}, nil
}

// Has reports whether the scrape holds the metric.
func (s *Scrape) Has(name string) bool { return s != nil && s.families[name] != nil }

// Value is the sum of a counter or gauge over its series, and whether
// the metric is there at all.
func (s *Scrape) Value(name string) (float64, bool) {
	if !s.Has(name) {
		return 0, false
	}
	var v float64
	for _, m := range s.families[name].Metric {
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Untyped != nil:
			v += m.Untyped.GetValue()
		}
	}
	return v, true
}

// Label is the value of label on the metric's first series: etcd puts
// its version in etcd_server_version{server_version=...}.
func (s *Scrape) Label(name, label string) string {
	if !s.Has(name) {
		return ""
	}
	for _, m := range s.families[name].Metric {
		for _, l := range m.Label {
			if l.GetName() == label {
				return l.GetValue()
			}
		}
	}
	return ""
}

// Histogram is cumulative bucket counts, summed over the series kept.
type Histogram struct {
	Bounds []float64 // upper bounds, ascending, +Inf last if present
	Counts []float64 // cumulative
	Count  float64
	Sum    float64
}

// Histogram sums the series of a histogram for which keep is true
// (every series when keep is nil).
func (s *Scrape) Histogram(name string, keep func(labels map[string]string) bool) Histogram {
	var h Histogram
	if !s.Has(name) {
		return h
	}
	acc := map[float64]float64{}
	for _, m := range s.families[name].Metric {
		if m.Histogram == nil || (keep != nil && !keep(labelMap(m))) {
			continue
		}
		h.Count += float64(m.Histogram.GetSampleCount())
		h.Sum += m.Histogram.GetSampleSum()
		for _, b := range m.Histogram.Bucket {
			acc[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	for b := range acc {
		h.Bounds = append(h.Bounds, b)
	}
	sort.Float64s(h.Bounds)
	for _, b := range h.Bounds {
		h.Counts = append(h.Counts, acc[b])
	}
	return h
}

// LabelValues lists the values a label takes across a metric's series.
func (s *Scrape) LabelValues(name, label string) []string {
	if !s.Has(name) {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range s.families[name].Metric {
		if v, ok := labelMap(m)[label]; ok && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func labelMap(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.Label))
	for _, l := range m.Label {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// Sub is what was observed between old and h: the bucket deltas. A
// counter that went down means the member restarted in between, so h is
// returned whole.
func (h Histogram) Sub(old Histogram) Histogram {
	if old.Count > h.Count || len(old.Bounds) != len(h.Bounds) {
		return h
	}
	d := Histogram{Bounds: h.Bounds, Count: h.Count - old.Count, Sum: h.Sum - old.Sum, Counts: make([]float64, len(h.Counts))}
	for i := range h.Counts {
		d.Counts[i] = h.Counts[i] - old.Counts[i]
	}
	return d
}

// Quantile estimates the q-quantile as Prometheus' histogram_quantile
// does: linear within the bucket the rank falls in, and the highest
// finite bound when it falls in the +Inf bucket. It is false with no
// observations.
func (h Histogram) Quantile(q float64) (float64, bool) {
	total := h.Count
	if n := len(h.Counts); n > 0 && h.Counts[n-1] > total {
		total = h.Counts[n-1]
	}
	if total <= 0 || len(h.Bounds) == 0 {
		return 0, false
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, b := range h.Bounds {
		if h.Counts[i] >= rank {
			if math.IsInf(b, 1) {
				return lower, true
			}
			in := h.Counts[i] - below
			if in <= 0 {
				return b, true
			}
			return lower + (b-lower)*(rank-below)/in, true
		}
		lower, below = b, h.Counts[i]
	}
	// Every finite bucket is below the rank: the rest are above the
	// highest bound.
	return lower, true
}
