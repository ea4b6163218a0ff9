package keyspace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// FileOptions open a snapshot file.
type FileOptions struct {
	// Identities decrypt an age-encrypted file (snapshot.Identities reads
	// them from --identity files).
	Identities []age.Identity
	// DecryptDir, if set, takes the decrypted database instead of memory;
	// see snapshot.Decrypt.
	DecryptDir string
}

// File reads a snapshot file's keys straight from its bbolt database: the
// "key" bucket holds one record per revision (an mvccpb.KeyValue keyed by
// the revision, a tombstone for a deletion), so a walk keeps each key's
// newest record at the revision read, drops deleted keys, and counts the
// revisions stored. An encrypted file is decrypted into memory once, at
// OpenFile, and verified on the way; no plaintext reaches the disk unless
// DecryptDir says so. Close releases it.
type File struct {
	Path string
	// Encrypted tells whether the file as stored is encrypted.
	Encrypted bool
	// Size is the plain database's size, as etcd's dbSize would be.
	Size int64
	// Revision is the newest revision stored, CompactRevision the last
	// compaction's (0: never compacted).
	Revision        int64
	CompactRevision int64
	// Leases counts the leases the database holds.
	Leases int

	plain *snapshot.PlainFile
	db    *bolt.DB
	tx    *bolt.Tx
}

// Bucket and key names of etcd's backend schema.
var (
	keyBucket          = []byte("key")
	leaseBucket        = []byte("lease")
	metaBucket         = []byte("meta")
	finishedCompactRev = []byte("finishedCompactRev")
)

// OpenFile verifies and opens the snapshot at path.
func OpenFile(path string, o FileOptions) (*File, error) {
	p, err := snapshot.DecryptAny(path, o.Identities, o.DecryptDir)
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(p.Path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w: %v", path, snapshot.ErrNotBolt, err)
	}
	// One read transaction for the file's life: the records a walk keeps
	// point into its memory map.
	tx, err := db.Begin(false)
	if err != nil {
		db.Close()
		p.Close()
		return nil, err
	}
	f := &File{Path: path, Encrypted: p.Encrypted, Size: tx.Size(), plain: p, db: db, tx: tx}
	if b := tx.Bucket(keyBucket); b != nil {
		if k, _ := b.Cursor().Last(); len(k) >= 8 {
			f.Revision = revOf(k)
		}
	}
	if m := tx.Bucket(metaBucket); m != nil {
		if v := m.Get(finishedCompactRev); len(v) >= 8 {
			f.CompactRevision = revOf(v)
		}
	}
	if l := tx.Bucket(leaseBucket); l != nil {
		f.Leases = l.Stats().KeyN
	}
	return f, nil
}

// Close releases the database and removes any decrypted copy.
func (f *File) Close() error {
	err := f.tx.Rollback()
	if cerr := f.db.Close(); err == nil {
		err = cerr
	}
	if cerr := f.plain.Close(); err == nil {
		err = cerr
	}
	return err
}

// History implements Source: a snapshot holds every revision since the
// last compaction.
func (f *File) History() bool { return true }

// defaultFilePageKeys is a file page's key count when the query sets
// none: records are read from the memory map, so pages cost no request.
const defaultFilePageKeys = 1000

// Walk implements Source. It reads the key bucket once, from its oldest
// revision to the one asked for, keeping per key only its newest record
// (a slice of the memory map) and its counts, then yields the keys in
// order. Memory grows with the number of keys, not with their values.
func (f *File) Walk(ctx context.Context, q Query, fn func(Page) error) (Result, error) {
	rev, err := f.revision(q.Revision)
	if err != nil {
		return Result{}, err
	}
	keys, err := f.index(ctx, q, rev)
	if err != nil {
		return Result{}, err
	}
	size := q.PageSize
	if size <= 0 {
		size = defaultFilePageKeys
	}
	res := Result{Revision: rev}
	for start := 0; start < len(keys); start += size {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		page := keys[start:min(start+size, len(keys))]
		if left := q.left(res.Keys); left >= 0 && int64(len(page)) >= left {
			page, res.More = page[:left], int64(len(keys)-start) > left
		}
		entries := make([]Entry, len(page))
		for i, k := range page {
			if entries[i], err = k.entry(q.Detail); err != nil {
				return res, fmt.Errorf("%s: %w", f.Path, err)
			}
		}
		res.Keys += int64(len(entries))
		if err := fn(Page{Entries: entries, Revision: rev}); err != nil {
			if err == Stop {
				return res, nil
			}
			return res, err
		}
		if res.More {
			break
		}
	}
	return res, nil
}

// revision checks the revision asked for against what the file holds.
func (f *File) revision(want int64) (int64, error) {
	switch {
	case want == 0:
		return f.Revision, nil
	case want > f.Revision:
		return 0, hint.Permanent(fmt.Errorf("revision %d is after the snapshot's newest, %d", want, f.Revision), "ask for a revision at most %d", f.Revision)
	case want < f.CompactRevision:
		return 0, hint.Permanent(fmt.Errorf("revision %d was compacted away before the snapshot (compacted at %d)", want, f.CompactRevision), "ask for a revision from %d to %d", f.CompactRevision, f.Revision)
	}
	return want, nil
}

// fileKey is one key's state during a walk.
type fileKey struct {
	key       string
	rec       []byte // the newest record's value, in the memory map
	mod       int64  // its revision
	deleted   bool
	revisions int64
	history   int64
}

func (k *fileKey) entry(d Detail) (Entry, error) {
	e, err := parseRecord(k.rec, d == Values)
	if err != nil {
		return Entry{}, fmt.Errorf("key %q: %w", k.key, err)
	}
	// A tombstone's record holds the key alone.
	e.ModRevision = k.mod
	e.Revisions, e.HistoryBytes, e.Deleted = k.revisions, k.history, k.deleted
	return e, nil
}

// index reads the key bucket up to rev and returns the keys q selects,
// sorted.
func (f *File) index(ctx context.Context, q Query, rev int64) ([]*fileKey, error) {
	b := f.tx.Bucket(keyBucket)
	if b == nil {
		return nil, nil
	}
	key, end := q.ends()
	all := key == "\x00" && end == "\x00"
	byKey := map[string]*fileKey{}
	c := b.Cursor()
	n := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) < 17 {
			return nil, fmt.Errorf("%s: corrupt revision key %x", f.Path, k)
		}
		if revOf(k) > rev {
			break
		}
		if n++; n%65536 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		kk, vsize, err := recordKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: record %x: %w", f.Path, k, err)
		}
		if !all && !inRange(kk, key, end) {
			continue
		}
		s := byKey[string(kk)]
		if s == nil {
			s = &fileKey{key: string(kk)}
			byKey[s.key] = s
		}
		s.rec, s.mod, s.deleted = v, revOf(k), snapshot.IsTombstone(k)
		s.revisions++
		s.history += int64(len(kk)) + vsize
	}
	out := make([]*fileKey, 0, len(byKey))
	for _, s := range byKey {
		if !s.deleted || q.Deleted {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

func inRange(k []byte, key, end string) bool {
	if end == "" {
		return string(k) == key
	}
	return string(k) >= key && (end == "\x00" || string(k) < end)
}

// revOf is the main revision of a revision key (8 bytes big-endian, then
// '_' and the sub revision, then 't' for a tombstone).
func revOf(k []byte) int64 { return int64(binary.BigEndian.Uint64(k[:8])) }

// mvccpb.KeyValue's field numbers. Records are parsed by hand rather than
// unmarshalled so that a walk neither copies nor allocates their values.
const (
	fieldKey            = 1
	fieldCreateRevision = 2
	fieldModRevision    = 3
	fieldVersion        = 4
	fieldValue          = 5
	fieldLease          = 6
)

var errCorrupt = errors.New("corrupt mvccpb.KeyValue record")

// recordKey is a record's key and its value's size.
func recordKey(rec []byte) (key []byte, valueSize int64, err error) {
	e, err := parseRecord(rec, false)
	return e.Key, e.ValueSize, err
}

// parseRecord reads an mvccpb.KeyValue, its value only if withValue. The
// slices point into rec.
func parseRecord(rec []byte, withValue bool) (Entry, error) {
	var e Entry
	for len(rec) > 0 {
		num, typ, n := protowire.ConsumeTag(rec)
		if n < 0 {
			return e, errCorrupt
		}
		rec = rec[n:]
		switch {
		case typ == protowire.BytesType && (num == fieldKey || num == fieldValue):
			b, n := protowire.ConsumeBytes(rec)
			if n < 0 {
				return e, errCorrupt
			}
			if num == fieldKey {
				e.Key = b
			} else {
				e.ValueSize = int64(len(b))
				if withValue {
					e.Value = b
				}
			}
			rec = rec[n:]
		case typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(rec)
			if n < 0 {
				return e, errCorrupt
			}
			setVarint(&e, num, int64(v))
			rec = rec[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, rec)
			if n < 0 {
				return e, errCorrupt
			}
			rec = rec[n:]
		}
	}
	if withValue && e.Value == nil {
		e.Value = []byte{}
	}
	return e, nil
}

func setVarint(e *Entry, num protowire.Number, v int64) {
	switch num {
	case fieldCreateRevision:
		e.CreateRevision = v
	case fieldModRevision:
		e.ModRevision = v
	case fieldVersion:
		e.Version = v
	case fieldLease:
		e.Lease = v
	}
}
