// Package change holds what every operation that changes the cluster
// shares: the plan printed first, a dry run, one confirmation, progress
// on long steps, and the waits for a member to be healthy again. The
// maintenance and membership operations take an Options in their config.
package change

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
)

// Options are what every operation shares.
type Options struct {
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Confirm is asked once the plan is printed; an error stops the
	// operation with nothing changed. Nil confirms.
	Confirm func(question string) error
	// Log takes the plan, progress and notices (the command's ErrOut).
	Log io.Writer
	// Progress is how often a long step says it is still running; 0:
	// never.
	Progress time.Duration
	// HealthTimeout bounds the wait for a member to be healthy again
	// (default 2m); Poll is how often it asks (default 1s).
	HealthTimeout time.Duration
	Poll          time.Duration
	// Now is the clock, for the times printed (default time.Now).
	Now func() time.Time
}

// Defaults fills what was left unset.
func (o *Options) Defaults() {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 2 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Confirm == nil {
		o.Confirm = func(string) error { return nil }
	}
}

// Notef prints one line to the log.
func (o *Options) Notef(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }

// WaitHealthy polls m until it is healthy again, for at most
// HealthTimeout, and names the last error if it is not.
func (o *Options) WaitHealthy(ctx context.Context, c *cluster.Cluster, m *cluster.Member) error {
	if err := o.WaitFor(ctx, o.HealthTimeout, func() error { return c.Health(ctx, m) }); err != nil {
		return fmt.Errorf("member %s is not healthy again: %w", m.Label(), err)
	}
	return nil
}

// During runs f, saying every Progress what is underway and for how
// long, and returns how long f took.
func (o *Options) During(what string, f func() error) (time.Duration, error) {
	start := o.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	if o.Progress > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(o.Progress)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					o.Notef("  still %s: %s elapsed", what, o.Now().Sub(start).Round(time.Second))
				}
			}
		}()
	}
	err := f()
	close(done)
	wg.Wait()
	return o.Now().Sub(start), err
}

// WaitFor retries check every Poll until it passes or timeout is over,
// and returns its last error.
func (o *Options) WaitFor(ctx context.Context, timeout time.Duration, check func() error) error {
	deadline := o.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if !o.Now().Before(deadline) {
			return fmt.Errorf("still failing after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}

// RoundTook rounds a duration for printing.
func RoundTook(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
