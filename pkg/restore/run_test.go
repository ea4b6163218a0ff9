package restore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/syncbuf"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// writeSnapshot writes a bbolt file whose newest revision is rev, with
// etcd's sha256 trailer.
func writeSnapshot(t *testing.T, dir string, rev int64) string {
	t.Helper()
	p := filepath.Join(dir, "etcd.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("key"))
		if err != nil {
			return err
		}
		k := make([]byte, 17)
		binary.BigEndian.PutUint64(k, uint64(rev))
		kv := mvccpb.KeyValue{Key: []byte("/registry/configmaps/default/a"), Value: []byte("v"), CreateRevision: rev, ModRevision: rev, Version: 1}
		v, err := kv.Marshal()
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
	if err != nil || db.Close() != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	sum := sha256.Sum256(b)
	os.WriteFile(p, append(b, sum[:]...), 0o600)
	return p
}

// recExec plays the helper image and the agent, recording every call.
type recExec struct {
	mu      sync.Mutex
	calls   []call
	started func()
	// mounts maps a path df is asked about to its mount point (else /host).
	mounts map[string]string
	// prepareFails fails `restore start --prepare` in the pods it names.
	prepareFails func(pod string) bool
	// status is what `restore status` prints on a node ("[]" without it);
	// fails fails any other agent command on a node.
	status func(node string) string
	fails  func(node, line string) bool
	// installed is what `mv -f X.part X` put at each path (any node's).
	installed map[string]string
	uploaded  map[string]string
	nodeOf    func(pod string) string
}

type call struct {
	pod   string
	cmd   []string
	stdin []byte
}

func (r *recExec) Exec(_ context.Context, ref exec.PodRef, cmd []string, stdin io.Reader, stdout, _ io.Writer) error {
	var in []byte
	if stdin != nil {
		in, _ = io.ReadAll(stdin)
	}
	r.mu.Lock()
	r.calls = append(r.calls, call{ref.Name, cmd, in})
	r.mu.Unlock()
	line := strings.Join(cmd, " ")
	if r.fails != nil && r.fails(r.nodeOf(ref.Name), line) {
		return fmt.Errorf("command terminated with exit code 1")
	}
	switch {
	case strings.Contains(line, "cat > "):
		sum := sha256.Sum256(in)
		fmt.Fprintf(stdout, "%s  %s\n", hex.EncodeToString(sum[:]), cmd[len(cmd)-1])
		r.mu.Lock()
		if r.uploaded == nil {
			r.uploaded, r.installed = map[string]string{}, map[string]string{}
		}
		r.uploaded[r.nodeOf(ref.Name)+cmd[len(cmd)-1]] = hex.EncodeToString(sum[:])
		r.mu.Unlock()
	case strings.Contains(line, "mv -f"):
		r.mu.Lock()
		r.installed[r.nodeOf(ref.Name)+cmd[len(cmd)-1]] = r.uploaded[r.nodeOf(ref.Name)+cmd[len(cmd)-1]+".part"]
		r.mu.Unlock()
	case strings.Contains(line, "sha256sum"):
		r.mu.Lock()
		if sum := r.installed[r.nodeOf(ref.Name)+cmd[len(cmd)-1]]; sum != "" {
			fmt.Fprintf(stdout, "%s  %s\n", sum, cmd[len(cmd)-1])
		}
		r.mu.Unlock()
	case strings.Contains(line, "df -Pk"):
		fmt.Fprintf(stdout, "Filesystem 1024-blocks Used Available Capacity Mounted on\n")
		for _, p := range cmd[4:] {
			mount := "/host"
			if m := r.mounts[p]; m != "" {
				mount = m
			}
			fmt.Fprintf(stdout, "/dev/vda1 100000000 1 90000000 1%% %s\n", mount)
		}
	case strings.Contains(line, "restore status") && r.status != nil:
		io.WriteString(stdout, r.status(r.nodeOf(ref.Name)))
	case strings.Contains(line, "restore status"):
		io.WriteString(stdout, "[]")
	case strings.Contains(line, "restore rollback") && strings.Contains(line, "--release"):
		if r.started != nil {
			r.started()
		}
		io.WriteString(stdout, `{"pid":0,"journal":"j","log":"l","notBefore":"2026-01-02T03:04:15Z"}`)
	case strings.Contains(line, "restore start --prepare"):
		if r.prepareFails != nil && r.prepareFails(ref.Name) {
			return fmt.Errorf("command terminated with exit code 1")
		}
		io.WriteString(stdout, `{"pid":0,"journal":"j","log":"l"}`)
	case strings.Contains(line, "restore run") && strings.Contains(line, "--detach"):
		if r.started != nil {
			r.started()
		}
		io.WriteString(stdout, `{"pid":42,"journal":"j","log":"l"}`)
	}
	return nil
}

func (r *recExec) find(sub string) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []call
	for _, c := range r.calls {
		if strings.Contains(strings.Join(c.cmd, " "), sub) {
			out = append(out, c)
		}
	}
	return out
}

// fakeEtcd answers as the cluster before the restore, then (restored) as
// the restored one; down makes the API server refuse.
type fakeEtcd struct {
	mu       sync.Mutex
	restored bool
	downFor  int
	// oldFor is how many dials after the agents start still reach the old
	// cluster, as before the agents stop it.
	oldFor int
	ms     []discovery.Member
}

func (f *fakeEtcd) members(context.Context) ([]discovery.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.restored && f.downFor > 0 {
		f.downFor--
		return nil, errors.New("connection refused")
	}
	return f.ms, nil
}

func (f *fakeEtcd) Name() string                                      { return "fake" }
func (f *fakeEtcd) Prepare(context.Context, []discovery.Member) error { return nil }
func (f *fakeEtcd) Client(context.Context, discovery.Member) (etcd.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.restored && f.oldFor > 0 {
		f.oldFor--
		return fakeConn{}, nil
	}
	return fakeConn{restored: f.restored}, nil
}

type fakeConn struct {
	etcd.Client // what a restore does not call
	restored    bool
}

func (c fakeConn) MemberList(context.Context) (uint64, []etcd.MemberInfo, error) { return 1, nil, nil }
func (c fakeConn) Status(context.Context) (*etcd.Status, error) {
	if c.restored {
		return &etcd.Status{ClusterID: 0xbeef, Revision: 5000 + 12000 + BumpFloor + 7}, nil
	}
	return &etcd.Status{ClusterID: 0xc0ffee, Revision: 9000, RaftIndex: 12000}, nil
}
func (c fakeConn) Health(context.Context) (time.Duration, error) { return time.Millisecond, nil }
func (c fakeConn) StatusAll(context.Context) ([]etcd.EndpointStatus, error) {
	return nil, &etcd.UnsupportedError{Transport: "fake", Op: "status-all"}
}
func (c fakeConn) HealthAll(context.Context) ([]etcd.EndpointHealth, error) {
	return nil, &etcd.UnsupportedError{Transport: "fake", Op: "health-all"}
}
func (c fakeConn) AlarmList(context.Context) ([]etcd.Alarm, error) { return nil, nil }
func (c fakeConn) Close() error                                    { return nil }

// fakeAPI is a fake API whose kubelet runs node pods and completes
// restore pods.
func fakeAPI(t *testing.T, ms []discovery.Member, notReady string) *fake.Clientset {
	var objs []runtime.Object
	for _, m := range ms {
		st := corev1.ConditionTrue
		if m.Node == notReady {
			st = corev1.ConditionFalse
		}
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: m.Node},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
				NodeInfo: corev1.NodeSystemInfo{Architecture: "amd64", OperatingSystem: "linux"}}})
	}
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		go func() {
			time.Sleep(20 * time.Millisecond)
			pod.Status.Phase = corev1.PodRunning
			if pod.Labels[nodepod.PurposeLabel] == PurposeRestore {
				pod.Status.Phase = corev1.PodSucceeded
			}
			_, _ = cs.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
		}()
		return false, nil, nil
	})
	// A watch keeps to the pod its field selector names, as the API
	// server's does; the fake would send it every pod's events, so that a
	// node's Start could take another node's pod, deleted or ended, for
	// its own when the nodes' pods come and go side by side.
	cs.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		wa := a.(k8stesting.WatchActionImpl)
		w, err := cs.Tracker().Watch(a.GetResource(), a.GetNamespace(), wa.ListOptions)
		if err != nil {
			return true, nil, err
		}
		name, ok := wa.GetWatchRestrictions().Fields.RequiresExactMatch("metadata.name")
		if !ok {
			return true, w, nil
		}
		return true, watch.Filter(w, func(ev watch.Event) (watch.Event, bool) {
			p, ok := ev.Object.(*corev1.Pod)
			return ev, !ok || p.Name == name
		}), nil
	})
	return cs
}

type fixture struct {
	cs  *fake.Clientset
	ex  *recExec
	fe  *fakeEtcd
	cfg Config
	out *syncbuf.Buffer
}

func newFixture(t *testing.T, n int, version string) *fixture {
	dir := t.TempDir()
	ms := members(n, version)
	for i := range ms {
		ms[i].NodeReady = ptrTo(true)
	}
	os.WriteFile(filepath.Join(dir, agentclient.Name), []byte("agent"), 0o755)
	f := &fixture{ex: &recExec{}, fe: &fakeEtcd{ms: ms, downFor: 2}, out: &syncbuf.Buffer{}}
	f.ex.started = func() { f.fe.mu.Lock(); f.fe.restored = true; f.fe.mu.Unlock() }
	f.cs = fakeAPI(t, ms, "")
	f.ex.nodeOf = func(pod string) string {
		p, _ := f.cs.CoreV1().Pods("kube-system").Get(context.Background(), pod, metav1.GetOptions{})
		if p == nil {
			return ""
		}
		return p.Spec.NodeName
	}
	f.cfg = Config{File: writeSnapshot(t, dir, 5000), Namespace: "kube-system", AgentDir: dir, Out: f.out, ErrOut: f.out,
		Confirm: func(*Plan) error { return nil }, Now: func() time.Time { return when }, Poll: time.Millisecond, WaitTimeout: time.Minute} // no test waits it out
	return f
}

func ptrTo[T any](v T) *T { return &v }

func (f *fixture) deps() Deps {
	return Deps{Client: f.cs, Exec: f.ex, Members: f.fe.members, Reads: f.fe}
}

func (f *fixture) pods(t *testing.T) []corev1.Pod {
	l, err := f.cs.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func TestPreflightRefusalsCreateNothing(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		edit       func(t *testing.T, f *fixture)
	}{
		{"corrupt snapshot", "does not verify", func(t *testing.T, f *fixture) {
			b, _ := os.ReadFile(f.cfg.File)
			b[100] ^= 0xff
			os.WriteFile(f.cfg.File, b, 0o600)
		}},
		{"other cluster", "--force", func(t *testing.T, f *fixture) {
			b, _ := os.ReadFile(f.cfg.File)
			sum := sha256.Sum256(b)
			os.WriteFile(f.cfg.File+".json", []byte(fmt.Sprintf(`{"clusterID":"deadbeef","sha256":"%x","revision":5000,"members":[{"name":"cp1"}]}`, sum)), 0o600)
		}},
		{"copy-db file without --skip-hash-check", "restore this copy with --skip-hash-check", func(t *testing.T, f *fixture) { stripTrailer(t, f.cfg.File) }},
		{"node not ready", "not Ready", func(t *testing.T, f *fixture) { f.fe.ms[0].NodeReady = ptrTo(false) }},
		{"no agent binary", "go build -o", func(t *testing.T, f *fixture) { f.cfg.AgentDir = t.TempDir() }},
		{"not confirmed", "not confirmed", func(t *testing.T, f *fixture) {
			f.cfg.Confirm = Confirmation(strings.NewReader(""), io.Discard, false, "ctx", false)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 1, "3.7.0")
			tt.edit(t, f)
			_, err := Run(context.Background(), f.deps(), f.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if p := f.pods(t); len(p) != 0 || len(f.ex.calls) != 0 {
				t.Errorf("refused in preflight, yet %d pods and %d execs", len(p), len(f.ex.calls))
			}
		})
	}
}

func TestDryRunPrintsThePlanOnly(t *testing.T) {
	f := newFixture(t, 3, "3.7.0")
	f.cfg.DryRun = true
	if _, err := Run(context.Background(), f.deps(), f.cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.out.String(), "Node cp3: member cp3") || !strings.Contains(f.out.String(), "--dry-run: nothing was changed") {
		t.Errorf("no plan printed:\n%s", f.out)
	}
	if len(f.pods(t)) != 0 || len(f.ex.calls) != 0 {
		t.Error("--dry-run created pods or ran commands")
	}
}

// stripTrailer makes a snapshot what copy-db copies: the database alone.
func stripTrailer(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b[:len(b)-sha256.Size], 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSkipHashCheckRestoresACopyDBFile: with --skip-hash-check a member's
// database copied from its data dir is planned, with a warning, and each
// node's etcdutl gets --skip-hash-check.
func TestSkipHashCheckRestoresACopyDBFile(t *testing.T) {
	f := newFixture(t, 3, "3.7.0")
	stripTrailer(t, f.cfg.File)
	f.cfg.DryRun, f.cfg.SkipHashCheck = true, true
	if _, err := Run(context.Background(), f.deps(), f.cfg); err != nil {
		t.Fatal(err)
	}
	out := f.out.String()
	if !strings.Contains(out, "copied from its data dir (copy-db), not a snapshot") || strings.Count(out, "--skip-hash-check") < 3 {
		t.Errorf("the plan does not warn, or not every node restores with --skip-hash-check:\n%s", out)
	}
}

func TestConfirmation(t *testing.T) {
	for _, tt := range []struct {
		name     string
		in       string
		terminal bool
		yes      bool
		ok       bool
	}{
		{"no terminal, no --yes", "", false, false, false},
		{"--yes", "", false, true, true},
		{"typed the context", "kind-hc\n", true, false, true},
		{"typed something else", "y\n", true, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Confirmation(strings.NewReader(tt.in), io.Discard, tt.terminal, "kind-hc", tt.yes)(nil)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok %t", err, tt.ok)
			}
		})
	}
	// The prompt says what is confirmed: a restore, or a rollback and its loss.
	for _, tt := range []struct {
		plan *Plan
		want string
	}{{&Plan{}, "(kind-hc) to restore: "}, {nil, "(kind-hc) to roll back (every write since the restore is lost): "}} {
		var prompt strings.Builder
		_ = Confirmation(strings.NewReader("kind-hc\n"), &prompt, true, "kind-hc", false)(tt.plan)
		if !strings.Contains(prompt.String(), tt.want) {
			t.Errorf("prompt %q, want %q", prompt.String(), tt.want)
		}
	}
}

func TestRestorePodGolden(t *testing.T) {
	for _, v := range []string{"3.5.35", "3.7.0"} {
		t.Run(v, func(t *testing.T) {
			p, err := NewPlan(members(1, v), snap(nil), Live{}, Options{Time: when})
			if err != nil {
				t.Fatal(err)
			}
			b, err := yaml.Marshal(BuildRestorePod(p, p.Members[0], "kube-system"))
			if err != nil {
				t.Fatal(err)
			}
			gp := filepath.Join("testdata", "restore-pod-"+v+".yaml")
			if *update {
				os.WriteFile(gp, b, 0o644)
			}
			if want, _ := os.ReadFile(gp); string(want) != string(b) {
				t.Errorf("%s differs (rerun with -update after a deliberate change):\n%s", gp, b)
			}
		})
	}
}

func TestRunDrivesEveryNode(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d-members", n), func(t *testing.T) {
			f := newFixture(t, n, "3.7.0")
			res, err := Run(context.Background(), f.deps(), f.cfg)
			if err != nil {
				t.Fatalf("%v\n%s", err, f.out)
			}
			if res.ClusterID != "beef" {
				t.Errorf("cluster ID %s, want the restored beef", res.ClusterID)
			}
			if got := len(f.ex.find("cat > ")); got != 2*n {
				t.Errorf("%d uploads, want agent and snapshot on each of %d nodes", got, n)
			}
			snapBytes, _ := os.ReadFile(f.cfg.File)
			staged := map[string]bool{}
			for _, c := range f.ex.find("snapshot.db") {
				switch line := strings.Join(c.cmd, " "); {
				case strings.Contains(line, "umask 077 && cat > "):
					if !bytes.Equal(c.stdin, snapBytes) {
						t.Errorf("pod %s received a different snapshot", c.pod)
					}
					staged[c.pod] = true
				case c.cmd[0] == "rm" && staged[c.pod]:
					delete(staged, c.pod)
				default:
					t.Errorf("pod %s: %q touches the staged snapshot", c.pod, line)
				}
			}
			// The decrypted plaintext is gone once the data is restored.
			for p := range staged {
				t.Errorf("pod %s: the staged snapshot was never removed", p)
			}
			if got := len(f.ex.find("df -Pk")); got != n {
				t.Errorf("%d journal dirs made, want %d", got, n)
			}
			for _, c := range f.ex.find("mkdir -p") {
				if line := strings.Join(c.cmd, " "); strings.Contains(line, "/var/lib/kubectl-etcd/restore/") && !strings.Contains(line, "umask 077 && mkdir -p \"$1\" && chmod 0700 \"$(dirname \"$1\")\" \"$1\"") {
					t.Errorf("pod %s: the journal dir is made without 0700: %q", c.pod, line)
				}
			}
			if runs := f.ex.find("restore run --id"); len(runs) != n {
				t.Errorf("%d agents started, want %d", len(runs), n)
			}
			starts := f.ex.find("restore start --prepare --spec - --root /host")
			if len(starts) != n {
				t.Fatalf("%d agent starts, want %d", len(starts), n)
			}
			seen := map[string]bool{}
			for _, c := range starts {
				var s agentapi.RestoreSpec
				if err := json.Unmarshal(c.stdin, &s); err != nil {
					t.Fatal(err)
				}
				if err := s.Validate(); err != nil {
					t.Errorf("spec for %s: %v", s.Member, err)
				}
				if !strings.Contains(c.pod, s.Node) || seen[s.Node] {
					t.Errorf("spec for node %s went to pod %s", s.Node, c.pod)
				}
				seen[s.Node] = true
				peers := 0
				if s.Barrier != nil {
					peers = len(s.Barrier.Peers)
				}
				if peers != n-1 {
					t.Errorf("member %s has %d barrier peers, want %d", s.Member, peers, n-1)
				}
				// Only a single member rolls back by itself after the swap.
				if want := map[bool]string{true: agentapi.AfterSwapRollback, false: agentapi.AfterSwapStay}[n == 1]; s.AfterSwapFailure != want {
					t.Errorf("member %s: afterSwapFailure %q, want %q", s.Member, s.AfterSwapFailure, want)
				}
			}
			for _, p := range f.pods(t) {
				t.Errorf("pod %s left behind", p.Name)
			}
			for _, want := range []string{"the API server answers again", "member cp1 on node cp1 is healthy", "systemctl restart kubelet"} {
				if !strings.Contains(f.out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, f.out)
				}
			}
		})
	}
}

// A data dir on a filesystem of its own (a dedicated etcd disk) is not
// restored beside itself, onto another filesystem (R3).
func TestDataDirOnItsOwnDisk(t *testing.T) {
	f := newFixture(t, 1, "3.7.0")
	f.ex.mounts = map[string]string{"/host/var/lib/etcd": "/host/var/lib/etcd"}
	_, err := Run(context.Background(), f.deps(), f.cfg)
	if err == nil || !strings.Contains(err.Error(), "the data dir /var/lib/etcd is a filesystem of its own") {
		t.Fatalf("err = %v", err)
	}
	if len(f.ex.find("restore start")) != 0 || len(f.ex.find("cat > ")) > 1 {
		t.Errorf("work went on after the refusal: %v", f.ex.calls)
	}
	for _, p := range f.pods(t) {
		t.Errorf("pod %s left behind", p.Name)
	}
}

// A single member whose restored etcd fails after the swap rolls back by
// itself; the API server comes back on the old cluster, and the wait ends
// at once with the node's journal, not at its timeout (S2).
func TestWaitEndsOnAnAutomaticRollback(t *testing.T) {
	f := newFixture(t, 1, "3.7.0")
	f.fe.oldFor = 1 << 30 // the old cluster serves again
	f.cfg.WaitTimeout = 30 * time.Second
	f.ex.status = func(string) string {
		f.fe.mu.Lock()
		defer f.fe.mu.Unlock()
		if !f.fe.restored {
			return "[]"
		}
		return `[{"id":"20260102T030405Z","operation":"restore","node":"cp1","phase":"rolled-back","steps":[{"name":"wait until the member is healthy","state":"undone","error":"timed out"}]}]`
	}
	start := time.Now()
	_, err := Run(context.Background(), f.deps(), f.cfg)
	if err == nil || !strings.Contains(err.Error(), "node cp1 rolled restore 20260102T030405Z back by itself: wait until the member is healthy: timed out: the cluster is back on its old data") ||
		!strings.Contains(err.Error(), "back on its old data") {
		t.Fatalf("err = %v\n%s", err, f.out)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the wait took %s: it waited for its timeout", took)
	}
	if strings.Contains(err.Error(), "resume the restore") {
		t.Errorf("a restore rolled back already is offered a resume and a rollback:\n%v", err)
	}
}

// A restore pod that fails stops the restore before anything stopped: no
// agent starts, the prepared journals are closed, and no pod is left (its
// runner deletes it, as every node pod).
func TestRestorePodFailureStartsNoAgent(t *testing.T) {
	f := newFixture(t, 3, "3.7.0")
	f.cs.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if pod, ok := a.(k8stesting.UpdateAction).GetObject().(*corev1.Pod); ok && pod.Labels[nodepod.PurposeLabel] == PurposeRestore && pod.Spec.NodeName == "cp2" {
			pod.Status.Phase = corev1.PodFailed
		}
		return false, nil, nil
	})
	_, err := Run(context.Background(), f.deps(), f.cfg)
	if err == nil || !strings.Contains(err.Error(), "node cp2: restore the snapshot, so nothing was stopped") || !strings.Contains(err.Error(), "it failed (phase Failed") {
		t.Fatalf("err = %v\n%s", err, f.out)
	}
	if runs := f.ex.find("restore run"); len(runs) != 0 {
		t.Errorf("agents started after a restore pod failed: %v", runs)
	}
	for _, p := range f.pods(t) {
		t.Errorf("pod %s left behind", p.Name)
	}
}

// A node that cannot take part (its prepare refuses) is found while
// nothing has stopped anywhere: no agent starts, and the journals the
// other nodes wrote are closed (S1).
func TestPrepareFailureStartsNoAgent(t *testing.T) {
	f := newFixture(t, 3, "3.7.0")
	f.ex.prepareFails = func(pod string) bool { return strings.Contains(pod, "-cp1-") }
	_, err := Run(context.Background(), f.deps(), f.cfg)
	if err == nil || !strings.Contains(err.Error(), "node cp1: prepare the agent") || !strings.Contains(err.Error(), "nothing was stopped on any node") {
		t.Fatalf("err = %v\n%s", err, f.out)
	}
	if runs := f.ex.find("restore run"); len(runs) != 0 {
		t.Errorf("agents started after a prepare failed: %v", runs)
	}
	closes := f.ex.find("restore rollback --id")
	if len(closes) != 2 || strings.Contains(closes[0].pod, "-cp1-") || strings.Contains(closes[1].pod, "-cp1-") {
		t.Errorf("closed the prepared journals with %v, want cp2's and cp3's", closes)
	}
	for _, p := range f.pods(t) {
		t.Errorf("pod %s left behind", p.Name)
	}
}

// Right after the agents start, the old cluster still answers, healthy:
// the wait must hold until another cluster ID serves, or the restore would
// be judged before it happened.
func TestRunWaitsForTheNewCluster(t *testing.T) {
	f := newFixture(t, 3, "3.7.0")
	f.fe.downFor, f.fe.oldFor = 0, 30
	res, err := Run(context.Background(), f.deps(), f.cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	if res.ClusterID != "beef" || !strings.Contains(f.out.String(), "cluster c0ffee still serves") {
		t.Errorf("cluster %s; the wait did not hold while the old cluster served:\n%s", res.ClusterID, f.out)
	}
}

// An agent that fails to start after every node prepared: the others roll
// back at the barrier by themselves when the coordinator (cp1, the name
// that sorts first) runs, and hold there when it is the one that failed;
// the message says which, and how to roll back by hand.
func TestStartFailureSaysWhetherTheOthersHold(t *testing.T) {
	for _, tt := range []struct{ node, want, not string }{
		{"cp3", "roll back at the barrier by themselves", "did not start"},
		{"cp1", "The coordinator's agent (member cp1 on node cp1) did not start, so the nodes whose agent started hold at the barrier", "by themselves;"},
	} {
		t.Run(tt.node, func(t *testing.T) {
			f := newFixture(t, 3, "3.7.0")
			f.cfg.WaitTimeout = 50 * time.Millisecond // the fake cluster never comes back here
			f.ex.fails = func(node, line string) bool {
				return node == tt.node && strings.Contains(line, "restore run") && strings.Contains(line, "--detach")
			}
			_, _ = Run(context.Background(), f.deps(), f.cfg)
			out := f.out.String()
			if !strings.Contains(out, tt.want) || strings.Contains(out, tt.not) {
				t.Errorf("want %q and not %q in:\n%s", tt.want, tt.not, out)
			}
			if !strings.Contains(out, "rollback --id") || !strings.Contains(out, "--prepare") {
				t.Errorf("no node-local rollback commands in:\n%s", out)
			}
		})
	}
}

// While the API server starts again it refuses everyone until its
// authorizer has read RBAC: the wait says so, not "RBAC denied".
func TestWaitSaysAStartingAPIServerRefuses(t *testing.T) {
	forbidden := discovery.ExplainAPIError(apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("user cannot list")), "list", "pods", "kube-system")
	r := &run{d: Deps{Members: func(context.Context) ([]discovery.Member, error) { return nil, forbidden }}}
	w := &waitState{note: func(string) {}}
	if msg, _ := r.probe(context.Background(), nil, w); !strings.Contains(msg, "RBAC denied") {
		t.Errorf("before the API server went away: %q", msg)
	}
	w.apiGone = true
	if msg, _ := r.probe(context.Background(), nil, w); !strings.Contains(msg, "starting: it refuses requests until it has read the cluster's RBAC") {
		t.Errorf("once it went away: %q", msg)
	}
}
