package keyspace

import "testing"

func TestLivePageLimit(t *testing.T) {
	for _, c := range []struct {
		name  string
		q     Query
		bytes int64
		pages [][]int64 // value sizes of each page seen
		fresh bool      // the next page starts a window
		want  int64
	}{
		{name: "first page", want: firstPageKeys},
		{name: "fixed", q: Query{PageSize: 7}, pages: [][]int64{{1 << 20}}, want: 7},
		{name: "keys only", q: Query{Detail: KeysOnly}, want: keysOnlyPageKeys},
		{name: "at most doubles", pages: [][]int64{{10, 30}}, want: 2 * firstPageKeys},
		{name: "small values", pages: [][]int64{{10}, {10}, {10}, {10}, {10}}, want: maxPageKeys},
		{name: "1 KiB values", pages: [][]int64{{1024}, {1024}, {1024}}, want: defaultPageBytes / 1024},
		{name: "large values", pages: [][]int64{{2 << 20}}, want: minPageKeys},
		{name: "own target", bytes: 10000, pages: [][]int64{{1000}}, want: minPageKeys},
		{name: "a new window fears the largest values", pages: [][]int64{{4096}, {512}}, fresh: true, want: defaultPageBytes / 4096},
		{name: "within a window, the last page", pages: [][]int64{{4096}, {1024}}, want: 2 * defaultPageBytes / 4096},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := (&Live{PageBytes: c.bytes}).pager(c.q)
			p.limit()
			for i, page := range c.pages {
				for _, n := range page {
					p.saw(n)
				}
				if i == len(c.pages)-1 && c.fresh {
					p.newWindow()
				}
				if i < len(c.pages)-1 {
					p.limit()
				}
			}
			if got := p.limit(); got != c.want {
				t.Errorf("limit %d, want %d", got, c.want)
			}
		})
	}
}

func TestLiveWindow(t *testing.T) {
	end := RangeEnd("/registry/")
	w := window{min: len("/registry/"), k: len("/registry/") + 1}
	if got := w.endFrom("/registry/", end); got != end {
		t.Errorf("first window %q, want the whole range", got)
	}
	if got := w.endFrom("/registry/pods/a", end); got != "/registry/q" {
		t.Errorf("window %q", got)
	}
	w = window{min: 1, k: 30}
	if got := w.endFrom("/registry/pods/a", "/registry/q"); got != "/registry/pods/b" {
		t.Errorf("short start: %q", got)
	}
	if got := (&window{min: 1, k: 3}).endFrom("/c0", "/b"); got != "/b" {
		t.Errorf("past the end: %q", got)
	}
}

func TestLiveWindowAdapt(t *testing.T) {
	const min = len("/registry/")
	for _, c := range []struct {
		name        string
		k           int
		count       int64
		more        bool
		first, last string
		want        int
	}{
		{name: "too many keys: the prefix the page shares", k: min + 1, count: 100000, more: true,
			first: "/registry/pods/ns-000/a", last: "/registry/pods/ns-003/b", want: len("/registry/pods/ns-00")},
		{name: "too many keys, a page of varied keys: one byte narrower", k: 20, count: 100000, more: true,
			first: "/registry/a", last: "/registry/z", want: 21},
		{name: "enough keys", k: 20, count: 3000, more: true, first: "/registry/a", last: "/registry/b", want: 20},
		{name: "few keys: one byte wider", k: 20, count: 10, want: 19},
		{name: "few keys, more to come in the window", k: 20, count: 10, more: true, want: 20},
		{name: "empty: half as deep", k: min + 10, want: min + 5},
		{name: "empty at the widest", k: min, want: min},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := window{min: min, k: c.k}
			w.adapt(c.count, 1000, c.more, []byte(c.first), []byte(c.last))
			if w.k != c.want {
				t.Errorf("k %d, want %d", w.k, c.want)
			}
		})
	}
}
