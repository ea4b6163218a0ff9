package metrics

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
)

// HTTPGetter fetches a path of a member's metrics endpoint (the port
// --listen-metrics-urls names, else the client port).
type HTTPGetter interface {
	Get(ctx context.Context, m discovery.Member, path string) (*etcd.HTTPResponse, error)
}

// ScrapeAll reads every member's metrics: once, or twice window apart.
func ScrapeAll(ctx context.Context, g HTTPGetter, pods []discovery.Member, window time.Duration, now func() time.Time) ([]*Metrics, []error) {
	if now == nil {
		now = time.Now
	}
	first := make([]*Scrape, len(pods))
	errs := make([]error, len(pods))
	out := make([]*Metrics, len(pods))
	scrape := func(i int) (*Scrape, error) {
		body, err := Raw(ctx, g, pods[i])
		if err != nil {
			return nil, err
		}
		return ParseScrape(bytes.NewReader(body), now())
	}
	if window > 0 {
		par.Each(len(pods), func(i int) { first[i], errs[i] = scrape(i) })
		select {
		case <-ctx.Done():
			return out, fill(errs, ctx.Err())
		case <-time.After(window):
		}
	}
	par.Each(len(pods), func(i int) {
		if errs[i] != nil {
			return
		}
		last, err := scrape(i)
		if err != nil {
			errs[i] = err
			return
		}
		m := Summarize(first[i], last)
		m.Member, m.Node = pods[i].Name, pods[i].Node
		out[i] = &m
	})
	return out, errs
}

func fill(errs []error, err error) []error {
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	return errs
}

// Raw is a member's metrics exposition text.
func Raw(ctx context.Context, g HTTPGetter, m discovery.Member) ([]byte, error) {
	r, err := g.Get(ctx, m, "/metrics")
	if err != nil {
		return nil, err
	}
	if r.Code != 200 {
		return nil, fmt.Errorf("member %s answered /metrics with HTTP %d: %s", m.Name, r.Code, hint.OneLine(string(r.Body)))
	}
	return r.Body, nil
}
