package plugin

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
)

// etcdctlFake answers etcdctl invocations with what etcdctl 3.5 prints for
// -w json, recording every command.
type etcdctlFake struct {
	mu        sync.Mutex // members are reached in parallel
	calls     [][]string
	unhealthy map[string]bool // pod name -> unhealthy
}

const (
	memberListJSON = `{"header":{"cluster_id":17961567062011526616,"member_id":10276657743932975437,"raft_term":3},"members":[{"ID":10276657743932975437,"name":"hc-cp1","peerURLs":["https://10.250.1.11:2380"],"clientURLs":["https://10.250.1.11:2379"]},{"ID":3254424451432201488,"name":"hc-cp2","peerURLs":["https://10.250.1.12:2380"],"clientURLs":["https://10.250.1.12:2379"]}]}`
	alarmJSON      = `{"header":{"cluster_id":17961567062011526616,"member_id":10276657743932975437,"revision":42,"raft_term":3}}`
)

func statusJSON(id string) string {
	return `[{"Endpoint":"https://127.0.0.1:2379","Status":{"header":{"cluster_id":17961567062011526616,"member_id":` + id +
		`,"revision":42,"raft_term":3},"version":"3.5.35","dbSize":2101248,"leader":10276657743932975437,"raftIndex":812,"raftTerm":3,"raftAppliedIndex":812,"dbSizeInUse":1978368}}]`
}

func (f *etcdctlFake) Exec(_ context.Context, pod exec.PodRef, cmd []string, _ io.Reader, stdout, _ io.Writer) error {
	f.mu.Lock()
	f.calls = append(f.calls, cmd)
	f.mu.Unlock()
	sub := strings.Join(cmd[len(cmd)-2:], " ")
	ids := map[string]string{"etcd-hc-cp1": "10276657743932975437", "etcd-hc-cp2": "3254424451432201488"}
	switch sub {
	case "member list":
		_, _ = io.WriteString(stdout, memberListJSON)
	case "endpoint status":
		_, _ = io.WriteString(stdout, statusJSON(ids[pod.Name]))
	case "alarm list":
		_, _ = io.WriteString(stdout, alarmJSON)
	case "endpoint health":
		if f.unhealthy[pod.Name] {
			_, _ = io.WriteString(stdout, `[{"endpoint":"https://127.0.0.1:2379","health":false,"took":"5.001s","error":"context deadline exceeded"}]`)
			return &exec.ExitError{Code: 1, Err: errors.New("exit 1")}
		}
		_, _ = io.WriteString(stdout, `[{"endpoint":"https://127.0.0.1:2379","health":true,"took":"7.5ms"}]`)
	default:
		return exec.ErrNotFound
	}
	return nil
}

func etcdPod(node string) *corev1.Pod {
	ip := map[string]string{"hc-cp1": "10.250.1.11", "hc-cp2": "10.250.1.12", "hc-cp3": "10.250.1.13"}[node]
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "etcd-" + node, Namespace: "kube-system", Labels: map[string]string{"component": "etcd"},
			Annotations: map[string]string{discovery.MirrorAnnotation: "hash-" + node}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "etcd", Image: "registry.k8s.io/etcd:3.5.35-0", Command: []string{
			"etcd", "--name=" + node, "--data-dir=/var/lib/etcd",
			"--listen-client-urls=https://127.0.0.1:2379,https://" + ip + ":2379",
			"--advertise-client-urls=https://" + ip + ":2379",
			"--initial-advertise-peer-urls=https://" + ip + ":2380",
			"--cert-file=/etc/kubernetes/pki/etcd/server.crt", "--key-file=/etc/kubernetes/pki/etcd/server.key",
			"--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt", "--client-cert-auth=true",
		}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "etcd", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
}

func run(t *testing.T, ex exec.Executor, args ...string) (string, string, error) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	g := NewGlobalOptions(streams)
	g.Client = fake.NewClientset(etcdPod("hc-cp1"), etcdPod("hc-cp2"))
	g.Executor = ex
	cmd := NewCmdEtcdWithOptions(g)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		unhealthy map[string]bool
		wantErr   string
	}{
		{name: "members", args: []string{"members"}},
		{name: "members-json", args: []string{"members", "-o", "json"}},
		{name: "health", args: []string{"health", "--transport=exec"}},
		{name: "health-unhealthy", args: []string{"health"}, unhealthy: map[string]bool{"etcd-hc-cp2": true}, wantErr: "1 of 2 members unhealthy"},
		{name: "status", args: []string{"status", "--transport", "exec"}},
		{name: "status-yaml", args: []string{"status", "-o", "yaml"}},
		{name: "bad-output", args: []string{"members", "-o", "xml"}, wantErr: "unknown output format"},
		{name: "bad-transport", args: []string{"members", "--transport", "ssh"}, wantErr: "unknown --transport"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := &etcdctlFake{unhealthy: tc.unhealthy}
			out, _, err := run(t, ex, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			if out != "" {
				golden.Assert(t, "cmd-"+tc.name, []byte(out))
			}
			for _, c := range ex.calls {
				if c[0] != "etcdctl" || !contains(c, "--cacert=/etc/kubernetes/pki/etcd/ca.crt") || !contains(c, "--endpoints=https://127.0.0.1:2379") || !contains(c, "json") {
					t.Errorf("etcdctl not invoked with the pod spec's flags: %v", c)
				}
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func parsedPod(node string) discovery.Member { return discovery.ParsePod(etcdPod(node)) }

// TestDiscoveryIgnoresNonMirrorPods: a labelled pod that is no static
// pod's mirror pod is warned about on ErrOut, once, and left out.
func TestDiscoveryIgnoresNonMirrorPods(t *testing.T) {
	impostor := etcdPod("hc-cp3")
	impostor.Annotations = nil
	tests := []struct {
		name    string
		pods    []runtime.Object
		warns   int
		wantErr string
	}{
		{name: "mirror pods only", pods: []runtime.Object{etcdPod("hc-cp1"), etcdPod("hc-cp2")}},
		{name: "an impostor beside them", pods: []runtime.Object{etcdPod("hc-cp1"), etcdPod("hc-cp2"), impostor}, warns: 1},
		{name: "no mirror pod", pods: []runtime.Object{impostor}, warns: 1, wantErr: "pod kube-system/etcd-hc-cp3 has label component=etcd but is not a static pod's mirror pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			g := NewGlobalOptions(streams)
			g.Client = fake.NewClientset(tt.pods...)
			g.Executor = &etcdctlFake{}
			cmd := NewCmdEtcdWithOptions(g)
			cmd.SetArgs([]string{"members", "-o", "json"})
			err := cmd.ExecuteContext(context.Background())
			// A second discovery, as long operations make, warns no more.
			_, _ = g.Session().Discover(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil || strings.Contains(out.String(), "hc-cp3") {
				t.Fatalf("err = %v, out:\n%s", err, out.String())
			}
			if n := strings.Count(errOut.String(), "Warning: pod kube-system/etcd-hc-cp3 has label component=etcd but is not a static pod's mirror pod"); n != tt.warns {
				t.Errorf("%d warnings, want %d; ErrOut:\n%s", n, tt.warns, errOut.String())
			}
		})
	}
}
