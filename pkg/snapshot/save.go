package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// Source opens a fresh snapshot stream; Save calls it again to retry.
type Source func(ctx context.Context) (io.ReadCloser, error)

// Sink is where a verified snapshot goes: a file (through FILE.part) or
// a stream such as stdout.
type Sink interface {
	// Begin starts a new attempt and returns where to write.
	Begin() (io.Writer, error)
	// Abort discards the attempt; it must leave nothing under the final name.
	Abort()
	// Commit makes a verified attempt final.
	Commit() error
	// Retryable says whether a failed attempt can start over (a stream
	// that already went to stdout cannot).
	Retryable() bool
}

// Options tune Save.
type Options struct {
	Retries int
	// Encrypt wraps the sink, e.g. with age; nil writes plain bytes.
	Encrypt func(io.Writer) (io.WriteCloser, error)
	// Progress, if set, wraps the snapshot stream to report progress.
	Progress func(io.Reader) io.Reader
	// Notify receives one line per retry.
	Notify func(format string, args ...any)
}

// Result describes a saved snapshot.
type Result struct {
	// Size is the plain snapshot's size, trailer included.
	Size int64
	// SnapshotSHA256 is the trailer: the sha256 of the database part.
	SnapshotSHA256 string
	// FileSHA256 is the sha256 of the bytes written (differs when encrypted).
	FileSHA256 string
	Attempts   int
}

// Save streams a snapshot from src into sink, checking etcd's sha256
// trailer on the way, and commits only a verified snapshot. A broken
// stream is retried from the start up to opts.Retries times.
func Save(ctx context.Context, src Source, sink Sink, opts Options) (*Result, error) {
	var lastErr error
	for attempt := 1; attempt <= opts.Retries+1; attempt++ {
		if attempt > 1 {
			if !sink.Retryable() {
				break
			}
			if opts.Notify != nil {
				opts.Notify("snapshot attempt %d failed: %v; retrying from the start", attempt-1, lastErr)
			}
		}
		res, err := saveOnce(ctx, src, sink, opts)
		if err == nil {
			res.Attempts = attempt
			return res, nil
		}
		sink.Abort()
		lastErr = err
		// Cancellation and a corrupt snapshot are not transient.
		if ctx.Err() != nil || errors.Is(err, ErrHashMismatch) || errors.Is(err, ErrNotBolt) || errors.Is(err, errSink) {
			break
		}
	}
	return nil, lastErr
}

// errSink marks local write failures (disk full...), which a retry of
// the stream does not fix.
var errSink = errors.New("writing the snapshot")

type sinkWriter struct{ w io.Writer }

func (s sinkWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", errSink, err)
	}
	return n, err
}

func saveOnce(ctx context.Context, src Source, sink Sink, opts Options) (*Result, error) {
	rc, err := src(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out, err := sink.Begin()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSink, err)
	}
	// A plain file's checksum comes from the trailer check's own hash;
	// only ciphertext needs a second one.
	dst := io.Writer(sinkWriter{out})
	var fileHash hash.Hash
	var enc io.WriteCloser
	if opts.Encrypt != nil {
		fileHash = sha256.New()
		dst = sinkWriter{io.MultiWriter(out, fileHash)}
		if enc, err = opts.Encrypt(dst); err != nil {
			return nil, err
		}
		dst = enc
	}
	tw := NewTrailerWriter()
	var r io.Reader = rc
	if opts.Progress != nil {
		r = opts.Progress(r)
	}
	if _, err := io.Copy(io.MultiWriter(dst, tw), r); err != nil {
		if errors.Is(err, errSink) {
			return nil, err
		}
		return nil, fmt.Errorf("snapshot stream broke after %d bytes: %w", tw.Size(), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := tw.Check(); err != nil {
		return nil, err
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			return nil, fmt.Errorf("%w: finishing encryption: %w", errSink, err)
		}
	}
	if err := sink.Commit(); err != nil {
		return nil, fmt.Errorf("%w: %w", errSink, err)
	}
	res := &Result{Size: tw.Size(), SnapshotSHA256: hex.EncodeToString(tw.Digest()), FileSHA256: hex.EncodeToString(tw.FileSum())}
	if fileHash != nil {
		res.FileSHA256 = hex.EncodeToString(fileHash.Sum(nil))
	}
	return res, nil
}

// FileSink writes to PATH.part, fsyncs it, and renames it to PATH with
// mode 0600 only on Commit. An existing PATH is never overwritten.
type FileSink struct {
	Path string
	f    *os.File
}

// PartPath is where an attempt is written.
func (s *FileSink) PartPath() string { return s.Path + ".part" }

// Begin implements Sink.
func (s *FileSink) Begin() (io.Writer, error) {
	if _, err := os.Lstat(s.Path); err == nil {
		return nil, fmt.Errorf("%s already exists; choose another name or move it away", s.Path)
	}
	f, err := os.OpenFile(s.PartPath(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	// O_CREATE's mode is masked by umask and ignored for an existing file.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	s.f = f
	return f, nil
}

// Abort implements Sink.
func (s *FileSink) Abort() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	os.Remove(s.PartPath())
}

// Commit implements Sink.
func (s *FileSink) Commit() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", s.PartPath(), err)
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	s.f = nil
	if _, err := os.Lstat(s.Path); err == nil {
		return fmt.Errorf("%s appeared while the snapshot was written; the verified snapshot stays at %s", s.Path, s.PartPath())
	}
	if err := os.Rename(s.PartPath(), s.Path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(s.Path))
}

// Retryable implements Sink.
func (s *FileSink) Retryable() bool { return true }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// StreamSink writes to a stream such as stdout. Bytes written cannot be
// taken back, so it cannot retry once it has written anything, and a
// failed check is reported through the exit status only.
type StreamSink struct {
	W       io.Writer
	written countWriter
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Begin implements Sink.
func (s *StreamSink) Begin() (io.Writer, error) {
	s.written.w = s.W
	return &s.written, nil
}

// Abort implements Sink.
func (s *StreamSink) Abort() {}

// Commit implements Sink.
func (s *StreamSink) Commit() error {
	if f, ok := s.W.(interface{ Sync() error }); ok {
		_ = f.Sync() // pipes and terminals cannot sync; files can
	}
	return nil
}

// Retryable implements Sink.
func (s *StreamSink) Retryable() bool { return s.written.n == 0 }
