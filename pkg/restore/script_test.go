package restore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

// scriptFixture is a fixture whose agent dir holds a real linux ELF (this
// test binary) as the amd64 or arm64 agent.
func scriptFixture(t *testing.T, n int) *fixture {
	f := newFixture(t, n, "3.7.0")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	arch, err := agentclient.ELFArch(exe)
	if err != nil {
		t.Skipf("the test binary is not a linux amd64/arm64 ELF: %v", err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(f.cfg.AgentDir, agentclient.Name))
	os.WriteFile(filepath.Join(f.cfg.AgentDir, agentclient.Name+"-linux-"+arch), b, 0o755)
	f.cfg.ScriptDir = filepath.Join(t.TempDir(), "scripts")
	return f
}

// embeddedSpec is the agent spec a script hands to `restore start`.
func embeddedSpec(t *testing.T, script string) agentapi.RestoreSpec {
	t.Helper()
	_, rest, ok := strings.Cut(script, "<<'SPEC'\n")
	body, _, ok2 := strings.Cut(rest, "\nSPEC\n")
	if !ok || !ok2 {
		t.Fatalf("no spec heredoc in the script:\n%s", script)
	}
	var s agentapi.RestoreSpec
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("the embedded spec: %v", err)
	}
	return s
}

var hexSum = regexp.MustCompile(`[0-9a-f]{64}`)

func TestScriptsFromPods(t *testing.T) {
	f := scriptFixture(t, 3)
	p, err := Scripts(context.Background(), f.deps(), f.cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	if len(f.pods(t)) != 0 || len(f.ex.calls) != 0 {
		t.Errorf("script mode made %d pods and %d execs; want none", len(f.pods(t)), len(f.ex.calls))
	}
	for name, mode := range map[string]os.FileMode{"restore-cp1.sh": 0o700, "restore-cp2.sh": 0o700, "restore-cp3.sh": 0o700, ScriptSnapshot: 0o600} {
		st, err := os.Stat(filepath.Join(f.cfg.ScriptDir, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v; want %v", name, err, st, mode)
		}
	}
	snap, _ := os.ReadFile(f.cfg.File)
	copied, _ := os.ReadFile(filepath.Join(f.cfg.ScriptDir, ScriptSnapshot))
	if !bytes.Equal(snap, copied) {
		t.Errorf("the script dir's snapshot differs from %s", f.cfg.File)
	}
	for i, m := range p.Members {
		path := filepath.Join(f.cfg.ScriptDir, scriptName(m))
		if out, err := exec.Command("sh", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v %s", path, err, out)
		}
		b, _ := os.ReadFile(path)
		s := embeddedSpec(t, string(b))
		sr := s.SnapshotRestore
		if sr == nil || sr.Snapshot != m.StagedSnapshot || sr.SHA256 != fmt.Sprintf("%x", sha256.Sum256(snap)) || s.NewDataDir != m.NewDataDir || s.AgentImage != m.Image {
			t.Errorf("member %s: spec %+v, snapshot restore %+v", m.Name, s, sr)
		}
		if s.Barrier == nil || len(s.Barrier.Peers) != 2 || time.Duration(s.Barrier.Timeout) != scriptBarrierTimeout {
			t.Errorf("member %s: barrier %+v; want 2 peers and the script timeout", m.Name, s.Barrier)
		}
		if i == 0 {
			golden := filepath.Join("testdata", "script-3-members-cp1.sh")
			got := hexSum.ReplaceAllString(string(b), "<sha256>")
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("(-%s +got):\n%s", golden, d)
			}
		}
	}
	for _, w := range []string{"sh scripts/restore-cp2.sh", "systemctl restart kubelet", "snapshot.db (sha256 ", "restore run --id " + p.ID + " --decision commit|abort --from"} {
		if !strings.Contains(f.out.String(), w) {
			t.Errorf("the instructions do not say %q:\n%s", w, f.out)
		}
	}
}

func TestScriptsFromMetadataWithoutTheAPI(t *testing.T) {
	f := scriptFixture(t, 3)
	noAPI := errors.New("cannot reach the Kubernetes API server: context deadline exceeded")
	deps := f.deps()
	deps.Members = func(context.Context) ([]discovery.Member, error) { return nil, noAPI }
	_, err := Scripts(context.Background(), deps, f.cfg)
	if err == nil || !strings.Contains(err.Error(), "no FILE.json naming the members") {
		t.Fatalf("without the API and FILE.json: err = %v", err)
	}
	os.RemoveAll(f.cfg.ScriptDir)
	snap, _ := os.ReadFile(f.cfg.File)
	meta := fmt.Sprintf(`{"clusterID":"c0ffee","sha256":"%x","revision":5000,"etcdVersion":"3.7.0","members":[
		{"name":"cp1","node":"cp1","peerURLs":["https://10.250.1.11:2380"]},
		{"name":"cp2","node":"cp2","peerURLs":["https://10.250.1.12:2380"]},
		{"name":"cp3","node":"cp3","peerURLs":["https://10.250.1.13:2380"]}]}`, sha256.Sum256(snap))
	os.WriteFile(f.cfg.File+".json", []byte(meta), 0o600)
	p, err := Scripts(context.Background(), deps, f.cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	if !strings.Contains(f.out.String(), "planned from FILE.json's members") || p.Bump != FallbackBump {
		t.Errorf("plan bump %d; output:\n%s", p.Bump, f.out)
	}
	b, _ := os.ReadFile(filepath.Join(f.cfg.ScriptDir, "restore-cp2.sh"))
	s := embeddedSpec(t, string(b))
	if s.Member != "cp2" || s.OldDataDir != "" || s.NewDataDir != "" || s.AgentImage != "" || s.Barrier == nil || len(s.Barrier.Peers) != 2 {
		t.Errorf("cp2.s spec %+v: want member cp2, its data dirs and image left to the node's manifest, 2 peers", s)
	}
	if !strings.Contains(strings.Join(s.SnapshotRestore.Flags, " "), "--initial-cluster=cp1=https://10.250.1.11:2380,cp2=https://10.250.1.12:2380,cp3=https://10.250.1.13:2380") {
		t.Errorf("flags %q", s.SnapshotRestore.Flags)
	}
}

// FILE.json is not authenticated: a hostile node or member name must not
// write outside the script dir on the workstation, nor reach a root
// script on a node (X2).
func TestScriptsRefuseHostileNames(t *testing.T) {
	for _, tt := range []struct{ name, node, member, want string }{
		{"traversal in the node", "../../../home/u/bin/deploy", "cp1", "not a Kubernetes node name"},
		{"command in the node", "cp1$(reboot)", "cp1", "not a Kubernetes node name"},
		{"newline in the member", "cp1", "cp1\nreboot", "has the member name"},
		{"quote in the member", "cp1", "cp1'; reboot; '", "has the member name"},
		{"slash in the member", "cp1", "a/b", "has the member name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := scriptFixture(t, 1)
			deps := f.deps()
			deps.Members = func(context.Context) ([]discovery.Member, error) { return nil, errors.New("no API") }
			snap, _ := os.ReadFile(f.cfg.File)
			node, _ := json.Marshal(tt.node)
			member, _ := json.Marshal(tt.member)
			meta := fmt.Sprintf(`{"clusterID":"c0ffee","sha256":"%x","revision":5000,"etcdVersion":"3.7.0","members":[
				{"name":%s,"node":%s,"peerURLs":["https://10.250.1.11:2380"]}]}`, sha256.Sum256(snap), member, node)
			os.WriteFile(f.cfg.File+".json", []byte(meta), 0o600)
			_, err := Scripts(context.Background(), deps, f.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if ents, _ := os.ReadDir(f.cfg.ScriptDir); len(ents) != 0 {
				t.Errorf("files written: %v", ents)
			}
		})
	}
}

func TestScriptsRefuseANonEmptyDir(t *testing.T) {
	f := scriptFixture(t, 1)
	os.MkdirAll(f.cfg.ScriptDir, 0o700)
	os.WriteFile(filepath.Join(f.cfg.ScriptDir, "restore-old.sh"), nil, 0o600)
	if _, err := Scripts(context.Background(), f.deps(), f.cfg); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("err = %v, want a refusal of the non-empty dir", err)
	}
}
