// Package nodetest is a fake cluster for the code that reads files on
// nodes through node pods: a pod runs once its node has every host path
// it mounts, and otherwise gets the kubelet's FailedMount event, as a
// real node does; its executor runs the pods' commands (sh, stat, cat,
// sha256sum) with this machine's tools, on a tree of files per node.
package nodetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	kexec "github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
)

// hostPrefix is where a node pod mounts host paths (nodepod.HostPrefix).
const hostPrefix = "/host/"

// ControlPlane labels a control-plane node.
var ControlPlane = map[string]string{"node-role.kubernetes.io/control-plane": ""}

// Cluster is a fake cluster whose node NODE has the files under
// Root/NODE, and a worker node with none.
type Cluster struct {
	Client *fake.Clientset
	Root   string
	// Cut, when set, ends the output of every cat after that many bytes,
	// as a broken exec stream would; Lie makes sha256sum say another sum.
	Cut int
	Lie bool
}

// New is a cluster of Ready nodes with labels, and a worker.
func New(t testing.TB, labels map[string]string, names ...string) *Cluster {
	c := &Cluster{Root: t.TempDir()}
	var objs []runtime.Object
	for _, name := range names {
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}})
	}
	objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker"}})
	c.Client = fake.NewClientset(objs...)
	c.Client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c.start(t, a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy())
		return false, nil, nil
	})
	// The API server sends a watch of one pod that pod's events only;
	// the fake sends every pod's.
	c.Client.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		wa := a.(k8stesting.WatchActionImpl)
		w, err := c.Client.Tracker().Watch(a.GetResource(), a.GetNamespace(), wa.ListOptions)
		if err != nil {
			return true, nil, err
		}
		name, _ := wa.GetWatchRestrictions().Fields.RequiresExactMatch("metadata.name")
		return true, watch.Filter(w, func(ev watch.Event) (watch.Event, bool) {
			p, ok := ev.Object.(*corev1.Pod)
			return ev, !ok || p.Name == name
		}), nil
	})
	return c
}

// start runs pod as its node's kubelet would, after its create: it
// fails to mount a host path the node does not have.
func (c *Cluster) start(t testing.TB, pod *corev1.Pod) {
	for _, v := range pod.Spec.Volumes {
		if v.HostPath == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(c.Root, pod.Spec.NodeName, v.HostPath.Path)); err != nil {
			ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: pod.Name + ".mount", Namespace: pod.Namespace}, Reason: "FailedMount",
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: pod.Name, Namespace: pod.Namespace},
				Message:        fmt.Sprintf(`MountVolume.SetUp failed for volume %q : hostPath type check failed: %s is not a directory`, v.Name, v.HostPath.Path)}
			// The tracker, not the clientset, which the reactor holds.
			if err := c.Client.Tracker().Create(corev1.SchemeGroupVersion.WithResource("events"), ev, pod.Namespace); err != nil {
				t.Error(err)
			}
			return
		}
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		pod.Status.Phase = corev1.PodRunning
		_, _ = c.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
	}()
}

// Write puts a file in dir on node, 0600.
func (c *Cluster) Write(t testing.TB, node, dir, name string, b []byte) {
	t.Helper()
	d := filepath.Join(c.Root, node, dir)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Exec implements exec.Executor: cmd runs here, with the paths under
// the pod's host mounts moved to its node's tree.
func (c *Cluster) Exec(ctx context.Context, ref kexec.PodRef, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error {
	pod, err := c.Client.CoreV1().Pods(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	args := slices.Clone(cmd)
	for i, a := range args {
		if rest, ok := strings.CutPrefix(a, hostPrefix); ok {
			args[i] = filepath.Join(c.Root, pod.Spec.NodeName, rest)
		}
	}
	switch {
	case cmd[0] == "cat" && c.Cut > 0:
		stdout = &cutWriter{w: stdout, left: c.Cut}
	case cmd[0] == "sha256sum" && c.Lie:
		_, err := fmt.Fprintf(stdout, "%064x  %s\n", 0, cmd[1])
		return err
	}
	x := exec.CommandContext(ctx, args[0], args[1:]...)
	x.Stdin, x.Stdout, x.Stderr = stdin, stdout, stderr
	if err := x.Run(); err != nil && !errors.Is(err, errCut) {
		return err
	}
	return nil
}

// Leftovers are the pods not deleted.
func (c *Cluster) Leftovers(t testing.TB) int {
	pods, err := c.Client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(pods.Items)
}

var errCut = errors.New("cut")

// cutWriter takes left bytes, and then fails.
type cutWriter struct {
	w    io.Writer
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	k := min(len(p), c.left)
	c.left -= k
	if _, err := c.w.Write(p[:k]); err != nil {
		return 0, err
	}
	if k < len(p) {
		return k, errCut
	}
	return k, nil
}
