package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// AgentName is the agent binary's base name; a release carries one per
// architecture, named AgentName-linux-<arch>.
const AgentName = "kubectl-etcd-agent"

// AgentBinDir is where agents are kept on a node, each under its sha256,
// so that a running agent's file is never overwritten.
const AgentBinDir = "/var/lib/kubectl-etcd/bin"

type agentBinary struct {
	Path   string
	SHA256 string
}

// NodePath is where the agent lives on the node.
func (a agentBinary) NodePath() string { return path.Join(AgentBinDir, a.SHA256) }

// FindAgent finds the agent for a node of arch in dir: the
// per-architecture name first, then the plain one (a local build). An
// unknown arch ("") takes only the plain one: a release's per-arch agent
// could be the wrong machine code; why is unknown says what went wrong.
func FindAgent(dir, arch string, unknown error) (string, error) {
	if dir == "" {
		// Never the current directory: whatever lies there would run as
		// root on every control-plane node (X5).
		return "", hint.Permanent(errors.New("no agent dir: the plugin cannot tell where its own executable is"),
			"pass --agent-dir, the directory that holds %s-linux-<arch> (a release archive's directory)", AgentName)
	}
	var tried []string
	names := []string{AgentName}
	if arch != "" {
		names = append([]string{AgentName + "-linux-" + arch}, names...)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		tried = append(tried, p)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	if arch == "" {
		return "", hint.Permanent(fmt.Errorf("cannot tell which node agent to upload: %w", unknown),
			"let the plugin read the node (RBAC: get nodes), or put the agent built for it at %s", filepath.Join(dir, AgentName))
	}
	return "", hint.Permanent(fmt.Errorf("no node agent binary for linux/%s: looked for %v", arch, tried),
		"release archives carry it next to kubectl-etcd (or pass --agent-dir); for a local build run: CGO_ENABLED=0 GOOS=linux GOARCH=%s go build -o %s ./cmd/kubectl-etcd-agent",
		arch, filepath.Join(dir, AgentName+"-linux-"+arch))
}

// AgentDirOf is where the agents of the plugin at exe are: beside the
// file exe resolves to. krew installs the archive in its store and links
// ~/.krew/bin/kubectl-etcd to the binary there, so the link's own
// directory holds no agent.
func AgentDirOf(exe string) string {
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return filepath.Dir(exe)
}

// AgentArchs lists the architectures dir has a release agent for.
func AgentArchs(dir string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, AgentName+"-linux-*"))
	var out []string
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
			out = append(out, strings.TrimPrefix(filepath.Base(m), AgentName+"-linux-"))
		}
	}
	return out
}

func findAgents(ctx context.Context, d Deps, dir string, ms []discovery.Member) (map[string]agentBinary, error) {
	out := map[string]agentBinary{}
	sums := map[string]string{}
	for _, m := range ms {
		arch, err := nodeArch(ctx, d, m.Node)
		var other *otherOSError
		if errors.As(err, &other) {
			return nil, err
		}
		p, err := FindAgent(dir, arch, err)
		if err != nil {
			return nil, err
		}
		if sums[p] == "" {
			if sums[p], err = agentapi.FileSHA256(p); err != nil {
				return nil, err
			}
		}
		out[m.Node] = agentBinary{Path: p, SHA256: sums[p]}
	}
	return out, nil
}

// Where a node reports its platform when its status has none yet.
const (
	archLabel = "kubernetes.io/arch"
	osLabel   = "kubernetes.io/os"
)

type otherOSError struct{ node, os string }

func (e *otherOSError) Error() string {
	return fmt.Sprintf("node %s runs %s; the node agent runs on linux only", e.node, e.os)
}

// nodeArch is the node's architecture, from its status or else its
// kubernetes.io/arch label, or why it is unknown.
func nodeArch(ctx context.Context, d Deps, name string) (string, error) {
	n, err := d.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading node %s for its architecture: %w", name, err)
	}
	goos, arch := n.Status.NodeInfo.OperatingSystem, n.Status.NodeInfo.Architecture
	if goos == "" {
		goos = n.Labels[osLabel]
	}
	if arch == "" {
		arch = n.Labels[archLabel]
	}
	if goos != "" && goos != "linux" {
		return "", &otherOSError{node: name, os: goos}
	}
	if arch == "" {
		return "", fmt.Errorf("node %s reports no architecture (status.nodeInfo, label %s)", name, archLabel)
	}
	return arch, nil
}
