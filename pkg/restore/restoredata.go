package restore

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// Purposes of the pods restore creates, in their purpose label.
const (
	PurposeNode    = "restore"
	PurposeRestore = "restore-data"
)

// restorePodLifetime bounds a restore pod that nobody deletes.
const restorePodLifetime int64 = 1800

// BuildRestorePod is the pod that runs `snapshot restore` on m's node in
// the member's own etcd image: that image is on the node already, and its
// tools match the data's version. The 3.6+ image has no shell, so the
// command is the argv itself. The journal dir (the staged snapshot) and
// the new data dir's parent are mounted at their node paths, so that the
// argv's paths are the node's.
func BuildRestorePod(p *Plan, m MemberPlan, namespace string) *corev1.Pod {
	parent := path.Dir(m.NewDataDir)
	c := corev1.Container{
		Name:  "restore",
		Image: m.Image,
		// The image is on the node (its etcd runs it); IfNotPresent never
		// pulls it there, and a node that cannot pull still restores.
		ImagePullPolicy:          corev1.PullIfNotPresent,
		Command:                  append([]string{}, m.RestoreArgv...),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		// kubeadm's data dirs are root's, and root owns what it writes and
		// reads here: no capability is needed (X3). The staged snapshot is
		// only read.
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](0),
			RunAsNonRoot:             ptr.To(false),
			Privileged:               ptr.To(false),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "journal", MountPath: m.JournalDir, ReadOnly: true},
			{Name: "data-parent", MountPath: parent},
		},
	}
	if len(m.RestoreArgv) > 0 && m.RestoreArgv[0] == "etcdctl" {
		c.Env = []corev1.EnvVar{{Name: "ETCDCTL_API", Value: "3"}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      restorePodName(p.ID, m.Node),
			Namespace: namespace,
			Labels: map[string]string{
				nodepod.ManagedByLabel: nodepod.ManagedByValue,
				nodepod.PurposeLabel:   PurposeRestore,
			},
		},
		Spec: corev1.PodSpec{
			NodeName:                      m.Node,
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         ptr.To(restorePodLifetime),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers:                    []corev1.Container{c},
			Volumes: []corev1.Volume{
				hostDir("journal", m.JournalDir, corev1.HostPathDirectory),
				hostDir("data-parent", parent, corev1.HostPathDirectory),
			},
		},
	}
}

func hostDir(name, p string, t corev1.HostPathType) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: p, Type: ptr.To(t)}}}
}

// restorePodName is unique per restore and node, so that a leftover from
// another restore never collides with this one.
func restorePodName(id, node string) string {
	base := "kubectl-etcd-restore-" + strings.ToLower(id) + "-" + strings.ToLower(node)
	if len(base) > 63 {
		base = base[:63]
	}
	return strings.TrimRight(base, "-.")
}

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
// its member's image, which the node pod runner deletes whatever happens.
func (r *run) restoreData(ctx context.Context) error {
	return r.parallel(func(n *node) error {
		began := r.cfg.Now()
		if err := r.runner.Complete(ctx, BuildRestorePod(r.pre.plan, n.m, r.cfg.Namespace), restorePodTimeout); err != nil {
			return fmt.Errorf("restore the snapshot, so nothing was stopped: %w", err)
		}
		r.cfg.notef("node %s: restored the snapshot into %s in %s", n.m.Node, n.m.NewDataDir, r.cfg.Now().Sub(began).Round(time.Millisecond))
		return nil
	})
}
