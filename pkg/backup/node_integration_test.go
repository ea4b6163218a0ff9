package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentcli"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// agentExec plays a node pod for the node-side snapshot: the agent's
// upload and chmod, and the agent itself, run here in-process with the
// pod's /host paths mapped to this machine's, and a node's address
// (nodeHost) mapped to this machine's loopback, where the members run.
type agentExec struct {
	mu   sync.Mutex
	cmds []string
}

func (a *agentExec) Exec(ctx context.Context, _ exec.PodRef, cmd []string, in io.Reader, stdout, stderr io.Writer) error {
	a.mu.Lock()
	a.cmds = append(a.cmds, strings.Join(cmd, " "))
	a.mu.Unlock()
	var args []string
	switch {
	case cmd[0] == "sh" && strings.Contains(cmd[2], `exec "$exe" "$@"`):
		// The agent staged from stdin, checked, then run (StagedRun).
		h := sha256.New()
		io.Copy(h, in)
		if sum := hex.EncodeToString(h.Sum(nil)); sum != cmd[5] {
			fmt.Fprintf(stderr, "error: the agent arrived damaged in %s: sha256 %s there, %s sent\n", cmd[4], sum, cmd[5])
			return fmt.Errorf("command terminated with exit code 97")
		}
		args = append(args, cmd[6:]...)
	case strings.HasPrefix(cmd[0], nodepod.ScratchDir+"/"):
		args = append(args, cmd[1:]...)
	}
	if len(args) > 0 && args[0] == "snapshot" {
		for i, a := range args {
			args[i] = strings.Replace(strings.TrimPrefix(a, nodepod.HostPrefix), nodeHost, "127.0.0.1", 1)
		}
		if code := agentcli.Main(ctx, args, nil, stdout, stderr); code != 0 {
			return fmt.Errorf("command terminated with exit code %d", code)
		}
		return nil
	}
	return fmt.Errorf("unexpected command %q", cmd)
}

// nodeHost stands for a node's address in the members' client URLs.
const nodeHost = "node.test"

// onNodes is members as their pods would list them on nodes with an
// address: listening on the loopback and on nodeHost.
func onNodes(c *etcdtest.Cluster) []*cluster.Member {
	var members []*cluster.Member
	for _, p := range c.Pods() {
		p.ListenClientURLs = append(p.ListenClientURLs, strings.Replace(p.LocalClientURL(), "127.0.0.1", nodeHost, 1))
		members = append(members, &cluster.Member{Pod: p})
	}
	return members
}

// loopbackForwarder forwards to this machine's loopback, where the agent
// listens as it would on its pod's.
type loopbackForwarder struct{ forwards atomic.Int32 }

func (f *loopbackForwarder) Forward(_ context.Context, _ exec.PodRef, port int) (exec.DialFunc, func(), error) {
	f.forwards.Add(1)
	return func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}, func() {}, nil
}

func runningPods(t *testing.T, nodes ...string) *fake.Clientset {
	var objs []runtime.Object
	for _, n := range nodes {
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}})
	}
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		go func() {
			time.Sleep(20 * time.Millisecond)
			pod.Status.Phase = corev1.PodRunning
			_, _ = cs.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
		}()
		return false, nil, nil
	})
	return cs
}

// TestIntegrationNodeStream takes node-side snapshots of a real TLS
// member, as etcd sends them and compressed (zstd, s2), through node pods that
// the agent runs in: each file saved is the snapshot (trailer checked),
// the agent is staged once per node, and every pod is deleted after.
func TestIntegrationNodeStream(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	for i := range 200 {
		if _, err := cli.Put(context.Background(), fmt.Sprintf("/registry/configmaps/default/cm%d", i), strings.Repeat("v", 3000)); err != nil {
			t.Fatal(err)
		}
	}
	members := onNodes(c)
	// The test binary plays the agent: its sha256 is what the staging
	// checks before it runs.
	self, _ := os.Executable()
	exe, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	selfAgent := agentclient.Binary{Path: self, SHA256: fmt.Sprintf("%x", sha256.Sum256(exe))}
	for _, compress := range []string{"", "zstd", "s2"} {
		t.Run("compress="+compress, func(t *testing.T) {
			cs := runningPods(t, members[0].Pod.Node, members[1].Pod.Node, members[2].Pod.Node)
			ex, fwd := &agentExec{}, &loopbackForwarder{}
			src := NodeSource{Runner: &nodepod.Runner{Client: cs, Exec: ex, StartTimeout: 5 * time.Second}, Forward: fwd, Namespace: "kube-system", Compress: compress,
				Agent: func(context.Context, string) (agentclient.Binary, error) {
					return selfAgent, nil
				}}
			var notes []string
			s := &nodeStream{src: src, members: members, notify: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}
			path := filepath.Join(t.TempDir(), "etcd.db")
			res, err := snapshot.Save(context.Background(), s.open, &snapshot.FileSink{Path: path}, snapshot.Options{Compressed: compress != ""})
			s.close()
			if err != nil {
				t.Fatalf("%v\n%s", err, strings.Join(ex.cmds, "\n"))
			}
			v, err := snapshot.Verify(path, nil)
			if err != nil || v.Size != res.Size || v.Compressed != (compress != "") {
				t.Errorf("the saved file: %+v, %v (save %+v)", v, err, res)
			}
			if s.streamed == nil || s.streamed.Read != res.Size || s.streamed.Compression != compress {
				t.Errorf("the agent reported %+v; the snapshot has %d bytes", s.streamed, res.Size)
			}
			if fwd.forwards.Load() != 1 {
				t.Errorf("%d port-forwards for one snapshot", fwd.forwards.Load())
			}
			// One exec: the agent staged and run in one round trip.
			if len(ex.cmds) != 1 || !strings.HasPrefix(ex.cmds[0], "sh -c ") || !strings.Contains(ex.cmds[0], " stage /scratch/"+selfAgent.SHA256+" "+selfAgent.SHA256+" snapshot --listen") {
				t.Errorf("the execs: %q", ex.cmds)
			}
			if len(notes) != 1 || !strings.Contains(notes[0], "Taking a snapshot on node "+members[0].Pod.Node) {
				t.Errorf("notes %q", notes)
			}
			pods, _ := cs.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{})
			if len(pods.Items) != 0 {
				t.Errorf("%d pods left", len(pods.Items))
			}
		})
	}

	// A member that is down: the attempt fails at once and the next
	// member serves.
	t.Run("the first member down", func(t *testing.T) {
		down := *members[0]
		down.Pod.ListenClientURLs = []string{"https://" + nodeHost + ":1"}
		ms := []*cluster.Member{&down, members[1]}
		cs := runningPods(t, down.Pod.Node, members[1].Pod.Node)
		src := NodeSource{Runner: &nodepod.Runner{Client: cs, Exec: &agentExec{}, StartTimeout: 5 * time.Second}, Forward: &loopbackForwarder{}, Namespace: "kube-system",
			Agent: func(context.Context, string) (agentclient.Binary, error) {
				return selfAgent, nil
			}}
		s := &nodeStream{src: src, members: ms, notify: func(string, ...any) {}}
		path := filepath.Join(t.TempDir(), "etcd.db")
		var retried []string
		_, err := snapshot.Save(context.Background(), s.open, &snapshot.FileSink{Path: path}, snapshot.Options{Retries: 1,
			Notify: func(f string, a ...any) { retried = append(retried, fmt.Sprintf(f, a...)) }})
		s.close()
		if err != nil || s.used() != members[1] || len(retried) != 1 || !strings.Contains(retried[0], "does not answer from here") {
			t.Errorf("err %v, used %s, retries %q", err, s.used().Pod.Name, retried)
		}
	})
}
