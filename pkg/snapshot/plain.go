package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
)

// PlainFile is the plain database of a snapshot, verified, held where
// bbolt can open it and a reader can stream it. Close removes it.
type PlainFile struct {
	// File reads the plain snapshot from its start, trailer included.
	*os.File
	// Path opens the same bytes by name, for bbolt (/proc/self/fd/N for
	// a memfd).
	Path string
	// Encrypted tells whether the file as stored is encrypted;
	// Compressed whether its snapshot is compressed (zstd or s2).
	Encrypted, Compressed bool
	// InMemory is set when no byte of the plaintext went to a disk.
	InMemory bool
	// Size is the plain size; FileSHA256 the sha256 of the file as stored.
	Size       int64
	FileSHA256 string
	// Raw is set for a member database copied from a data dir (copy-db),
	// which DecryptAny accepts: no trailer vouches for it, and it is not
	// a consistent snapshot.
	Raw bool
	// Bundle is set when the file is a DR bundle: its files, checked and
	// held in memory.
	Bundle *Bundle
	remove string
}

// Close closes the file and removes whatever it wrote.
func (p *PlainFile) Close() error {
	err := p.File.Close()
	if p.remove != "" {
		if rerr := os.Remove(p.remove); err == nil {
			err = rerr
		}
	}
	return err
}

// Decrypt decrypts the snapshot at path and verifies it on the way, in
// one pass. The plaintext is every Secret of the cluster, so by default
// it goes to memory only: an anonymous memfd on Linux (memory and swap,
// never a file). With dir set, or where no memfd exists, it is written to
// a private file in dir, removed on Close; without dir there it is an
// error. A plain file is verified and read where it is; a compressed
// one is decompressed as an encrypted one is decrypted.
func Decrypt(path string, ids []age.Identity, dir string) (*PlainFile, error) {
	return decrypt(path, ids, dir, false)
}

// DecryptAny is Decrypt that also accepts a member database copied from
// a data dir (copy-db), with Raw set: for the commands that only read.
func DecryptAny(path string, ids []age.Identity, dir string) (*PlainFile, error) {
	return decrypt(path, ids, dir, true)
}

func decrypt(path string, ids []age.Identity, dir string, allowRaw bool) (*PlainFile, error) {
	fh := sha256.New()
	rc, err := openFile(path, ids, fh, true)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if !rc.Encrypted && !rc.Compressed {
		size, err := VerifyReader(rc)
		raw := allowRaw && IsRaw(err, size)
		if err != nil && !raw {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		return &PlainFile{File: f, Path: path, Size: size, FileSHA256: hex.EncodeToString(fh.Sum(nil)), Raw: raw}, nil
	}
	p, err := newPlainFile(path, dir)
	if err != nil {
		return nil, err
	}
	tw := NewTrailerWriter()
	if _, err := io.Copy(io.MultiWriter(p.File, tw), rc); err != nil {
		p.Close()
		return nil, fmt.Errorf("decrypting %s: %w", path, err)
	}
	err = tw.Check()
	p.Raw = allowRaw && IsRaw(err, tw.Size())
	if err != nil && !p.Raw {
		p.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := p.File.Seek(0, io.SeekStart); err != nil {
		p.Close()
		return nil, err
	}
	p.Encrypted, p.Compressed, p.Size, p.FileSHA256, p.Bundle = rc.Encrypted, rc.Compressed, tw.Size(), hex.EncodeToString(fh.Sum(nil)), rc.Bundle
	return p, nil
}

// newPlainFile makes the place for a decrypted snapshot: memory unless
// dir is set.
func newPlainFile(path, dir string) (*PlainFile, error) {
	if dir == "" {
		f, err := memFile("kubectl-etcd-plain")
		if err != nil {
			return nil, fmt.Errorf("decrypting %s: %w", path, err)
		}
		return &PlainFile{File: f, Path: memPath(f), InMemory: true}, nil
	}
	f, err := os.CreateTemp(dir, "kubectl-etcd-plain-*.db")
	if err != nil {
		return nil, fmt.Errorf("decrypting %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &PlainFile{File: f, Path: f.Name(), remove: f.Name()}, nil
}
