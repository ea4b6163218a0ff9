package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Report is what `snapshot inspect` prints.
type Report struct {
	File      string `json:"file"`
	Encrypted bool   `json:"encrypted"`
	// FileSHA256 is the sha256 of the file as stored.
	FileSHA256 string `json:"fileSHA256"`
	// Size of the plain snapshot, trailer included.
	Size int64 `json:"size"`
	// The four numbers etcdutl snapshot status prints, computed by its code.
	Hash      string `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	// ServedKeys is TotalKey without the empty key: `snapshot restore
	// --bump-revision` writes an empty record at the bumped revision, which
	// TotalKey counts as a key and etcd never serves.
	ServedKeys int `json:"servedKeys"`
	// BoltKeys counts every key of every bucket, history included: what
	// etcdutl 3.5 prints as totalKey (3.6 and later count live keys).
	BoltKeys int    `json:"boltKeys"`
	Version  string `json:"version,omitempty"`
	// Raw: a member database copied from a data dir (copy-db), with no
	// sha256 trailer; not a consistent snapshot.
	Raw bool `json:"raw,omitempty"`
}

// Verified is what Verify found in a good file.
type Verified struct {
	// Size is the plain snapshot's size; FileSHA256 and FileSize the
	// file's own.
	Size       int64
	FileSHA256 string
	FileSize   int64
	// Bundle is the bundle's index when the file is one (its files each
	// checked against it); nil for a snapshot.
	Bundle *BundleIndex
	// Compressed: the snapshot is compressed (zstd or s2) in the file.
	Compressed bool
	// HeaderOnly: an age file read by VerifyStream without an identity.
	// Its header is well-formed; its content was not checked. Recipients
	// are the types of the header's stanzas (X25519...).
	HeaderOnly bool
	Recipients []string
}

// Verify checks a snapshot or bundle file (decrypting it if needed): a
// bundle's files against its index, then the snapshot against its
// sha256 trailer.
func Verify(path string, ids []age.Identity) (Verified, error) {
	f, err := os.Open(path)
	if err != nil {
		return Verified{}, err
	}
	defer f.Close()
	return verify(f, path, ids, false)
}

// VerifyStream is Verify of the bytes of a file named name as they come
// from r, a download, all of which it reads and, when copyTo is not nil,
// writes there as they come: a write that fails ends it with its error.
// Unlike Verify it takes an age file without identities, and then checks
// its header only.
func VerifyStream(r io.Reader, name string, ids []age.Identity, copyTo io.Writer) (Verified, error) {
	if copyTo == nil {
		return verify(r, name, ids, true)
	}
	w := &recordingWriter{w: copyTo}
	v, err := verify(io.TeeReader(r, w), name, ids, true)
	if w.err != nil {
		return v, fmt.Errorf("%w: %w", errSink, w.err)
	}
	return v, err
}

func verify(r io.Reader, name string, ids []age.Identity, headerOnly bool) (Verified, error) {
	fh := sha256.New()
	file := &countWriter{w: fh}
	enc, br, err := IsEncrypted(io.TeeReader(r, file))
	if err != nil {
		return Verified{}, err
	}
	var v Verified
	if enc && len(ids) == 0 && headerOnly {
		v.HeaderOnly = true
		v.Recipients, err = readAgeHeader(br)
	} else {
		v, err = verifyOpened(openStream(br, name, ids, nil, false))
	}
	if err != nil {
		return v, err
	}
	v.FileSHA256, v.FileSize = hex.EncodeToString(fh.Sum(nil)), file.n
	return v, nil
}

// verifyOpened reads what openStream opened to its end and checks it.
func verifyOpened(o opened, err error) (Verified, error) {
	if err != nil {
		return Verified{}, err
	}
	v := Verified{Compressed: o.Compressed}
	if o.Bundle != nil {
		v.Bundle = &o.Bundle.Index
	}
	v.Size, err = VerifyReader(o)
	return v, err
}

// Analyze reads a plain (decrypted) snapshot as etcdutl snapshot status
// does: the bbolt integrity check, the hash, the newest revision and the
// live keys. What each resource holds is keyspace's to count.
func Analyze(p *PlainFile) (*Report, error) {
	rep := &Report{Size: p.Size, FileSHA256: p.FileSHA256, Encrypted: p.Encrypted, Raw: p.Raw}
	if err := analyze(p.Path, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// Bucket and key names of etcd's backend schema.
var (
	keyBucket      = []byte("key")
	metaBucket     = []byte("meta")
	storageVersion = []byte("storageVersion")
)

// analyze reads the database once. It computes what etcdutl snapshot
// status prints, by the same rules (a CRC-32C over every bucket name, key
// and value in order; the newest revision; the live keys; the size). It
// does not import etcd's server packages, which would double the plugin's
// size and start-up memory; the tests check the numbers against
// etcdutl's own code.
func analyze(dbPath string, rep *Report) error {
	db, err := bolt.Open(dbPath, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotBolt, err)
	}
	defer db.Close()
	// Whether each key's newest revision deletes it.
	deleted := map[string]bool{}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	err = db.View(func(tx *bolt.Tx) error {
		var problems []string
		for e := range tx.Check() {
			problems = append(problems, e.Error())
		}
		if len(problems) > 0 {
			return fmt.Errorf("bbolt integrity check found %d problems: %s", len(problems), strings.Join(problems, "; "))
		}
		rep.TotalSize = tx.Size()
		if m := tx.Bucket(metaBucket); m != nil {
			rep.Version = string(m.Get(storageVersion))
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			h.Write(name)
			isKey := bytes.Equal(name, keyBucket)
			return b.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				rep.BoltKeys++
				if !isKey {
					return nil
				}
				var kv mvccpb.KeyValue
				if len(k) < 8 {
					return fmt.Errorf("corrupt revision key %x", k)
				}
				if err := kv.Unmarshal(v); err != nil {
					return fmt.Errorf("corrupt key revision %x: %w", k, err)
				}
				rep.Revision = int64(binary.BigEndian.Uint64(k[:8]))
				deleted[string(kv.Key)] = IsTombstone(k)
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	rep.Hash = fmt.Sprintf("%x", h.Sum32())
	for k, gone := range deleted {
		if gone {
			continue
		}
		rep.TotalKey++
		if k != "" {
			rep.ServedKeys++
		}
	}
	return nil
}

// IsTombstone tells whether a revision key of the key bucket is a
// deletion's: the 17-byte revision, then 't'.
func IsTombstone(k []byte) bool { return len(k) == 18 && k[17] == 't' }

// Revision reads the newest revision of a plain snapshot file, cheaply:
// the last key of the key bucket is the newest revision.
func Revision(path string) (int64, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %v", path, ErrNotBolt, err)
	}
	defer db.Close()
	var rev int64
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(keyBucket)
		if b == nil {
			return nil
		}
		if k, _ := b.Cursor().Last(); len(k) >= 8 {
			rev = int64(binary.BigEndian.Uint64(k[:8]))
		}
		return nil
	})
	return rev, err
}
