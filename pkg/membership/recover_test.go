package membership_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/change"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
)

// survey is a crafted survey of member name on node name.
func survey(name string, commit, lastIndex, lastTerm uint64, rev int64) membership.Ranked {
	s := agentapi.Survey{Kind: agentapi.SurveyKind, Node: name, Member: name, Image: "registry.k8s.io/etcd:3.6.5-0", DataDir: "/var/lib/etcd",
		PeerURLs: []string{"https://10.0.0." + name[len(name)-1:] + ":2380"}, ClientURL: "https://10.0.0." + name[len(name)-1:] + ":2379",
		MemberID: "a" + name[len(name)-1:], ClusterID: "c1", Taken: t0}
	if commit > 0 {
		s.WAL = &agentapi.WALState{Files: 1, Term: lastTerm, Commit: commit, LastIndex: lastIndex, LastTerm: lastTerm}
		s.Backend = &agentapi.BackendState{From: "db", ConsistentIndex: commit, Revision: rev}
		s.Members = []agentapi.SurveyMember{{ID: "a1", Name: "cp1"}, {ID: "a2", Name: "cp2"}, {ID: "a3", Name: "cp3"}}
	} else {
		s.NoData = "no WAL in /var/lib/etcd/member/wal: this member's data is gone"
	}
	return membership.Ranked{Survey: s, File: "survey-" + name + ".json"}
}

func TestRankSurveys(t *testing.T) {
	learner := survey("cp2", 200, 200, 5, 90)
	learner.Members[1].IsLearner = true
	healthy := survey("cp2", 100, 100, 5, 50)
	healthy.Healthy = true
	other := survey("cp2", 100, 100, 5, 50)
	other.ClusterID = "c2"
	running := survey("cp2", 100, 100, 5, 0)
	running.EtcdRunning, running.Backend = true, &agentapi.BackendState{From: "db", Error: "the running etcd holds the database"}
	tests := []struct {
		name    string
		in      []membership.Ranked
		want    []string // members, survivor first
		behind  []uint64
		loses   []int64
		wantErr string
	}{
		{name: "the most entries kept wins", in: []membership.Ranked{survey("cp1", 100, 102, 5, 50), survey("cp2", 120, 120, 5, 60), survey("cp3", 0, 0, 0, 0)},
			want: []string{"cp2", "cp1", "cp3"}, behind: []uint64{0, 20, 0}, loses: []int64{0, 10, 0}},
		{name: "a higher term with a lower commit loses: committed entries never conflict", in: []membership.Ranked{survey("cp1", 100, 100, 9, 50), survey("cp2", 120, 121, 5, 60)},
			want: []string{"cp2", "cp1"}, behind: []uint64{0, 20}, loses: []int64{0, 10}},
		{name: "a tie on commit goes to the higher last term, then index", in: []membership.Ranked{survey("cp1", 100, 101, 5, 50), survey("cp2", 100, 101, 6, 50), survey("cp3", 100, 103, 6, 50)},
			want: []string{"cp3", "cp2", "cp1"}, behind: []uint64{0, 0, 0}},
		{name: "a full tie goes to the node name", in: []membership.Ranked{survey("cp2", 100, 100, 5, 50), survey("cp1", 100, 100, 5, 50)},
			want: []string{"cp1", "cp2"}},
		{name: "a voter before a learner with more", in: []membership.Ranked{survey("cp1", 100, 100, 5, 50), learner},
			want: []string{"cp1", "cp2"}},
		{name: "a running member's unknown revision loses none", in: []membership.Ranked{survey("cp1", 100, 100, 5, 50), running},
			want: []string{"cp1", "cp2"}, loses: []int64{0, 0}},
		{name: "learners only", in: []membership.Ranked{learner}, wantErr: "only learners have data"},
		{name: "a healthy member", in: []membership.Ranked{survey("cp1", 100, 100, 5, 50), healthy}, wantErr: "the cluster has a quorum"},
		{name: "two clusters", in: []membership.Ranked{survey("cp1", 100, 100, 5, 50), other}, wantErr: "two clusters"},
		{name: "no data", in: []membership.Ranked{survey("cp1", 0, 0, 0, 0)}, wantErr: "no surveyed member has data"},
		{name: "one member twice", in: []membership.Ranked{survey("cp1", 100, 100, 5, 50), survey("cp1", 100, 100, 5, 50)}, wantErr: "both surveys of member cp1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := membership.RankSurveys(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range tt.want {
				if got[i].Member != m {
					t.Fatalf("order %v, want %v", members(got), tt.want)
				}
				if tt.behind != nil && got[i].Behind != tt.behind[i] {
					t.Errorf("%s behind %d, want %d", m, got[i].Behind, tt.behind[i])
				}
				if tt.loses != nil && got[i].LosesRevisions != tt.loses[i] {
					t.Errorf("%s loses %d revisions, want %d", m, got[i].LosesRevisions, tt.loses[i])
				}
			}
			if got[0].Role != "survivor" || got[0].Rank != 1 {
				t.Errorf("the survivor: %+v", got[0])
			}
		})
	}
}

func members(rs []membership.Ranked) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Member)
	}
	return out
}

// TestRecoverScripts runs both rounds: the survey script, then, with the
// surveys in the dir, the plan and the scripts in the order to run them,
// each valid sh with a spec the agent reads strictly.
func TestRecoverScripts(t *testing.T) {
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
	dir := filepath.Join(t.TempDir(), "recover")
	var log bytes.Buffer
	cfg := membership.RecoverConfig{Options: change.Options{Log: &log, Now: func() time.Time { return t0 }}, ScriptDir: dir, AgentDir: agents, ID: "R1",
		Healthy: func() ([]string, error) {
			return nil, errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")
		}}

	res, err := membership.Recover(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Phase != "survey" || len(res.Scripts) != 1 {
		t.Fatalf("round 1: %+v", res)
	}
	if out, err := exec.Command("sh", "-n", res.Scripts[0]).CombinedOutput(); err != nil {
		t.Errorf("sh -n %s: %v\n%s", res.Scripts[0], err, out)
	}
	src, _ := os.ReadFile(res.Scripts[0])
	if !strings.Contains(string(src), `exec "$bin" recover survey --root / --static-pod-dir /etc/kubernetes/manifests`) {
		t.Errorf("the survey script does not run the survey:\n%s", src)
	}

	for _, s := range []membership.Ranked{survey("cp1", 100, 100, 5, 50), survey("cp2", 120, 121, 5, 60), survey("cp3", 0, 0, 0, 0)} {
		b, _ := json.Marshal(s.Survey)
		os.WriteFile(filepath.Join(dir, s.File), b, 0o600)
	}
	log.WriteString("--- round 2, dry run\n")
	cfg.DryRun = true
	if _, err := membership.Recover(cfg); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*-cp*.sh")); len(m) != 0 {
		t.Errorf("a dry run wrote %v", m)
	}
	log.WriteString("--- round 2\n")
	cfg.DryRun = false
	res, err = membership.Recover(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"recover-cp2.sh", "rejoin-cp1.sh", "rejoin-cp3.sh"}
	if len(res.Scripts) != len(want) {
		t.Fatalf("scripts %v, want %v", res.Scripts, want)
	}
	for i, w := range want {
		if filepath.Base(res.Scripts[i]) != w {
			t.Fatalf("scripts %v, want %v", res.Scripts, want)
		}
		if out, err := exec.Command("sh", "-n", res.Scripts[i]).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", w, err, out)
		}
	}
	src, _ = os.ReadFile(res.Scripts[0])
	_, rest, _ := strings.Cut(string(src), "<<'SPEC'\n")
	body, _, _ := strings.Cut(rest, "\nSPEC\n")
	var spec agentapi.RecoverSpec
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		t.Fatalf("the survivor's spec: %v\n%s", err, src)
	}
	if err := spec.Validate(); err != nil || spec.Member != "cp2" || spec.Expect.MemberID != "a2" || spec.Expect.WAL.Commit != 120 {
		t.Errorf("the survivor's spec %+v: %v", spec, err)
	}
	src, _ = os.ReadFile(res.Scripts[1])
	if !strings.Contains(string(src), `"https://10.0.0.2:2379"`) || !strings.Contains(string(src), "replace start") {
		t.Errorf("the rejoin script does not join cp2's cluster:\n%s", src)
	}

	log.WriteString("--- round 2 again\n")
	if _, err := membership.Recover(cfg); err == nil || !strings.Contains(err.Error(), "planned already") {
		t.Errorf("a second plan in the same dir: %v", err)
	}
	golden.Assert(t, "recover-plan", []byte(strings.ReplaceAll(log.String(), dir, "DIR")))
}

// TestRecoverRefusesAQuorum: a member that answers healthy through the API
// means a quorum, and neither round writes anything.
func TestRecoverRefusesAQuorum(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "recover")
	var log bytes.Buffer
	cfg := membership.RecoverConfig{Options: change.Options{Log: &log, Now: func() time.Time { return t0 }}, ScriptDir: dir, ID: "R1",
		Healthy: func() ([]string, error) { return []string{"cp1"}, nil }}
	_, err := membership.Recover(cfg)
	if err == nil || !strings.Contains(err.Error(), "has a quorum: member cp1 answers healthy") || !strings.Contains(hint.Of(err), "member replace") {
		t.Errorf("a cluster with a quorum: %v (hint %q)", err, hint.Of(err))
	}
	cfg.Healthy = func() ([]string, error) { return []string{"cp1", "cp2"}, nil }
	if _, err := membership.Recover(cfg); err == nil || !strings.Contains(err.Error(), "has a quorum: members cp1, cp2 answer healthy") {
		t.Errorf("a cluster with a quorum: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused recovery wrote %s: %v", dir, err)
	}
}
