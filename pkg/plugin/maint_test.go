package plugin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster/clustertest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
)

// maintCluster is a fake 3-member cluster whose members have the names
// of etcdPod's pods; hc-cp1 leads, every member is 75% free, and a
// compaction frees 128 MiB more.
func maintCluster() *clustertest.Cluster {
	c := clustertest.New(3, 1<<30, 256<<20)
	c.CompactFrees = 128 << 20
	for i, m := range c.Members {
		m.Name = []string{"hc-cp1", "hc-cp2", "hc-cp3"}[i]
	}
	return c
}

// runMaint runs a command line against fc, with a fixed clock.
func runMaint(t *testing.T, fc *clustertest.Cluster, args ...string) (string, string, error) {
	t.Helper()
	return runMaintTerminal(t, fc, "", args...)
}

// runMaintTerminal is runMaint with stdin a terminal that types answer;
// no answer is no terminal.
func runMaintTerminal(t *testing.T, fc *clustertest.Cluster, answer string, args ...string) (string, string, error) {
	t.Helper()
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(answer)
	g := NewGlobalOptions(streams)
	g.StdinIsTerminal = func() bool { return answer != "" }
	g.Poll = time.Millisecond
	g.Client = fake.NewClientset(etcdPod("hc-cp1"), etcdPod("hc-cp2"), etcdPod("hc-cp3"))
	g.Clients = fc
	var mu sync.Mutex // the progress ticker reads it too
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	g.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		at = at.Add(100 * time.Millisecond)
		return at
	}
	cmd := NewCmdEtcdWithOptions(g)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestMaintCommands(t *testing.T) {
	noSpace := func(c *clustertest.Cluster) {
		c.Alarms = []etcd.Alarm{{MemberID: c.Member("hc-cp2").ID, Type: "NOSPACE"}}
	}
	tests := []struct {
		name    string
		args    []string
		setup   func(c *clustertest.Cluster)
		calls   []string
		wantErr string
		errOut  string // a line stderr must have
	}{
		{name: "defrag", args: []string{"defrag", "--yes"},
			calls: []string{"defragment hc-cp2", "defragment hc-cp3", "move-leader hc-cp1 -> hc-cp2", "defragment hc-cp1"}},
		{name: "defrag-compact-disarm", args: []string{"defrag", "--compact", "--disarm", "-y", "-o", "json"}, setup: noSpace,
			calls: []string{"compact 1000 physical=true via hc-cp1", "defragment hc-cp2", "defragment hc-cp3", "move-leader hc-cp1 -> hc-cp2", "defragment hc-cp1", "disarm NOSPACE hc-cp2"}},
		{name: "defrag-dry-run", args: []string{"defrag", "--dry-run", "--min-free", "800MiB"}, errOut: "Dry run: nothing was changed"},
		{name: "defrag-no-terminal", args: []string{"defrag"}, wantErr: "not confirmed: stdin is not a terminal"},
		{name: "defrag-failed", args: []string{"defrag", "--yes"}, setup: func(c *clustertest.Cluster) { c.Fail["defragment hc-cp3"] = errors.New("boom") },
			calls: []string{"defragment hc-cp2"}, wantErr: "defrag stopped at member hc-cp3 (a3)"},
		{name: "defrag-bad-min-free", args: []string{"defrag", "--min-free", "lots"}, wantErr: `--min-free "lots" is not a size`},
		{name: "defrag-bad-ratio", args: []string{"defrag", "--min-free-ratio", "1.5"}, wantErr: "--min-free-ratio must be between 0 and 1"},
		{name: "defrag-exec-transport", args: []string{"defrag", "--transport", "exec", "--yes"},
			calls: []string{"defragment hc-cp2", "defragment hc-cp3", "move-leader hc-cp1 -> hc-cp2", "defragment hc-cp1"}},
		{name: "alarm-list", args: []string{"alarm", "list"}, setup: noSpace},
		{name: "alarm-list-none", args: []string{"alarm", "list"}, errOut: "No alarm is raised."},
		{name: "alarm-list-json", args: []string{"alarm", "list", "-o", "json"}, setup: noSpace},
		{name: "alarm-disarm", args: []string{"alarm", "disarm", "--yes"}, setup: noSpace, calls: []string{"disarm NOSPACE hc-cp2"}},
		{name: "alarm-disarm-dry-run", args: []string{"alarm", "disarm", "--dry-run"}, setup: noSpace, errOut: "NOSPACE on hc-cp2 (a2)"},
		{name: "move-leader", args: []string{"move-leader", "hc-cp3", "--yes"}, calls: []string{"move-leader hc-cp1 -> hc-cp3"}},
		{name: "move-leader-by-id", args: []string{"move-leader", "a2", "--yes"}, calls: []string{"move-leader hc-cp1 -> hc-cp2"}},
		{name: "move-leader-best", args: []string{"move-leader", "--yes"}, setup: func(c *clustertest.Cluster) { c.Member("hc-cp3").Applied = 600 },
			calls: []string{"move-leader hc-cp1 -> hc-cp3"}},
		{name: "move-leader-two-args", args: []string{"move-leader", "a", "b"}, wantErr: "accepts at most 1 arg(s)"},
		{name: "compact", args: []string{"compact", "--yes"}, calls: []string{"compact 1000 physical=true via hc-cp1"}},
		{name: "compact-rev", args: []string{"compact", "990", "--yes", "-o", "yaml"}, calls: []string{"compact 990 physical=true via hc-cp1"}},
		{name: "compact-zero", args: []string{"compact", "0"}, wantErr: `REV must be a positive revision number, got "0"`},
		{name: "compact-not-a-rev", args: []string{"compact", "latest"}, wantErr: `REV must be a positive revision number, got "latest"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := maintCluster()
			if tc.setup != nil {
				tc.setup(fc)
			}
			out, errOut, err := runMaint(t, fc, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("err = %v\nstderr:\n%s", err, errOut)
			}
			if diff := cmp.Diff(tc.calls, fc.Changes()); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if out != "" {
				golden.Assert(t, "cmd-"+tc.name, []byte(out))
			}
			if !strings.Contains(errOut, tc.errOut) {
				t.Errorf("stderr has no %q:\n%s", tc.errOut, errOut)
			}
		})
	}
}

func TestMaintConfirmation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  string
		args    []string
		asked   bool
		calls   []string
		wantErr string
	}{
		{name: "y goes on", answer: "y\n", args: []string{"move-leader", "hc-cp2"}, asked: true, calls: []string{"move-leader hc-cp1 -> hc-cp2"}},
		{name: "n stops", answer: "n\n", args: []string{"move-leader", "hc-cp2"}, asked: true, wantErr: `not confirmed (typed "n"`},
		{name: "enter stops", answer: "\n", args: []string{"compact"}, asked: true, wantErr: "not confirmed"},
		{name: "--yes asks nothing", answer: "n\n", args: []string{"alarm", "disarm", "--yes"}, calls: []string{"disarm NOSPACE hc-cp3"}},
		{name: "--dry-run asks nothing", answer: "n\n", args: []string{"defrag", "--dry-run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := maintCluster()
			fc.Alarms = []etcd.Alarm{{MemberID: fc.Member("hc-cp3").ID, Type: "NOSPACE"}}
			_, errOut, err := runMaintTerminal(t, fc, tc.answer, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			if asked := strings.Contains(errOut, "[y/N]: "); asked != tc.asked {
				t.Errorf("asked = %t, want %t:\n%s", asked, tc.asked, errOut)
			}
			if diff := cmp.Diff(tc.calls, fc.Changes()); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}
