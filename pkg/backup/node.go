package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/dustin/go-humanize"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// How a snapshot's bytes leave the member (Config.Via).
const (
	// ViaStream is etcd's snapshot stream through the transport (a
	// port-forward to the member), read here.
	ViaStream = "stream"
	// ViaNode has the node agent take the snapshot over the node's
	// loopback and send it on through one exec, in 1 MiB writes,
	// optionally compressed on the node.
	ViaNode = "node"
)

// NodeSource is what a node-side snapshot needs.
type NodeSource struct {
	Runner           *nodepod.Runner
	Namespace, Image string
	// Agent is the node agent for a node's architecture.
	Agent func(ctx context.Context, node string) (agentclient.Binary, error)
	// Compress is "" or "zstd": how the bytes cross the API server.
	Compress string
}

// PurposeNodeSnapshot names the pod a node-side snapshot runs in.
const PurposeNodeSnapshot = "snapshot"

// nodePodSpec is the pod the agent streams a snapshot from on m's node:
// it reads etcd's client certificate, key and CA (each mounted alone,
// read-only) and the installed agents, in the host's network, to reach
// the member over loopback; nothing else of the node.
func nodePodSpec(src NodeSource, m *cluster.Member) nodepod.Spec {
	tls := m.Pod.Client
	mounts := nodepod.FileMounts(tls.CertFile, tls.KeyFile, tls.TrustedCAFile)
	mounts = append(mounts, nodepod.HostMount{HostPath: agentclient.BinDir, Type: corev1.HostPathDirectoryOrCreate})
	return nodepod.Spec{Purpose: PurposeNodeSnapshot, Node: m.Pod.Node, Namespace: src.Namespace, Image: src.Image,
		Profile: nodepod.ProfileFiles, Mounts: mounts, Scratch: true, HostNetwork: true}
}

// snapshotArgs is the agent's command line in that pod.
func snapshotArgs(exe string, m *cluster.Member, compress string) []string {
	tls := m.Pod.Client
	host := func(p string) string { return nodepod.HostPrefix + path.Clean(p) }
	args := []string{exe, "snapshot", "--endpoint", m.Pod.LocalClientURL(),
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
	pr, pw := io.Pipe()
	s.streamed = nil
	go func() {
		var stderr bytes.Buffer
		err := pod.Exec(ctx, snapshotArgs(agent.Exe, m, s.src.Compress), nil, pw, &stderr)
		last := lastLine(stderr.String())
		if err != nil {
			if last != "" {
				err = fmt.Errorf("%w: %s", err, strings.TrimPrefix(last, "error: "))
			}
			pw.CloseWithError(fmt.Errorf("the agent's snapshot on node %s: %w", m.Pod.Node, err))
			return
		}
		var st agentapi.SnapshotStreamed
		if jerr := json.Unmarshal([]byte(last), &st); jerr == nil {
			s.streamed, s.version = &st, st.Version
		}
		pw.Close()
	}()
	return pr, nil
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
