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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

const (
	// ManagedByLabel marks every pod the plugin creates, and the agent's
	// static pods, so that leftovers can be found with
	// -l app.kubernetes.io/managed-by=kubectl-etcd.
	ManagedByLabel = agentapi.ManagedByLabel
	ManagedByValue = agentapi.ManagedByValue
	// PurposeLabel says what the pod is for (certs, stage, restore, ...).
	PurposeLabel = agentapi.PurposeLabel

	// DefaultImage is a small image with a POSIX shell and coreutils. Any
	// image with sh, cat, sha256sum, mv and sleep works (--image).
	DefaultImage = "busybox:1.37"

	// HostPrefix is where host paths appear inside a helper container.
	HostPrefix = "/host"
	// ScratchDir is a pod's own writable dir (an emptyDir) when its Spec
	// asks for one: it goes with the pod, and nothing in it reaches the node.
	ScratchDir = "/scratch"
	// scratchLimit bounds it: it holds an agent binary at most.
	scratchLimit = "256Mi"

	containerName = "helper"
	// maxLifetime bounds a pod that survives a killed plugin: the kubelet
	// stops it after this many seconds even if nobody deletes it.
	maxLifetime int64 = 900
)

// nameSuffix is a seam for tests.
var nameSuffix = utilrand.String

// Profile says what a helper pod may do on its node, as the profiles of
// `kubectl debug node` do. The zero value is ProfileFiles, the narrowest.
type Profile string

const (
	// ProfileFiles reads the host files and dirs it mounts, and nothing
	// else: every host mount is read-only.
	//
	// What it needs and why: hostPath volumes of type File, read-only,
	// one per file, so no directory around them (kubeadm keeps the etcd
	// CA's ca.key next to ca.crt) is visible. It runs as uid 0 because
	// kubeadm writes its key files root-owned with mode 0600; as their
	// owner, uid 0 reads them with no capability, so every capability is
	// dropped, privilege escalation is off, the root filesystem is
	// read-only and seccomp is RuntimeDefault. Pod Security still counts
	// it as `privileged`, because any hostPath volume is.
	ProfileFiles Profile = "files"
	// ProfileNode is a privileged container in the host's network
	// namespace with the host root (or the given paths) mounted: for
	// work that stops static pods, moves data directories and runs the
	// cluster's own etcd tools on the node.
	ProfileNode Profile = "node"
)

// HostMount mounts a host path into the helper container.
type HostMount struct {
	HostPath string
	// MountPath defaults to HostPrefix+HostPath.
	MountPath string
	ReadOnly  bool
	// Type is checked by the kubelet before the pod starts; empty means
	// HostPathDirectory.
	Type corev1.HostPathType
}

// FileMounts mounts each distinct, non-empty path as a read-only file
// under HostPrefix: the mounts of a ProfileFiles pod.
func FileMounts(paths ...string) []HostMount {
	seen := map[string]bool{}
	var out []HostMount
	for _, p := range paths {
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, HostMount{HostPath: p, ReadOnly: true, Type: corev1.HostPathFile})
	}
	return out
}

// Spec describes a node pod.
type Spec struct {
	Purpose   string // short word, part of the name and the purpose label
	Node      string
	Namespace string
	// Image defaults to DefaultImage.
	Image      string
	PullPolicy corev1.PullPolicy
	Profile    Profile
	// Mounts of a ProfileNode pod default to the host root at HostPrefix.
	Mounts []HostMount
	// Lifetime in seconds; 0 means maxLifetime.
	Lifetime int64
	// StartTimeout overrides the runner's wait for the pod to run.
	StartTimeout time.Duration
	// Scratch gives the pod a writable emptyDir at ScratchDir, so that a
	// ProfileFiles pod, whose root and host mounts are read-only, can
	// still be handed a program to run.
	Scratch bool
	// HostNetwork puts a ProfileFiles pod in the host's network, to reach
	// a member's loopback listener (a ProfileNode pod always is).
	HostNetwork bool
}

// Build returns the pod for spec. The container only sleeps: work is done
// through exec so that nothing it handles (keys, snapshots) goes to logs.
func Build(s Spec) *corev1.Pod {
	life := s.Lifetime
	if life <= 0 {
		life = maxLifetime
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
				Name:                     containerName,
				Image:                    s.imageOrDefault(),
				ImagePullPolicy:          pull,
				Command:                  []string{"sleep", fmt.Sprint(life)},
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
		},
	}
	mounts := s.Mounts
	c := &pod.Spec.Containers[0]
	switch s.Profile {
	case ProfileNode:
		// The host's network: the agent checks there that its barrier port
		// is free. Not its PIDs: nothing run in these pods looks at host
		// processes (the agents run as static pods of their own).
		pod.Spec.HostNetwork = true
		c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](0), Privileged: ptr.To(true)}
		if len(mounts) == 0 {
			mounts = []HostMount{{HostPath: "/", MountPath: HostPrefix}}
		}
	default:
		// It reads and nothing else: every host mount is read-only,
		// whatever the spec says.
		pod.Spec.HostNetwork = s.HostNetwork
		mounts = make([]HostMount, len(s.Mounts))
		for i, m := range s.Mounts {
			m.ReadOnly = true
			mounts[i] = m
		}
		c.SecurityContext = &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](0), // see ProfileFiles
			RunAsNonRoot:             ptr.To(false),
			Privileged:               ptr.To(false),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
	}
	for i, m := range mounts {
		name := fmt.Sprintf("host-%d", i)
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name: name,
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: m.HostPath,
				Type: ptr.To(m.typeOrDefault()),
			}},
		})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{
			Name: name, MountPath: m.mountPathOrDefault(), ReadOnly: m.ReadOnly,
		})
	}
	if s.Scratch {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name: "scratch",
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				SizeLimit: ptr.To(resource.MustParse(scratchLimit)),
			}},
		})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "scratch", MountPath: ScratchDir})
	}
	return pod
}

func (m HostMount) typeOrDefault() corev1.HostPathType {
	if m.Type == "" {
		return corev1.HostPathDirectory
	}
	return m.Type
}

func (m HostMount) mountPathOrDefault() string {
	if m.MountPath == "" {
		return HostPrefix + m.HostPath
	}
	return m.MountPath
}

func (s Spec) imageOrDefault() string {
	if s.Image == "" {
		return DefaultImage
	}
	return s.Image
}

func podName(purpose, node string) string {
	base := "kubectl-etcd-" + purpose + "-" + strings.ToLower(node)
	if len(base) > 57 {
		base = base[:57]
	}
	return strings.TrimRight(base, "-.") + "-" + nameSuffix(5)
}
