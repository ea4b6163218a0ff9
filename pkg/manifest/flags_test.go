package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSetFlagsGolden rewrites kubeadm's first-node manifests for a member
// that joins an existing cluster: one flag changed, one added.
func TestSetFlagsGolden(t *testing.T) {
	flags := map[string]string{
		"initial-cluster":       "hc-cp1=https://10.250.1.11:2380,hc-cp2=https://10.250.1.12:2380,hc-cp3=https://10.250.1.13:2380",
		"initial-cluster-state": "existing",
	}
	for _, name := range inputs {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			out, err := SetFlags(in, flags)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(name, ".yaml")+".joined.golden.yaml")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(string(want), string(out)); d != "" {
				t.Errorf("rewrite differs from %s (-want +got):\n%s", golden, d)
			}
			for f, v := range flags {
				if got, ok, err := Flag(out, f); err != nil || !ok || got != v {
					t.Errorf("--%s = %q, %v, %v; want %q", f, got, ok, err, v)
				}
			}
			// Setting them again changes nothing.
			again, err := SetFlags(out, flags)
			if err != nil || string(again) != string(out) {
				t.Errorf("a second SetFlags changed the manifest (%v)", err)
			}
		})
	}
}

func TestSetFlagsRefusals(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", inputs[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags map[string]string
		want  string
	}{
		{"a space", map[string]string{"name": "a b"}, `has ' '`},
		{"a comment", map[string]string{"initial-cluster": "a=x#y"}, `has '#'`},
		{"a dash", map[string]string{"name": "-x"}, "does not start with -"},
		{"empty", map[string]string{"name": ""}, "needs a value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SetFlags(in, tc.flags)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	flow := []byte("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    command: [etcd, --name=a]\n")
	if _, err := SetFlags(flow, map[string]string{"initial-cluster-state": "existing"}); err == nil || !strings.Contains(err.Error(), "block list") {
		t.Fatalf("flow-style command: %v", err)
	}
}

// TestSetAnnotation adds an annotation after kubeadm's, then changes it in
// place; every other line is kept.
func TestSetAnnotation(t *testing.T) {
	for _, name := range inputs {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			out, err := SetAnnotation(in, "kubectl-etcd.io/replaced", "20260102T030405Z")
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Replace(string(in), ":2379\n", ":2379\n    kubectl-etcd.io/replaced: 20260102T030405Z\n", 1)
			if d := cmp.Diff(want, string(out)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			again, err := SetAnnotation(out, "kubectl-etcd.io/replaced", "20260203T000000Z")
			if err != nil || string(again) != strings.Replace(want, "20260102T030405Z", "20260203T000000Z", 1) {
				t.Errorf("changing it: %v\n%s", err, again)
			}
		})
	}
}
