package nodepod

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
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
		{"certs", Spec{Purpose: "certs", Node: "hc-cp1", Namespace: "kube-system", Lifetime: 120,
			Mounts: []HostMount{{HostPath: "/etc/kubernetes/pki/etcd", MountPath: "/host/etc/kubernetes/pki/etcd", ReadOnly: true}}}},
		{"privileged", Spec{Purpose: "restore", Node: "a-very-long-node-name.with.a.domain.example.com", Namespace: "kube-system",
			Image: "toolbox:1", PullPolicy: corev1.PullNever, Privileged: true,
			Mounts: []HostMount{{HostPath: "/", MountPath: "/host"}}}},
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
			b, err := yaml.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, "pod-"+tc.name, b)
		})
	}
}

type recExec struct {
	cmds [][]string
	err  error
	wait bool // block until ctx is done
}

func (r *recExec) Exec(ctx context.Context, _ exec.PodRef, cmd []string, _ io.Reader, stdout, _ io.Writer) error {
	r.cmds = append(r.cmds, cmd)
	if r.wait {
		<-ctx.Done()
		return ctx.Err()
	}
	if stdout != nil {
		_, _ = io.WriteString(stdout, "ok")
	}
	return r.err
}

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
	return cs
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
		{name: "node not ready", nodeReady: false, state: running, exec: &recExec{}, wantErr: `node "n1" is not Ready`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := clusterWith(t, tc.nodeReady, tc.state)
			r := &Runner{Client: cs, Exec: tc.exec, StartTimeout: 5 * time.Second}
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
			if got := len(tc.exec.cmds) > 0; got != tc.wantExec {
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
