// Package snapshottest writes small etcd snapshot files for tests without
// starting etcd: a bbolt database laid out as etcd's backend (a "key"
// bucket of mvccpb.KeyValue records by revision, tombstones for
// deletions, the leases, the last compaction) followed by the sha256
// trailer etcd appends, so that every reader of the plugin takes it for a
// snapshot. Written twice, the same ops give the same bytes.
package snapshottest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Op is one write, at the next revision.
type Op struct {
	Key string
	// Size is the value's length, in x's.
	Size int
	// Delete deletes Key instead.
	Delete bool
	// Lease is the lease the key is attached to (0: none).
	Lease int64
}

// Put and Del are the usual ops.
func Put(key string, size int) Op { return Op{Key: key, Size: size} }
func Del(key string) Op           { return Op{Key: key, Delete: true} }

// Snapshot is what Write stores besides the ops.
type Snapshot struct {
	Ops []Op
	// Leases is how many leases the lease bucket holds.
	Leases int
	// CompactedAt is the last compaction's revision (0: none).
	CompactedAt int64
}

// Write writes s to path: the ops at revisions 2, 3, ..., as etcd
// numbers the first write of a new cluster.
func Write(t testing.TB, path string, s Snapshot) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "db")
	b, err := bolt.Open(db, 0o600, &bolt.Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(func(tx *bolt.Tx) error { return fill(tx, s) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := os.WriteFile(path, append(data, sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fill(tx *bolt.Tx, s Snapshot) error {
	keys, err := tx.CreateBucket([]byte("key"))
	if err != nil {
		return err
	}
	type state struct{ created, version int64 }
	live := map[string]*state{}
	for i, op := range s.Ops {
		rev := int64(i + 2)
		kv := mvccpb.KeyValue{Key: []byte(op.Key)}
		st := live[op.Key]
		switch {
		case op.Delete:
			delete(live, op.Key)
		case st == nil:
			st = &state{created: rev}
			live[op.Key] = st
			fallthrough
		default:
			st.version++
			kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease = st.created, rev, st.version, op.Lease
			kv.Value = []byte(strings.Repeat("x", op.Size))
		}
		v, err := kv.Marshal()
		if err != nil {
			return err
		}
		if err := keys.Put(revKey(rev, op.Delete), v); err != nil {
			return err
		}
	}
	leases, err := tx.CreateBucket([]byte("lease"))
	if err != nil {
		return err
	}
	for i := range s.Leases {
		if err := leases.Put(binary.BigEndian.AppendUint64(nil, uint64(i+1)), []byte{}); err != nil {
			return err
		}
	}
	meta, err := tx.CreateBucket([]byte("meta"))
	if err != nil {
		return err
	}
	if s.CompactedAt > 0 {
		return meta.Put([]byte("finishedCompactRev"), revKey(s.CompactedAt, false))
	}
	return nil
}

// revKey is a revision's key in the key bucket: the main revision and a
// sub revision of 0, big-endian, joined by '_'; 't' ends a deletion's.
func revKey(rev int64, tombstone bool) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(rev))
	k = binary.BigEndian.AppendUint64(append(k, '_'), 0)
	if tombstone {
		k = append(k, 't')
	}
	return k
}

// Sealed is a small snapshot as a schedule keeps it, zstd-compressed then
// age-encrypted for r, and the snapshot itself.
func Sealed(t testing.TB, r age.Recipient) (file, plain []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "snap.db")
	Write(t, p, Snapshot{Ops: []Op{Put("/registry/configmaps/default/a", 3000)}})
	plain, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var z, out bytes.Buffer
	zw, err := zstd.NewWriter(&z)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(plain)
	zw.Close()
	w, err := age.Encrypt(&out, r)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(z.Bytes())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), plain
}
