package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// revKey is etcd's revision key: main and sub revision, big-endian,
// joined by '_', plus 't' for a deletion.
func revKey(main int64, tombstone bool) []byte {
	k := make([]byte, 17, 18)
	binary.BigEndian.PutUint64(k, uint64(main))
	k[8] = '_'
	binary.BigEndian.PutUint64(k[9:], 0)
	if tombstone {
		k = append(k, 't')
	}
	return k
}

// value returns n bytes that do not compress to nothing.
func value(n int, seed int64) []byte {
	v := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(v)
	return v
}

// update runs fn in one committed transaction.
func update(t *testing.T, db *bolt.DB, fn func(tx *bolt.Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// putRevs puts revisions from..to (inclusive) in the key bucket, in one
// transaction; size gives each value's size.
func putRevs(t *testing.T, db *bolt.DB, from, to int64, size func(rev int64) int) {
	t.Helper()
	update(t, db, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(keyBucket)
		if err != nil {
			return err
		}
		for r := from; r <= to; r++ {
			if err := b.Put(revKey(r, false), value(size(r), r)); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteRevs deletes revisions from..to in one transaction.
func deleteRevs(t *testing.T, db *bolt.DB, from, to int64) {
	t.Helper()
	update(t, db, func(tx *bolt.Tx) error {
		b := tx.Bucket(keyBucket)
		for r := from; r <= to; r++ {
			if err := b.Delete(revKey(r, false)); err != nil {
				return err
			}
		}
		return nil
	})
}

// staleHigher writes revisions above the final last key and deletes them
// in a later transaction, so that freed pages hold keys higher than the
// last key of the tree.
func staleHigher(t *testing.T, db *bolt.DB, from int64, n int64, size int) {
	t.Helper()
	putRevs(t, db, from, from+n-1, func(int64) int { return size })
	deleteRevs(t, db, from, from+n-1)
}

func otherBuckets(t *testing.T, db *bolt.DB) {
	t.Helper()
	update(t, db, func(tx *bolt.Tx) error {
		for _, name := range []string{"meta", "lease", "members", "alarm"} {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			if err := b.Put([]byte("consistent_index"), value(8, 1)); err != nil {
				return err
			}
		}
		return nil
	})
}

func small(int64) int { return 40 }

// varied gives values from a few bytes to 20 KiB (overflow pages).
func varied(r int64) int {
	if r%5000 == 0 {
		return 20 << 10
	}
	return int(r%300) + 5
}

// buildDB creates a bbolt file in dir and fills it.
func buildDB(t *testing.T, dir string, opts *bolt.Options, fill func(t *testing.T, db *bolt.DB)) string {
	path := filepath.Join(dir, "db")
	db, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// streamRevision writes data through a RevisionWriter in chunks.
func streamRevision(t testing.TB, data []byte, chunk int) (int64, error) {
	w := NewRevisionWriter()
	for len(data) > 0 {
		n := min(chunk, len(data))
		if k, err := w.Write(data[:n]); k != n || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", n, k, err)
		}
		data = data[n:]
	}
	return w.Revision()
}

var chunkSizes = []int{1, 7, 4095, 65537, 1 << 40}

func TestRevisionWriter(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *bolt.Options
		fill func(t *testing.T, db *bolt.DB)
		want int64
	}{{
		name: "no key bucket",
		fill: otherBuckets,
		want: 0,
	}, {
		name: "empty key bucket",
		fill: func(t *testing.T, db *bolt.DB) {
			otherBuckets(t, db)
			update(t, db, func(tx *bolt.Tx) error { _, err := tx.CreateBucket(keyBucket); return err })
		},
		want: 0,
	}, {
		name: "key bucket emptied by deletes",
		fill: func(t *testing.T, db *bolt.DB) {
			otherBuckets(t, db)
			putRevs(t, db, 1, 3000, small)
			deleteRevs(t, db, 1, 1500)
			deleteRevs(t, db, 1501, 3000)
		},
		want: 0,
	}, {
		name: "small inline key bucket",
		fill: func(t *testing.T, db *bolt.DB) {
			otherBuckets(t, db)
			putRevs(t, db, 1, 3, small)
		},
		want: 3,
	}, {
		name: "inline key bucket ending with a tombstone",
		fill: func(t *testing.T, db *bolt.DB) {
			otherBuckets(t, db)
			putRevs(t, db, 1, 4, small)
			update(t, db, func(tx *bolt.Tx) error { return tx.Bucket(keyBucket).Put(revKey(5, true), nil) })
		},
		want: 5,
	}, {
		name: "inline key bucket with stale higher keys",
		fill: func(t *testing.T, db *bolt.DB) {
			otherBuckets(t, db)
			putRevs(t, db, 1, 10, small)
			staleHigher(t, db, 900, 1, 100)
		},
		want: 10,
	}, {
		name: "last key shorter than a revision",
		fill: func(t *testing.T, db *bolt.DB) {
			putRevs(t, db, 1, 2, small)
			update(t, db, func(tx *bolt.Tx) error { return tx.Bucket(keyBucket).Put([]byte{0xff, 1, 2}, []byte("x")) })
		},
		want: 0,
	}, {
		name: "big key bucket with freed higher keys",
		fill: func(t *testing.T, db *bolt.DB) {
			otherBuckets(t, db)
			for from := int64(1); from <= 50000; from += 10000 {
				putRevs(t, db, from, from+9999, varied)
			}
			putRevs(t, db, 25001, 25001, func(int64) int { return 1 << 20 })
			staleHigher(t, db, 900000, 2000, 100)
			staleHigher(t, db, 800000, 1, 1<<20)
			putRevs(t, db, 50001, 50100, small)
			deleteRevs(t, db, 50051, 50100)
			update(t, db, func(tx *bolt.Tx) error { return tx.Bucket(keyBucket).Put(revKey(50051, true), nil) })
		},
		want: 50051,
	}, {
		name: "last value of 1 MiB",
		fill: func(t *testing.T, db *bolt.DB) {
			otherBuckets(t, db)
			putRevs(t, db, 1, 1000, small)
			staleHigher(t, db, 900, 1, 1<<20)
			putRevs(t, db, 1001, 1001, func(int64) int { return 1 << 20 })
		},
		want: 1001,
	}, {
		name: "page size 16 KiB",
		opts: &bolt.Options{PageSize: 16384},
		fill: func(t *testing.T, db *bolt.DB) {
			otherBuckets(t, db)
			putRevs(t, db, 1, 20000, varied)
			staleHigher(t, db, 90000, 3000, 50)
			putRevs(t, db, 20001, 20001, func(int64) int { return 20 << 10 })
		},
		want: 20001,
	}, {
		name: "root bucket with branch pages",
		fill: func(t *testing.T, db *bolt.DB) {
			update(t, db, func(tx *bolt.Tx) error {
				for i := range 3000 {
					for _, p := range []string{"a", "z"} {
						b, err := tx.CreateBucket(fmt.Appendf(nil, "%s%05d", p, i))
						if err != nil {
							return err
						}
						if err := b.Put([]byte("k"), value(200, int64(i))); err != nil {
							return err
						}
					}
				}
				return nil
			})
			putRevs(t, db, 1, 5000, small)
			staleHigher(t, db, 7000, 500, 30)
		},
		want: 5000,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			path := buildDB(t, t.TempDir(), tc.opts, tc.fill)
			want, err := Revision(path)
			if err != nil {
				t.Fatal(err)
			}
			if want != tc.want {
				t.Fatalf("Revision(path) = %d, the test expects %d", want, tc.want)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range chunkSizes {
				if got, err := streamRevision(t, data, chunk); err != nil || got != want {
					t.Errorf("chunks of %d: got %d, %v; want %d", chunk, got, err, want)
				}
			}
			// An etcd snapshot ends with a sha256 trailer.
			sum := sha256.Sum256(data)
			if got, err := streamRevision(t, append(data, sum[:]...), 65537); err != nil || got != want {
				t.Errorf("with a trailer: got %d, %v; want %d", got, err, want)
			}
		})
	}
}

// bigDB builds, once per test, a db whose key bucket has branch pages,
// overflow pages and freed pages with higher keys.
func bigDB(t *testing.T) (string, int64) {
	path := buildDB(t, t.TempDir(), nil, func(t *testing.T, db *bolt.DB) {
		otherBuckets(t, db)
		putRevs(t, db, 1, 20000, varied)
		staleHigher(t, db, 900000, 2000, 100)
		putRevs(t, db, 20001, 20001, func(int64) int { return 1 << 20 })
	})
	return path, 20001
}

// TestRevisionWriterMemory checks that the writer keeps about one page of
// bytes, not the file.
func TestRevisionWriterMemory(t *testing.T) {
	path, want := bigDB(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w := NewRevisionWriter()
	for b := data; len(b) > 0; b = b[min(len(b), 4096):] {
		w.Write(b[:min(len(b), 4096)])
	}
	if got, err := w.Revision(); err != nil || got != want {
		t.Fatalf("got %d, %v; want %d", got, err, want)
	}
	if limit := 3 << 20; cap(w.buf) > limit || len(data) < 3*limit {
		t.Errorf("buffer of %d bytes for a file of %d", cap(w.buf), len(data))
	}
	if pages := len(data) / 4096; len(w.recs) > pages {
		t.Errorf("%d page records for %d pages", len(w.recs), pages)
	}
}

// TestRevisionWriterStaleOverflow gives a free page a stale header whose
// overflow covers the key bucket's last leaf: the stream cannot be walked
// by overflow counts, and the writer must still find that leaf.
func TestRevisionWriterStaleOverflow(t *testing.T) {
	path, want := bigDB(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	if err := db.View(func(tx *bolt.Tx) error { root = uint64(tx.Bucket(keyBucket).RootPage()); return nil }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	le := binary.LittleEndian
	ps := uint64(le.Uint32(data[16+8:]))
	m0, m1 := parseBoltMeta(data[:boltMetaEnd]), parseBoltMeta(data[ps:ps+boltMetaEnd])
	if m1.txid > m0.txid {
		m0 = m1
	}
	// Follow the last child to the last leaf.
	onPath := map[uint64]bool{}
	id := root
	for {
		onPath[id] = true
		p := data[id*ps:]
		if le.Uint16(p[8:]) == boltLeafFlag {
			break
		}
		count := int(le.Uint16(p[10:]))
		id = le.Uint64(p[16+16*(count-1)+8:])
	}
	// The nearest tree page below the last leaf that bbolt does not read
	// for the revision gets overflow enough to cover the leaf.
	f := id - 1
	for ; f >= 2; f-- {
		flags := le.Uint16(data[f*ps+8:])
		if !onPath[f] && f != m0.root && (flags == boltLeafFlag || flags == boltBranchFlag) && le.Uint64(data[f*ps:]) == f {
			break
		}
	}
	if f < 2 || id-f > 50 {
		t.Fatalf("no page to corrupt below page %d", id)
	}
	t.Logf("page %d gets %d overflow pages, over the last leaf %d", f, id-f, id)
	le.PutUint32(data[f*ps+12:], uint32(id-f))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Revision(path); err != nil || got != want {
		t.Fatalf("Revision(path) = %d, %v after the change; want %d", got, err, want)
	}
	for _, chunk := range chunkSizes[1:] {
		if got, err := streamRevision(t, data, chunk); err != nil || got != want {
			t.Errorf("chunks of %d: got %d, %v; want %d", chunk, got, err, want)
		}
	}
}

// TestRevisionWriterMeta0Invalid: with meta page 0 broken, bbolt finds
// meta page 1 by trying page sizes; so does the writer.
func TestRevisionWriterMeta0Invalid(t *testing.T) {
	for _, ps := range []int{4096, 16384} {
		t.Run(fmt.Sprint(ps), func(t *testing.T) {
			path := buildDB(t, t.TempDir(), &bolt.Options{PageSize: ps}, func(t *testing.T, db *bolt.DB) {
				otherBuckets(t, db)
				putRevs(t, db, 1, 3000, small)
				putRevs(t, db, 3001, 3002, small)
			})
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			data[16+20] ^= 0xff // in the checksummed meta
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			want, err := Revision(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range chunkSizes[1:] {
				if got, err := streamRevision(t, data, chunk); err != nil || got != want {
					t.Errorf("chunks of %d: got %d, %v; want %d", chunk, got, err, want)
				}
			}
		})
	}
}

func TestRevisionWriterErrors(t *testing.T) {
	path, _ := bigDB(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := int(binary.LittleEndian.Uint32(data[16+8:]))
	// The file bbolt leaves can be longer than the database it holds.
	m0, m1 := parseBoltMeta(data[:boltMetaEnd]), parseBoltMeta(data[ps:ps+boltMetaEnd])
	if m1.txid > m0.txid {
		m0 = m1
	}
	dbSize := int(m0.pgid) * ps
	garbage := value(200<<10, 7)
	bothBad := bytes.Clone(data)
	bothBad[16] ^= 1
	bothBad[ps+16] ^= 1
	for _, tc := range []struct {
		name string
		data []byte
		want string
		bolt bool // errors.Is ErrNotBolt
	}{
		{"empty", nil, "the stream ended inside page 0", false},
		{"inside meta page 0", data[:50], "the stream ended inside page 0", false},
		{"before meta page 1", data[:ps+10], "the stream ended before the meta in page 1", false},
		{"cut in the middle", data[:len(data)/2+1000], fmt.Sprintf("the stream ended inside page %d", (len(data)/2+1000)/ps), false},
		{"cut at a page boundary", data[:len(data)/2/ps*ps], fmt.Sprintf("the stream ended inside page %d", len(data)/2/ps), false},
		{"last byte missing", data[:dbSize-1], fmt.Sprintf("the stream ended inside page %d", m0.pgid-1), false},
		{"garbage", garbage, "not a bbolt database: bad magic in both meta pages", true},
		{"short garbage", garbage[:1000], "not a bbolt database: meta page 0 has bad magic and the stream ended before meta page 1", true},
		{"zeros", make([]byte, 1<<20), "bad magic in both meta pages", true},
		{"both metas corrupt", bothBad, "not a bbolt database: bad magic in both meta pages", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{7, 65537} {
				got, err := streamRevision(t, tc.data, chunk)
				if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrNotBolt) != tc.bolt {
					t.Errorf("chunks of %d: got %d, %v; want an error with %q", chunk, got, err, tc.want)
				}
			}
		})
	}
}

// TestRevisionWriterCorrupt flips bytes of a small db: no panic, and the
// answer does not depend on how the stream is cut.
func TestRevisionWriterCorrupt(t *testing.T) {
	seed := smallDB(t, 100)
	rnd := rand.New(rand.NewSource(1))
	for i := range 300 {
		data := bytes.Clone(seed)
		for range 1 + rnd.Intn(8) {
			// Mostly past the meta pages, which a flip only invalidates.
			data[2048+rnd.Intn(len(data)-2048)] = byte(rnd.Intn(256))
		}
		whole, errWhole := streamRevision(t, data, len(data))
		got, err := streamRevision(t, data, 1+i%13)
		if got != whole || fmt.Sprint(err) != fmt.Sprint(errWhole) {
			t.Fatalf("mutation %d: whole %d, %v; in chunks %d, %v", i, whole, errWhole, got, err)
		}
	}
}

// smallDB is a db with 1 KiB pages and n revisions: inline when n is
// small, a few pages otherwise.
func smallDB(t testing.TB, n int64) []byte {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(keyBucket)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(metaBucket); err != nil {
			return err
		}
		for r := int64(1); r <= n; r++ {
			if err := b.Put(revKey(r, r%7 == 0), value(int(r%50), r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func FuzzRevisionWriter(f *testing.F) {
	f.Add(smallDB(f, 3))
	f.Add(smallDB(f, 60))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, errWhole := streamRevision(t, data, len(data)+1)
		got, err := streamRevision(t, data, 1+len(data)%97)
		if got != whole || fmt.Sprint(err) != fmt.Sprint(errWhole) {
			t.Fatalf("whole: %d, %v; in chunks: %d, %v", whole, errWhole, got, err)
		}
	})
}
