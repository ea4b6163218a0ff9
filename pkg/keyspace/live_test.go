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
	w := window{min: len("/registry/"), k: len("/registry/") + 1, end: RangeEnd("/registry/")}
	if got := w.endFrom("/registry/"); got != w.end {
		t.Errorf("first window %q, want the whole range", got)
	}
	if got := w.endFrom("/registry/pods/a"); got != "/registry/q" {
		t.Errorf("window %q", got)
	}
	w.adapt(100000, 1000, true) // too many keys: narrower
	if got := w.endFrom("/registry/pods/a"); got != "/registry/pp" {
		t.Errorf("narrower window %q", got)
	}
	w.adapt(10, 1000, false) // too few: wider again
	w.adapt(10, 1000, false)
	w.adapt(10, 1000, false)
	if w.k != w.min || w.endFrom("/registry/pods/a") != w.end {
		t.Errorf("widest window k=%d", w.k)
	}
	w = window{min: 1, k: 30, end: "/registry/q"}
	if got := w.endFrom("/registry/pods/a"); got != "/registry/pods/b" {
		t.Errorf("short start: %q", got)
	}
	if got := (&window{min: 1, k: 3, end: "/b"}).endFrom("/c0"); got != "/b" {
		t.Errorf("past the end: %q", got)
	}
}
