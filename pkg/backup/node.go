package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
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
	// Compress is "" or one of compression.Names: how the bytes cross the
	// API server.
	Compress string
}

// PurposeNodeSnapshot names the pod a node-side snapshot runs in.
const PurposeNodeSnapshot = "snapshot"

// nodePodSpec is the pod the agent serves a snapshot from on m's node:
// it reads etcd's client certificate, key and CA (each mounted alone,
// read-only), and nothing else of the node; the agent comes with the
// first command (agentclient.StagedRun) into its scratch dir. It
// is not in the host's network: the agent listens on the pod's own
// loopback, which only a port-forward reaches, and reaches the member at
// the node's address.
func nodePodSpec(src NodeSource, m *cluster.Member) nodepod.Spec {
	tls := m.Pod.Client
	mounts := nodepod.FileMounts(tls.CertFile, tls.KeyFile, tls.TrustedCAFile)
	return nodepod.Spec{Purpose: PurposeNodeSnapshot, Node: m.Pod.Node, Namespace: src.Namespace, Image: src.Image,
		Profile: nodepod.ProfileFiles, Mounts: mounts, Scratch: true}
}

// snapshotListen is where the agent listens in its pod: the loopback, on
// a port of the kernel's choosing, which the agent says.
const snapshotListen = "127.0.0.1:0"

// snapshotArgs are the agent's arguments in that pod.
func snapshotArgs(m *cluster.Member, compress string) []string {
	tls := m.Pod.Client
	host := func(p string) string { return nodepod.HostPrefix + path.Clean(p) }
	args := []string{"snapshot", "--listen", snapshotListen, "--endpoint", m.Pod.NodeClientURL(),
		"--cert", host(tls.CertFile), "--key", host(tls.KeyFile), "--cacert", host(tls.TrustedCAFile)}
	if compress != "" {
		args = append(args, "--compress", compress)
	}
	return args
}

// nodeStream opens a node-side snapshot per attempt, moving to the next
// member after a failure, as rotatingStream does; each node's pod serves
// every attempt there, the agent staged by the first.
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
	args := snapshotArgs(m, s.src.Compress)
	cmd := append([]string{agent.Exe}, args...)
	var stdin io.ReadCloser = io.NopCloser(strings.NewReader(""))
	if agent.Exe == "" {
		// Not staged in this pod yet: it comes on the exec's stdin.
		if stdin, err = os.Open(agent.Path); err != nil {
			return nil, err
		}
		cmd, agent = agentclient.StagedRun(agent, args...)
	}
	actx, cancel := context.WithCancel(ctx)
	r := &servedSnapshot{node: m.Pod.Node, cancel: cancel, ended: make(chan struct{})}
	r.stderr.listening = make(chan string, 1)
	s.streamed = nil
	done := make(chan error, 1)
	go func() {
		defer stdin.Close()
		done <- pod.Exec(actx, cmd, stdin, io.Discard, &r.stderr)
	}()
	var addr string
	select {
	case addr = <-r.stderr.listening:
		// It runs: staged for the next attempt on this node.
		s.agents[m.Pod.Node] = agent
	case err := <-done:
		cancel()
		return nil, r.agentError(err)
	case <-actx.Done():
		cancel()
		return nil, actx.Err()
	}
	port, err := listenPort(addr)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("the agent on node %s: %w", m.Pod.Node, err)
	}
	dial, stop, err := s.src.Forward.Forward(actx, pod.Ref, port)
	if err != nil {
		cancel()
		return nil, err
	}
	r.stop = stop
	if r.conn, err = dial(actx); err != nil {
		r.Close()
		return nil, fmt.Errorf("port-forward to the agent on node %s: %w", m.Pod.Node, err)
	}
	go r.watch(done, func(st *agentapi.SnapshotStreamed) { s.streamed, s.version = st, st.Version })
	return r, nil
}

// listenPort is the port of the agent's {"listening":ADDR} line.
func listenPort(addr string) (int, error) {
	_, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n <= 0 {
		return 0, fmt.Errorf("it listens at %q, not an address with a port", addr)
	}
	return n, nil
}

// servedSnapshot is the snapshot the agent serves: the bytes from the
// forwarded connection, which end once the agent has exited and said it
// wrote as many. The agent's word ends the stream, not the connection's
// close: containerd holds a forwarded connection open for a second after
// the pod's side closed it, waiting for the other side.
type servedSnapshot struct {
	node   string
	conn   net.Conn
	stop   func()
	cancel context.CancelFunc
	stderr agentLines
	ended  chan struct{} // closed once watch has read the agent's end
	last   error         // what Read returns from now on

	mu      sync.Mutex
	n       int64 // bytes read
	end     error // the agent's error, or io.EOF once it exited well
	written int64 // what it said it wrote
}

// watch waits for the agent to exit and reads its last line. Once every
// byte it wrote is here, or it failed, a Read blocked on the connection
// is woken.
func (r *servedSnapshot) watch(done <-chan error, streamed func(*agentapi.SnapshotStreamed)) {
	end := r.agentError(<-done)
	var st agentapi.SnapshotStreamed
	if end == nil {
		if err := json.Unmarshal([]byte(lastLine(r.stderr.String())), &st); err != nil {
			end = fmt.Errorf("the agent's snapshot on node %s ended without saying what it wrote (%v)", r.node, err)
		} else {
			end = io.EOF
			streamed(&st)
		}
	}
	r.mu.Lock()
	r.end, r.written = end, st.Written
	wake := end != io.EOF || r.n >= r.written
	r.mu.Unlock()
	close(r.ended)
	if wake {
		_ = r.conn.SetReadDeadline(time.Now())
	}
}

func (r *servedSnapshot) Read(p []byte) (int, error) {
	if r.last != nil {
		return 0, r.last
	}
	n, err := r.conn.Read(p)
	r.mu.Lock()
	r.n += int64(n)
	all := r.end == io.EOF && r.n >= r.written
	r.mu.Unlock()
	switch {
	case err == nil:
		if all {
			r.last = r.result()
		}
		return n, nil
	case err == io.EOF || errors.Is(err, os.ErrDeadlineExceeded):
		// The connection's end, or watch's wake-up: the agent says.
		<-r.ended
		r.last = r.result()
		return n, r.last
	default:
		return n, err
	}
}

// result is the stream's end once the agent has exited: io.EOF when the
// bytes that arrived are those it wrote.
func (r *servedSnapshot) result() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.end != io.EOF {
		return r.end
	}
	if r.n != r.written {
		return fmt.Errorf("the agent's snapshot on node %s: %d bytes arrived of the %d it wrote", r.node, r.n, r.written)
	}
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

// prestart starts the pod of the member the snapshot will most likely
// come from while the members are asked for their status: the one asked
// for by name, pod or node, or the only one. wait returns once that start
// is over, with its node and error; a start that does not serve (the
// choice fell elsewhere) costs a pod, deleted with the others.
func (s *nodeStream) prestart(ctx context.Context, sess *etcd.Session, want string) (wait func() (string, error)) {
	none := func() (string, error) { return "", nil }
	pods, err := sess.Members(ctx)
	if err != nil {
		return none
	}
	var likely []discovery.Member
	for _, p := range pods {
		if want == "" || etcd.Names(want, p.Name, p.Node, p.Pod, 0) {
			likely = append(likely, p)
		}
	}
	if len(likely) != 1 {
		return none
	}
	m := &cluster.Member{Pod: likely[0]}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.podFor(ctx, m)
		done <- err
	}()
	return func() (string, error) { return m.Pod.Node, <-done }
}

// podFor starts m's node's pod, once, and returns it with the agent for
// its node: staged there (Exe set) once an attempt ran it.
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
	a.Exe = ""
	p, err := s.src.Runner.Start(ctx, nodePodSpec(s.src, m))
	if err != nil {
		return nil, a, err
	}
	if s.pods == nil {
		s.pods, s.agents = map[string]*nodepod.Pod{}, map[string]agentclient.Binary{}
	}
	s.pods[node], s.agents[node] = p, a
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
