// Command usagebench runs `kubectl etcd usage` as the plugin binary does,
// against etcd members that a benchmark started on this machine: a stub
// API server in this process lists their pods (read from a file) to the
// plugin's real client, and the port-forward dials the members' own
// addresses. It links what the plugin links and no fake clientset (which
// alone costs 25 MiB of RSS), so that its peak RSS stands for the
// plugin's. hack/bench/usage.sh builds and runs it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/plugin"
)

// As the plugin's main does: gRPC's buffer pool is set by the program.
func init() { etcd.SetGRPCBufferPool() }

// Cluster is the benchmark's description of the members.
type Cluster struct {
	Pods []corev1.Pod `json:"pods"`
	// Addrs maps a pod's name to its member's client address.
	Addrs map[string]string `json:"addrs"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: usagebench CLUSTER.json [usage flags...]")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func run(desc string, args []string) error {
	b, err := os.ReadFile(desc)
	if err != nil {
		return err
	}
	var c Cluster
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	api, err := serveAPI(c.Pods)
	if err != nil {
		return err
	}
	defer api.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: api.URL})
	if err != nil {
		return err
	}
	g := plugin.NewGlobalOptions(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	g.Client = cs
	g.Clients = &etcd.ForwardTransport{Forwarder: forwarder(c.Addrs), TLS: fileTLS{}, Timeout: 30 * time.Second}
	cmd := plugin.NewCmdEtcdWithOptions(g)
	cmd.SetArgs(append([]string{"usage"}, args...))
	return cmd.ExecuteContext(context.Background())
}

// serveAPI is the stub API server: it lists pods, and knows nothing else.
func serveAPI(pods []corev1.Pod) (*httptest.Server, error) {
	list, err := json.Marshal(corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: pods})
	if err != nil {
		return nil, err
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/namespaces/kube-system/pods" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(list)
	})), nil
}

// forwarder "forwards" to each member's own address.
type forwarder map[string]string

func (f forwarder) Forward(_ context.Context, pod exec.PodRef, _ int) (exec.DialFunc, func(), error) {
	addr, ok := f[pod.Name]
	if !ok {
		return nil, nil, fmt.Errorf("no member for pod %s", pod.Name)
	}
	dial := func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", addr) }
	return dial, func() {}, nil
}

// fileTLS reads the files the pod spec names from this machine's disk.
type fileTLS struct{}

func (fileTLS) Material(_ context.Context, m discovery.Member) (*etcd.Material, error) {
	var mat etcd.Material
	for _, f := range []struct {
		path string
		dst  *[]byte
	}{{m.Client.TrustedCAFile, &mat.CA}, {m.Client.CertFile, &mat.Cert}, {m.Client.KeyFile, &mat.Key}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, err
		}
		*f.dst = b
	}
	return &mat, nil
}
