package membership_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/change"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster/clustertest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
)

// fakeAgents answers the agent's commands from a script: each `replace
// status` takes the next journals in statuses (the last one repeats).
type fakeAgents struct {
	cutOff   error
	statuses [][]agentapi.JournalStatus
	calls    []string
}

func (f *fakeAgents) Connected(context.Context, string) error { return f.cutOff }
func (f *fakeAgents) Open(_ context.Context, node string) (membership.NodeAgent, error) {
	f.calls = append(f.calls, "open "+node)
	return f, nil
}
func (f *fakeAgents) FreeBytes(context.Context, string) (int64, error) { return 10 << 30, nil }
func (f *fakeAgents) Close(context.Context)                            { f.calls = append(f.calls, "close") }
func (f *fakeAgents) Run(_ context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	call := strings.Join(args, " ")
	if stdin != nil {
		b, _ := io.ReadAll(stdin)
		var s agentapi.ReplaceSpec
		_ = json.Unmarshal(b, &s)
		call += fmt.Sprintf(" (member %s, old %s, endpoints %v, static %s, journal %s)", s.Member, s.OldID, s.Endpoints, s.StaticPodDir, s.JournalDir)
	}
	f.calls = append(f.calls, call)
	switch {
	case strings.HasPrefix(call, "restore status"):
		return []byte("[]"), nil
	case strings.HasPrefix(call, "replace status"):
		var js []agentapi.JournalStatus
		if len(f.statuses) > 0 {
			js = f.statuses[0]
			if len(f.statuses) > 1 {
				f.statuses = f.statuses[1:]
			}
		}
		return json.Marshal(js)
	case strings.HasPrefix(call, "replace start"):
		return []byte(`{"pid":42,"journal":"/var/lib/kubectl-etcd/replace/R1/journal.json","log":"/var/lib/kubectl-etcd/replace/R1/agent.log"}`), nil
	}
	return nil, nil
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func journal(phase agentapi.Phase, running bool, ended time.Time) agentapi.JournalStatus {
	spec, _ := json.Marshal(agentapi.ReplaceSpec{ID: "R1", Member: "m3"})
	st := t0.Add(-time.Minute)
	return agentapi.JournalStatus{AgentRunning: running, Journal: agentapi.Journal{ID: "R1", Operation: "replace", Node: "node-m3", Phase: phase, Spec: spec,
		Steps: []agentapi.StepRecord{
			{Name: "stop etcd", State: agentapi.Done, Started: &st, Ended: &st},
			{Name: agentapi.StepReplaceMember, State: agentapi.Done, PointOfNoReturn: true, Started: &st, Ended: &ended},
		}}}
}

// TestReplacePlans: replace's plan, refusals and the agent calls it
// makes, against the recording fakes.
func TestReplacePlans(t *testing.T) {
	done := journal(agentapi.PhaseDone, false, t0.Add(-10*time.Minute))
	tests := []struct {
		name   string
		setup  func(c *clustertest.Cluster, a *fakeAgents, cfg *membership.ReplaceConfig)
		dryRun bool
	}{
		{"replace-dry-run", func(c *clustertest.Cluster, _ *fakeAgents, _ *membership.ReplaceConfig) { down(c, "m3") }, true},
		{"replace-quorum-refused", func(c *clustertest.Cluster, _ *fakeAgents, _ *membership.ReplaceConfig) { down(c, "m3"); down(c, "m2") }, false},
		{"replace-two-voters-refused", func(c *clustertest.Cluster, _ *fakeAgents, _ *membership.ReplaceConfig) {
			c.Member("m1").Learner = true
		}, false},
		{"replace-cut-off", func(c *clustertest.Cluster, a *fakeAgents, _ *membership.ReplaceConfig) {
			down(c, "m3")
			a.cutOff = hint.Permanent(errors.New("the kubelet of node node-m3 last renewed its lease 1m0s ago"), "describe")
		}, false},
		{"replace-run", func(c *clustertest.Cluster, a *fakeAgents, _ *membership.ReplaceConfig) {
			down(c, "m3")
			a.statuses = [][]agentapi.JournalStatus{nil, nil, {done}}
		}, false},
		{"replace-follows-unfinished", func(c *clustertest.Cluster, a *fakeAgents, _ *membership.ReplaceConfig) {
			a.statuses = [][]agentapi.JournalStatus{{journal(agentapi.PhaseRunning, true, t0)}, {done}}
		}, false},
		{"replace-resumes-held", func(c *clustertest.Cluster, a *fakeAgents, _ *membership.ReplaceConfig) {
			held := journal(agentapi.PhaseFailed, false, t0)
			held.Error = `step "replace the member in the cluster": etcdserver: too many requests (holding)`
			a.statuses = [][]agentapi.JournalStatus{{held}, {done}}
		}, false},
		{"replace-recently-done", func(c *clustertest.Cluster, a *fakeAgents, _ *membership.ReplaceConfig) {
			a.statuses = [][]agentapi.JournalStatus{{done}}
		}, false},
		{"replace-status", func(c *clustertest.Cluster, a *fakeAgents, cfg *membership.ReplaceConfig) {
			cfg.Status = true
			a.statuses = [][]agentapi.JournalStatus{{done}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clustertest.New(3, 1<<20, 1<<19)
			c.AllInOne = true
			a := &fakeAgents{}
			var log bytes.Buffer
			cfg := membership.ReplaceConfig{Options: change.Options{Log: &log, HealthTimeout: time.Minute, Poll: 1, DryRun: tt.dryRun, Now: func() time.Time { return t0 }},
				Member: "m3", ID: "R1", Agents: a}
			tt.setup(c, a, &cfg)
			res, err := membership.Replace(context.Background(), c, c.Pods(), cfg)
			var out strings.Builder
			fmt.Fprintf(&out, "--- log\n%s", log.String())
			if err != nil {
				fmt.Fprintf(&out, "--- error (permanent %t)\n%v\n", hint.IsPermanent(err), err)
			}
			if res != nil {
				fmt.Fprintf(&out, "--- result\nop %s, id %s, node %s, member %s, old %s, new %s, done %t, dry run %t, journals %d\n",
					res.Op, res.ID, res.Node, res.Member.Name, res.OldID, res.NewID, res.Done, res.DryRun, len(res.Journal))
			}
			fmt.Fprintf(&out, "--- agent calls\n%s\n--- etcd calls\n%s\n", strings.Join(a.calls, "\n"), strings.Join(c.Changes(), "\n"))
			golden.Assert(t, tt.name, []byte(out.String()))
		})
	}
}

// TestReplaceScript writes the node script for a cut-off node: the
// agent's spec in a heredoc that the agent reads strictly, valid sh, and
// nothing done on the cluster.
func TestReplaceScript(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	arch, err := agentclient.ELFArch(exe)
	if err != nil {
		t.Skipf("the test binary is not a linux amd64/arm64 ELF: %v", err)
	}
	agents := t.TempDir()
	b, _ := os.ReadFile(exe)
	os.WriteFile(filepath.Join(agents, agentclient.Name+"-linux-"+arch), b, 0o755)
	dir := filepath.Join(t.TempDir(), "scripts")

	c := clustertest.New(3, 1<<20, 1<<19)
	c.AllInOne = true
	down(c, "m3")
	a := &fakeAgents{cutOff: errors.New("cut off")}
	var log bytes.Buffer
	res, err := membership.Replace(context.Background(), c, c.Pods(), membership.ReplaceConfig{
		Options: change.Options{Log: &log, HealthTimeout: time.Minute, Poll: 1, Now: func() time.Time { return t0 }},
		Member:  "m3", ID: "R1", Agents: a, ScriptDir: dir, AgentDir: agents})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.calls) != 0 || len(c.Changes()) != 0 {
		t.Errorf("script mode reached the node or the cluster: %v %v", a.calls, c.Changes())
	}
	script := filepath.Join(dir, "replace-node-m3.sh")
	if res.Script != script {
		t.Errorf("result names the script %q, want %q", res.Script, script)
	}
	st, err := os.Stat(script)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("script: %v %v", st, err)
	}
	src, _ := os.ReadFile(script)
	if out, err := exec.Command("sh", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
	_, rest, _ := strings.Cut(string(src), "<<'SPEC'\n")
	body, _, ok := strings.Cut(rest, "\nSPEC\n")
	var spec agentapi.ReplaceSpec
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil || !ok {
		t.Fatalf("the embedded spec: %v\n%s", err, src)
	}
	if err := spec.Validate(); err != nil || spec.Member != "m3" || spec.OldID != "a3" || len(spec.Endpoints) != 2 {
		t.Errorf("spec %+v: %v", spec, err)
	}
	golden.Assert(t, "replace-script", []byte(strings.ReplaceAll(log.String(), dir, "DIR")+"--- script\n"+strings.NewReplacer(dir, "DIR", agentSHA(t, agents, arch), "SHA").Replace(string(src))))
}

func agentSHA(t *testing.T, dir, arch string) string {
	sum, err := agentapi.FileSHA256(filepath.Join(dir, agentclient.Name+"-linux-"+arch))
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
