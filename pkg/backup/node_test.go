package backup

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// The pod of a node-side snapshot reads etcd's client certificate, key
// and CA, each alone and read-only, and nothing else of the node, outside the
// host's network; it is not privileged and carries the managed-by label.
// The agent listens on the pod's loopback and asks the member at the
// node's address with those files.
func TestNodeSnapshotPod(t *testing.T) {
	m := &cluster.Member{Pod: discovery.Member{Pod: "etcd-cp1", Node: "cp1", Name: "cp1",
		ListenClientURLs: []string{"https://127.0.0.1:2379", "https://10.0.0.1:2379"},
		Client:           discovery.TLSFiles{CertFile: "/etc/kubernetes/pki/etcd/server.crt", KeyFile: "/etc/kubernetes/pki/etcd/server.key", TrustedCAFile: "/etc/kubernetes/pki/etcd/ca.crt"}}}
	pod := nodepod.Build(nodePodSpec(NodeSource{Namespace: "kube-system", Image: "toolbox:1"}, m))
	b, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "node-snapshot-pod", []byte(strings.ReplaceAll(string(b), pod.Name, "NAME")))
	c := pod.Spec.Containers[0]
	if pod.Spec.HostNetwork || *c.SecurityContext.Privileged || !*c.SecurityContext.ReadOnlyRootFilesystem || pod.Labels[nodepod.ManagedByLabel] != nodepod.ManagedByValue {
		t.Errorf("the pod is not the least it needs: %+v", pod.Spec)
	}
	for _, vm := range c.VolumeMounts {
		if vm.Name != "scratch" && !vm.ReadOnly {
			t.Errorf("%s is mounted writable", vm.MountPath)
		}
	}
	args := strings.Join(snapshotArgs(m, "zstd"), " ")
	if want := "snapshot --listen 127.0.0.1:0 --endpoint https://10.0.0.1:2379 --cert /host/etc/kubernetes/pki/etcd/server.crt --key /host/etc/kubernetes/pki/etcd/server.key --cacert /host/etc/kubernetes/pki/etcd/ca.crt --compress zstd"; args != want {
		t.Errorf("agent args\n%s\nwant\n%s", args, want)
	}
}

// A member the node path cannot serve is refused before any pod starts,
// with --via stream as the way out.
func TestNodeSnapshotRefusals(t *testing.T) {
	tls := discovery.TLSFiles{CertFile: "/pki/server.crt", KeyFile: "/pki/server.key", TrustedCAFile: "/pki/ca.crt"}
	for _, tt := range []struct {
		name   string
		member discovery.Member
		want   string
	}{
		{"no client TLS", discovery.Member{Pod: "etcd-cp1", Name: "cp1", Node: "cp1", ListenClientURLs: []string{"http://10.0.0.1:2379"}},
			"member cp1's pod names no client certificate, key and CA"},
		{"loopback only", discovery.Member{Pod: "etcd-cp1", Name: "cp1", Node: "cp1", ListenClientURLs: []string{"https://127.0.0.1:2379"}, AdvertiseClientURLs: []string{"https://10.0.0.1:2379"}, Client: tls},
			"member cp1 listens for clients only on its node's loopback (https://127.0.0.1:2379)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset()
			s := &nodeStream{src: NodeSource{Runner: &nodepod.Runner{Client: cs}, Agent: func(context.Context, string) (agentclient.Binary, error) {
				t.Fatal("the agent was looked up")
				return agentclient.Binary{}, nil
			}}}
			_, _, err := s.podFor(context.Background(), &cluster.Member{Pod: tt.member})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(hint.Of(err), "--via stream") {
				t.Fatalf("err %v (hint %q); want %q and --via stream", err, hint.Of(err), tt.want)
			}
			if len(cs.Actions()) != 0 {
				t.Errorf("the API was called: %v", cs.Actions())
			}
		})
	}
}

// The agent's word ends a served snapshot, not the connection: containerd
// holds the connection open after the pod's side closed it, so a stream
// whose bytes are all here ends as soon as the agent has exited, and an
// agent that failed fails it at once. Fewer bytes than it wrote are
// waited for until the connection ends, then an error.
func TestServedSnapshotEnds(t *testing.T) {
	for _, tt := range []struct {
		name    string
		send    string
		stderr  string
		exitErr error
		want    string // "" for io.EOF after send
		closed  bool   // the connection ends after send
	}{
		{"every byte", "snapshot bytes", `{"listening":"127.0.0.1:1"}` + "\n" + `{"read":14,"written":14}` + "\n", nil, "", false},
		{"bytes missing", "snap", `{"read":14,"written":14}` + "\n", nil, "4 bytes arrived of the 14 it wrote", true},
		{"agent failed", "snap", "error: etcd went away\n", errors.New("command terminated with exit code 1"), "etcd went away", false},
		{"no last line", "snap", "", nil, "ended without saying what it wrote", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			here, there := net.Pipe()
			defer there.Close() // open until the test ends, as containerd holds it
			r := &servedSnapshot{node: "cp1", conn: here, cancel: func() {}, ended: make(chan struct{})}
			r.stderr.listening = make(chan string, 1)
			r.stderr.Write([]byte(tt.stderr))
			done := make(chan error, 1)
			var streamed *agentapi.SnapshotStreamed
			go r.watch(done, func(st *agentapi.SnapshotStreamed) { streamed = st })
			go func() {
				there.Write([]byte(tt.send))
				done <- tt.exitErr
				if tt.closed {
					there.Close()
				}
			}()
			got := make(chan struct {
				b   []byte
				err error
			}, 1)
			go func() {
				b, err := io.ReadAll(r)
				got <- struct {
					b   []byte
					err error
				}{b, err}
			}()
			select {
			case res := <-got:
				if tt.want == "" {
					if res.err != nil || string(res.b) != tt.send || streamed == nil || streamed.Written != int64(len(tt.send)) {
						t.Errorf("read %q, %v, streamed %+v", res.b, res.err, streamed)
					}
				} else if res.err == nil || !strings.Contains(res.err.Error(), tt.want) {
					t.Errorf("read %q, err %v; want %q", res.b, res.err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the read waited for the connection to close")
			}
		})
	}
}

// The pod of the member the snapshot will most likely come from starts
// while the members are asked for their status: the one named by
// --member, or the only one; with a choice still open, none does, and a
// failed start is the start's error, on its node.
func TestNodePrestart(t *testing.T) {
	tls := discovery.TLSFiles{CertFile: "/pki/server.crt", KeyFile: "/pki/server.key", TrustedCAFile: "/pki/ca.crt"}
	member := func(n string) discovery.Member {
		return discovery.Member{Pod: "etcd-" + n, Name: n, Node: n, ListenClientURLs: []string{"https://10.0.0.1:2379"}, Client: tls}
	}
	three := []discovery.Member{member("cp1"), member("cp2"), member("cp3")}
	loopback := member("cp1")
	loopback.ListenClientURLs = []string{"https://127.0.0.1:2379"}
	for _, tt := range []struct {
		name     string
		pods     []discovery.Member
		want     string
		node     string // the node whose pod starts; "" for none
		startErr string
	}{
		{"one member", three[:1], "", "cp1", ""},
		{"--member by name", three, "cp2", "cp2", ""},
		{"--member by pod", three, "etcd-cp3", "cp3", ""},
		{"a choice to make", three, "", "", ""},
		{"--member by ID", three, "8e9e05c52164694d", "", ""},
		{"a start that fails", []discovery.Member{loopback}, "", "cp1", "listens for clients only on its node's loopback"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset()
			var asked []string
			s := &nodeStream{src: NodeSource{Runner: &nodepod.Runner{Client: cs}, Agent: func(_ context.Context, node string) (agentclient.Binary, error) {
				asked = append(asked, node)
				return agentclient.Binary{}, errors.New("no agent here")
			}}}
			sess := &etcd.Session{Discover: func(context.Context) ([]discovery.Member, error) { return tt.pods, nil }}
			node, err := s.prestart(context.Background(), sess, tt.want)()
			switch {
			case tt.node == "" && (node != "" || err != nil || len(asked) != 0):
				t.Errorf("started on %q (%v), agent looked up for %q", node, err, asked)
			case tt.node != "" && node != tt.node:
				t.Errorf("started on %q, want %q", node, tt.node)
			case tt.startErr != "" && (err == nil || !strings.Contains(err.Error(), tt.startErr)):
				t.Errorf("err %v, want %q", err, tt.startErr)
			case tt.node != "" && tt.startErr == "" && (len(asked) != 1 || asked[0] != tt.node || err == nil || !strings.Contains(err.Error(), "no agent here")):
				t.Errorf("agent looked up for %q, err %v", asked, err)
			}
		})
	}
}
