// Package nodefacts reads facts on the control-plane nodes through
// ProfileFiles node pods: the TLS material the etcd pod spec names (held
// in memory only), certificates and data-dir modes. Nothing is written on
// a node, and no key reaches the workstation's disk.
package nodefacts

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/bounded"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// NodeReport is what a node said about some of its files: the contents
// of the small ones asked for, and the permission bits of directories.
// What could not be read has its error instead.
type NodeReport struct {
	Files    map[string][]byte
	FileErrs map[string]error
	// Modes are octal permission bits, as stat prints them ("700").
	Modes    map[string]string
	ModeErrs map[string]error
}

// NodeFiles reads certificates and directory modes on a node through a
// ProfileFiles pod, as NodeTLSSource does: each file is mounted alone and
// read-only, and what is read stays in memory. A directory is mounted
// read-only only to stat it; nothing in it is read.
type NodeFiles struct {
	Runner    *nodepod.Runner
	Namespace string
	Image     string
}

// Read reads files and stats dirs on node. A pod that cannot start is
// the error; a file or directory that cannot be read is in the report.
func (n *NodeFiles) Read(ctx context.Context, node string, files, dirs []string) (*NodeReport, error) {
	mounts := nodepod.FileMounts(files...)
	for _, d := range dirs {
		mounts = append(mounts, nodepod.HostMount{HostPath: d, ReadOnly: true, Type: corev1.HostPathDirectory})
	}
	spec := nodepod.Spec{
		Purpose: "check", Node: node, Namespace: n.Namespace, Image: n.Image,
		Profile: nodepod.ProfileFiles, Mounts: mounts, Lifetime: 120, StartTimeout: nodeStartTimeout,
	}
	rep := &NodeReport{Files: map[string][]byte{}, FileErrs: map[string]error{}, Modes: map[string]string{}, ModeErrs: map[string]error{}}
	err := n.Runner.Run(ctx, spec, func(ctx context.Context, p *nodepod.Pod) error {
		for _, f := range files {
			if f == "" {
				continue
			}
			if b, err := catFile(ctx, p, f); err != nil {
				rep.FileErrs[f] = err
			} else {
				rep.Files[f] = b
			}
		}
		for _, d := range dirs {
			var out, errb bytes.Buffer
			if err := p.Exec(ctx, []string{"stat", "-c", "%a", nodepod.HostPrefix + d}, nil, &out, &errb); err != nil {
				rep.ModeErrs[d] = fmt.Errorf("stat %s on node %s: %w %s", d, node, err, strings.TrimSpace(errb.String()))
				continue
			}
			rep.Modes[d] = strings.TrimSpace(out.String())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// maxTree bounds what ReadTrees reads from one node: kubeadm's PKI and
// manifests are tens of KiB.
const maxTree = 32 << 20

// ReadTrees reads every regular file under dirs, and the files given, on
// node, into memory, by node path, through a ProfileFiles pod that mounts
// them read-only (the image's tar packs them). Nothing is written on the
// node or on this machine's disk.
func (n *NodeFiles) ReadTrees(ctx context.Context, node string, dirs, files []string) (map[string][]byte, error) {
	mounts := nodepod.FileMounts(files...)
	args := []string{"tar", "-cf", "-", "-C", nodepod.HostPrefix}
	for _, d := range dirs {
		mounts = append(mounts, nodepod.HostMount{HostPath: d, ReadOnly: true, Type: corev1.HostPathDirectory})
		args = append(args, strings.TrimPrefix(path.Clean(d), "/"))
	}
	for _, f := range files {
		args = append(args, strings.TrimPrefix(path.Clean(f), "/"))
	}
	// No short start timeout here: a bundle needs every node, and no
	// other node would serve instead (the runner's default applies, with
	// a line every 15 s while it waits).
	spec := nodepod.Spec{
		Purpose: "bundle", Node: node, Namespace: n.Namespace, Image: n.Image,
		Profile: nodepod.ProfileFiles, Mounts: mounts, Lifetime: 300,
	}
	out := map[string][]byte{}
	err := n.Runner.Run(ctx, spec, func(ctx context.Context, p *nodepod.Pod) error {
		buf := bounded.New(maxTree)
		var errb bytes.Buffer
		err := p.Exec(ctx, args, nil, buf, &errb)
		if buf.Exceeded() {
			return fmt.Errorf("%s on node %s hold more than %d bytes: not a kubeadm control plane's files", strings.Join(dirs, ", "), node, maxTree)
		}
		if err != nil {
			return fmt.Errorf("reading %s on node %s: %w %s (the helper image needs tar)", strings.Join(append(dirs, files...), ", "), node, err, strings.TrimSpace(errb.String()))
		}
		tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("the files read on node %s: %w", node, err)
			}
			if h.Typeflag != tar.TypeReg {
				continue // dirs; kubeadm writes no links there
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			out["/"+path.Clean(h.Name)] = b
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
