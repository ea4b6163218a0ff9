package snapshot

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/compression"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// Source opens a fresh snapshot stream. Save calls it once per attempt,
// retries included, so a retry may come from another member: AttemptOf(ctx)
// tells which attempt it is and why the one before failed. ctx belongs to
// that attempt alone; Save cancels it when the attempt ends or stalls, and
// the stream's Read must then return.
type Source func(ctx context.Context) (io.ReadCloser, error)

// Attempt is what a Source learns of the attempt it opens a stream for.
type Attempt struct {
	// N counts from 1.
	N int
	// LastErr is why the attempt before failed; nil on the first.
	LastErr error
}

type attemptKey struct{}

// AttemptOf returns the attempt that a Source's ctx belongs to: the zero
// Attempt outside Save.
func AttemptOf(ctx context.Context) Attempt {
	a, _ := ctx.Value(attemptKey{}).(Attempt)
	return a
}

// Sink is where a verified snapshot goes: a file (through FILE.part) or
// a stream such as stdout.
type Sink interface {
	// Begin starts an attempt and returns where to write. It is called
	// before the stream is opened, so that it can refuse first; a later
	// Begin discards what the attempt before wrote.
	Begin() (io.Writer, error)
	// Abort discards the last attempt when Save gives up; it must leave
	// nothing under the final name.
	Abort()
	// Commit makes a verified attempt final.
	Commit() error
	// Retryable says whether a failed attempt can start over (a stream
	// that already went to stdout cannot).
	Retryable() bool
}

// ErrStalled is the error of an attempt whose stream sent nothing for
// Options.StallTimeout. It is retried.
var ErrStalled = errors.New("snapshot stream stalled")

// Options tune Save.
type Options struct {
	Retries int
	// StallTimeout fails an attempt that receives no byte for that long,
	// opening the stream included; 0 waits forever.
	StallTimeout time.Duration
	// Encrypt wraps the sink, e.g. with age; nil writes plain bytes.
	Encrypt func(io.Writer) (io.WriteCloser, error)
	// Progress, if set, wraps the snapshot stream to report progress.
	Progress func(io.Reader) io.Reader
	// Notify receives one line per retry.
	Notify func(format string, args ...any)
	// Raw takes a member's database file as it lies in its data dir
	// (copy-db), which has no sha256 trailer: it is checked as whole
	// bbolt pages with the magic number, and Settle decides whether the
	// bytes are the file at rest.
	Raw bool
	// Settle, when set, is called with the size and sha256 of the bytes
	// received before they are committed; an error discards them.
	Settle func(size int64, sha256 string) error
	// Compressed: the source sends the snapshot zstd-compressed. The
	// bytes are written as they come (encrypted, with Encrypt), and a
	// decompressed copy is what the trailer check, the revision and
	// Progress see.
	Compressed bool
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
	// Revision is the snapshot's revision, read from the plaintext as it
	// streamed (what Revision(path) gives for the plain file); set only
	// when encrypted or compressed, where no plain file exists to read it
	// from. Zero with RevisionErr when it could not be read.
	Revision    int64
	RevisionErr error
}

// Save streams a snapshot from src into sink, checking etcd's sha256
// trailer on the way, and commits only a verified snapshot. A broken or
// stalled stream is retried from the start up to opts.Retries times.
func Save(ctx context.Context, src Source, sink Sink, opts Options) (*Result, error) {
	var lastErr error
	for attempt := 1; ; attempt++ {
		actx := context.WithValue(ctx, attemptKey{}, Attempt{N: attempt, LastErr: lastErr})
		res, err := saveOnce(actx, src, sink, opts)
		if err == nil {
			res.Attempts = attempt
			return res, nil
		}
		lastErr = err
		if attempt > opts.Retries || !retryable(ctx, err) || !sink.Retryable() {
			sink.Abort()
			return nil, err
		}
		if opts.Notify != nil {
			opts.Notify("snapshot attempt %d failed: %v; retrying from the start", attempt, err)
		}
	}
}

// retryable: cancellation, a corrupt snapshot, a local write failure and
// errors marked permanent do not heal by starting over.
func retryable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, ErrHashMismatch) && !errors.Is(err, ErrNotBolt) &&
		!errors.Is(err, errSink) && !hint.IsPermanent(err)
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
	out, err := sink.Begin()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSink, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wd := startWatchdog(opts.StallTimeout, cancel)
	defer wd.stop()
	rc, err := src(ctx)
	if err != nil {
		return nil, wd.explain(ctx, err, 0)
	}
	defer rc.Close()
	// A plain file's checksum comes from the trailer check's own hash;
	// only ciphertext, or compressed bytes, need a second one.
	dst := io.Writer(sinkWriter{out})
	var fileHash hash.Hash
	if opts.Encrypt != nil || opts.Compressed {
		fileHash = sha256.New()
		dst = sinkWriter{io.MultiWriter(out, fileHash)}
	}
	var enc io.WriteCloser
	if opts.Encrypt != nil {
		if enc, err = opts.Encrypt(dst); err != nil {
			return nil, err
		}
		dst = enc
	}
	tw := NewTrailerWriter()
	r := wd.reader(rc)
	var rw *RevisionWriter
	if enc != nil || opts.Compressed {
		// No plain file will be there to read the revision from.
		rw = NewRevisionWriter()
	}
	if opts.Compressed {
		err = copyCompressed(dst, r, tw, rw, opts.Progress)
	} else {
		if opts.Progress != nil {
			r = opts.Progress(r)
		}
		plain := io.MultiWriter(dst, tw)
		if rw != nil {
			plain = io.MultiWriter(dst, tw, rw)
		}
		_, err = io.Copy(plain, r)
	}
	wd.stop()
	if err != nil {
		if errors.Is(err, errSink) {
			return nil, err
		}
		return nil, wd.explain(ctx, fmt.Errorf("snapshot stream broke after %d bytes: %w", tw.Size(), err), tw.Size())
	}
	if err := context.Cause(ctx); err != nil {
		return nil, wd.explain(ctx, err, tw.Size())
	}
	check := tw.Check
	if opts.Raw {
		check = tw.CheckRaw
	}
	if err := check(); err != nil {
		return nil, err
	}
	if opts.Settle != nil {
		if err := opts.Settle(tw.Size(), hex.EncodeToString(tw.FileSum())); err != nil {
			return nil, err
		}
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
	if opts.Raw {
		res.SnapshotSHA256 = ""
	}
	if fileHash != nil {
		res.FileSHA256 = hex.EncodeToString(fileHash.Sum(nil))
	}
	if rw != nil {
		res.Revision, res.RevisionErr = rw.Revision()
	}
	return res, nil
}

// copyCompressed writes the compressed stream r to dst as it comes, and
// its decompressed bytes to the trailer check tw and the revision reader
// rw (through progress, when set).
func copyCompressed(dst io.Writer, r io.Reader, tw *TrailerWriter, rw *RevisionWriter, progress func(io.Reader) io.Reader) error {
	// The decoder may not pass on a write error as it is: it is kept.
	w := &recordingWriter{w: dst}
	tee := bufio.NewReaderSize(io.TeeReader(r, w), 64<<10)
	name, err := compression.Detect(tee)
	if err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("the stream is not compressed as asked (neither %s)", strings.Join(compression.Names, " nor "))
	}
	zr, err := compression.NewReader(name, tee)
	if err != nil {
		return err
	}
	defer zr.Close()
	var plain io.Reader = zr
	if progress != nil {
		plain = progress(plain)
	}
	_, err = io.Copy(io.MultiWriter(tw, rw), plain)
	if err == nil {
		// Whatever follows the last frame is the file's too.
		_, err = io.Copy(io.Discard, tee)
	}
	switch {
	case w.err != nil:
		return w.err
	case err != nil:
		return fmt.Errorf("the compressed stream (%s): %w", name, err)
	}
	return nil
}

type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// watchdog cancels an attempt's context with ErrStalled when no byte
// arrives for d. A nil watchdog (d = 0) never fires.
type watchdog struct {
	d time.Duration
	t *time.Timer
}

func startWatchdog(d time.Duration, cancel context.CancelCauseFunc) *watchdog {
	if d <= 0 {
		return nil
	}
	return &watchdog{d: d, t: time.AfterFunc(d, func() { cancel(ErrStalled) })}
}

func (w *watchdog) stop() {
	if w != nil {
		w.t.Stop()
	}
}

// reader resets the watchdog on every byte that arrives.
func (w *watchdog) reader(r io.Reader) io.Reader {
	if w == nil {
		return r
	}
	return watchedReader{r, w}
}

// explain replaces err, which a stall caused, with one that says so.
func (w *watchdog) explain(ctx context.Context, err error, n int64) error {
	if w == nil || !errors.Is(context.Cause(ctx), ErrStalled) {
		return err
	}
	return &StallError{For: w.d, After: n}
}

// StallError is an attempt that stalled: no byte for For, after After
// bytes. It is ErrStalled.
type StallError struct {
	For   time.Duration
	After int64
}

func (e *StallError) Error() string {
	return fmt.Sprintf("%v: no data for %s after %d bytes", ErrStalled, e.For, e.After)
}

func (e *StallError) Is(target error) bool { return target == ErrStalled }

type watchedReader struct {
	r io.Reader
	w *watchdog
}

func (r watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.t.Reset(r.w.d)
	}
	return n, err
}

// FileSink writes to PATH.part and moves it to PATH, never replacing it,
// only on Commit. The .part is created exclusively with mode 0600 and
// kept open across retries. Companions are files the caller writes
// beside PATH afterwards (FILE.json): Begin refuses at once when any of
// them exists, rather than after the snapshot is saved.
type FileSink struct {
	Path       string
	Companions []string
	p          *partFile
}

// PartPath is where an attempt is written.
func (s *FileSink) PartPath() string { return PartPath(s.Path) }

// Check refuses a target in the way: PATH, PATH.part or a companion.
// Begin checks too; a caller can check earlier, before it does any work.
func (s *FileSink) Check() error {
	return CheckTargets(append([]string{s.Path}, s.Companions...)...)
}

// Begin implements Sink.
func (s *FileSink) Begin() (io.Writer, error) {
	if s.p != nil {
		if err := s.p.reset(); err != nil {
			return nil, err
		}
		return s.p.f, nil
	}
	if err := CheckTargets(s.Companions...); err != nil {
		return nil, err
	}
	p, err := createPart(s.Path)
	if err != nil {
		return nil, err
	}
	s.p = p
	return p.f, nil
}

// Abort implements Sink. It removes the .part only while it is still the
// file this sink created, and never once an error said it is kept.
func (s *FileSink) Abort() {
	if s.p != nil {
		s.p.discard()
		s.p = nil
	}
}

// Commit implements Sink.
func (s *FileSink) Commit() error {
	if s.p == nil {
		return errors.New("commit without an attempt")
	}
	if err := s.p.commit(); err != nil {
		return err
	}
	s.p = nil
	return nil
}

// Retryable implements Sink.
func (s *FileSink) Retryable() bool { return true }

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
