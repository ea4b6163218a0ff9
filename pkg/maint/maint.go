// Package maint holds the on-call maintenance operations: defragmenting
// members in a safe order, listing and disarming alarms, moving the
// leader and compacting. Each operation takes a plain config and a
// transport (etcd.Transport), so that commands stay thin and tests use a recording fake.
package maint

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

func (o *Options) defaults() {
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

func (o *Options) notef(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }

// waitHealthy polls m until it is healthy again, for at most
// HealthTimeout, and names the last error if it is not.
func (o *Options) waitHealthy(ctx context.Context, c *cluster.Cluster, m *cluster.Member) error {
	if err := o.waitFor(ctx, o.HealthTimeout, func() error { return c.Health(ctx, m) }); err != nil {
		return fmt.Errorf("member %s is not healthy again: %w", m.Label(), err)
	}
	return nil
}

// during runs f, saying every Progress what is underway and for how
// long, and returns how long f took.
func (o *Options) during(what string, f func() error) (time.Duration, error) {
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
					o.notef("  still %s: %s elapsed", what, o.Now().Sub(start).Round(time.Second))
				}
			}
		}()
	}
	err := f()
	close(done)
	wg.Wait()
	return o.Now().Sub(start), err
}

// alarmNoSpace is the alarm a full database raises; maintenance is what
// clears it, so it does not stop maintenance.
const alarmNoSpace = "NOSPACE"
