// Package snapshot writes, verifies and inspects etcd snapshot files: a
// bbolt database followed by a sha256 trailer of everything before it,
// which is what etcd's Maintenance.Snapshot streams.
package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// Errors a corrupt file gets, wrapped with details.
var (
	ErrTooSmall     = errors.New("file is too small to be an etcd snapshot")
	ErrNoTrailer    = errors.New("no sha256 trailer")
	ErrHashMismatch = errors.New("sha256 trailer does not match the content")
	ErrNotBolt      = errors.New("not a bbolt database")
)

const (
	trailerSize = sha256.Size
	// boltMagic sits after the 16-byte page header of both meta pages.
	boltMagic = 0xED0CDAED
)

// HasTrailer tells from the size alone whether a file ends with the hash,
// by the rule etcd's own tools use: database pages are whole 512-byte
// sectors, so a trailer leaves a remainder of exactly 32.
func HasTrailer(size int64) bool { return size%512 == trailerSize }

// TrailerWriter hashes a snapshot stream as it passes and, at the end,
// tells whether its last 32 bytes are the sha256 of everything before.
// It keeps only those 32 bytes, so memory stays flat.
type TrailerWriter struct {
	h    hash.Hash
	tail []byte
	n    int64
	head []byte // first bytes, to check the bbolt magic
}

// NewTrailerWriter returns a writer ready to hash a stream.
func NewTrailerWriter() *TrailerWriter { return &TrailerWriter{h: sha256.New()} }

// Write implements io.Writer.
func (t *TrailerWriter) Write(p []byte) (int, error) {
	n := len(p)
	t.n += int64(n)
	if len(t.head) < 32 {
		t.head = append(t.head, p[:min(len(p), 32-len(t.head))]...)
	}
	if len(p) >= trailerSize {
		// Everything held back so far, and all of p but its last 32
		// bytes, is content: hash it in place rather than copying.
		t.h.Write(t.tail)
		t.h.Write(p[:len(p)-trailerSize])
		t.tail = append(t.tail[:0], p[len(p)-trailerSize:]...)
		return n, nil
	}
	buf := append(t.tail, p...)
	if cut := len(buf) - trailerSize; cut > 0 {
		t.h.Write(buf[:cut])
		buf = buf[cut:]
	}
	t.tail = append(t.tail[:0], buf...)
	return n, nil
}

// Size is the number of bytes seen.
func (t *TrailerWriter) Size() int64 { return t.n }

// Check reports whether the stream was a complete snapshot.
func (t *TrailerWriter) Check() error {
	if t.n < 2*4096 {
		return fmt.Errorf("%w (%d bytes)", ErrTooSmall, t.n)
	}
	if len(t.head) < 24 || binary.LittleEndian.Uint32(t.head[16:20]) != boltMagic {
		return fmt.Errorf("%w: the bbolt magic number is missing at the start", ErrNotBolt)
	}
	if !HasTrailer(t.n) {
		return fmt.Errorf("%w: %d bytes is not a whole number of 512-byte sectors plus 32; the file is truncated, or is a raw member db copied from a data dir", ErrNoTrailer, t.n)
	}
	if got := t.h.Sum(nil); !bytes.Equal(got, t.tail) {
		return fmt.Errorf("%w: content hashes to %x, trailer says %x; the file is truncated or corrupt", ErrHashMismatch, got, t.tail)
	}
	return nil
}

// rawPage is the unit a member's database file grows by: bbolt's pages
// are the OS page size, a multiple of 4096 on every platform etcd runs on.
const rawPage = 4096

// CheckRaw reports whether the stream was a whole member database as it
// lies in a data dir (no trailer): the bbolt magic, whole pages. Nothing
// in it proves the content whole; see IsRaw.
func (t *TrailerWriter) CheckRaw() error {
	if t.n < 2*rawPage {
		return fmt.Errorf("%w (%d bytes)", ErrTooSmall, t.n)
	}
	if len(t.head) < 24 || binary.LittleEndian.Uint32(t.head[16:20]) != boltMagic {
		return fmt.Errorf("%w: the bbolt magic number is missing at the start", ErrNotBolt)
	}
	if t.n%rawPage != 0 {
		return fmt.Errorf("%w: %d bytes is not a whole number of 4096-byte pages: the copy is truncated", ErrNotBolt, t.n)
	}
	return nil
}

// IsRaw tells a member database copied from a data dir (copy-db) from a
// snapshot by the error a snapshot check gave and the size: no trailer,
// whole pages.
func IsRaw(err error, size int64) bool {
	return errors.Is(err, ErrNoTrailer) && size%rawPage == 0
}

// Digest is the trailer itself: the sha256 of the database part.
func (t *TrailerWriter) Digest() []byte { return append([]byte{}, t.tail...) }

// FileSum is the sha256 of every byte seen, trailer included: the
// checksum of the file as written, without hashing the stream twice.
func (t *TrailerWriter) FileSum() []byte {
	c := cloneHash(t.h)
	c.Write(t.tail)
	return c.Sum(nil)
}

// cloneHash copies a hash's state: through hash.Cloner, or else through
// its binary marshalling, which every sha256 implementation offers.
func cloneHash(h hash.Hash) hash.Hash {
	if c, ok := h.(hash.Cloner); ok {
		if d, err := c.Clone(); err == nil {
			return d
		}
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	d := sha256.New()
	if err == nil {
		err = d.(encoding.BinaryUnmarshaler).UnmarshalBinary(state)
	}
	if err != nil {
		// Not reached with crypto/sha256.
		panic(fmt.Sprintf("copying a sha256 state: %v", err))
	}
	return d
}

// VerifyReader reads a whole snapshot stream and checks it.
func VerifyReader(r io.Reader) (int64, error) {
	tw := NewTrailerWriter()
	if _, err := io.Copy(tw, r); err != nil {
		return tw.Size(), err
	}
	return tw.Size(), tw.Check()
}

// VerifyFile checks a plain snapshot file.
func VerifyFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return VerifyReader(f)
}
