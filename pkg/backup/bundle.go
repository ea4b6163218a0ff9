package backup

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/encryptionconfig"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// BundleSource is where a DR bundle's files come from.
type BundleSource struct {
	// Nodes are the control-plane nodes (the etcd pods' nodes).
	Nodes []string
	// PKIDir and StaticPodDir are kubeadm's (default /etc/kubernetes/pki
	// and /etc/kubernetes/manifests).
	PKIDir, StaticPodDir string
	// ReadTrees reads the regular files under dirs, and files, on node,
	// into memory by node path.
	ReadTrees func(ctx context.Context, node string, dirs, files []string) (map[string][]byte, error)
	// ConfigMaps reads the cluster's kubeadm-config and kubelet-config,
	// as YAML by name.
	ConfigMaps func(ctx context.Context) (map[string][]byte, error)
}

// gatherBundle reads every node's PKI, static pod manifests and the API
// server's encryption config, and the cluster's ConfigMaps, into memory.
// A node that cannot be read fails the bundle: a bundle missing a node's
// keys would not rebuild it. apiServers lists the kube-apiservers, for
// their encryption config.
func gatherBundle(ctx context.Context, src BundleSource, apiServers func(context.Context) ([]discovery.APIServer, error), notify func(string, ...any)) (snapshot.BundleIndex, []snapshot.BundleFile, error) {
	idx := snapshot.BundleIndex{EncryptionKeys: map[string][]string{}}
	pki, static := src.PKIDir, src.StaticPodDir
	if pki == "" {
		pki = "/etc/kubernetes/pki"
	}
	if static == "" {
		static = "/etc/kubernetes/manifests"
	}
	if apiServers == nil {
		return idx, nil, errors.New("the API servers cannot be listed here, for their encryption config")
	}
	servers, err := apiServers(ctx)
	if err != nil {
		return idx, nil, fmt.Errorf("list the API servers, for their encryption config: %w", err)
	}
	enc := map[string]string{}
	for _, s := range servers {
		enc[s.Node] = s.EncryptionConfig
	}
	nodes := append([]string(nil), src.Nodes...)
	sort.Strings(nodes)
	read := make([]map[string][]byte, len(nodes))
	errs := make([]error, len(nodes))
	par.Each(len(nodes), func(i int) {
		var files []string
		if c := enc[nodes[i]]; c != "" {
			files = append(files, c)
		}
		read[i], errs[i] = src.ReadTrees(ctx, nodes[i], []string{pki, static}, files)
	})
	var out []snapshot.BundleFile
	for i, node := range nodes {
		if errs[i] != nil {
			return idx, nil, fmt.Errorf("node %s: %w", node, errs[i])
		}
		for p, data := range read[i] {
			var name string
			switch {
			case p == enc[node]:
				name = "encryption/" + path.Base(p)
				c, err := encryptionconfig.Parse(data)
				if err != nil {
					return idx, nil, fmt.Errorf("node %s: %s: %w", node, p, err)
				}
				idx.EncryptionKeys[node] = c.Names()
			case strings.HasPrefix(p, pki+"/"):
				name = "pki/" + strings.TrimPrefix(p, pki+"/")
			case strings.HasPrefix(p, static+"/"):
				name = "manifests/" + strings.TrimPrefix(p, static+"/")
			default:
				continue
			}
			out = append(out, snapshot.BundleFile{Path: "nodes/" + node + "/" + name, Node: node, Source: p, Data: data})
		}
		if c := enc[node]; c != "" && idx.EncryptionKeys[node] == nil {
			return idx, nil, fmt.Errorf("node %s: its API server's encryption config %s was not read", node, c)
		}
	}
	nodeFiles := len(out)
	cms, err := src.ConfigMaps(ctx)
	if err != nil {
		return idx, nil, err
	}
	for name, data := range cms {
		out = append(out, snapshot.BundleFile{Path: "cluster/" + name + ".yaml", Source: "configmap/kube-system/" + name, Data: data})
	}
	keys := 0
	for _, k := range idx.EncryptionKeys {
		keys += len(k)
	}
	notify("Bundling %d files from %d node(s) (PKI, static pod manifests, %d encryption key name(s)) and %d ConfigMap(s), held in memory", nodeFiles, len(nodes), keys, len(cms))
	return idx, out, nil
}
