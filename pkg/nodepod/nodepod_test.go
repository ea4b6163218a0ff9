package nodepod

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/syncbuf"
)

func pinSuffix(t *testing.T) {
	old := nameSuffix
	nameSuffix = func(int) string { return "abcde" }
	t.Cleanup(func() { nameSuffix = old })
}

func TestBuild(t *testing.T) {
	pinSuffix(t)
	tests := []struct {
		name string
		spec Spec
	}{
		{"files", Spec{Purpose: "certs", Node: "hc-cp1", Namespace: "kube-system", Lifetime: 120,
			Mounts: FileMounts("/etc/kubernetes/pki/etcd/ca.crt", "/etc/kubernetes/pki/etcd/server.crt", "/etc/kubernetes/pki/etcd/server.key")}},
		{"files-scratch", Spec{Purpose: "status", Node: "hc-cp1", Namespace: "kube-system", Scratch: true,
			Mounts: []HostMount{{HostPath: "/var/lib/kubectl-etcd", Type: corev1.HostPathDirectoryOrCreate}, {HostPath: "/etc/kubernetes/manifests"}}}},
		{"node", Spec{Purpose: "restore", Node: "a-very-long-node-name.with.a.domain.example.com", Namespace: "kube-system",
			Image: "toolbox:1", PullPolicy: corev1.PullNever, Profile: ProfileNode}},
		{"node-paths", Spec{Purpose: "stage", Node: "hc-cp1", Namespace: "etcd-helpers", Profile: ProfileNode,
			Mounts: []HostMount{
				{HostPath: "/var/lib/etcd-restore", Type: corev1.HostPathDirectoryOrCreate},
				{HostPath: "/etc/kubernetes/manifests", MountPath: "/manifests", ReadOnly: true},
			}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := Build(tc.spec)
			if pod.Labels[ManagedByLabel] != ManagedByValue {
				t.Errorf("pod lacks the managed-by label: %v", pod.Labels)
			}
			if len(pod.Name) > 63 {
				t.Errorf("name %q is longer than 63", pod.Name)
			}
			if tol := pod.Spec.Tolerations; len(tol) != 1 || tol[0].Operator != corev1.TolerationOpExists || tol[0].Key != "" {
				t.Errorf("pod does not tolerate every taint: %v", tol)
			}
			if d := pod.Spec.ActiveDeadlineSeconds; d == nil || *d <= 0 {
				t.Errorf("pod has no activeDeadlineSeconds")
			}
			b, err := yaml.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, "pod-"+tc.name, b)
		})
	}
}

// The certificate pod must see the three files it reads and nothing
// around them: kubeadm keeps the CA's ca.key in the same directory.
func TestFilesProfileMountsOnlyTheFiles(t *testing.T) {
	files := []string{"/etc/kubernetes/pki/etcd/ca.crt", "/etc/kubernetes/pki/etcd/server.crt", "/etc/kubernetes/pki/etcd/server.key"}
	tests := []struct {
		name  string
		paths []string
	}{
		{"three files", files},
		{"empty and repeated paths are skipped", append([]string{"", files[0]}, files...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := Build(Spec{Purpose: "certs", Node: "n1", Namespace: "kube-system", Mounts: FileMounts(tc.paths...)})
			c := pod.Spec.Containers[0]
			if len(pod.Spec.Volumes) != 3 || len(c.VolumeMounts) != 3 {
				t.Fatalf("%d volumes, %d mounts, want 3 each", len(pod.Spec.Volumes), len(c.VolumeMounts))
			}
			for i, v := range pod.Spec.Volumes {
				hp, vm := v.HostPath, c.VolumeMounts[i]
				if hp == nil || hp.Path != files[i] || hp.Type == nil || *hp.Type != corev1.HostPathFile {
					t.Errorf("volume %d = %+v, want hostPath %s of type File", i, hp, files[i])
				}
				if vm.Name != v.Name || vm.MountPath != "/host"+files[i] || !vm.ReadOnly {
					t.Errorf("mount %d = %+v, want %s read-only", i, vm, "/host"+files[i])
				}
			}
			sc := c.SecurityContext
			switch {
			case sc == nil, sc.Privileged == nil || *sc.Privileged, pod.Spec.HostPID, pod.Spec.HostNetwork:
				t.Errorf("files pod is privileged: %+v", sc)
			case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
				t.Errorf("files pod keeps capabilities: %+v", sc.Capabilities)
			case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Errorf("files pod has no RuntimeDefault seccomp profile")
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem, sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("files pod can write its root or escalate: %+v", sc)
			}
		})
	}
}

// recExec records each exec; calls may come from several goroutines.
type recExec struct {
	mu   sync.Mutex
	refs []exec.PodRef
	cmds [][]string
	err  error
	wait bool // block until ctx is done
}

func (r *recExec) Exec(ctx context.Context, ref exec.PodRef, cmd []string, _ io.Reader, stdout, _ io.Writer) error {
	r.mu.Lock()
	r.refs = append(r.refs, ref)
	r.cmds = append(r.cmds, cmd)
	r.mu.Unlock()
	if r.wait {
		<-ctx.Done()
		return ctx.Err()
	}
	if stdout != nil {
		_, _ = io.WriteString(stdout, "ok")
	}
	return r.err
}

func (r *recExec) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cmds)
}

// startTimeout bounds a Start (or a deletion) that must not run out of
// time in a test, however loaded the machine; the tests of the timeout
// itself set a short one.
const startTimeout = 30 * time.Second

// clusterWith returns a fake cluster whose kubelet moves created pods to
// the given state, like a real node would.
func clusterWith(t *testing.T, nodeReady bool, state func(*corev1.Pod)) *fake.Clientset {
	status := corev1.ConditionTrue
	if !nodeReady {
		status = corev1.ConditionFalse
	}
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}}})
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		go func() {
			time.Sleep(50 * time.Millisecond)
			state(pod)
			_, _ = cs.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
		}()
		return false, nil, nil
	})
	watchByName(cs, nil)
	return cs
}

// watchByName makes the fake's pod watches keep to the pod their
// metadata.name field selector names, as the API server's do (the fake
// sends every pod's events to every watch), and sends that name on
// watching, if not nil, once the watch is registered: from then on a
// deletion reaches it (the fake replays none from before).
func watchByName(cs *fake.Clientset, watching chan<- string) {
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
		if watching != nil {
			select {
			case watching <- name:
			default:
			}
		}
		return true, watch.Filter(w, func(ev watch.Event) (watch.Event, bool) {
			p, ok := ev.Object.(*corev1.Pod)
			return ev, !ok || p.Name == name
		}), nil
	})
}

func running(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning }

func pullError(p *corev1.Pod) {
	p.Status.Phase = corev1.PodPending
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "helper", State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "pull access denied"}}}}
}

func leftovers(t *testing.T, cs *fake.Clientset) int {
	pods, err := cs.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedByValue})
	if err != nil {
		t.Fatal(err)
	}
	return len(pods.Items)
}

func TestRunDeletesOnEveryPath(t *testing.T) {
	spec := Spec{Purpose: "certs", Node: "n1", Namespace: "kube-system"}
	tests := []struct {
		name      string
		nodeReady bool
		state     func(*corev1.Pod)
		exec      *recExec
		cancel    bool
		wantErr   string
		wantExec  bool
	}{
		{name: "work succeeds", nodeReady: true, state: running, exec: &recExec{}, wantExec: true},
		{name: "work fails", nodeReady: true, state: running, exec: &recExec{err: errors.New("boom")}, wantErr: "boom", wantExec: true},
		{name: "ctrl-c during work", nodeReady: true, state: running, exec: &recExec{wait: true}, cancel: true, wantErr: "context canceled", wantExec: true},
		{name: "image cannot be pulled", nodeReady: true, state: pullError, exec: &recExec{}, wantErr: "--image"},
		{name: "node not ready", nodeReady: false, state: running, exec: &recExec{}, wantErr: `node n1 is NotReady`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := clusterWith(t, tc.nodeReady, tc.state)
			r := &Runner{Client: cs, Exec: tc.exec, StartTimeout: startTimeout}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := r.Run(ctx, spec, func(ctx context.Context, p *Pod) error {
				if tc.cancel {
					time.AfterFunc(50*time.Millisecond, cancel)
				}
				return p.Exec(ctx, []string{"cat", "/x"}, nil, io.Discard, io.Discard)
			})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if got := tc.exec.calls() > 0; got != tc.wantExec {
				t.Errorf("exec called = %v, want %v", got, tc.wantExec)
			}
			if n := leftovers(t, cs); n != 0 {
				t.Errorf("%d helper pods left behind", n)
			}
		})
	}
}

// shellExec behaves like `sh -c 'cat > f; sha256sum f'` in a pod, with an
// optional truncation like the CRI bug it guards against.
type shellExec struct {
	truncate int
	got      []byte
}

func (s *shellExec) Exec(_ context.Context, _ exec.PodRef, _ []string, stdin io.Reader, stdout, _ io.Writer) error {
	b, _ := io.ReadAll(stdin)
	if s.truncate > 0 && len(b) > s.truncate {
		b = b[:s.truncate]
	}
	s.got = b
	sum := sha256.Sum256(b)
	fmt.Fprintf(stdout, "%x  /host/x\n", sum)
	return nil
}

func TestUploadChecksTheDigest(t *testing.T) {
	data := bytes.Repeat([]byte("etcd"), 100000)
	for _, tc := range []struct {
		name     string
		truncate int
		wantErr  string
	}{
		{"intact", 0, ""},
		{"truncated by the runtime", 32768, "arrived damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &shellExec{truncate: tc.truncate}
			p := &Pod{Node: "n1", r: &Runner{Exec: ex}}
			sum, err := p.Upload(context.Background(), bytes.NewReader(data), "/host/x")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || sum != fmt.Sprintf("%x", sha256.Sum256(data)) || !bytes.Equal(ex.got, data) {
				t.Fatalf("sum %s err %v", sum, err)
			}
		})
	}
}

var podsGVR = corev1.SchemeGroupVersion.WithResource("pods")

// A create whose reply is lost after the server stored the pod, or that
// the server refused, must leave no pod of ours; a name taken by someone
// else's pod must not be deleted.
func TestStartLeavesNoPodWhenCreateFails(t *testing.T) {
	podSecurity := apierrors.NewForbidden(podsGVR.GroupResource(), "x",
		errors.New(`violates PodSecurity "baseline:latest": hostPath volumes (volumes "host-0", "host-1", "host-2")`))
	tests := []struct {
		name      string
		store     bool // the server stores the pod before failing
		err       error
		wantErr   string
		permanent bool
		wantPods  int
	}{
		{name: "timeout after store", store: true, err: apierrors.NewTimeoutError("request timed out", 1), wantErr: "creating helper pod on node n1"},
		{name: "connection reset after store", store: true, err: errors.New("read tcp: connection reset by peer"), wantErr: "connection reset"},
		{name: "server error before store", err: apierrors.NewInternalError(errors.New("etcdserver: leader changed")), wantErr: "leader changed"},
		{name: "pod security", err: podSecurity, wantErr: "pod-security.kubernetes.io/enforce=privileged", permanent: true},
		{name: "rbac", err: apierrors.NewForbidden(podsGVR.GroupResource(), "x", errors.New("no RBAC policy matched")),
			wantErr: "kubectl auth can-i create pods -n kube-system", permanent: true},
		{name: "name taken by another pod", store: true, err: apierrors.NewAlreadyExists(podsGVR.GroupResource(), "x"), wantErr: "already exists", wantPods: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := clusterWith(t, true, running)
			cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if tc.store {
					pod := a.(k8stesting.CreateAction).GetObject()
					if err := cs.Tracker().Create(podsGVR, pod, a.GetNamespace()); err != nil {
						t.Fatal(err)
					}
				}
				return true, nil, tc.err
			})
			r := &Runner{Client: cs, Exec: &recExec{}, StartTimeout: startTimeout}
			_, err := r.Start(context.Background(), Spec{Purpose: "certs", Node: "n1", Namespace: "kube-system"})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if got := hint.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent = %v, want %v", got, tc.permanent)
			}
			if n := leftovers(t, cs); n != tc.wantPods {
				t.Errorf("%d helper pods exist, want %d", n, tc.wantPods)
			}
			if live := r.Live(); len(live) != 0 {
				t.Errorf("runner still tracks %v", live)
			}
		})
	}
}

func pending(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }

func TestStartCancelledDuringWaitLeavesNoPod(t *testing.T) {
	tests := []struct {
		name    string
		state   func(*corev1.Pod)
		timeout time.Duration
		cancel  bool
		wantErr string
	}{
		{name: "ctrl-c while pending", state: pending, timeout: startTimeout, cancel: true, wantErr: "context canceled"},
		{name: "start timeout", state: pending, timeout: 200 * time.Millisecond, wantErr: "did not start on node n1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := clusterWith(t, true, tc.state)
			r := &Runner{Client: cs, Exec: &recExec{}, StartTimeout: tc.timeout}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(150*time.Millisecond, cancel)
			}
			p, err := r.Start(ctx, Spec{Purpose: "stage", Node: "n1", Namespace: "kube-system", Profile: ProfileNode})
			if p != nil || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("pod %v, err = %v, want %q", p, err, tc.wantErr)
			}
			if n := leftovers(t, cs); n != 0 {
				t.Errorf("%d helper pods left behind", n)
			}
		})
	}
}

// A pod slow to start is reported while the runner waits for it.
func TestStartReportsASlowPod(t *testing.T) {
	defer func(d time.Duration) { startProgressEvery = d }(startProgressEvery)
	startProgressEvery = 50 * time.Millisecond
	cs := clusterWith(t, true, pending)
	var log syncbuf.Buffer
	r := &Runner{Client: cs, Exec: &recExec{}, Log: &log, StartTimeout: 300 * time.Millisecond}
	if _, err := r.Start(context.Background(), Spec{Purpose: "stage", Node: "n1", Namespace: "kube-system", Profile: ProfileNode}); err == nil {
		t.Fatal("a pod that never starts started")
	}
	if got := log.String(); !strings.Contains(got, "still waiting for pod kube-system/") || !strings.Contains(got, "to start on node n1 after") {
		t.Errorf("log = %q, want a line on the slow pod", got)
	}
}

func TestStartExecDelete(t *testing.T) {
	cs := clusterWith(t, true, running)
	ex := &recExec{}
	var log bytes.Buffer
	r := &Runner{Client: cs, Exec: ex, Log: &log, StartTimeout: startTimeout}
	ctx := context.Background()
	p, err := r.Start(ctx, Spec{Purpose: "restore", Node: "n1", Namespace: "kube-system", Profile: ProfileNode})
	if err != nil {
		t.Fatal(err)
	}
	steps := [][]string{{"sh", "-c", "crictl ps"}, {"mv", "/host/a", "/host/b"}}
	for _, cmd := range steps {
		if err := p.Exec(ctx, cmd, nil, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if len(ex.cmds) != len(steps) || ex.refs[0] != p.Ref || ex.refs[1] != p.Ref || p.Ref.Container != "helper" {
		t.Errorf("execs %v into %v, want %v into %v", ex.cmds, ex.refs, steps, p.Ref)
	}
	if live := r.Live(); len(live) != 1 || live[0] != p.Ref {
		t.Errorf("live = %v, want [%v]", live, p.Ref)
	}
	for i := 0; i < 2; i++ { // deleting twice is harmless
		if err := p.Delete(ctx); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
	}
	if n := leftovers(t, cs); n != 0 || len(r.Live()) != 0 {
		t.Errorf("%d pods left, %d tracked", n, len(r.Live()))
	}
	want := fmt.Sprintf("created pod kube-system/%s on node n1\ndeleted pod kube-system/%s\n", p.Ref.Name, p.Ref.Name)
	if log.String() != want {
		t.Errorf("log = %q, want %q", log.String(), want)
	}
}

func TestCleanup(t *testing.T) {
	tests := []struct {
		name       string
		deleteFail bool
		wantErr    []string
	}{
		{name: "deletes every live pod"},
		{name: "names what it could not delete", deleteFail: true,
			wantErr: []string{"helper pods left behind", "connection refused"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := clusterWith(t, true, running)
			r := &Runner{Client: cs, Exec: &recExec{}, StartTimeout: startTimeout, DeleteTimeout: startTimeout}
			var names []string
			for i := 0; i < 2; i++ {
				p, err := r.Start(context.Background(), Spec{Purpose: "restore", Node: "n1", Namespace: "kube-system", Profile: ProfileNode})
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, p.Ref.Name)
			}
			sort.Strings(names)
			if tc.deleteFail {
				cs.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("dial tcp 10.0.0.1:6443: connection refused")
				})
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // the signal handler's context is already cancelled
			err := r.Cleanup(ctx)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if n := leftovers(t, cs); n != 0 || len(r.Live()) != 0 {
					t.Errorf("%d pods left, %d tracked", n, len(r.Live()))
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			want := append(tc.wantErr, "kube-system/"+names[0], "kube-system/"+names[1],
				"run: kubectl -n kube-system delete pod "+strings.Join(names, " "))
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if len(r.Live()) != 2 {
				t.Errorf("pods that could not be deleted are forgotten: %v", r.Live())
			}
		})
	}
}

func TestStartErrorsArePermanent(t *testing.T) {
	tests := []struct {
		name      string
		nodeReady bool
		node      string
		state     func(*corev1.Pod)
		wantErr   []string
	}{
		{name: "node not ready", node: "n1", state: running, wantErr: []string{`node n1 is NotReady`, "kubectl describe node n1"}},
		{name: "node missing", nodeReady: true, node: "n9", state: running, wantErr: []string{`node "n9" does not exist`, "kubectl get pods"}},
		{name: "image cannot be pulled", nodeReady: true, node: "n1", state: pullError, wantErr: []string{`"busybox:1.37" cannot be pulled`, "--image"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := clusterWith(t, tc.nodeReady, tc.state)
			r := &Runner{Client: cs, Exec: &recExec{}, StartTimeout: startTimeout}
			_, err := r.Start(context.Background(), Spec{Purpose: "certs", Node: tc.node, Namespace: "kube-system"})
			if !hint.IsPermanent(err) {
				t.Errorf("err %v is not permanent", err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want %q", err, w)
				}
			}
			if n := leftovers(t, cs); n != 0 {
				t.Errorf("%d helper pods left behind", n)
			}
		})
	}
}

// A signal handler's Cleanup may run while Start still waits: the pod is
// deleted and Start says so instead of waiting out its timeout.
func TestCleanupDuringStart(t *testing.T) {
	cs := clusterWith(t, true, pending)
	// Start waits on a watch: the pod is deleted once it watches. (A
	// deletion before that would be lost on the fake, which, unlike the
	// API server, does not replay it from the pod's resourceVersion.)
	watching := make(chan string, 1)
	watchByName(cs, watching)
	// The timeout is far longer than the test waits for Start to return.
	r := &Runner{Client: cs, Exec: &recExec{}, StartTimeout: time.Minute}
	done := make(chan error, 1)
	go func() {
		_, err := r.Start(context.Background(), Spec{Purpose: "stage", Node: "n1", Namespace: "kube-system", Profile: ProfileNode})
		done <- err
	}()
	select {
	case <-watching:
	case err := <-done:
		t.Fatalf("Start returned before it waited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Start never waited for its pod")
	}
	if leftovers(t, cs) == 0 {
		t.Fatal("no pod was created")
	}
	if err := r.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "was deleted before it started") {
			t.Errorf("err = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Start still waits for a deleted pod")
	}
	if n := leftovers(t, cs); n != 0 {
		t.Errorf("%d helper pods left behind", n)
	}
}

// A pod that runs to its end (etcd's own image, which has no shell to
// exec into) is tracked and deleted like a helper pod on every path, and
// a failure says how it ended.
func TestCompleteDeletesOnEveryPath(t *testing.T) {
	pod := func() *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kubectl-etcd-restore-x-n1", Namespace: "kube-system",
			Labels: map[string]string{ManagedByLabel: ManagedByValue, PurposeLabel: "restore-data"}},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "restore", Command: []string{"etcdutl", "snapshot", "restore"}}}}}
	}
	succeeded := func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }
	failed := func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodFailed
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "restore", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 2}}}}
	}
	tests := []struct {
		name      string
		nodeReady bool
		state     func(*corev1.Pod)
		timeout   time.Duration
		cancel    bool
		wantErr   string
	}{
		{name: "succeeds", nodeReady: true, state: succeeded, timeout: startTimeout},
		{name: "fails", nodeReady: true, state: failed, timeout: startTimeout, wantErr: "`etcdutl snapshot restore` in pod kube-system/kubectl-etcd-restore-x-n1 on node n1: it failed (phase Failed; terminated Error (exit 2)"},
		{name: "never ends", nodeReady: true, state: running, timeout: 300 * time.Millisecond, wantErr: "it did not finish in 300ms (phase Running)"},
		{name: "ctrl-c", nodeReady: true, state: running, timeout: startTimeout, cancel: true, wantErr: "context canceled"},
		{name: "node not ready", nodeReady: false, state: succeeded, timeout: startTimeout, wantErr: "node n1 is NotReady"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := clusterWith(t, tc.nodeReady, tc.state)
			r := &Runner{Client: cs, PollInterval: 10 * time.Millisecond}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(150*time.Millisecond, cancel)
			}
			err := r.Complete(ctx, pod(), tc.timeout)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if n := leftovers(t, cs); n != 0 {
				t.Errorf("%d pods left behind", n)
			}
			if live := r.Live(); len(live) != 0 {
				t.Errorf("the runner still tracks %v", live)
			}
		})
	}
}

// A host path the kubelet cannot mount leaves the pod Pending with
// nothing in its status: the kubelet's FailedMount event says why, and
// Start fails on it at once, with ErrHostPath, instead of timing out.
func TestStartFailsOnAMissingHostPath(t *testing.T) {
	defer func(d time.Duration) { mountCheckEvery = d }(mountCheckEvery)
	mountCheckEvery = 10 * time.Millisecond
	cs := clusterWith(t, true, pending)
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: pod.Name + ".1", Namespace: pod.Namespace}, Reason: "FailedMount",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: pod.Name, Namespace: pod.Namespace},
			Message:        `MountVolume.SetUp failed for volume "host-0" : hostPath type check failed: /var/lib/etcd-backups is not a directory`}
		// The tracker, not the clientset, which a reactor holds.
		if err := cs.Tracker().Create(corev1.SchemeGroupVersion.WithResource("events"), ev, pod.Namespace); err != nil {
			t.Error(err)
		}
		return false, nil, nil
	})
	r := &Runner{Client: cs, Exec: &recExec{}, StartTimeout: startTimeout}
	start := time.Now()
	_, err := r.Start(context.Background(), Spec{Purpose: "backups", Node: "n1", Namespace: "kube-system", Mounts: []HostMount{{HostPath: "/var/lib/etcd-backups"}}})
	if !errors.Is(err, ErrHostPath) || !strings.Contains(err.Error(), "/var/lib/etcd-backups is not a directory") || !hint.IsPermanent(err) {
		t.Fatalf("err = %v, want ErrHostPath naming the dir", err)
	}
	if took := time.Since(start); took > startTimeout/2 {
		t.Errorf("took %s: it waited for the timeout", took)
	}
	if n := leftovers(t, cs); n != 0 {
		t.Errorf("%d helper pods left behind", n)
	}
}
