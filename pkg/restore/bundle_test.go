package restore

import (
	"context"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// TestBundleEncryptionConfigs: each node's config from the bundle goes
// where its kube-apiserver reads one now, else where the bundle read it,
// with a warning; a node the bundle holds none for gets none.
func TestBundleEncryptionConfigs(t *testing.T) {
	b := &snapshot.Bundle{
		Index: snapshot.BundleIndex{Files: []snapshot.BundleFileInfo{
			{Path: "nodes/cp1/encryption/enc.yaml", Node: "cp1", Source: "/etc/kubernetes/enc.yaml"},
			{Path: "nodes/cp2/encryption/enc.yaml", Node: "cp2", Source: "/etc/kubernetes/enc.yaml"},
		}},
		Files: map[string][]byte{"nodes/cp1/encryption/enc.yaml": []byte("one"), "nodes/cp2/encryption/enc.yaml": []byte("two")},
	}
	d := Deps{APIServers: func(context.Context) ([]discovery.APIServer, error) {
		return []discovery.APIServer{{Node: "cp1", EncryptionConfig: "/etc/kubernetes/pki/enc.yaml"}, {Node: "cp2"}, {Node: "cp3"}}, nil
	}}
	got, warnings := bundleEncryptionConfigs(context.Background(), d, b, []string{"cp1", "cp2", "cp3"})
	if c := got["cp1"]; c == nil || c.Path != "/etc/kubernetes/pki/enc.yaml" || string(c.Data) != "one" || len(c.SHA256) != 64 {
		t.Errorf("cp1: %+v", c)
	}
	if c := got["cp2"]; c == nil || c.Path != "/etc/kubernetes/enc.yaml" {
		t.Errorf("cp2: %+v", c)
	}
	if got["cp3"] != nil {
		t.Errorf("cp3: %+v", got["cp3"])
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "node cp2's kube-apiserver reads no encryption config now") {
		t.Errorf("warnings %q", warnings)
	}
	if m, w := bundleEncryptionConfigs(context.Background(), d, nil, []string{"cp1"}); m != nil || w != nil {
		t.Errorf("a snapshot: %v %v", m, w)
	}
}
