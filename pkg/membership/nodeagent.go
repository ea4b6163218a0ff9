package membership

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// PodAgents reaches a node's agent through a node pod, as restore does:
// the agent binary for the node's architecture from AgentDir, installed
// by sha256.
type PodAgents struct {
	Runner           *nodepod.Runner
	Client           kubernetes.Interface
	AgentDir         string
	Namespace, Image string
	Now              func() time.Time
	// Lifetime bounds the node pod (seconds): past the replace's timeout,
	// with room for the plan's confirmation.
	Lifetime int64
}

// Connected says whether a pod can start on the node now.
func (p PodAgents) Connected(ctx context.Context, node string) error {
	return p.Runner.KubeletConnected(ctx, node, p.Now())
}

// Open starts the node pod and installs the agent there.
func (p PodAgents) Open(ctx context.Context, node string) (NodeAgent, error) {
	bins, err := agentclient.ForNodes(ctx, p.Client, p.AgentDir, []string{node})
	if err != nil {
		return nil, err
	}
	pod, err := p.Runner.Start(ctx, nodepod.Spec{Purpose: "replace", Node: node, Namespace: p.Namespace, Image: p.Image,
		Profile: nodepod.ProfileNode, Lifetime: p.Lifetime})
	if err != nil {
		return nil, err
	}
	a := &podAgent{pod: pod, bin: bins[node]}
	if err := agentclient.Install(ctx, pod, a.bin); err != nil {
		a.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return a, nil
}

type podAgent struct {
	pod *nodepod.Pod
	bin agentclient.Binary
}

func (a *podAgent) Run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	return agentclient.Run(ctx, a.pod, a.bin, stdin, args...)
}

func (a *podAgent) FreeBytes(ctx context.Context, dir string) (int64, error) {
	var out bytes.Buffer
	if err := a.pod.Exec(ctx, []string{"df", "-Pk", nodepod.HostPrefix + dir}, nil, &out, io.Discard); err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if f := strings.Fields(lines[len(lines)-1]); len(lines) >= 2 && len(f) >= 6 {
		if kb, err := strconv.ParseInt(f[3], 10, 64); err == nil {
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("cannot read df's output %q", out.String())
}

func (a *podAgent) Close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = a.pod.Delete(ctx)
}
