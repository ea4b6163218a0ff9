package nodepod

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
)

// Runner creates node pods, waits for them and always deletes them.
type Runner struct {
	Client kubernetes.Interface
	Exec   exec.Executor
	// Log receives one line per pod created and deleted; nil is silent.
	Log io.Writer
	// StartTimeout bounds the wait for the pod to run (default 2m).
	StartTimeout time.Duration
}

// Pod is a running node pod, handed to the work function.
type Pod struct {
	Ref  exec.PodRef
	Node string
	r    *Runner
}

// Exec runs cmd in the pod's helper container.
func (p *Pod) Exec(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return p.r.Exec.Exec(ctx, p.Ref, cmd, stdin, stdout, stderr)
}

// Run creates the pod for spec, waits until it runs, calls work, and
// deletes the pod whatever happens: work failing, ctx cancelled (Ctrl-C) or
// the pod never starting.
func (r *Runner) Run(ctx context.Context, spec Spec, work func(ctx context.Context, p *Pod) error) (err error) {
	if err := r.checkNode(ctx, spec.Node); err != nil {
		return err
	}
	pod := Build(spec)
	created, err := r.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return explainCreate(err, pod)
	}
	r.logf("created pod %s/%s on node %s", created.Namespace, created.Name, spec.Node)
	defer func() {
		if derr := r.delete(created); derr != nil && err == nil {
			err = derr
		}
	}()
	if err := r.waitRunning(ctx, created, spec); err != nil {
		return err
	}
	return work(ctx, &Pod{Ref: exec.PodRef{Namespace: created.Namespace, Name: created.Name, Container: containerName}, Node: spec.Node, r: r})
}

// delete runs on a context of its own so that Ctrl-C, which cancelled the
// work, does not also cancel the clean-up.
func (r *Runner) delete(pod *corev1.Pod) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("could not delete helper pod %s/%s (%w); delete it with: kubectl -n %s delete pod -l %s=%s",
			pod.Namespace, pod.Name, err, pod.Namespace, ManagedByLabel, ManagedByValue)
	}
	r.logf("deleted pod %s/%s", pod.Namespace, pod.Name)
	return nil
}

func (r *Runner) checkNode(ctx context.Context, name string) error {
	node, err := r.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return nil // not being able to read nodes must not stop the work
	case apierrors.IsNotFound(err):
		return fmt.Errorf("node %q does not exist; check the member's pod with: kubectl get pods -A -o wide -l component=etcd", name)
	case err != nil:
		return fmt.Errorf("reading node %q: %w", name, err)
	}
	if !discovery.NodeIsReady(node) {
		return fmt.Errorf("node %q is not Ready, so a helper pod cannot start there; check it with: kubectl describe node %s", name, name)
	}
	return nil
}

func (r *Runner) waitRunning(ctx context.Context, pod *corev1.Pod, spec Spec) error {
	timeout := r.StartTimeout
	if spec.StartTimeout > 0 {
		timeout = spec.StartTimeout
	}
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := r.Client.CoreV1().Pods(pod.Namespace).Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", pod.Name).String(),
		ResourceVersion: pod.ResourceVersion,
	})
	if err != nil {
		return fmt.Errorf("watching helper pod %s: %w", pod.Name, err)
	}
	defer w.Stop()
	last := pod
	for {
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("helper pod %s/%s did not start on node %s within %s (%s); see: kubectl -n %s describe pod %s",
					pod.Namespace, pod.Name, spec.Node, timeout, describe(last), pod.Namespace, pod.Name)
			}
			return ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch on helper pod %s closed early", pod.Name)
			}
			if ev.Type == watch.Error {
				return fmt.Errorf("watch on helper pod %s: %v", pod.Name, apierrors.FromObject(ev.Object))
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			last = p
			done, err := podStarted(p, spec)
			if done || err != nil {
				return err
			}
		}
	}
}

// podStarted reports whether the pod runs, or why it never will.
func podStarted(p *corev1.Pod, spec Spec) (bool, error) {
	switch p.Status.Phase {
	case corev1.PodRunning:
		return true, nil
	case corev1.PodFailed, corev1.PodSucceeded:
		return false, fmt.Errorf("helper pod %s ended before it was used: %s", p.Name, describe(p))
	}
	for _, cs := range p.Status.ContainerStatuses {
		w := cs.State.Waiting
		if w == nil {
			continue
		}
		switch w.Reason {
		case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName":
			return false, fmt.Errorf("helper image %q cannot be pulled on node %s (%s: %s).\n"+
				"Use --image with an image the node can pull, or preload it there; any image with sh, cat, sha256sum, mv and sleep works",
				spec.imageOrDefault(), spec.Node, w.Reason, w.Message)
		case "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
			return false, fmt.Errorf("helper pod %s cannot start on node %s: %s: %s", p.Name, spec.Node, w.Reason, w.Message)
		}
	}
	return false, nil
}

func (s Spec) imageOrDefault() string {
	if s.Image == "" {
		return DefaultImage
	}
	return s.Image
}

func describe(p *corev1.Pod) string {
	parts := []string{"phase " + string(p.Status.Phase)}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			parts = append(parts, fmt.Sprintf("%s: %s", c.Type, c.Message))
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			parts = append(parts, fmt.Sprintf("%s: %s", w.Reason, w.Message))
		}
		if t := cs.State.Terminated; t != nil {
			parts = append(parts, fmt.Sprintf("terminated %s (exit %d) %s", t.Reason, t.ExitCode, t.Message))
		}
	}
	return strings.Join(parts, "; ")
}

func explainCreate(err error, pod *corev1.Pod) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "violates PodSecurity"):
		return fmt.Errorf("PodSecurity admission rejected the helper pod in namespace %q: %w.\n"+
			"The helper pod needs hostPath mounts (and privileges for restore). Run it in a namespace labelled "+
			"pod-security.kubernetes.io/enforce=privileged (kube-system usually is), for example with --helper-namespace", pod.Namespace, err)
	case apierrors.IsForbidden(err):
		return discovery.ExplainAPIError(err, "create", "pods", pod.Namespace)
	}
	return fmt.Errorf("creating helper pod on node %s: %w", pod.Spec.NodeName, err)
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}
