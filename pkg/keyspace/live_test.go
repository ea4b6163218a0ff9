package keyspace

import "testing"

func TestLivePageLimit(t *testing.T) {
	for _, c := range []struct {
		name  string
		q     Query
		bytes int64
		seen  []int64
		want  int64
	}{
		{name: "first page", want: firstPageKeys},
		{name: "fixed", q: Query{PageSize: 7}, seen: []int64{1 << 20}, want: 7},
		{name: "keys only", q: Query{Detail: KeysOnly}, want: keysOnlyPageKeys},
		{name: "small values", seen: []int64{100, 300}, want: maxPageKeys},
		{name: "1 KiB values", seen: []int64{1024}, want: defaultPageBytes / 1024},
		{name: "large values", seen: []int64{2 << 20}, want: minPageKeys},
		{name: "own target", bytes: 10000, seen: []int64{1000}, want: 16},
		{name: "empty values", seen: []int64{0, 0}, want: maxPageKeys},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := (&Live{PageBytes: c.bytes}).pager(c.q)
			for _, n := range c.seen {
				p.saw(n)
			}
			if got := p.limit(); got != c.want {
				t.Errorf("limit %d, want %d", got, c.want)
			}
		})
	}
}
