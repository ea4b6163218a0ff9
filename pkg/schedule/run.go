package schedule

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// One run of a schedule, in its job's pod: the member's snapshot, taken
// on the node over loopback and compressed there, encrypted as it
// streams, verified against etcd's sha256 trailer before it is named,
// then the retention, and a record of the run.

// Destination is where a schedule's snapshots are kept.
type Destination interface {
	// Sink takes a snapshot named name: nothing is there under that name
	// until it is committed (verified).
	Sink(ctx context.Context, name string) (snapshot.Sink, error)
	List(ctx context.Context) ([]Object, error)
	Remove(ctx context.Context, name string) error
	String() string
}

// Dir is a destination dir: a node dir or a mounted PVC.
type Dir string

// Sink implements Destination: FILE.part, fsynced, renamed, 0600.
func (d Dir) Sink(_ context.Context, name string) (snapshot.Sink, error) {
	s := &snapshot.FileSink{Path: filepath.Join(string(d), name)}
	return s, s.Check()
}

// List implements Destination.
func (d Dir) List(context.Context) ([]Object, error) {
	ents, err := os.ReadDir(string(d))
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, Object{Name: e.Name(), Size: info.Size(), Modified: info.ModTime()})
	}
	return out, nil
}

// Remove implements Destination.
func (d Dir) Remove(_ context.Context, name string) error {
	return os.Remove(filepath.Join(string(d), name))
}

func (d Dir) String() string { return string(d) }

// Outcome is what a run did, as the schedule's record keeps it.
type Outcome struct {
	Time     time.Time `json:"time"`
	File     string    `json:"file,omitempty"`
	Size     int64     `json:"size,omitempty"`
	SHA256   string    `json:"sha256,omitempty"`
	Revision int64     `json:"revision,omitempty"`
	Took     string    `json:"took"`
	Removed  []string  `json:"removed,omitempty"`
	// Kept is the schedule's snapshots at the destination after the
	// retention, newest first; nil when the retention did not run.
	Kept  []Object `json:"kept,omitempty"`
	Error string   `json:"error,omitempty"`
}

// RunDeps are what a run reaches.
type RunDeps struct {
	// Snapshot writes the member's snapshot, zstd-compressed, to w.
	Snapshot func(ctx context.Context, w io.Writer) error
	// Encrypt wraps the destination's writer for the recipients.
	Encrypt func(io.Writer) (io.WriteCloser, error)
	Dest    Destination
	Now     func() time.Time
	Log     func(format string, args ...any)
}

// RunOnce takes one scheduled snapshot and applies the retention. A
// failed snapshot removes nothing; a failed retention is reported, and
// the snapshot stays.
func RunOnce(ctx context.Context, c Config, d RunDeps) (Outcome, error) {
	start := d.Now()
	out := Outcome{Time: start.UTC(), File: FileName(c.Name, start)}
	fail := func(err error) (Outcome, error) {
		out.Error, out.Took = err.Error(), d.Now().Sub(start).Round(time.Millisecond).String()
		return out, err
	}
	sink, err := d.Dest.Sink(ctx, out.File)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", d.Dest, err))
	}
	src := func(ctx context.Context) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(d.Snapshot(ctx, pw)) }()
		return pr, nil
	}
	res, err := snapshot.Save(ctx, src, sink, snapshot.Options{Compressed: true, Encrypt: d.Encrypt, Retries: 1, StallTimeout: time.Minute, Notify: d.Log})
	if err != nil {
		return fail(fmt.Errorf("snapshot not kept: %w", err))
	}
	out.Size, out.SHA256, out.Revision = res.Size, res.FileSHA256, res.Revision
	d.Log("Kept %s in %s: %d bytes of snapshot, revision %d, sha256 %s", out.File, d.Dest, res.Size, res.Revision, res.FileSHA256)
	objs, err := d.Dest.List(ctx)
	if err != nil {
		return fail(fmt.Errorf("snapshot kept, but the retention could not list %s: %w", d.Dest, err))
	}
	plan := c.Keep.Apply(c.Name, objs, d.Now())
	for _, o := range plan.Remove {
		if err := d.Dest.Remove(ctx, o.Name); err != nil {
			return fail(fmt.Errorf("snapshot kept, but the retention could not remove %s: %w", o.Name, err))
		}
		out.Removed = append(out.Removed, o.Name)
	}
	out.Kept = plan.Keep
	d.Log("Retention (%s): %d kept, %d removed, %d files there not this schedule's, left alone", c.Keep, len(plan.Keep), len(out.Removed), len(plan.NotOurs))
	out.Took = d.Now().Sub(start).Round(time.Millisecond).String()
	return out, nil
}
