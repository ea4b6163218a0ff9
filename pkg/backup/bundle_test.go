package backup

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

const encYAML = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: c2VjcmV0
      - identity: {}
`

// TestGatherBundle names each node's files in the bundle by what they
// are, records the key names (never a secret), and fails on a node that
// cannot be read.
func TestGatherBundle(t *testing.T) {
	trees := map[string]map[string][]byte{
		"cp1": {"/etc/kubernetes/pki/ca.key": []byte("k1"), "/etc/kubernetes/pki/etcd/ca.crt": []byte("c"), "/etc/kubernetes/manifests/etcd.yaml": []byte("m"), "/etc/kubernetes/enc.yaml": []byte(encYAML)},
		"cp2": {"/etc/kubernetes/pki/ca.key": []byte("k2")},
	}
	servers := func(context.Context) ([]discovery.APIServer, error) {
		return []discovery.APIServer{{Node: "cp1", EncryptionConfig: "/etc/kubernetes/enc.yaml"}, {Node: "cp2"}}, nil
	}
	src := BundleSource{Nodes: []string{"cp2", "cp1"},
		ReadTrees: func(_ context.Context, node string, dirs, files []string) (map[string][]byte, error) {
			if strings.Join(dirs, ",") != "/etc/kubernetes/pki,/etc/kubernetes/manifests" {
				t.Errorf("dirs %v", dirs)
			}
			if t, ok := trees[node]; ok {
				return t, nil
			}
			return nil, errors.New("node pod did not start")
		},
		ConfigMaps: func(context.Context) (map[string][]byte, error) {
			return map[string][]byte{"kubeadm-config": []byte("kind: ConfigMap")}, nil
		},
	}
	var notes []string
	idx, files, err := gatherBundle(context.Background(), src, servers, func(f string, a ...any) { notes = append(notes, f) })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
		if strings.Contains(string(f.Data), "c2VjcmV0") && !strings.HasSuffix(f.Path, "encryption/enc.yaml") {
			t.Errorf("%s holds the key", f.Path)
		}
	}
	want := "nodes/cp1/encryption/enc.yaml nodes/cp1/manifests/etcd.yaml nodes/cp1/pki/ca.key nodes/cp1/pki/etcd/ca.crt nodes/cp2/pki/ca.key cluster/kubeadm-config.yaml"
	if got := sortedJoin(names); got != sortedJoin(strings.Fields(want)) {
		t.Errorf("files %s, want %s", got, want)
	}
	if k := idx.EncryptionKeys["cp1"]; len(k) != 1 || k[0] != "aescbc:key1" {
		t.Errorf("key names %v", idx.EncryptionKeys)
	}
	src.Nodes = append(src.Nodes, "cp3")
	if _, _, err := gatherBundle(context.Background(), src, servers, func(string, ...any) {}); err == nil || !strings.Contains(err.Error(), "node cp3: node pod did not start") {
		t.Errorf("a node that cannot be read: %v", err)
	}
}

func sortedJoin(s []string) string {
	c := slices.Clone(s)
	slices.Sort(c)
	return strings.Join(c, " ")
}
