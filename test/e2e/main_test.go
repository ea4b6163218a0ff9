//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	root    string
	env     map[string]string // from hack/cluster/env.sh
	binDir  string
	flavour string
	nodes   int
	here    string // this run's pair, "1.33/1"
	matrix  string // E2E_MATRIX: pairwise (default) or full
)

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: SETUP FAILED: %v\n", err)
		os.Exit(1)
	}
	if code == 0 {
		code = m.Run()
	}
	os.RemoveAll(binDir)
	os.Exit(code)
}

func setup() (int, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return 1, fmt.Errorf("finding the repository: %v", err)
	}
	root = strings.TrimSpace(string(out))
	flavour = getenv("E2E_FLAVOUR", "1.33")
	fmt.Sscan(getenv("E2E_NODES", "1"), &nodes)
	here = fmt.Sprintf("%s/%d", flavour, nodes)
	matrix = getenv("E2E_MATRIX", "pairwise")
	if matrix != "pairwise" && matrix != "full" {
		return 1, fmt.Errorf("E2E_MATRIX=%q: want pairwise (the default) or full", matrix)
	}
	PrintMatrix(os.Stderr, matrix, here)

	if running, why := clusterRunning(); !running {
		fmt.Fprintf(os.Stderr, "e2e: %s; starting a %s cluster with %d node(s) (hack/cluster/build.sh, up.sh)\n", why, flavour, nodes)
		for _, script := range []string{"prereqs.sh", "build.sh", "up.sh"} {
			if err := script2(script); err != nil {
				return 1, fmt.Errorf("hack/cluster/%s: %v", script, err)
			}
		}
		if running, why := clusterRunning(); !running {
			return 1, fmt.Errorf("the cluster is not healthy after up.sh: %s", why)
		}
	}
	if env, err = clusterEnv(); err != nil {
		return 1, err
	}
	if binDir, err = os.MkdirTemp("", "kubectl-etcd-e2e-"); err != nil {
		return 1, err
	}
	// The node agent goes next to the plugin, where restore finds it, as
	// a release archive lays them out. Both built as the release builds
	// them (static, -trimpath, -s -w): the schedule's scenario runs this
	// very plugin in its image (hack/cluster/load-plugin-image.sh).
	for _, b := range []struct{ out, pkg string }{{"kubectl-etcd", "./cmd/kubectl-etcd"}, {"kubectl-etcd-agent", "./cmd/kubectl-etcd-agent"}} {
		build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(binDir, b.out), b.pkg)
		build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return 1, fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	if err := os.Symlink(env["HC_KUBECTL"], filepath.Join(binDir, "kubectl")); err != nil {
		return 1, err
	}
	os.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	os.Setenv("KUBECONFIG", env["HC_KUBECONFIG"])
	os.Setenv("KUBECTL_ETCD_IMAGE", env["HC_TOOLBOX_IMAGE"])
	fmt.Fprintf(os.Stderr, "e2e: flavour %s (kubernetes %s, etcd %s), %d node(s), kubectl %s\n",
		flavour, env["K8S_VERSION"], env["ETCD_VERSION"], nodes, env["HC_KUBECTL"])
	return 0, nil
}

// scenario looks the running test up in the matrix table (matrix.go) and
// skips it, saying where it runs, when this pair is not one of them. Every
// test starts with it.
func scenario(t *testing.T) {
	t.Helper()
	s, ok := Lookup(t.Name())
	if !ok {
		t.Fatalf("%s is not in the matrix table (test/e2e/matrix.go)", t.Name())
	}
	if !s.RunsOn(here, matrix) {
		t.Skipf("not in the %s matrix on %s; runs on %s", matrix, here, strings.Join(s.Pairs(matrix), " "))
	}
}

// anyScenario skips a group of subtests (names relative to t) when none
// of them runs on this pair, before the group's shared set-up.
func anyScenario(t *testing.T, subs ...string) {
	t.Helper()
	var where []string
	for _, sub := range subs {
		s, ok := Lookup(t.Name() + "/" + sub)
		if !ok {
			t.Fatalf("%s/%s is not in the matrix table (test/e2e/matrix.go)", t.Name(), sub)
		}
		if s.RunsOn(here, matrix) {
			return
		}
		where = append(where, s.Pairs(matrix)...)
	}
	t.Skipf("none of %v is in the %s matrix on %s; they run on %s", subs, matrix, here, strings.Join(where, " "))
}

// settled waits, within limit, for the control plane after etcd or an API
// server restarted (a manifest edit, a restore, a member or kubelet back):
// every etcd member healthy, the API server ready and every node Ready on
// consecutive polls for 10 s. The API server restarts once or twice after
// its etcd did (its probes failed meanwhile), so one answer does not mean
// the next step's request will get one. Every step after such a restart
// goes through it.
func settled(t *testing.T, limit time.Duration) {
	t.Helper()
	began := time.Now()
	deadline := began.Add(limit)
	var since time.Time
	var last string
	for {
		ready := runFor(t, 20*time.Second, "kubectl", "get", "--raw", "/readyz", "--request-timeout=10s")
		ok := ready.code == 0
		if !ok {
			last = "the API server is not ready: " + strings.TrimSpace(ready.stdout+ready.stderr)
		} else if h := runFor(t, 2*time.Minute, "kubectl", "etcd", "health"); h.code != 0 {
			ok, last = false, "etcd is not healthy: "+strings.TrimSpace(h.stdout+h.stderr)
		} else if nr := notReadyNodes(t); nr != "" {
			ok, last = false, "node(s) not Ready: "+nr
		}
		switch {
		case !ok:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= 10*time.Second:
			t.Logf("settled after %s", time.Since(began).Round(time.Second))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the control plane did not settle within %s: %s", limit, last)
		}
		time.Sleep(2 * time.Second)
	}
}

// notReadyNodes names the nodes whose Ready condition is not True. A
// control-plane node's kubelet reaches the API through its own node's API
// server, which reaches only its own node's etcd (kubeadm's
// --etcd-servers), so a member that was down leaves its node NotReady
// until the kubelet's next status update after the member is back.
func notReadyNodes(t *testing.T) string {
	t.Helper()
	r := runFor(t, 20*time.Second, "kubectl", "get", "nodes", "--request-timeout=10s", "-o",
		`jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	if r.code != 0 {
		return "(nodes unreadable: " + strings.TrimSpace(r.stderr) + ")"
	}
	var bad []string
	for _, line := range strings.Fields(r.stdout) {
		if name, st, _ := strings.Cut(line, "="); st != "True" {
			bad = append(bad, name)
		}
	}
	return strings.Join(bad, " ")
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// clusterRunning reports whether the recorded cluster is the one asked for
// and healthy.
func clusterRunning() (bool, string) {
	state, err := os.ReadFile("/var/lib/hackcluster/state.env")
	if err != nil {
		return false, "no local cluster is recorded"
	}
	s := string(state)
	if !strings.Contains(s, "HC_FLAVOUR='"+flavour+"'") || !strings.Contains(s, fmt.Sprintf("HC_NODES='%d'", nodes)) {
		return false, "the recorded cluster is another flavour or size"
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack/cluster/check.sh"))
	cmd.Env = append(os.Environ(), "HC_CHECK_WAIT=30")
	if out, err := cmd.CombinedOutput(); err != nil {
		return false, "the recorded cluster is not healthy: " + strings.TrimSpace(string(out))
	}
	return true, ""
}

func script2(name string) error {
	cmd := exec.Command("bash", filepath.Join(root, "hack/cluster", name))
	cmd.Env = append(os.Environ(), "HC_FLAVOUR="+flavour, fmt.Sprintf("HC_NODES=%d", nodes))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func clusterEnv() (map[string]string, error) {
	cmd := exec.Command("bash", "-c", ". hack/cluster/env.sh >/dev/null && env")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HC_FLAVOUR="+flavour)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("sourcing hack/cluster/env.sh: %v", err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	for _, k := range []string{"HC_KUBECTL", "HC_KUBECONFIG", "HC_ETCDUTL", "HC_TOOLBOX_IMAGE", "HC_PLUGIN_IMAGE", "HC_API_SERVICE_IP", "ETCD_VERSION"} {
		if m[k] == "" {
			return nil, fmt.Errorf("hack/cluster/env.sh does not set %s", k)
		}
	}
	return m, nil
}

// result is one run of a command.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// kubectl runs `kubectl args...` as a user would, with a time limit.
func kubectl(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, "kubectl", args...)
}

func runCmd(t *testing.T, name string, args ...string) result {
	t.Helper()
	r := runQuiet(t, name, args...)
	t.Logf("$ %s %s  (exit %d, %s)\n%s%s", name, strings.Join(args, " "), r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
	return r
}

// runQuiet is runCmd without logging, for polls.
func runQuiet(t *testing.T, name string, args ...string) result {
	t.Helper()
	return runFor(t, 5*time.Minute, name, args...)
}

// runFor runs a command, killed after limit.
func runFor(t *testing.T, limit time.Duration, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	timer := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	r := result{stdout: so.String(), stderr: se.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

// mustSucceed fails the test unless the command exited 0.
func mustSucceed(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// noHelperPods waits until no pod the plugin created is left.
func noHelperPods(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := runQuiet(t, "kubectl", "get", "pods", "-A", "-l", "app.kubernetes.io/managed-by=kubectl-etcd", "-o", "name")
		if r.code == 0 && strings.TrimSpace(r.stdout) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper pods left behind: %s", r.stdout)
		}
		time.Sleep(2 * time.Second)
	}
}

func nodeNames(t *testing.T) []string {
	r := mustSucceed(t, kubectl(t, "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"))
	names := strings.Fields(r.stdout)
	if len(names) != nodes {
		t.Fatalf("%d nodes, want %d", len(names), nodes)
	}
	return names
}

func newCmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd
}
