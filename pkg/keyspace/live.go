package keyspace

import (
	"context"
	"fmt"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// Pager is what a live walk needs of a member: etcd.Client has it.
type Pager interface {
	GetPage(ctx context.Context, r etcd.PageRequest) (*etcd.Page, error)
}

// Live walks a running member in ranges with a limit: one page per
// request, each at the revision the first one read, so that writes during
// the walk do not show. Memory is one page's, whatever the key count.
type Live struct {
	Client Pager
	// Serializable lets the bound member answer from its own store
	// without asking the leader. Bind the client to a follower and set it
	// to keep a long walk's load off the leader; the walk then sees the
	// follower's newest applied revision.
	Serializable bool
	// PageBytes is the value bytes a page aims at when the query sets no
	// PageSize: the next page's key limit follows the mean value size seen
	// so far (default 2 MiB, so a page of large objects stays small and
	// one of small keys needs few requests).
	PageBytes int64
}

// Page key limits for a live walk: with values, the first page's and the
// bounds of the adaptive one; without, every page's. etcd counts the rest
// of the range for every page, so fewer, larger pages cost it less.
const (
	firstPageKeys    = 500
	minPageKeys      = 16
	maxPageKeys      = 5000
	keysOnlyPageKeys = 10000
	defaultPageBytes = 2 << 20
)

// History implements Source: a live range shows only the revision read.
func (l *Live) History() bool { return false }

// Walk implements Source.
//
// etcd counts, for every page, the keys left in the requested range: a
// walk through N keys in pages of L, each ranging to the end, makes it
// visit N²/2L keys, which on 200k keys took longer than reading them.
// So each request ranges over a window, the keys sharing their first k
// bytes with its start: k grows while windows hold many pages' worth of
// keys and shrinks while they hold less than a page.
func (l *Live) Walk(ctx context.Context, q Query, fn func(Page) error) (Result, error) {
	key, end := q.ends()
	r := etcd.PageRequest{Key: key, End: end, Revision: q.Revision, KeysOnly: q.Detail == KeysOnly, Serializable: l.Serializable}
	pg := l.pager(q)
	w := window{min: len(key), k: len(key) + 1, end: end}
	if end == "" {
		w = window{end: end}
	} else {
		r.End = w.endFrom(key)
	}
	res := Result{Revision: q.Revision}
	for {
		left := q.left(res.Keys)
		r.Limit = pg.limit()
		if left >= 0 && left < r.Limit {
			r.Limit = left
		}
		p, err := l.Client.GetPage(ctx, r)
		if err != nil {
			return res, fmt.Errorf("reading keys from %q: %w", r.Key, err)
		}
		res.Revision, r.Revision = p.Revision, p.Revision
		entries := make([]Entry, len(p.KVs))
		for i, kv := range p.KVs {
			entries[i] = liveEntry(kv, q.Detail)
			pg.saw(int64(len(kv.Value)))
		}
		res.Keys += int64(len(entries))
		if len(entries) > 0 {
			if err := fn(Page{Entries: entries, Revision: p.Revision}); err != nil {
				if err == Stop {
					return res, nil
				}
				return res, err
			}
		}
		more := p.More && len(p.KVs) > 0
		if end == "" || (!more && r.End == end) {
			return res, nil
		}
		if q.left(res.Keys) == 0 {
			res.More = true
			return res, nil
		}
		w.adapt(p.Count, r.Limit, more)
		if more {
			r.Key = string(p.KVs[len(p.KVs)-1].Key) + "\x00"
		} else {
			r.Key = r.End
		}
		r.End = w.endFrom(r.Key)
		if !more {
			pg.newWindow()
		}
	}
}

// window chooses the end of each request of a live walk.
type window struct {
	min, k int    // the window's prefix length, and its least: the query's
	end    string // the query's end
}

// endFrom is the end of the window that starts at start.
func (w *window) endFrom(start string) string {
	k := min(w.k, len(start))
	if k <= w.min {
		return w.end
	}
	e := RangeEnd(start[:k])
	if e == "\x00" || (w.end != "\x00" && e > w.end) {
		return w.end
	}
	return e
}

// adapt learns from a page: count keys were left in its window, whose
// page held limit; more says the window is not done.
func (w *window) adapt(count, limit int64, more bool) {
	switch {
	case count > 8*limit:
		w.k++
	case !more && count < limit/4 && w.k > w.min:
		w.k--
	}
}

func liveEntry(kv etcd.KeyValue, d Detail) Entry {
	e := Entry{Key: kv.Key, ValueSize: int64(len(kv.Value)), CreateRevision: kv.CreateRevision,
		ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease}
	switch d {
	case Values:
		e.Value = kv.Value
	case KeysOnly:
		e.ValueSize = -1
	}
	return e
}

// pager sizes live pages. etcd limits a range by keys, not bytes, so a
// page's bytes are a guess from the values seen: the last page's mean
// size within a window, and the largest mean yet on a window's first
// page, where another resource may begin. A page's key count at most
// doubles from one page to the next.
type pager struct {
	fixed       int64
	target      int64
	keys, bytes int64 // of the last page
	peak, last  int64 // the largest mean value size, and the last limit
	fresh       bool  // the next page starts a window
}

func (l *Live) pager(q Query) *pager {
	p := &pager{fixed: int64(q.PageSize), target: l.PageBytes}
	if p.target <= 0 {
		p.target = defaultPageBytes
	}
	if p.fixed <= 0 && q.Detail == KeysOnly {
		p.fixed = keysOnlyPageKeys
	}
	return p
}

func (p *pager) saw(valueSize int64) { p.keys++; p.bytes += valueSize }

// newWindow says the next page starts a window.
func (p *pager) newWindow() { p.fresh = true }

// limit is the next page's key limit.
func (p *pager) limit() int64 {
	if p.fixed > 0 {
		return p.fixed
	}
	if p.keys == 0 && p.peak == 0 {
		p.last = firstPageKeys
		return p.last
	}
	mean := int64(1)
	if p.keys > 0 {
		mean = max(p.bytes/p.keys, 1)
	}
	p.peak = max(p.peak, mean)
	if p.fresh || p.keys == 0 {
		mean = p.peak
	}
	p.keys, p.bytes, p.fresh = 0, 0, false
	p.last = min(max(p.target/mean, minPageKeys), maxPageKeys, 2*p.last)
	return p.last
}
