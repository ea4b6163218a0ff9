package nodefacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/bounded"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

var _ etcd.TLSSource = (*NodeTLSSource)(nil)

// NodeTLSSource reads the files the pod spec names on the member's node,
// through a short-lived helper pod that mounts just those files read-only,
// and keeps them in memory. The first material read serves every member:
// kubeadm signs all members' certificates with one CA, and a member's
// server certificate is also valid as a client certificate.
type NodeTLSSource struct {
	Runner    *nodepod.Runner
	Namespace string
	Image     string

	mu  sync.Mutex
	mat *etcd.Material
}

// nodeStartTimeout is how long one node gets to start the helper pod
// before the next node is tried: a node whose etcd is down often has a
// kubelet that cannot start pods either.
const nodeStartTimeout = 30 * time.Second

// Material implements etcd.TLSSource. Without a Prefetch it reads from m's node.
func (s *NodeTLSSource) Material(ctx context.Context, m discovery.Member) (*etcd.Material, error) {
	return s.Prefetch(ctx, []discovery.Member{m})
}

// Prefetch reads the material once, from the first candidate node that
// can run the helper pod: running members on Ready nodes first.
func (s *NodeTLSSource) Prefetch(ctx context.Context, members []discovery.Member) (*etcd.Material, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mat != nil {
		return s.mat, nil
	}
	var errs []error
	for _, m := range candidates(members) {
		mat, err := s.read(ctx, m)
		if err == nil {
			s.mat = mat
			return mat, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// candidates orders members for reading: a running pod on a Ready node
// first, one per node.
func candidates(members []discovery.Member) []discovery.Member {
	out := make([]discovery.Member, 0, len(members))
	seen := map[string]bool{}
	for pass := 0; pass < 2; pass++ {
		for _, m := range members {
			good := m.Running && (m.NodeReady == nil || *m.NodeReady)
			if seen[m.Node] || good != (pass == 0) {
				continue
			}
			seen[m.Node] = true
			out = append(out, m)
		}
	}
	return out
}

// maxTLSFile bounds each file read from a node: PEM certificates and keys
// are a few KiB, so more than this is not a TLS file and must not be held
// in memory.
const maxTLSFile = 1 << 20

// read runs a ProfileFiles pod on m's node (see nodepod.ProfileFiles for
// what it may do and why it runs as root) that mounts exactly the three
// files the pod spec names, and cats each of them.
func (s *NodeTLSSource) read(ctx context.Context, m discovery.Member) (*etcd.Material, error) {
	files := []string{m.Client.TrustedCAFile, m.Client.CertFile, m.Client.KeyFile}
	if files[0] == "" {
		return nil, hint.Permanent(fmt.Errorf("member %s serves TLS but its pod spec names no --trusted-ca-file", m.Name),
			"Use --transport=exec")
	}
	spec := nodepod.Spec{
		Purpose:      "certs",
		Node:         m.Node,
		Namespace:    s.Namespace,
		Image:        s.Image,
		Profile:      nodepod.ProfileFiles,
		Mounts:       nodepod.FileMounts(files...),
		Lifetime:     120,
		StartTimeout: nodeStartTimeout,
	}
	mat := &etcd.Material{}
	dst := []*[]byte{&mat.CA, &mat.Cert, &mat.Key}
	err := s.Runner.Run(ctx, spec, func(ctx context.Context, p *nodepod.Pod) error {
		for i, f := range files {
			if f == "" {
				continue
			}
			b, err := catFile(ctx, p, f)
			if err != nil {
				return err
			}
			*dst[i] = b
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := mat.Check(); err != nil {
		return nil, fmt.Errorf("TLS files on node %s: %w", m.Node, err)
	}
	return mat, nil
}

// catFile reads one mounted file, at most maxTLSFile bytes of it.
func catFile(ctx context.Context, p *nodepod.Pod, f string) ([]byte, error) {
	out := bounded.New(maxTLSFile)
	var errb bytes.Buffer
	err := p.Exec(ctx, []string{"cat", nodepod.HostPrefix + f}, nil, out, &errb)
	if out.Exceeded() {
		return nil, hint.Permanent(fmt.Errorf("%s on node %s is larger than %d bytes, so it is no certificate or key", f, p.Node, maxTLSFile),
			etcd.BadTLSFilesHint)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s on node %s: %w %s", f, p.Node, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
