package nodepod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// deleteTimeout bounds each clean-up, which runs on a context of its own.
const deleteTimeout = 30 * time.Second

// Runner creates node pods, waits for them and deletes them. It knows
// every pod it created that may still exist, so that Cleanup can delete
// them all when the process is told to stop.
type Runner struct {
	Client kubernetes.Interface
	Exec   exec.Executor
	// Log receives one line per pod created and deleted; nil is silent.
	Log io.Writer
	// StartTimeout bounds the wait for the pod to run (default 2m).
	StartTimeout time.Duration
	// DeleteTimeout bounds a deletion or a Cleanup (default 30s).
	DeleteTimeout time.Duration
	// PollInterval is how often Complete reads its pod (default 1s).
	PollInterval time.Duration

	mu   sync.Mutex
	live map[exec.PodRef]struct{}
}

// Pod is a running node pod. One pod can serve every step of a long
// operation: Exec and Upload as often as needed, then Delete.
type Pod struct {
	Ref  exec.PodRef
	Node string
	// Created is the pod's creationTimestamp: the API server's clock,
	// which the workstation's may not match.
	Created time.Time
	r       *Runner
}

// Run starts the pod for spec, calls work, and deletes the pod whatever
// happens: work failing, ctx cancelled (Ctrl-C) or the pod never starting.
func (r *Runner) Run(ctx context.Context, spec Spec, work func(ctx context.Context, p *Pod) error) error {
	p, err := r.Start(ctx, spec)
	if err != nil {
		return err
	}
	werr := work(ctx, p)
	return errors.Join(werr, p.Delete(ctx))
}

// Start checks that spec's node is Ready, creates the pod, and waits until
// it runs. A pod that was created but does not start is deleted before
// Start returns; one that starts is the caller's to Delete (or Cleanup's).
func (r *Runner) Start(ctx context.Context, spec Spec) (*Pod, error) {
	if err := r.checkNode(ctx, spec.Node); err != nil {
		return nil, err
	}
	p, created, err := r.create(ctx, Build(spec))
	if err != nil {
		return nil, err
	}
	if err := r.waitRunning(ctx, created, spec); err != nil {
		return nil, errors.Join(err, p.Delete(ctx))
	}
	return p, nil
}

// Complete runs pod, whose container does its work and exits (an image
// without a shell cannot serve Exec, as etcd's own images cannot): it
// checks that the node is Ready, creates the pod, tracked like every node
// pod so that Cleanup finds it, waits until it has succeeded or failed (at
// most timeout), and deletes it whatever happens. A failure or a timeout
// carries the end of the pod's log.
func (r *Runner) Complete(ctx context.Context, pod *corev1.Pod, timeout time.Duration) error {
	if err := r.checkNode(ctx, pod.Spec.NodeName); err != nil {
		return err
	}
	p, _, err := r.create(ctx, pod)
	if err != nil {
		return err
	}
	return errors.Join(r.waitDone(ctx, pod, timeout), p.Delete(ctx))
}

// waitDone waits until pod has succeeded; its error says how it ended
// otherwise, with the end of its log.
func (r *Runner) waitDone(ctx context.Context, pod *corev1.Pod, timeout time.Duration) error {
	pods := r.Client.CoreV1().Pods(pod.Namespace)
	poll := r.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, poll, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, nil
	})
	if err == nil && last.Status.Phase == corev1.PodSucceeded {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	why := "it did not finish in " + timeout.String()
	if err == nil {
		why = "it failed (" + describe(last) + ")"
	} else if last != nil {
		why += " (" + describe(last) + ")"
	}
	logs, lerr := pods.GetLogs(pod.Name, &corev1.PodLogOptions{TailLines: ptr.To[int64](40)}).DoRaw(context.WithoutCancel(ctx))
	if lerr != nil {
		logs = []byte("(no log: " + lerr.Error() + ")")
	}
	return fmt.Errorf("`%s` in pod %s/%s on node %s: %s; its log ends:\n%s", strings.Join(pod.Spec.Containers[0].Command, " "),
		pod.Namespace, pod.Name, pod.Spec.NodeName, why, strings.TrimSpace(string(logs)))
}

// Exec runs cmd in the pod's helper container.
func (p *Pod) Exec(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return p.r.Exec.Exec(ctx, p.Ref, cmd, stdin, stdout, stderr)
}

// Delete deletes the pod. It runs on a context of its own, bounded, so
// that Ctrl-C, which cancelled the work, does not also cancel the
// clean-up. Deleting twice is harmless.
func (p *Pod) Delete(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.r.deleteTimeout())
	defer cancel()
	if err := p.r.deleteRef(ctx, p.Ref); err != nil {
		return leftBehind([]exec.PodRef{p.Ref}, err)
	}
	return nil
}

// Live returns the pods this runner created that may still exist.
func (r *Runner) Live() []exec.PodRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	refs := make([]exec.PodRef, 0, len(r.live))
	for ref := range r.live {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool {
		return refs[i].Namespace+"/"+refs[i].Name < refs[j].Namespace+"/"+refs[j].Name
	})
	return refs
}

// Cleanup deletes every pod this runner created that may still exist: the
// process's signal handler calls it on the way out. Like Delete it
// ignores ctx's cancellation and is bounded. Its error names each pod
// left and the command that deletes them.
func (r *Runner) Cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.deleteTimeout())
	defer cancel()
	var left []exec.PodRef
	var errs []error
	for _, ref := range r.Live() {
		if err := r.deleteRef(ctx, ref); err != nil {
			left = append(left, ref)
			errs = append(errs, err)
		}
	}
	if len(left) == 0 {
		return nil
	}
	return leftBehind(left, errors.Join(errs...))
}

// create creates pod, and never leaves behind a pod it cannot report: the
// name is chosen here, so after an error that is not a clear refusal
// (a timeout, a reset connection: the server may have stored the pod) the
// pod is deleted by name.
func (r *Runner) create(ctx context.Context, pod *corev1.Pod) (*Pod, *corev1.Pod, error) {
	// Tracked before the request, so that a Cleanup during it deletes a
	// pod the server stored before the reply arrived.
	p := r.track(pod)
	created, err := r.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err == nil {
		p.Created = created.CreationTimestamp.Time
		r.logf("created pod %s/%s on node %s", created.Namespace, created.Name, p.Node)
		return p, created, nil
	}
	cerr := explainCreate(err, pod)
	if refused(err) {
		r.untrack(p.Ref)
		return nil, nil, cerr
	}
	return nil, nil, errors.Join(cerr, p.Delete(ctx))
}

// refused reports whether the server certainly stored nothing of ours.
// AlreadyExists means the name is someone else's pod: never delete it.
func refused(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsAlreadyExists(err) ||
		apierrors.IsUnauthorized(err) || apierrors.IsBadRequest(err) || isPodSecurity(err)
}

func (r *Runner) track(pod *corev1.Pod) *Pod {
	p := &Pod{Ref: exec.PodRef{Namespace: pod.Namespace, Name: pod.Name, Container: containerName}, Node: pod.Spec.NodeName, r: r}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live == nil {
		r.live = map[exec.PodRef]struct{}{}
	}
	r.live[p.Ref] = struct{}{}
	return p
}

func (r *Runner) untrack(ref exec.PodRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, ref)
}

// deleteRef deletes one pod; NotFound counts as deleted.
func (r *Runner) deleteRef(ctx context.Context, ref exec.PodRef) error {
	err := r.Client.CoreV1().Pods(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting helper pod %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	r.untrack(ref)
	if err == nil {
		r.logf("deleted pod %s/%s", ref.Namespace, ref.Name)
	}
	return nil
}

// leftBehind names the pods that could not be deleted and the command
// that deletes exactly them (not every managed pod: another run may be
// using its own).
func leftBehind(refs []exec.PodRef, err error) error {
	byNS := map[string][]string{}
	var namespaces, names []string
	for _, ref := range refs {
		if byNS[ref.Namespace] == nil {
			namespaces = append(namespaces, ref.Namespace)
		}
		byNS[ref.Namespace] = append(byNS[ref.Namespace], ref.Name)
		names = append(names, ref.Namespace+"/"+ref.Name)
	}
	var cmds []string
	for _, ns := range namespaces {
		cmds = append(cmds, fmt.Sprintf("kubectl -n %s delete pod %s", ns, strings.Join(byNS[ns], " ")))
	}
	return hint.With(fmt.Errorf("helper pods left behind: %s: %w", strings.Join(names, ", "), err),
		"They stop by themselves when their activeDeadlineSeconds pass; to delete them now, run: %s",
		strings.Join(cmds, " && "))
}

func (r *Runner) deleteTimeout() time.Duration {
	if r.DeleteTimeout > 0 {
		return r.DeleteTimeout
	}
	return deleteTimeout
}

func (r *Runner) checkNode(ctx context.Context, name string) error {
	node, err := r.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return nil // not being able to read nodes must not stop the work
	case apierrors.IsNotFound(err):
		return hint.Permanent(fmt.Errorf("node %q does not exist", name),
			"Check the member's pod with: kubectl get pods -A -o wide -l component=etcd")
	case err != nil:
		return fmt.Errorf("reading node %q: %w", name, err)
	}
	if !discovery.NodeIsReady(node) {
		return hint.Permanent(fmt.Errorf("node %s is NotReady, so a helper pod cannot start there", name),
			"Check it with: kubectl describe node %s", name)
	}
	return nil
}

// startProgressEvery is how often a pod slow to start is reported.
var startProgressEvery = 15 * time.Second

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
	started := time.Now()
	tick := time.NewTicker(startProgressEvery)
	defer tick.Stop()
	mounts := time.NewTicker(mountCheckEvery)
	defer mounts.Stop()
	for {
		select {
		case <-mounts.C:
			if err := r.hostPathFailure(ctx, pod); err != nil {
				return err
			}
		case <-tick.C:
			r.logf("still waiting for pod %s/%s to start on node %s after %s (%s)", pod.Namespace, pod.Name, spec.Node, time.Since(started).Round(time.Second), describe(last))
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return hint.With(fmt.Errorf("helper pod %s/%s did not start on node %s within %s (%s)",
					pod.Namespace, pod.Name, spec.Node, timeout, describe(last)),
					"See: kubectl -n %s describe pod %s", pod.Namespace, pod.Name)
			}
			return ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch on helper pod %s closed early", pod.Name)
			}
			switch ev.Type {
			case watch.Error:
				return fmt.Errorf("watch on helper pod %s: %v", pod.Name, apierrors.FromObject(ev.Object))
			case watch.Deleted: // by Cleanup, or by someone else
				return fmt.Errorf("helper pod %s/%s was deleted before it started", pod.Namespace, pod.Name)
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

// mountCheckEvery is how often the events of a pod that has not started
// are read for a host path the kubelet cannot mount: the pod stays
// Pending then, and its status says nothing of why.
var mountCheckEvery = 2 * time.Second

// ErrHostPath is the error of a pod one of whose host paths is not on its
// node, or not of the type it mounts.
var ErrHostPath = errors.New("a host path it mounts is missing on the node")

// hostPathFailure is ErrHostPath, with the kubelet's words, when an event
// says the kubelet cannot mount one of pod's host paths; events that
// cannot be read say nothing.
func (r *Runner) hostPathFailure(ctx context.Context, pod *corev1.Pod) error {
	sel := fields.Set{"involvedObject.name": pod.Name, "reason": "FailedMount"}.AsSelector().String()
	evs, err := r.Client.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil
	}
	for _, e := range evs.Items {
		_, why, found := strings.Cut(e.Message, "hostPath type check failed: ")
		if e.InvolvedObject.Name == pod.Name && e.Reason == "FailedMount" && found {
			return hint.Permanent(fmt.Errorf("helper pod %s/%s cannot start on node %s: %w: %s", pod.Namespace, pod.Name, pod.Spec.NodeName, ErrHostPath, why),
				"check the path on node %s", pod.Spec.NodeName)
		}
	}
	return nil
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
			return false, hint.Permanent(fmt.Errorf("helper image %q cannot be pulled on node %s (%s: %s)",
				spec.imageOrDefault(), spec.Node, w.Reason, w.Message),
				"Use --image with an image the node can pull, or preload it there; any image with sh, cat, sha256sum, mv and sleep works")
		case "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
			return false, fmt.Errorf("helper pod %s cannot start on node %s: %s: %s", p.Name, spec.Node, w.Reason, w.Message)
		}
	}
	return false, nil
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

func isPodSecurity(err error) bool {
	return strings.Contains(err.Error(), "violates PodSecurity")
}

// explainCreate is the one place a refused create gets its hint.
func explainCreate(err error, pod *corev1.Pod) error {
	ns := pod.Namespace
	switch {
	case isPodSecurity(err):
		return hint.Permanent(fmt.Errorf("PodSecurity admission rejected the helper pod in namespace %q: %w", ns, err),
			"Every helper pod mounts host paths (and restore runs privileged), which only the privileged Pod Security level allows. "+
				"Use --helper-namespace with a namespace labelled pod-security.kubernetes.io/enforce=privileged (kube-system usually is), "+
				"or label this one: kubectl label namespace %s pod-security.kubernetes.io/enforce=privileged", ns)
	case apierrors.IsForbidden(err):
		return hint.Permanent(fmt.Errorf("RBAC denied: you cannot create pods in namespace %q (%w)", ns, err),
			"Ask a cluster admin for a Role in %s that allows verb \"create\" (and \"delete\", and \"create\" on pods/exec) on \"pods\", "+
				"or use a context with more rights (check: kubectl auth can-i create pods -n %s)", ns, ns)
	}
	return fmt.Errorf("creating helper pod on node %s: %w", pod.Spec.NodeName, err)
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

// kubeletLeaseStale is how old a node's lease may be before its kubelet
// counts as cut off from the API: it renews it every 10 s.
const kubeletLeaseStale = 25 * time.Second

// KubeletConnected reports whether the kubelet of node can start a pod
// now: its node is Ready and it renewed its lease lately (now is the
// workstation's clock). A node whose etcd just stopped stays Ready for
// about 40 s while its kubelet, on kubeadm's local mode, already lost
// the API. Unreadable nodes and leases count as connected.
func (r *Runner) KubeletConnected(ctx context.Context, node string, now time.Time) error {
	if err := r.checkNode(ctx, node); err != nil {
		return err
	}
	l, err := r.Client.CoordinationV1().Leases("kube-node-lease").Get(ctx, node, metav1.GetOptions{})
	if err != nil || l.Spec.RenewTime == nil {
		return nil
	}
	if age := now.Sub(l.Spec.RenewTime.Time); age > kubeletLeaseStale {
		return hint.Permanent(fmt.Errorf("the kubelet of node %s last renewed its lease %s ago, so a helper pod cannot start there", node, age.Round(time.Second)),
			"Check it with: kubectl describe node %s", node)
	}
	return nil
}
