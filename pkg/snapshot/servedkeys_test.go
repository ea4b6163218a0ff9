package snapshot

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// A snapshot of a cluster restored with --bump-revision holds an empty
// record at the bumped revision: etcdutl counts it as a key, etcd never
// serves it.
func TestServedKeysSkipTheBumpRecord(t *testing.T) {
	p := filepath.Join(t.TempDir(), "db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	rev := func(r uint64) []byte {
		k := make([]byte, 17)
		binary.BigEndian.PutUint64(k, r)
		k[8] = '_'
		return k
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(keyBucket)
		if err != nil {
			return err
		}
		kv := mvccpb.KeyValue{Key: []byte("/registry/configmaps/default/a"), Value: []byte("v"), CreateRevision: 5, ModRevision: 5, Version: 1}
		v, err := kv.Marshal()
		if err != nil {
			return err
		}
		if err := b.Put(rev(5), v); err != nil {
			return err
		}
		return b.Put(rev(1_000_000_005), []byte{}) // what the bump writes
	})
	if err != nil || db.Close() != nil {
		t.Fatal(err)
	}
	rep := &Report{}
	if err := analyze(p, rep); err != nil {
		t.Fatal(err)
	}
	if rep.TotalKey != 2 || rep.ServedKeys != 1 || rep.Revision != 1_000_000_005 {
		t.Errorf("totalKey %d (etcdutl's count, want 2), servedKeys %d (want 1), revision %d", rep.TotalKey, rep.ServedKeys, rep.Revision)
	}
}
