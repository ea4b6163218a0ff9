package restore

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// restorePodTimeout bounds one `snapshot restore`.
const restorePodTimeout = 10 * time.Minute

func barrierAddr(m MemberPlan) string {
	h := ""
	if len(m.PeerURLs) > 0 {
		if u, err := url.Parse(m.PeerURLs[0]); err == nil {
			h = u.Hostname()
		}
	}
	return net.JoinHostPort(h, BarrierPort)
}

// restoreData runs `snapshot restore` on every node, each in a pod of
// its member's image, and deletes the pods whatever happens.
func (r *run) restoreData(ctx context.Context) error {
	return r.parallel(func(n *node) error {
		began := r.cfg.Now()
		pod := BuildRestorePod(r.pre.plan, n.m, r.cfg.Namespace)
		pods := r.d.Client.CoreV1().Pods(pod.Namespace)
		if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create the restore pod: %w", err)
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = pods.Delete(dctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}()
		if err := r.waitPodDone(ctx, pod); err != nil {
			return err
		}
		r.cfg.notef("node %s: restored the snapshot into %s in %s", n.m.Node, n.m.NewDataDir, r.cfg.Now().Sub(began).Round(time.Millisecond))
		return nil
	})
}

func (r *run) waitPodDone(ctx context.Context, pod *corev1.Pod) error {
	pods := r.d.Client.CoreV1().Pods(pod.Namespace)
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, r.cfg.Poll/4+time.Millisecond, restorePodTimeout, true, func(ctx context.Context) (bool, error) {
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
	logs, lerr := pods.GetLogs(pod.Name, &corev1.PodLogOptions{TailLines: ptr.To[int64](40)}).DoRaw(context.WithoutCancel(ctx))
	why := "it did not finish in " + restorePodTimeout.String()
	if err == nil {
		why = "it failed"
	}
	if lerr != nil {
		logs = []byte("(no log: " + lerr.Error() + ")")
	}
	return fmt.Errorf("`%s` %s, so nothing was stopped; its log ends:\n%s", strings.Join(pod.Spec.Containers[0].Command, " "), why, strings.TrimSpace(string(logs)))
}
