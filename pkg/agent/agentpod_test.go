package agent

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestAgentPodGolden(t *testing.T) {
	s := &agentapi.RestoreSpec{ID: "20260102T030405Z", StaticPodDir: "/etc/kubernetes/manifests", AgentImage: "registry.k8s.io/etcd:3.6.8-0"}
	b, err := AgentPod(s.Pod(), "/host", "/host/var/lib/kubectl-etcd/bin/0123abcd", "/var/lib/kubectl-etcd/restore", "run", "c1a1m")
	if err != nil {
		t.Fatal(err)
	}
	gp := filepath.Join("testdata", "agent-pod.yaml")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(gp, b, 0o644)
	}
	if want, _ := os.ReadFile(gp); string(want) != string(b) {
		t.Errorf("%s differs (rerun with -update after a deliberate change):\n%s", gp, b)
	}
	if _, err := AgentPod(s.Pod(), "/host", "/tmp/agent", "/j", "run", "c"); err == nil {
		t.Error("an agent outside the node's root was accepted")
	}
	r := &agentapi.ReplaceSpec{ID: "20260102T030405Z", StaticPodDir: "/etc/kubernetes/manifests", AgentImage: "registry.k8s.io/etcd:3.6.8-0"}
	b, err = AgentPod(r.Pod(), "/host", "/host/var/lib/kubectl-etcd/bin/0123abcd", "/var/lib/kubectl-etcd/replace", "run", "c1a1m")
	if err != nil {
		t.Fatal(err)
	}
	gp = filepath.Join("testdata", "agent-pod-replace.yaml")
	if *update {
		os.WriteFile(gp, b, 0o644)
	}
	if want, _ := os.ReadFile(gp); string(want) != string(b) {
		t.Errorf("%s differs (rerun with -update after a deliberate change):\n%s", gp, b)
	}
	s.AgentImage = ""
	if _, err := AgentPod(s.Pod(), "/host", "/host/agent", "/j", "run", "c"); err == nil {
		t.Error("a spec without an image was accepted")
	}
}
