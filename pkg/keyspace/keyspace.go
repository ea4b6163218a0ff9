// Package keyspace walks etcd's keys page by page, from a live member or
// from a snapshot file, with the same Query and the same Entry. A walk
// never holds every value in memory: it hands the caller one page at a
// time and forgets it once the callback returns. `kubectl etcd get`
// prints the pages (through a Reader on the member best placed to
// serve them); usage sums them per resource, for `kubectl etcd usage`
// and for the table of `kubectl etcd snapshot inspect` alike (Inspect).
//
// Two sources implement it:
//   - Live reads a member through its etcd client, in ranges with a
//     limit, serializable when asked so that a follower can answer alone;
//   - File reads the key bucket of a snapshot file's bbolt database
//     directly. It sees what a live range cannot: every revision still
//     stored and the keys deleted since the last compaction.
package keyspace

import (
	"context"
	"errors"
)

// Detail says how much of each key a walk reads.
type Detail int

const (
	// Sizes reads each key's metadata and its value's size, not the
	// value: Entry.Value stays nil. A live source still transfers the
	// values to measure them, a page at a time.
	Sizes Detail = iota
	// KeysOnly reads the metadata alone. Entry.ValueSize is -1 where the
	// size is not known without the value (a live source then transfers
	// no value at all).
	KeysOnly
	// Values reads the values too.
	Values
)

// Query selects the keys of a walk, as etcdctl get does.
type Query struct {
	// Key is the key read; with Prefix, every key that starts with it
	// ("" and Prefix: every key).
	Key    string
	Prefix bool
	// Limit stops the walk after that many keys; 0: no limit.
	Limit int64
	// PageSize is how many keys each page holds at most; 0 lets the
	// source choose (a live source sizes pages to about PageBytes of
	// values).
	PageSize int
	// Revision reads the keys as they were at that revision; 0: the
	// newest. A revision older than the last compaction is an error.
	Revision int64
	Detail   Detail
	// Deleted also yields the keys deleted by Revision whose history is
	// still stored, with Entry.Deleted set. Only a source with History
	// has them; a live one ignores Deleted.
	Deleted bool
	// AnyOrder lets the source hand over the pages in any order: each
	// page is still in key order and fn is never called concurrently,
	// but one page may come from further on than the next. A sum needs
	// no order; a listing does.
	AnyOrder bool
}

// Entry is one key as a walk sees it. Its byte slices are valid until the
// page's callback returns: copy what must outlive it.
type Entry struct {
	Key []byte
	// Value is set with Detail Values only.
	Value []byte
	// ValueSize is len(value), or -1 when the query asked for KeysOnly
	// and the source could not tell the size without reading the value.
	ValueSize int64
	// CreateRevision, ModRevision, Version and Lease are etcd's: Version
	// counts the changes since the key was created (compacted ones
	// included), Lease is 0 for a key without a lease.
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64
	// Revisions counts the revisions of the key still stored (tombstones
	// included), and HistoryBytes their key and value bytes: what the key
	// costs the database until it is compacted. Only a source with
	// History knows them; elsewhere they are 0.
	Revisions    int64
	HistoryBytes int64
	// Deleted marks a key whose latest stored revision is a deletion
	// (Query.Deleted only); its metadata is that of the deletion.
	Deleted bool
}

// Page is one page of a walk, in key order.
type Page struct {
	Entries []Entry
	// Revision is the revision the whole walk reads at: the query's, or
	// the newest when it asked for none.
	Revision int64
}

// Result is what a finished walk tells.
type Result struct {
	// Revision the walk read at.
	Revision int64
	// Keys is the number of entries yielded.
	Keys int64
	// More is set when Limit stopped the walk with keys left. A live walk
	// stopped at a window's end cannot tell, and sets it.
	More bool
}

// Source is where keys come from.
type Source interface {
	// Walk calls fn with each page of the keys q selects, in key order
	// unless q.AnyOrder, all read at one revision. It stops at the first error, fn's
	// included, and returns it; fn returning Stop ends the walk without
	// an error.
	Walk(ctx context.Context, q Query, fn func(Page) error) (Result, error)
	// History tells whether entries carry Revisions and HistoryBytes and
	// whether Query.Deleted yields deleted keys: a snapshot file's do, a
	// live range's do not.
	History() bool
}

// Stop, returned by a walk's callback, ends the walk early without an
// error.
var Stop = errors.New("stop the walk")

// RangeEnd is the end of the range of keys that start with prefix, as
// etcd defines it: "\x00" (every key) for the empty prefix.
func RangeEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}

// ends is the [key, end) range q selects, end "" for the key alone.
func (q Query) ends() (key, end string) {
	if !q.Prefix {
		return q.Key, ""
	}
	if q.Key == "" {
		return "\x00", "\x00"
	}
	return q.Key, RangeEnd(q.Key)
}

// left is how many more keys the limit allows after n; -1: no limit.
func (q Query) left(n int64) int64 {
	if q.Limit <= 0 {
		return -1
	}
	return q.Limit - n
}
