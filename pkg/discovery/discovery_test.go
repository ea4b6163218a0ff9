package discovery

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

func loadPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var p corev1.Pod
	if err := yaml.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func TestParsePodKubeadmManifests(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata manifests")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			m := ParsePod(loadPod(t, filepath.Base(f)))
			if m.Name == "" || m.Name == "default" || m.Node != m.Name {
				t.Errorf("name %q node %q: kubeadm names the member after its node", m.Name, m.Node)
			}
			if m.DataDir != "/var/lib/etcd" || m.Client.TrustedCAFile != "/etc/kubernetes/pki/etcd/ca.crt" ||
				m.Client.CertFile != "/etc/kubernetes/pki/etcd/server.crt" || m.Client.KeyFile != "/etc/kubernetes/pki/etcd/server.key" ||
				!m.Client.ClientCertAuth || m.Peer.CertFile != "/etc/kubernetes/pki/etcd/peer.crt" || !m.Peer.ClientCertAuth {
				t.Errorf("paths not read from the kubeadm manifest: %+v", m)
			}
			if got := m.LocalClientURL(); got != "https://127.0.0.1:2379" {
				t.Errorf("LocalClientURL = %q", got)
			}
			if m.ClientPort() != 2379 || !m.TLS() || !m.Running || m.Version == "" || m.QuotaBackendBytes != DefaultQuotaBackendBytes {
				t.Errorf("port %d tls %v running %v version %q quota %d", m.ClientPort(), m.TLS(), m.Running, m.Version, m.QuotaBackendBytes)
			}
			if want := strings.TrimSuffix(strings.SplitN(filepath.Base(f), "-etcd-", 2)[1], ".yaml"); m.Version != want {
				t.Errorf("version %q, want %q from the file name", m.Version, want)
			}
			if len(m.ListenMetricsURLs) != 1 || len(m.InitialAdvertisePeerURLs) != 1 || len(m.Unsupported) != 0 {
				t.Errorf("metrics %v peer %v unsupported %v", m.ListenMetricsURLs, m.InitialAdvertisePeerURLs, m.Unsupported)
			}
		})
	}
}

func etcdPod(cmd []string, env []corev1.EnvVar, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "etcd-a", Namespace: "kube-system", Labels: map[string]string{"component": "etcd"}, Annotations: map[string]string{MirrorAnnotation: "hash-a"}},
		Spec:       corev1.PodSpec{NodeName: "a", Containers: []corev1.Container{{Name: "etcd", Image: image, Command: cmd, Env: env}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "etcd", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
}

func TestParsePodForms(t *testing.T) {
	tests := []struct {
		name  string
		pod   *corev1.Pod
		check func(t *testing.T, m Member)
	}{
		{
			name: "space separated flags",
			pod:  etcdPod([]string{"/usr/local/bin/etcd", "--name", "x", "--data-dir", "/d", "--listen-client-urls", "https://0.0.0.0:12379", "--quota-backend-bytes", "8589934592"}, nil, "quay.io/coreos/etcd:v3.6.8"),
			check: func(t *testing.T, m Member) {
				if m.Name != "x" || m.DataDir != "/d" || m.QuotaBackendBytes != 8<<30 || m.Version != "3.6.8" {
					t.Errorf("%+v", m)
				}
				if m.LocalClientURL() != "https://127.0.0.1:12379" || m.ClientPort() != 12379 {
					t.Errorf("wildcard listener not mapped to loopback: %s", m.LocalClientURL())
				}
			},
		},
		{
			name: "ETCD_ variables, flags win",
			pod: etcdPod([]string{"etcd", "--name=flag"}, []corev1.EnvVar{
				{Name: "ETCD_NAME", Value: "env"}, {Name: "ETCD_DATA_DIR", Value: "/env-data"},
				{Name: "ETCD_TRUSTED_CA_FILE", Value: "/ca"}, {Name: "ETCD_CLIENT_CERT_AUTH", Value: "true"},
			}, "registry.k8s.io/etcd:3.7.0-0@sha256:abcd"),
			check: func(t *testing.T, m Member) {
				if m.Name != "flag" || m.DataDir != "/env-data" || m.Client.TrustedCAFile != "/ca" || !m.Client.ClientCertAuth || m.Version != "3.7.0" {
					t.Errorf("%+v", m)
				}
			},
		},
		{
			name: "config file is reported unsupported",
			pod:  etcdPod([]string{"etcd", "--config-file=/etc/etcd.yaml"}, nil, "etcd"),
			check: func(t *testing.T, m Member) {
				if len(m.Unsupported) != 1 || !strings.Contains(m.Unsupported[0], "config-file") {
					t.Errorf("unsupported = %v", m.Unsupported)
				}
				if m.Name != "default" || m.DataDir != "default.etcd" || m.Version != "" {
					t.Errorf("etcd defaults not applied: %+v", m)
				}
			},
		},
		{
			name: "pod not running says why",
			pod: func() *corev1.Pod {
				p := etcdPod([]string{"etcd"}, nil, "etcd:3.5.35-0")
				p.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "etcd", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off"}}}}}
				return p
			}(),
			check: func(t *testing.T, m Member) {
				if m.Running || !strings.Contains(m.NotRunningReason, "CrashLoopBackOff") {
					t.Errorf("running %v reason %q", m.Running, m.NotRunningReason)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, ParsePod(tc.pod)) })
	}
}

func TestDiscover(t *testing.T) {
	ready := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "hc-cp1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	t.Run("finds kubeadm pods and node readiness", func(t *testing.T) {
		cs := fake.NewClientset(loadPod(t, "kubeadm-v1.33.13-etcd-3.5.35.yaml"), ready)
		ms, err := Discover(context.Background(), cs, Options{})
		if err != nil || len(ms) != 1 {
			t.Fatalf("Discover = %v, %v", ms, err)
		}
		if ms[0].NodeReady == nil || !*ms[0].NodeReady {
			t.Errorf("node readiness not read: %v", ms[0].NodeReady)
		}
	})
	t.Run("no pods explains the usual causes", func(t *testing.T) {
		_, err := Discover(context.Background(), fake.NewClientset(), Options{})
		if !errors.Is(err, ErrNoMembers) {
			t.Fatalf("err = %v", err)
		}
		for _, want := range []string{"external etcd", "current-context", "--selector"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
	})
	t.Run("RBAC denial names verb and resource", func(t *testing.T) {
		cs := fake.NewClientset()
		cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no"))
		})
		_, err := Discover(context.Background(), cs, Options{})
		if err == nil || !strings.Contains(err.Error(), `verb "list" on "pods"`) || !strings.Contains(err.Error(), "kubectl auth can-i list pods -n kube-system") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("other namespace and selector", func(t *testing.T) {
		p := etcdPod([]string{"etcd", "--name=x"}, nil, "etcd:3.6.8")
		p.Namespace, p.Labels = "etcd", map[string]string{"app": "etcd"}
		ms, err := Discover(context.Background(), fake.NewClientset(p), Options{Namespace: "etcd", Selector: "app=etcd"})
		if err != nil || len(ms) != 1 || ms[0].Name != "x" {
			t.Fatalf("Discover = %v, %v", ms, err)
		}
		if diff := cmp.Diff("etcd", ms[0].Namespace); diff != "" {
			t.Error(diff)
		}
	})
}

// TestDiscoverMirrorPods: only the kubelet's mirror pods of static pods
// are members; any other pod that matches is warned about and ignored.
func TestDiscoverMirrorPods(t *testing.T) {
	mirror := func(name string) *corev1.Pod {
		p := etcdPod([]string{"etcd", "--name=" + name}, nil, "etcd:3.5.35-0")
		p.Name, p.Spec.NodeName = "etcd-"+name, name
		return p
	}
	impostor := func(name string) *corev1.Pod {
		p := mirror(name)
		p.Annotations = nil
		return p
	}
	const notMirror = "has label component=etcd but is not a static pod's mirror pod (no kubernetes.io/config.mirror annotation); kubectl etcd only trusts the kubelet's static pods"
	tests := []struct {
		name    string
		pods    []*corev1.Pod
		members []string
		warned  []string
		wantErr string
	}{
		{name: "mirror pods only", pods: []*corev1.Pod{mirror("a"), mirror("b")}, members: []string{"a", "b"}},
		{name: "a pod without the annotation is ignored", pods: []*corev1.Pod{mirror("a"), impostor("x")}, members: []string{"a"},
			warned: []string{"pod kube-system/etcd-x " + notMirror + ", so it is ignored"}},
		{name: "no mirror pod left", pods: []*corev1.Pod{impostor("x")}, warned: []string{"pod kube-system/etcd-x " + notMirror + ", so it is ignored"},
			wantErr: "pod kube-system/etcd-x " + notMirror},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []runtime.Object
			for _, p := range tt.pods {
				objs = append(objs, p)
			}
			var warned []string
			ms, err := Discover(context.Background(), fake.NewClientset(objs...), Options{Warn: func(m string) { warned = append(warned, m) }})
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--selector") {
					t.Errorf("err = %v, want %q and a hint", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range ms {
				names = append(names, m.Name)
			}
			if !slices.Equal(names, tt.members) || !slices.Equal(warned, tt.warned) {
				t.Errorf("members %v warned %q, want %v and %q", names, warned, tt.members, tt.warned)
			}
		})
	}
}

func TestNodeClientURL(t *testing.T) {
	for _, tt := range []struct {
		name              string
		listen, advertise []string
		want              string
	}{
		{"kubeadm", []string{"https://127.0.0.1:2379", "https://10.0.0.1:2379"}, []string{"https://10.0.0.1:2379"}, "https://10.0.0.1:2379"},
		{"every address", []string{"https://0.0.0.0:2379"}, []string{"https://127.0.0.1:2379", "https://10.0.0.1:2379"}, "https://10.0.0.1:2379"},
		{"loopback only", []string{"https://127.0.0.1:2379", "https://[::1]:2379", "https://localhost:2379"}, []string{"https://10.0.0.1:2379"}, ""},
		{"nothing", nil, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := Member{ListenClientURLs: tt.listen, AdvertiseClientURLs: tt.advertise}
			if got := m.NodeClientURL(); got != tt.want {
				t.Errorf("NodeClientURL() = %q, want %q", got, tt.want)
			}
		})
	}
}
