// Package nodepod builds and runs the short-lived pods that kubectl-etcd
// places on control-plane nodes: to read TLS material, to stage snapshots
// and to restore. Pods are built by pure functions and run through a
// lifecycle that deletes them on every exit path.
package nodepod

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

const (
	// ManagedByLabel marks every pod the plugin creates, so that leftovers
	// can be found with -l app.kubernetes.io/managed-by=kubectl-etcd.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "kubectl-etcd"
	// PurposeLabel says what the pod is for (certs, stage, restore, ...).
	PurposeLabel = "kubectl-etcd.io/purpose"

	// DefaultImage is a small image with a POSIX shell and coreutils. Any
	// image with sh, cat, sha256sum, mv and sleep works (--image).
	DefaultImage = "busybox:1.37"

	containerName = "helper"
	// maxLifetime bounds a pod that survives a killed plugin: the kubelet
	// stops it after this many seconds even if nobody deletes it.
	maxLifetime int64 = 900
)

// nameSuffix is a seam for tests.
var nameSuffix = utilrand.String

// HostMount mounts a host path into the helper container.
type HostMount struct {
	HostPath  string
	MountPath string
	ReadOnly  bool
}

// Spec describes a node pod.
type Spec struct {
	Purpose    string // short word, part of the name and the purpose label
	Node       string
	Namespace  string
	Image      string
	PullPolicy corev1.PullPolicy
	Mounts     []HostMount
	// Privileged pods also share the host's network and PID namespaces.
	Privileged bool
	// Lifetime in seconds; 0 means maxLifetime.
	Lifetime int64
	// StartTimeout overrides the runner's wait for the pod to run.
	StartTimeout time.Duration
}

// Build returns the pod for spec. The container only sleeps: work is done
// through exec so that nothing it handles (keys, snapshots) goes to logs.
func Build(s Spec) *corev1.Pod {
	life := s.Lifetime
	if life <= 0 {
		life = maxLifetime
	}
	image := s.Image
	if image == "" {
		image = DefaultImage
	}
	pull := s.PullPolicy
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      podName(s.Purpose, s.Node),
			Namespace: s.Namespace,
			Labels: map[string]string{
				ManagedByLabel: ManagedByValue,
				PurposeLabel:   s.Purpose,
			},
		},
		Spec: corev1.PodSpec{
			NodeName:                      s.Node,
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         ptr.To(life),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			// Control-plane nodes are tainted, and a node in trouble may be
			// tainted too: that is exactly when the pod is needed.
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:            containerName,
				Image:           image,
				ImagePullPolicy: pull,
				Command:         []string{"sleep", fmt.Sprint(life)},
				SecurityContext: &corev1.SecurityContext{
					RunAsUser:  ptr.To[int64](0),
					Privileged: ptr.To(s.Privileged),
				},
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
		},
	}
	if s.Privileged {
		pod.Spec.HostNetwork = true
		pod.Spec.HostPID = true
	}
	for i, m := range s.Mounts {
		name := fmt.Sprintf("host-%d", i)
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name: name,
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: m.HostPath,
				Type: ptr.To(corev1.HostPathDirectory),
			}},
		})
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{
			Name: name, MountPath: m.MountPath, ReadOnly: m.ReadOnly,
		})
	}
	return pod
}

func podName(purpose, node string) string {
	base := "kubectl-etcd-" + purpose + "-" + strings.ToLower(node)
	if len(base) > 57 {
		base = base[:57]
	}
	return strings.TrimRight(base, "-.") + "-" + nameSuffix(5)
}
