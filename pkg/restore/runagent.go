package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

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
// per-architecture name first, then the plain one (a local build).
func FindAgent(dir, arch string) (string, error) {
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
	goarch := arch
	if goarch == "" {
		goarch = "amd64"
	}
	return "", hint.Permanent(fmt.Errorf("no node agent binary for linux/%s: looked for %v", goarch, tried),
		"release archives carry it next to kubectl-etcd; for a local build run: CGO_ENABLED=0 GOOS=linux GOARCH=%s go build -o %s ./cmd/kubectl-etcd-agent",
		goarch, filepath.Join(dir, AgentName))
}

func findAgents(ctx context.Context, d Deps, dir string, ms []discovery.Member) (map[string]agentBinary, error) {
	out := map[string]agentBinary{}
	sums := map[string]string{}
	for _, m := range ms {
		arch := nodeArch(ctx, d, m.Node)
		if len(arch) > 3 && arch[:3] == "os:" {
			return nil, fmt.Errorf("node %s runs %s; the node agent runs on linux only", m.Node, arch[3:])
		}
		p, err := FindAgent(dir, arch)
		if err != nil {
			return nil, err
		}
		if sums[p] == "" {
			if sums[p], err = fileSHA256(p); err != nil {
				return nil, err
			}
		}
		out[m.Node] = agentBinary{Path: p, SHA256: sums[p]}
	}
	return out, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
