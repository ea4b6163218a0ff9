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
// the walk do not show. Memory is one page's (Parallel pages', with
// Parallel), whatever the key count.
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
	// Parallel is how many windows a walk reads at once when its query
	// takes the pages in any order (Query.AnyOrder) and sets no Limit:
	// etcd then decodes one page while the client decodes another, and
	// the walk takes about the longer of the two, not their sum. 0 or 1:
	// one request at a time.
	Parallel int
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
	if l.Parallel > 1 && q.AnyOrder && q.Limit <= 0 && end != "" {
		return l.walkParallel(ctx, q, fn)
	}
	r := l.request(q, key, end)
	w := &window{min: len(key), k: len(key) + 1}
	if end == "" {
		w = &window{}
	}
	res := Result{Revision: q.Revision}
	err := l.walkRange(ctx, q, r, w, l.pager(q), &res, fn, nil)
	if err == Stop {
		err = nil
	}
	return res, err
}

func (l *Live) request(q Query, key, end string) etcd.PageRequest {
	return etcd.PageRequest{Key: key, End: end, Revision: q.Revision, KeysOnly: q.Detail == KeysOnly,
		SizesOnly: q.Detail == Sizes, Serializable: l.Serializable}
}

// walkRange walks [r.Key, r.End) window by window, adding to res and
// pinning r's revision to the first page's. With split, it walks the
// first window alone and hands split the rest of the range, once the
// window's first page has taught w its width.
func (l *Live) walkRange(ctx context.Context, q Query, r etcd.PageRequest, w *window, pg *pager, res *Result, fn func(Page) error, split func(chunk)) error {
	end := r.End
	if end != "" {
		r.End = w.endFrom(r.Key, end)
	}
	for {
		left := q.left(res.Keys)
		r.Limit = pg.limit()
		if left >= 0 && left < r.Limit {
			r.Limit = left
		}
		p, err := l.Client.GetPage(ctx, r)
		if err != nil {
			return fmt.Errorf("reading keys from %q: %w", r.Key, err)
		}
		res.Revision, r.Revision = p.Revision, p.Revision
		entries := make([]Entry, len(p.KVs))
		for i, kv := range p.KVs {
			entries[i] = liveEntry(kv, q.Detail)
			pg.saw(valueSize(kv))
		}
		res.Keys += int64(len(entries))
		if len(entries) > 0 {
			if err := fn(Page{Entries: entries, Revision: p.Revision}); err != nil {
				return err
			}
		}
		more := p.More && len(p.KVs) > 0
		if end == "" || (!more && r.End == end) {
			return nil
		}
		if q.left(res.Keys) == 0 {
			res.More = true
			return nil
		}
		var first, last []byte
		if len(p.KVs) > 0 {
			first, last = p.KVs[0].Key, p.KVs[len(p.KVs)-1].Key
		}
		w.adapt(p.Count, r.Limit, more, first, last)
		if split != nil && r.End != end {
			split(chunk{start: r.End, end: end, k: w.k})
			if end = r.End; !more {
				return nil
			}
		}
		if more {
			r.Key = string(p.KVs[len(p.KVs)-1].Key) + "\x00"
		} else {
			r.Key = r.End
		}
		r.End = w.endFrom(r.Key, end)
		if !more {
			pg.newWindow()
		}
	}
}

// window chooses the end of each request of a live walk.
type window struct {
	min, k int // the window's prefix length, and its least: the query's
}

// endFrom is the end of the window that starts at start, in a range that
// ends at end.
func (w *window) endFrom(start, end string) string {
	k := min(w.k, len(start))
	if k <= w.min {
		return end
	}
	e := RangeEnd(start[:k])
	if e == "\x00" || (end != "\x00" && e > end) {
		return end
	}
	return e
}

// adapt learns from a page: count keys were left in its window, whose
// page held limit and spanned first to last; more says the window is not
// done. A window narrows at once to the prefix its page's keys share, so
// that a wide one is counted once, not once per byte; an empty one
// widens by half, so that the walk leaves a finished prefix in a few
// requests.
func (w *window) adapt(count, limit int64, more bool, first, last []byte) {
	switch {
	case count > 4*limit:
		w.k = max(w.k+1, commonPrefix(first, last))
	case !more && count == 0 && w.k > w.min:
		w.k = w.min + (w.k-w.min)/2
	case !more && count < limit/4 && w.k > w.min:
		w.k--
	}
}

// commonPrefix is the length of the prefix a and b share.
func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func liveEntry(kv etcd.KeyValue, d Detail) Entry {
	e := Entry{Key: kv.Key, ValueSize: valueSize(kv), CreateRevision: kv.CreateRevision,
		ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease}
	switch d {
	case Values:
		e.Value = kv.Value
	case KeysOnly:
		e.ValueSize = -1
	}
	return e
}

// valueSize is a value's length, also where the client kept none.
func valueSize(kv etcd.KeyValue) int64 {
	if kv.Value != nil {
		return int64(len(kv.Value))
	}
	return kv.ValueSize
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
