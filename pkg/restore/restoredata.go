package restore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
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
	PurposeStatus  = "restore-status"
)

// restorePodLifetime bounds a restore pod that nobody deletes.
const restorePodLifetime int64 = 1800

// BuildRestorePod is the pod that runs `snapshot restore` on m's node in
// the member's own etcd image: that image is on the node already, and its
// tools match the data's version. The 3.6+ image has no shell, so the
// command is the argv itself. It mounts two host dirs at their node paths,
// so that the argv's paths are the node's: the journal dir, read-only, for
// the staged snapshot, and m.RestoreDir, which the node pod made empty
// beforehand, to write in (X3). Nothing else of the node is visible.
func BuildRestorePod(p *Plan, m MemberPlan, namespace string) *corev1.Pod {
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
			{Name: "restore", MountPath: m.RestoreDir},
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
				hostDir("restore", m.RestoreDir, corev1.HostPathDirectory),
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
// The node pod makes the pod's dir beforehand and moves the data into
// place afterwards.
func (r *run) restoreData(ctx context.Context) error {
	return r.parallel(func(n *node) error {
		began := r.cfg.Now()
		if err := makeRestoreDir(ctx, n.pod, n.m); err != nil {
			return err
		}
		if err := r.runner.Complete(ctx, BuildRestorePod(r.pre.plan, n.m, r.cfg.Namespace), restorePodTimeout); err != nil {
			return fmt.Errorf("restore the snapshot, so nothing was stopped (what it wrote is in %s): %w", n.m.RestoreDir, err)
		}
		if err := placeRestored(ctx, n.pod, n.m); err != nil {
			return err
		}
		r.cfg.notef("node %s: restored the snapshot into %s in %s", n.m.Node, n.m.NewDataDir, r.cfg.Now().Sub(began).Round(time.Millisecond))
		return nil
	})
}

// makeRestoreDir makes m.RestoreDir, 0700 and empty, for the restore pod:
// an empty one left by an earlier try is taken, anything in one refused.
func makeRestoreDir(ctx context.Context, p *nodepod.Pod, m MemberPlan) error {
	script := `umask 077 && { rmdir "$1" 2>/dev/null; mkdir "$1"; }`
	var errb bytes.Buffer
	if err := p.Exec(ctx, []string{"sh", "-c", script, "mkdir", host(m.RestoreDir)}, nil, io.Discard, &errb); err != nil {
		return fmt.Errorf("make %s for the restored data, so nothing was stopped (%s): %w; if an earlier try left it, move it aside, then retry",
			m.RestoreDir, strings.TrimSpace(errb.String()), err)
	}
	return nil
}

// placeRestored renames the restored data to m.NewDataDir, in the same
// dir, so on the same filesystem: never over something there.
func placeRestored(ctx context.Context, p *nodepod.Pod, m MemberPlan) error {
	script := `if [ -e "$2" ]; then echo "$2 is there already" >&2; exit 1; fi; mv "$1" "$2" && rmdir "$3"`
	var errb bytes.Buffer
	if err := p.Exec(ctx, []string{"sh", "-c", script, "place", host(restoredInto(m.RestoreDir)), host(m.NewDataDir), host(m.RestoreDir)}, nil, io.Discard, &errb); err != nil {
		return fmt.Errorf("move the restored data from %s to %s, so nothing was stopped (%s): %w",
			restoredInto(m.RestoreDir), m.NewDataDir, strings.TrimSpace(errb.String()), err)
	}
	return nil
}
