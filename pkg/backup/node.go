package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/dustin/go-humanize"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// How a snapshot's bytes leave the member (Config.Via).
const (
	// ViaStream is etcd's snapshot stream through the transport (a
	// port-forward to the member), read here.
	ViaStream = "stream"
	// ViaNode has the node agent take the snapshot on the member's node
	// and send it on through one port-forwarded connection, in 1 MiB
	// writes, optionally compressed on the node.
	ViaNode = "node"
)

// NodeSource is what a node-side snapshot needs.
type NodeSource struct {
	Runner           *nodepod.Runner
	Forward          exec.Forwarder
	Namespace, Image string
	// Agent is the node agent for a node's architecture.
	Agent func(ctx context.Context, node string) (agentclient.Binary, error)
	// Compress is "" or "zstd": how the bytes cross the API server.
	Compress string
}

// PurposeNodeSnapshot names the pod a node-side snapshot runs in.
const PurposeNodeSnapshot = "snapshot"

// nodePodSpec is the pod the agent serves a snapshot from on m's node:
// it reads etcd's client certificate, key and CA (each mounted alone,
// read-only) and the installed agents, and nothing else of the node. It
// is not in the host's network: the agent listens on the pod's own
// loopback, which only a port-forward reaches, and reaches the member at
// the node's address.
func nodePodSpec(src NodeSource, m *cluster.Member) nodepod.Spec {
	tls := m.Pod.Client
	mounts := nodepod.FileMounts(tls.CertFile, tls.KeyFile, tls.TrustedCAFile)
	mounts = append(mounts, nodepod.HostMount{HostPath: agentclient.BinDir, Type: corev1.HostPathDirectoryOrCreate})
	return nodepod.Spec{Purpose: PurposeNodeSnapshot, Node: m.Pod.Node, Namespace: src.Namespace, Image: src.Image,
		Profile: nodepod.ProfileFiles, Mounts: mounts, Scratch: true}
}

// snapshotListen is where the agent listens in its pod: the loopback, on
// a port of the kernel's choosing, which the agent says.
const snapshotListen = "127.0.0.1:0"

// snapshotArgs is the agent's command line in that pod.
func snapshotArgs(exe string, m *cluster.Member, compress string) []string {
	tls := m.Pod.Client
	host := func(p string) string { return nodepod.HostPrefix + path.Clean(p) }
	args := []string{exe, "snapshot", "--listen", snapshotListen, "--endpoint", m.Pod.NodeClientURL(),
		"--cert", host(tls.CertFile), "--key", host(tls.KeyFile), "--cacert", host(tls.TrustedCAFile)}
	if compress != "" {
		args = append(args, "--compress", compress)
	}
	return args
}

// nodeStream opens a node-side snapshot per attempt, moving to the next
// member after a failure, as rotatingStream does; each node's pod and
// staged agent serve every attempt there.
type nodeStream struct {
	src     NodeSource
	members []*cluster.Member
	notify  func(string, ...any)

	next, current int
	pods          map[string]*nodepod.Pod
	agents        map[string]agentclient.Binary
	version       string
	streamed      *agentapi.SnapshotStreamed
}

// open starts the agent in m's node pod, waits until it listens, and
// reads the snapshot through a port-forward to it: the exec carries only
// the agent's lines, the forwarded connection the bytes.
func (s *nodeStream) open(ctx context.Context) (io.ReadCloser, error) {
	s.current = s.next % len(s.members)
	s.next++
	m := s.members[s.current]
	verb := "Taking"
	if snapshot.AttemptOf(ctx).N > 1 {
		verb = "Retrying: taking"
	}
	how := "as etcd sends it"
	if s.src.Compress != "" {
		how = s.src.Compress + "-compressed"
	}
	size := "unknown"
	if m.Status != nil {
		size = humanize.IBytes(uint64(max(m.Status.DBSize, 0)))
	}
	s.notify("%s a snapshot on node %s from member %s (%s), DB size %s, streamed %s", verb, m.Pod.Node, m.Pod.Name, cluster.HexOrEmpty(m.ID), size, how)
	pod, agent, err := s.podFor(ctx, m)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancel(ctx)
	r := &servedSnapshot{node: m.Pod.Node, cancel: cancel, done: make(chan error, 1), onStreamed: func(st *agentapi.SnapshotStreamed) {
		s.streamed, s.version = st, st.Version
	}}
	r.stderr.listening = make(chan string, 1)
	s.streamed = nil
	go func() {
		r.done <- pod.Exec(actx, snapshotArgs(agent.Exe, m, s.src.Compress), nil, io.Discard, &r.stderr)
	}()
	var addr string
	select {
	case addr = <-r.stderr.listening:
	case err := <-r.done:
		cancel()
		return nil, r.agentError(err)
	case <-actx.Done():
		cancel()
		return nil, actx.Err()
	}
	_, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		cancel()
		return nil, fmt.Errorf("the agent on node %s listens at %q, not an address with a port", m.Pod.Node, addr)
	}
	dial, stop, err := s.src.Forward.Forward(actx, pod.Ref, n)
	if err != nil {
		cancel()
		return nil, err
	}
	r.stop = stop
	if r.conn, err = dial(actx); err != nil {
		r.Close()
		return nil, fmt.Errorf("port-forward to the agent on node %s: %w", m.Pod.Node, err)
	}
	return r, nil
}

// servedSnapshot is the snapshot the agent serves: the bytes from the
// forwarded connection, whose end counts only once the agent has exited
// and said it wrote as many.
type servedSnapshot struct {
	node       string
	conn       net.Conn
	stop       func()
	cancel     context.CancelFunc
	done       chan error
	stderr     agentLines
	n          int64
	onStreamed func(*agentapi.SnapshotStreamed)
	end        error // once the connection has ended
}

func (r *servedSnapshot) Read(p []byte) (int, error) {
	if r.end != nil {
		return 0, r.end
	}
	n, err := r.conn.Read(p)
	r.n += int64(n)
	if err != io.EOF {
		return n, err
	}
	r.end = r.ended()
	return n, r.end
}

// ended is what the end of the connection means: the agent's error, or
// io.EOF once it said it wrote as many bytes as arrived.
func (r *servedSnapshot) ended() error {
	if err := r.agentError(<-r.done); err != nil {
		return err
	}
	var st agentapi.SnapshotStreamed
	if jerr := json.Unmarshal([]byte(lastLine(r.stderr.String())), &st); jerr != nil {
		return fmt.Errorf("the agent's snapshot on node %s ended without saying what it wrote (%v)", r.node, jerr)
	}
	if st.Written != r.n {
		return fmt.Errorf("the agent's snapshot on node %s: %d bytes arrived of the %d it wrote", r.node, r.n, st.Written)
	}
	r.onStreamed(&st)
	return io.EOF
}

// agentError is err, the agent's exit, with its last line on stderr.
func (r *servedSnapshot) agentError(err error) error {
	if err == nil {
		return nil
	}
	if last := lastLine(r.stderr.String()); last != "" {
		err = fmt.Errorf("%w: %s", err, strings.TrimPrefix(last, "error: "))
	}
	return fmt.Errorf("the agent's snapshot on node %s: %w", r.node, err)
}

// Close ends the attempt: the connection, the port-forward and the exec.
func (r *servedSnapshot) Close() error {
	if r.conn != nil {
		r.conn.Close()
	}
	if r.stop != nil {
		r.stop()
	}
	r.cancel()
	return nil
}

// agentLines keeps what the agent writes on stderr and hands on the
// address of its first {"listening":ADDR} line.
type agentLines struct {
	mu        sync.Mutex
	b         strings.Builder
	listening chan string
	said      bool
}

func (a *agentLines) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.b.Write(p)
	if !a.said {
		for _, line := range strings.Split(a.b.String(), "\n") {
			var l agentapi.SnapshotListening
			if json.Unmarshal([]byte(line), &l) == nil && l.Listening != "" {
				a.said = true
				a.listening <- l.Listening
				break
			}
		}
	}
	return len(p), nil
}

func (a *agentLines) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.b.String()
}

// podFor starts m's node's pod and stages the agent there, once.
func (s *nodeStream) podFor(ctx context.Context, m *cluster.Member) (*nodepod.Pod, agentclient.Binary, error) {
	node := m.Pod.Node
	if p := s.pods[node]; p != nil {
		return p, s.agents[node], nil
	}
	if m.Pod.Client.CertFile == "" || m.Pod.Client.KeyFile == "" || m.Pod.Client.TrustedCAFile == "" {
		return nil, agentclient.Binary{}, hint.Permanent(fmt.Errorf("member %s's pod names no client certificate, key and CA (--cert-file, --key-file, --trusted-ca-file), which a node-side snapshot reads", m.Pod.Name),
			"use --via stream")
	}
	if m.Pod.NodeClientURL() == "" {
		return nil, agentclient.Binary{}, hint.Permanent(fmt.Errorf("member %s listens for clients only on its node's loopback (%s), which a node pod outside the host's network cannot reach", m.Pod.Name, strings.Join(m.Pod.ListenClientURLs, ", ")),
			"use --via stream")
	}
	a, err := s.src.Agent(ctx, node)
	if err != nil {
		return nil, a, err
	}
	p, err := s.src.Runner.Start(ctx, nodePodSpec(s.src, m))
	if err != nil {
		return nil, a, err
	}
	if s.pods == nil {
		s.pods, s.agents = map[string]*nodepod.Pod{}, map[string]agentclient.Binary{}
	}
	s.pods[node] = p
	if a, err = agentclient.Stage(ctx, p, a); err != nil {
		return nil, a, fmt.Errorf("the node agent on node %s: %w", node, err)
	}
	s.agents[node] = a
	return p, a, nil
}

func (s *nodeStream) used() *cluster.Member { return s.members[s.current] }

func (s *nodeStream) storageVersion() string { return s.version }

// close deletes the pods.
func (s *nodeStream) close() {
	for node, p := range s.pods {
		_ = p.Delete(context.Background())
		delete(s.pods, node)
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
