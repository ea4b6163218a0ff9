package backup

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

func TestCopySource(t *testing.T) {
	running := discovery.Member{Pod: "etcd-cp1", Node: "cp1", Name: "cp1", Running: true, DataDir: "/var/lib/etcd"}
	looping := discovery.Member{Pod: "etcd-cp3", Node: "cp3", Name: "cp3", PodPhase: corev1.PodRunning, NotRunningReason: "CrashLoopBackOff", DataDir: "/var/lib/etcd/data"}
	pods := []discovery.Member{running, looping}
	tests := []struct {
		name    string
		cfg     CopyDBConfig
		wantDir string
		wantErr []string
	}{
		{"crash-looping member", CopyDBConfig{Node: "cp3"}, "/var/lib/etcd/data", nil},
		{"crash-looping member, its container running for a moment", CopyDBConfig{Node: "cp1", Answers: func(context.Context, discovery.Member) error { return errors.New("connection refused") }}, "/var/lib/etcd", nil},
		{"a member that answers", CopyDBConfig{Node: "cp3", Answers: func(context.Context, discovery.Member) error { return nil }}, "", []string{"etcd on node cp3 (pod etcd-cp3) is running"}},
		{"the pod's data dir wins", CopyDBConfig{Node: "cp3", DataDir: "/elsewhere"}, "/var/lib/etcd/data", nil},
		{"running member", CopyDBConfig{Node: "cp1"}, "", []string{"etcd on node cp1 (pod etcd-cp1) is running", "kubectl etcd backup --member cp1"}},
		{"no pod, no --data-dir", CopyDBConfig{Node: "cp9"}, "", []string{"no etcd pod on node cp9", "--data-dir"}},
		{"no pod, --data-dir", CopyDBConfig{Node: "cp9", DataDir: "/var/lib/etcd"}, "/var/lib/etcd", nil},
		{"hostile --data-dir", CopyDBConfig{Node: "cp9", DataDir: "/var/lib/../../etc"}, "", []string{"not a clean absolute path"}},
		{"relative --data-dir", CopyDBConfig{Node: "cp9", DataDir: "etcd"}, "", []string{"not a clean absolute path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, pod, err := copySource(pods, tt.cfg)
			who := "no pod"
			if err == nil && pod != nil {
				who, err = memberState(context.Background(), *pod, tt.cfg)
			}
			if tt.wantErr == nil {
				if err != nil || dir != tt.wantDir || who == "" {
					t.Fatalf("copySource = %q (%s), %v; want %q", dir, who, err, tt.wantDir)
				}
				return
			}
			if err == nil {
				t.Fatalf("copySource = %q, want an error", dir)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error()+" "+hint.Of(err), w) {
					t.Errorf("error %q (hint %q) does not say %q", err, hint.Of(err), w)
				}
			}
		})
	}
}

// TestCopyDBPod: the pod mounts the database file alone, read-only, and
// is marked as ours.
func TestCopyDBPod(t *testing.T) {
	pod := nodepod.Build(copyDBSpec(CopyDBConfig{Node: "cp3", Namespace: "kube-system"}, "/var/lib/etcd/member/snap/db"))
	if pod.Labels["app.kubernetes.io/managed-by"] != "kubectl-etcd" || pod.Spec.NodeName != "cp3" {
		t.Errorf("labels %v, node %q", pod.Labels, pod.Spec.NodeName)
	}
	if pod.Spec.HostNetwork || pod.Spec.HostPID {
		t.Errorf("host namespaces: network %v, pid %v", pod.Spec.HostNetwork, pod.Spec.HostPID)
	}
	var hostPaths []string
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths = append(hostPaths, v.HostPath.Path)
			if v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathFile {
				t.Errorf("volume %s is not a file mount", v.Name)
			}
		}
	}
	if len(hostPaths) != 1 || hostPaths[0] != "/var/lib/etcd/member/snap/db" {
		t.Errorf("host paths %v", hostPaths)
	}
	c := pod.Spec.Containers[0]
	for _, m := range c.VolumeMounts {
		if !m.ReadOnly && strings.HasPrefix(m.MountPath, nodepod.HostPrefix) {
			t.Errorf("mount %s is writable", m.MountPath)
		}
	}
	if sc := c.SecurityContext; sc == nil || sc.Privileged != nil && *sc.Privileged {
		t.Errorf("container is privileged: %+v", sc)
	}
}
