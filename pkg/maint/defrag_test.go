package maint_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster/clustertest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/syncbuf"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
)

const (
	mib = int64(1 << 20)
	gib = 1024 * mib
)

// clock advances a quarter second each time it is read, so that the
// times printed are the same on every run.
func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(250 * time.Millisecond)
		return t
	}
}

// options are the test defaults: a fake clock, fast polls, a log.
func options(log *bytes.Buffer) maint.Options {
	return maint.Options{Log: log, Now: clock(), Poll: time.Millisecond, HealthTimeout: 20 * time.Millisecond}
}

func defragConfig(log *bytes.Buffer) maint.DefragConfig {
	return maint.DefragConfig{Options: options(log), MinFreeRatio: maint.DefaultMinFreeRatio, MinFree: maint.DefaultMinFree}
}

func TestWorth(t *testing.T) {
	for _, tt := range []struct {
		name   string
		u      maint.Usage
		force  bool
		want   bool
		reason string
	}{
		{name: "half free", u: maint.Usage{DBSize: 1 * gib, DBSizeInUse: gib / 2}, want: true, reason: "512 MiB free (50%)"},
		{name: "ratio just met", u: maint.Usage{DBSize: 100 * mib, DBSizeInUse: 70 * mib}, want: true, reason: "30 MiB free (30%)"},
		{name: "ratio too low", u: maint.Usage{DBSize: 1 * gib, DBSizeInUse: 900 * mib}, reason: "124 MiB free (12%), below --min-free-ratio 0.30"},
		{name: "too few bytes", u: maint.Usage{DBSize: 20 * mib, DBSizeInUse: 5 * mib}, reason: "15 MiB free (75%), below --min-free 16 MiB"},
		{name: "forced", u: maint.Usage{DBSize: 20 * mib, DBSizeInUse: 19 * mib}, force: true, want: true, reason: "1.0 MiB free (5%), --force"},
		{name: "empty file does not divide by zero", u: maint.Usage{}, reason: "0 B free (0%), below --min-free 16 MiB"},
		{name: "in use above size counts as nothing free", u: maint.Usage{DBSize: 10 * mib, DBSizeInUse: 11 * mib}, reason: "0 B free (0%), below --min-free 16 MiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := maint.DefragConfig{MinFreeRatio: maint.DefaultMinFreeRatio, MinFree: maint.DefaultMinFree, Force: tt.force}
			got, reason := cfg.Worth(tt.u)
			if got != tt.want || reason != tt.reason {
				t.Errorf("Worth(%+v) = %t, %q; want %t, %q", tt.u, got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestDefrag(t *testing.T) {
	errBoom := errors.New("boom")
	for _, tt := range []struct {
		name    string
		members int
		setup   func(c *clustertest.Cluster)
		cfg     func(c *maint.DefragConfig)
		calls   []string
		results []string // per member, in the order of the rows
		wantErr string
		log     string // a line the log must have
	}{
		{
			name:    "followers first, leadership moved to the best follower before the leader",
			calls:   []string{"defragment m2", "defragment m3", "move-leader m1 -> m2", "defragment m1"},
			results: []string{"m2 defragmented", "m3 defragmented", "m1 defragmented"},
		},
		{
			name:    "the most up-to-date follower takes the leadership",
			setup:   func(c *clustertest.Cluster) { c.Member("m3").Applied = 900 },
			calls:   []string{"defragment m2", "defragment m3", "move-leader m1 -> m3", "defragment m1"},
			results: []string{"m2 defragmented", "m3 defragmented", "m1 defragmented"},
		},
		{
			name:    "a leader other than the first member goes last",
			setup:   func(c *clustertest.Cluster) { c.Leader = c.Member("m2").ID },
			calls:   []string{"defragment m1", "defragment m3", "move-leader m2 -> m1", "defragment m2"},
			results: []string{"m1 defragmented", "m3 defragmented", "m2 defragmented"},
		},
		{
			name:    "--no-move-leader",
			cfg:     func(c *maint.DefragConfig) { c.NoMoveLeader = true },
			calls:   []string{"defragment m2", "defragment m3", "defragment m1"},
			results: []string{"m2 defragmented", "m3 defragmented", "m1 defragmented"},
			log:     "keeps the leadership (--no-move-leader)",
		},
		{
			name:    "members below the threshold are skipped; a skipped leader keeps the leadership",
			setup:   func(c *clustertest.Cluster) { c.Member("m3").InUse = 990 * mib; c.Member("m1").InUse = 1000 * mib },
			calls:   []string{"defragment m2"},
			results: []string{"m2 defragmented", "m3 skipped", "m1 skipped"},
			log:     "Skipping m3 (a3): 34 MiB free (3%), below --min-free-ratio 0.30",
		},
		{
			name:    "nothing worth it: nothing done, nothing asked",
			setup:   func(c *clustertest.Cluster) { each(c, func(m *clustertest.Member) { m.InUse = m.DBSize }) },
			cfg:     func(c *maint.DefragConfig) { c.Confirm = refuse },
			results: []string{"m2 skipped", "m3 skipped", "m1 skipped"},
			log:     "Nothing to do",
		},
		{
			name:    "--force defragments small gains",
			setup:   func(c *clustertest.Cluster) { each(c, func(m *clustertest.Member) { m.InUse = m.DBSize - mib }) },
			cfg:     func(c *maint.DefragConfig) { c.Force = true },
			calls:   []string{"defragment m2", "defragment m3", "move-leader m1 -> m2", "defragment m1"},
			results: []string{"m2 defragmented", "m3 defragmented", "m1 defragmented"},
		},
		{
			name: "--compact first, then every member",
			setup: func(c *clustertest.Cluster) {
				each(c, func(m *clustertest.Member) { m.InUse = m.DBSize })
				c.CompactFrees = 600 * mib
			},
			cfg:     func(c *maint.DefragConfig) { c.Compact = true },
			calls:   []string{"compact 1000 physical=true via m1", "defragment m2", "defragment m3", "move-leader m1 -> m2", "defragment m1"},
			results: []string{"m2 defragmented", "m3 defragmented", "m1 defragmented"},
		},
		{
			name:    "--compact defragments members the skip rule would skip",
			setup:   func(c *clustertest.Cluster) { each(c, func(m *clustertest.Member) { m.InUse = m.DBSize }) },
			cfg:     func(c *maint.DefragConfig) { c.Compact = true },
			calls:   []string{"compact 1000 physical=true via m1", "defragment m2", "defragment m3", "move-leader m1 -> m2", "defragment m1"},
			results: []string{"m2 defragmented", "m3 defragmented", "m1 defragmented"},
			log:     "Defragmenting m2 (a2): DB 1.0 GiB, 1.0 GiB in use",
		},
		{
			name:    "--compact when the current revision is compacted already",
			setup:   func(c *clustertest.Cluster) { c.Compacted = 1000 },
			cfg:     func(c *maint.DefragConfig) { c.Compact = true },
			calls:   []string{"defragment m2", "defragment m3", "move-leader m1 -> m2", "defragment m1"},
			results: []string{"m2 defragmented", "m3 defragmented", "m1 defragmented"},
		},
		{
			name:    "--disarm clears NOSPACE when all is done",
			setup:   func(c *clustertest.Cluster) { c.Alarms = []etcd.Alarm{{MemberID: c.Member("m3").ID, Type: "NOSPACE"}} },
			cfg:     func(c *maint.DefragConfig) { c.Disarm = true },
			calls:   []string{"defragment m2", "defragment m3", "move-leader m1 -> m2", "defragment m1", "disarm NOSPACE m3"},
			results: []string{"m2 defragmented", "m3 defragmented", "m1 defragmented"},
			log:     "Disarmed NOSPACE on m3 (a3)",
		},
		{
			name: "a member with a NOSPACE alarm is defragmented whatever it gives back",
			setup: func(c *clustertest.Cluster) {
				each(c, func(m *clustertest.Member) { m.InUse = m.DBSize })
				c.Alarms = []etcd.Alarm{{MemberID: c.Member("m3").ID, Type: "NOSPACE"}}
			},
			calls:   []string{"defragment m3"},
			results: []string{"m2 skipped", "m3 defragmented", "m1 skipped"},
			log:     "defragment m3 (a3), a follower: its NOSPACE alarm is raised",
		},
		{
			name:    "NOSPACE without --disarm stays raised",
			setup:   func(c *clustertest.Cluster) { c.Alarms = []etcd.Alarm{{MemberID: c.Member("m3").ID, Type: "NOSPACE"}} },
			calls:   []string{"defragment m2", "defragment m3", "move-leader m1 -> m2", "defragment m1"},
			results: []string{"m2 defragmented", "m3 defragmented", "m1 defragmented"},
		},
		{
			name:    "a CORRUPT alarm stops everything",
			setup:   func(c *clustertest.Cluster) { c.Alarms = []etcd.Alarm{{MemberID: c.Member("m2").ID, Type: "CORRUPT"}} },
			wantErr: "alarm CORRUPT raised on member m2 (a2)",
		},
		{
			name:    "an unhealthy member stops everything",
			setup:   func(c *clustertest.Cluster) { c.Fail["get m3"] = errBoom },
			wantErr: "m3 (a3): boom",
		},
		{
			name:    "an unreachable member stops everything",
			setup:   func(c *clustertest.Cluster) { c.Fail["dial m2"] = errBoom },
			wantErr: "m2: boom",
		},
		{
			name:    "a member without a pod stops everything",
			setup:   func(c *clustertest.Cluster) { c.Member("m3").NoPod = true },
			wantErr: "member m3 (a3) has no etcd pod",
		},
		{
			name:    "a failed member stops the run, the leader untouched",
			setup:   func(c *clustertest.Cluster) { c.Fail["defragment m3"] = errBoom },
			calls:   []string{"defragment m2"},
			results: []string{"m2 defragmented", "m3 failed", "m1 not started"},
			wantErr: "defrag stopped at member m3 (a3) (the members after it were not touched): defragmenting: boom",
		},
		{
			name: "a member that does not come back stops the run",
			setup: func(c *clustertest.Cluster) {
				c.OnDefragment = func(name string) { c.Fail["get "+name] = errBoom }
			},
			calls:   []string{"defragment m2"},
			results: []string{"m2 failed", "m3 not started", "m1 not started"},
			wantErr: "member m2 (a2) is not healthy again",
		},
		{
			name:    "a failed hand-over leaves the leader as it is",
			setup:   func(c *clustertest.Cluster) { c.Fail["move-leader m1"] = errBoom },
			calls:   []string{"defragment m2", "defragment m3"},
			results: []string{"m2 defragmented", "m3 defragmented", "m1 failed"},
			wantErr: "moving leadership from m1 (a1) to m2 (a2): boom",
		},
		{
			name:    "a failed compaction touches no member",
			setup:   func(c *clustertest.Cluster) { c.Fail["compact m1"] = errBoom },
			cfg:     func(c *maint.DefragConfig) { c.Compact = true },
			results: []string{"m2 not started", "m3 not started", "m1 not started"},
			wantErr: "defrag stopped before any member: compacting up to revision 1000: boom",
		},
		{
			name:    "a single member is defragmented with a warning",
			members: 1,
			calls:   []string{"defragment m1"},
			results: []string{"m1 defragmented"},
			log:     "Warning: m1 (a1) is the only member: reads and writes stall until its defragmentation ends",
		},
		{
			name:    "--dry-run changes nothing",
			cfg:     func(c *maint.DefragConfig) { c.DryRun = true; c.Compact = true; c.Disarm = true; c.Confirm = refuse },
			results: []string{"m2 defragment", "m3 defragment", "m1 defragment"},
			log:     "Dry run: nothing was changed",
		},
		{
			name:    "not confirmed: nothing changed",
			cfg:     func(c *maint.DefragConfig) { c.Confirm = refuse },
			wantErr: "not confirmed",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.members
			if n == 0 {
				n = 3
			}
			fc := clustertest.New(n, gib, gib/4)
			if tt.setup != nil {
				tt.setup(fc)
			}
			var log bytes.Buffer
			cfg := defragConfig(&log)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			res, err := maint.Defrag(context.Background(), fc, fc.Pods(), cfg)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.calls, fc.Changes()); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if tt.results != nil {
				if diff := cmp.Diff(tt.results, results(res)); diff != "" {
					t.Errorf("results (-want +got):\n%s", diff)
				}
			}
			if tt.log != "" && !strings.Contains(log.String(), tt.log) {
				t.Errorf("log has no %q:\n%s", tt.log, log.String())
			}
		})
	}
}

func refuse(string) error { return errors.New("not confirmed") }

func each(c *clustertest.Cluster, f func(*clustertest.Member)) {
	for _, m := range c.Members {
		f(m)
	}
}

func results(res *maint.DefragResult) []string {
	if res == nil {
		return nil
	}
	var out []string
	for _, m := range res.Members {
		out = append(out, m.Name+" "+m.Result)
	}
	return out
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("err = %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// TestDefragLog keeps what an operator reads during a defrag: the plan,
// the steps, the hand-over and the sizes.
func TestDefragLog(t *testing.T) {
	fc := clustertest.New(3, gib, gib/4)
	fc.Member("m3").InUse = 1000 * mib
	fc.Alarms = []etcd.Alarm{{MemberID: fc.Member("m2").ID, Type: "NOSPACE"}}
	fc.CompactFrees = 10 * mib
	var log bytes.Buffer
	cfg := defragConfig(&log)
	cfg.Compact, cfg.Disarm = true, true
	if _, err := maint.Defrag(context.Background(), fc, fc.Pods(), cfg); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "defrag-log", log.Bytes())
}

// TestDefragHints: every failure says what to do next.
func TestDefragHints(t *testing.T) {
	for _, tt := range []struct {
		name      string
		fail      string
		hint      string
		permanent bool
	}{
		{name: "preflight", fail: "status m2", hint: "kubectl etcd health", permanent: true},
		{name: "a step", fail: "defragment m3", hint: "run the command again"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fc := clustertest.New(3, gib, gib/4)
			fc.Fail[tt.fail] = errors.New("deadline exceeded")
			_, err := maint.Defrag(context.Background(), fc, fc.Pods(), defragConfig(&bytes.Buffer{}))
			if !strings.Contains(hint.Of(err), tt.hint) || hint.IsPermanent(err) != tt.permanent {
				t.Errorf("error %v: want a hint with %q, permanent %t", err, tt.hint, tt.permanent)
			}
		})
	}
}

// TestDefragProgress: a long step says which member it is on and for
// how long.
func TestDefragProgress(t *testing.T) {
	fc := clustertest.New(2, gib, gib/4)
	var log syncbuf.Buffer
	// Each member's defragmentation lasts until its progress line is out:
	// on a loaded machine a fixed sleep may end before the first tick.
	fc.OnDefragment = func(name string) {
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(log.String(), "still defragmenting "+name+" ("); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("no progress line while %s defragmented:\n%s", name, log.String())
				return
			}
		}
	}
	cfg := defragConfig(&bytes.Buffer{})
	cfg.Log = &log
	cfg.Progress = 5 * time.Millisecond
	if _, err := maint.Defrag(context.Background(), fc, fc.Pods(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"  still defragmenting m2 (a2): ", "  still defragmenting m1 (a1): ", " elapsed\n"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log has no %q:\n%s", want, log.String())
		}
	}
}

// TestDefragInterrupted: Ctrl-C during a member's defragmentation says
// that etcd finishes it anyway, and starts no other member.
func TestDefragInterrupted(t *testing.T) {
	fc := clustertest.New(3, gib, gib/4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fc.OnDefragment = func(string) { cancel() }
	var log bytes.Buffer
	res, err := maint.Defrag(ctx, fc, fc.Pods(), defragConfig(&log))
	if err == nil {
		t.Fatal("an interrupted defrag succeeded")
	}
	first := res.Members[0]
	for _, want := range []string{"interrupted after", "carries on defragmenting " + first.Name, "cannot be stopped", "were not touched"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q has no %q", err, want)
		}
	}
	if n := strings.Count(strings.Join(fc.Calls, "\n"), "defragment "); n != 1 {
		t.Errorf("%d members defragmented after the interrupt, want 1: %v", n, fc.Calls)
	}
	for _, m := range res.Members[1:] {
		if m.Result == maint.ResultDefragmented {
			t.Errorf("%s defragmented after the interrupt", m.Name)
		}
	}
}
