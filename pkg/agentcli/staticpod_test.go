package agentcli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	yaml "go.yaml.in/yaml/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// staticKubelet runs the agent's static pods of a fake node as a kubelet
// does: a file in the static pod dir is a process running its command; a
// process that exits non-zero while its file is there is restarted
// (restartPolicy OnFailure); a removed file stops its process.
type staticKubelet struct {
	n        *fakeNode
	mu       sync.Mutex
	procs    map[string]*exec.Cmd
	exited   map[string]bool // exited 0: not restarted
	starts   map[string]int
	manifest map[string]string
}

func (n *fakeNode) runStaticPods(t *testing.T) *staticKubelet {
	k := &staticKubelet{n: n, procs: map[string]*exec.Cmd{}, exited: map[string]bool{}, starts: map[string]int{}, manifest: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			k.sync(t)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, c := range k.procs {
			c.Process.Kill()
		}
	})
	return k
}

func (k *staticKubelet) sync(t *testing.T) {
	dir := filepath.Join(k.n.root, "etc/kubernetes/manifests")
	files, _ := filepath.Glob(filepath.Join(dir, "kubectl-etcd-agent-*.yaml"))
	k.mu.Lock()
	defer k.mu.Unlock()
	present := map[string]bool{}
	for _, f := range files {
		present[f] = true
		if k.procs[f] != nil || k.exited[f] {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var pod struct {
			Spec struct {
				Containers []struct{ Command []string }
			}
		}
		if err := yaml.Unmarshal(b, &pod); err != nil || len(pod.Spec.Containers) != 1 {
			t.Errorf("static pod %s: %v", f, err)
			continue
		}
		k.manifest[filepath.Base(f)] = string(b)
		// The pod mounts the node's / at /host: here, the node's root.
		argv := append([]string{}, pod.Spec.Containers[0].Command...)
		for i, a := range argv {
			if a == "/host" || strings.HasPrefix(a, "/host/") {
				argv[i] = k.n.root + strings.TrimPrefix(a, "/host")
			}
		}
		c := exec.Command(argv[0], argv[1:]...)
		if err := c.Start(); err != nil {
			t.Errorf("start %s: %v", f, err)
			continue
		}
		k.procs[f] = c
		k.starts[filepath.Base(f)]++
		go func() {
			err := c.Wait()
			k.mu.Lock()
			defer k.mu.Unlock()
			if k.procs[f] == c {
				delete(k.procs, f)
				k.exited[f] = err == nil
			}
		}()
	}
	for f, c := range k.procs {
		if !present[f] {
			c.Process.Signal(syscall.SIGTERM)
			delete(k.procs, f)
		}
	}
}

func (k *staticKubelet) pid(name string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c := k.procs[filepath.Join(k.n.root, "etc/kubernetes/manifests", name)]; c != nil {
		return c.Process.Pid
	}
	return 0
}

func (k *staticKubelet) started(name string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.starts[name]
}

// installAgent puts the agent binary on the fake node's disk, where the
// plugin puts it, and returns it.
func (n *fakeNode) installAgent(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(n.root, "var/lib/kubectl-etcd/bin/agent")
	mustWrite(t, p, string(b))
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func (n *fakeNode) run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	c := exec.Command(bin, append(args, "--root", n.root)...)
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if err != nil {
		t.Logf("%v: %s", args, errb.String())
	}
	return out.String(), err
}

// The agent hands the steps to its static pod, which the kubelet runs
// whatever the API says; once done, the pod takes itself out. A rollback
// runs the same way, in a pod of its own name.
func TestStaticPodRunsRestoreThenRollback(t *testing.T) {
	n := newFakeNode(t)
	k := n.runStaticPods(t)
	bin := n.installAgent(t)
	orig := n.tree(t)
	out, err := n.run(t, bin, "restore", "start", "--spec", n.spec(t, func(s *agentapi.RestoreSpec) { s.AgentImage = "registry.k8s.io/etcd:3.7.0-0" }))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"pid":`) {
		t.Errorf("start printed %q", out)
	}
	j := n.waitPhase(t, agentapi.PhaseDone)
	if j.Claim == "" {
		t.Error("the journal records no claim")
	}
	runPod := agentapi.AgentPodFile(restoreID, "run")
	waitGone(t, filepath.Join(n.root, "etc/kubernetes/manifests", runPod))
	if got := n.read(t, journalDir+"/"+runPod); got != k.manifest[runPod] {
		t.Errorf("the journal dir keeps %q, the kubelet ran %q", got, k.manifest[runPod])
	}
	for _, want := range []string{"app.kubernetes.io/managed-by: kubectl-etcd", "hostPID: true", "restartPolicy: OnFailure", "imagePullPolicy: Never", "image: registry.k8s.io/etcd:3.7.0-0", "--static-pod"} {
		if !strings.Contains(k.manifest[runPod], want) {
			t.Errorf("the agent's static pod lacks %q:\n%s", want, k.manifest[runPod])
		}
	}
	if _, err := n.run(t, bin, "restore", "rollback", "--id", restoreID, "--detach"); err != nil {
		t.Fatal(err)
	}
	n.waitPhase(t, agentapi.PhaseRolledBack)
	waitGone(t, filepath.Join(n.root, "etc/kubernetes/manifests", agentapi.AgentPodFile(restoreID, "rollback")))
	if d := cmp.Diff(orig, n.tree(t)); d != "" {
		t.Errorf("tree after the rollback (-before +after):\n%s", d)
	}
	if s := k.started(runPod); s != 1 {
		t.Errorf("the run pod started %d times, want 1", s)
	}
}

// An agent killed mid-way is restarted by the kubelet and resumes.
func TestStaticPodAgentResumesAfterKill(t *testing.T) {
	n := newFakeNode(t)
	k := n.runStaticPods(t)
	bin := n.installAgent(t)
	n.apiStuck.Store(true)
	if _, err := n.run(t, bin, "restore", "start", "--spec", n.spec(t, func(s *agentapi.RestoreSpec) { s.AgentImage = "etcd" })); err != nil {
		t.Fatal(err)
	}
	runPod := agentapi.AgentPodFile(restoreID, "run")
	for n.journal(t).Steps[3].State != agentapi.Running {
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(k.pid(runPod), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for k.started(runPod) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	n.apiStuck.Store(false)
	n.waitPhase(t, agentapi.PhaseDone)
	waitGone(t, filepath.Join(n.root, "etc/kubernetes/manifests", runPod))
}

func waitGone(t *testing.T, p string) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for {
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A static pod that never runs is taken out again, and its journal, which
// nobody claimed, ends rolled back with nothing changed: it does not block
// the next restore.
func TestStaticPodThatNeverStarts(t *testing.T) {
	n := newFakeNode(t)
	bin := n.installAgent(t)
	orig := n.tree(t)
	_, err := n.run(t, bin, "restore", "start", "--handover-timeout", "300ms", "--spec", n.spec(t, func(s *agentapi.RestoreSpec) { s.AgentImage = "etcd" }))
	if err == nil {
		t.Fatal("start succeeded without a kubelet to run its static pod")
	}
	if j := n.journal(t); j.Phase != agentapi.PhaseRolledBack || !strings.Contains(j.Error, "nothing ran") {
		t.Errorf("journal phase %s, error %q; want rolled back, nothing ran", j.Phase, j.Error)
	}
	if d := cmp.Diff(orig, n.tree(t)); d != "" {
		t.Errorf("tree changed (-before +after):\n%s", d)
	}
}

// printStarted gives the plugin its JSON, and a person following the
// steps in a node script a sentence instead.
func TestPrintStarted(t *testing.T) {
	for _, follow := range []bool{false, true} {
		var out, errb strings.Builder
		o := &options{op: agentapi.RecoverOperation, journalRoot: "/var/lib/kubectl-etcd/recover", id: "R1", follow: follow, stdout: &out, stderr: &errb}
		if err := o.printStarted(42); err != nil {
			t.Fatal(err)
		}
		if follow && (out.Len() != 0 || !strings.Contains(errb.String(), "The agent runs recover R1; its journal is /var/lib/kubectl-etcd/recover/R1/")) {
			t.Errorf("--follow printed %q and %q", out.String(), errb.String())
		}
		if !follow && (!strings.Contains(out.String(), `{"pid":42,"journal":"/var/lib/kubectl-etcd/recover/R1/`) || errb.Len() != 0) {
			t.Errorf("without --follow printed %q and %q", out.String(), errb.String())
		}
	}
}
