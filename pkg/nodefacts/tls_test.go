package nodefacts

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

func TestCandidates(t *testing.T) {
	no, yes := false, true
	ms := []discovery.Member{
		{Node: "a", Running: false, NodeReady: &yes},
		{Node: "b", Running: true, NodeReady: &no},
		{Node: "c", Running: true, NodeReady: &yes},
		{Node: "c", Running: true, NodeReady: &yes},
		{Node: "d", Running: true},
	}
	var got []string
	for _, m := range candidates(ms) {
		got = append(got, m.Node)
	}
	if want := []string{"c", "d", "a", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("candidates = %v, want %v", got, want)
	}
}

// selfSigned returns a certificate that is its own CA, and its key.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// catExec answers `cat /host<path>` from files, in 32 KiB pieces as an
// exec stream would; big files are made of repeated bytes.
type catExec struct {
	mu    sync.Mutex
	files map[string][]byte
	big   map[string]int
	cmds  [][]string
}

func (c *catExec) Exec(_ context.Context, _ exec.PodRef, cmd []string, _ io.Reader, stdout, stderr io.Writer) error {
	c.mu.Lock()
	c.cmds = append(c.cmds, cmd)
	c.mu.Unlock()
	if len(cmd) != 2 || cmd[0] != "cat" {
		return fmt.Errorf("unexpected command %v", cmd)
	}
	path := strings.TrimPrefix(cmd[1], nodepod.HostPrefix)
	var r io.Reader
	switch b, ok := c.files[path]; {
	case ok:
		r = bytes.NewReader(b)
	case c.big[path] > 0:
		r = io.LimitReader(neverEnding('x'), int64(c.big[path]))
	default:
		fmt.Fprintf(stderr, "cat: can't open '%s': No such file or directory", cmd[1])
		return fmt.Errorf("command terminated with exit code 1")
	}
	_, err := io.CopyBuffer(struct{ io.Writer }{stdout}, r, make([]byte, 32<<10))
	return err
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// nodeCluster is a fake cluster with one Ready node n1 whose kubelet runs
// every pod; created records the pods as they were created.
func nodeCluster(t *testing.T) (*fake.Clientset, *[]*corev1.Pod) {
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}})
	var mu sync.Mutex
	var created []*corev1.Pod
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		mu.Lock()
		created = append(created, pod.DeepCopy())
		mu.Unlock()
		go func() {
			time.Sleep(20 * time.Millisecond)
			pod.Status.Phase = corev1.PodRunning
			_, _ = cs.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
		}()
		return false, nil, nil
	})
	return cs, &created
}

const (
	caFile   = "/etc/kubernetes/pki/etcd/ca.crt"
	certFile = "/etc/kubernetes/pki/etcd/server.crt"
	keyFile  = "/etc/kubernetes/pki/etcd/server.key"
)

func TestNodeTLSSourceRead(t *testing.T) {
	cert, key := selfSigned(t)
	otherCert, _ := selfSigned(t)
	tests := []struct {
		name      string
		files     map[string][]byte
		big       map[string]int
		wantErr   string
		permanent bool
	}{
		{name: "reads the three files", files: map[string][]byte{caFile: cert, certFile: cert, keyFile: key}},
		{name: "ca without pem", files: map[string][]byte{caFile: []byte("not a certificate\n"), certFile: cert, keyFile: key},
			wantErr: "holds no PEM certificate", permanent: true},
		{name: "cert and key do not pair", files: map[string][]byte{caFile: cert, certFile: otherCert, keyFile: key},
			wantErr: "do not form a pair", permanent: true},
		{name: "a file over 1 MiB", files: map[string][]byte{caFile: cert, certFile: cert}, big: map[string]int{keyFile: 64 << 20},
			wantErr: "larger than 1048576 bytes", permanent: true},
		{name: "a missing file", files: map[string][]byte{caFile: cert, certFile: cert},
			wantErr: "No such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, created := nodeCluster(t)
			ex := &catExec{files: tc.files, big: tc.big}
			src := &NodeTLSSource{Runner: &nodepod.Runner{Client: cs, Exec: ex, StartTimeout: 5 * time.Second}, Namespace: "kube-system"}
			m := discovery.Member{Name: "n1", Node: "n1", Running: true}
			m.Client.TrustedCAFile, m.Client.CertFile, m.Client.KeyFile = caFile, certFile, keyFile
			mat, err := src.Material(context.Background(), m)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if got := hint.IsPermanent(err); got != tc.permanent {
					t.Errorf("permanent = %v, want %v (%v)", got, tc.permanent, err)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if !bytes.Equal(mat.CA, cert) || !bytes.Equal(mat.Cert, cert) || !bytes.Equal(mat.Key, key) {
				t.Errorf("material differs from the files")
			}
			if len(*created) != 1 {
				t.Fatalf("%d pods created, want 1", len(*created))
			}
			assertFilesPod(t, (*created)[0], []string{caFile, certFile, keyFile})
			if pods, _ := cs.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{}); len(pods.Items) != 0 {
				t.Errorf("%d helper pods left behind", len(pods.Items))
			}
		})
	}
}

// assertFilesPod checks that the pod sees exactly files, each read-only
// and of type File: never the directory, where kubeadm keeps ca.key.
func assertFilesPod(t *testing.T, pod *corev1.Pod, files []string) {
	t.Helper()
	var got []string
	for i, v := range pod.Spec.Volumes {
		hp, vm := v.HostPath, pod.Spec.Containers[0].VolumeMounts[i]
		if hp == nil || hp.Type == nil || *hp.Type != corev1.HostPathFile || !vm.ReadOnly || vm.MountPath != "/host"+hp.Path {
			t.Errorf("volume %s = %+v mounted %+v, want a read-only File at /host<path>", v.Name, hp, vm)
			continue
		}
		got = append(got, hp.Path)
	}
	if !reflect.DeepEqual(got, files) {
		t.Errorf("pod mounts %v, want exactly %v", got, files)
	}
	if sc := pod.Spec.Containers[0].SecurityContext; sc == nil || sc.Privileged == nil || *sc.Privileged || pod.Spec.HostPID {
		t.Errorf("certificate pod is privileged")
	}
}
