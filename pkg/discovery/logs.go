package discovery

import (
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
)

// PodLogs reads the members' etcd container logs through the API
// server, as kubectl logs does.
type PodLogs struct{ Client kubernetes.Interface }

// Logs streams m's container log from since ago, each line led by its
// timestamp. The kubelet serves the current log file only, so a log
// rotated meanwhile begins later.
func (p PodLogs) Logs(ctx context.Context, m Member, since time.Duration) (io.ReadCloser, error) {
	secs := int64(since / time.Second)
	opts := &corev1.PodLogOptions{Container: m.Container, SinceSeconds: &secs, Timestamps: true}
	rc, err := p.Client.CoreV1().Pods(m.Namespace).GetLogs(m.Pod, opts).Stream(ctx)
	switch {
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("reading the log of pod %s/%s: %w (it needs get on pods/log in %s)", m.Namespace, m.Pod, err, m.Namespace)
	case err != nil:
		return nil, fmt.Errorf("reading the log of pod %s/%s: %w", m.Namespace, m.Pod, err)
	}
	return rc, nil
}
