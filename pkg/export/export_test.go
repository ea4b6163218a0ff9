package export

import (
	"bytes"
	"fmt"
	"sort"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode/decodetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
)

// walkOf walks kvs in key order, as etcd returns them.
func walkOf(t *testing.T, kvs []decodetest.KeyValue) Walk {
	t.Helper()
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	return func(fn func(key string, value []byte) error) error {
		for _, kv := range kvs {
			v, err := kv.Encode()
			if err != nil {
				return err
			}
			if err := fn(kv.Key, v); err != nil {
				return err
			}
		}
		return nil
	}
}

// render is what the golden files hold: the manifests, then what was
// left out and the warnings.
func render(t *testing.T, res *Result) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, u := range res.Objects {
		y, err := YAML(u)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	b.WriteString("=== skipped\n")
	for _, s := range res.Skipped {
		fmt.Fprintf(&b, "%s %s %s: %s\n", s.Key, s.Kind, s.Name, s.Reason)
	}
	b.WriteString("=== warnings\n")
	for _, w := range res.Warnings {
		b.WriteString(w + "\n")
	}
	return b.Bytes()
}

func TestBuild(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kinds []string
	}{
		{"namespace", nil},
		{"kinds", []string{"configmap", "Deployments", "widgets.example.com", "pod"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Build(Config{Namespace: "prod", Kinds: tc.kinds}, walkOf(t, decodetest.Namespace()))
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, "export-"+tc.name, render(t, res))
		})
	}
}

func TestInNamespace(t *testing.T) {
	for key, want := range map[string]bool{
		"/registry/pods/prod/web":                   true,
		"/registry/namespaces/prod":                 true,
		"/registry/services/specs/prod/web":         true,
		"/registry/example.com/widgets/prod/w1":     true,
		"/registry/configmaps/staging/prod":         false,
		"/registry/clusterroles/prod":               false,
		"/registry/namespaces/production":           false,
		"/registry/example.com/clusterwidgets/prod": false,
		"/prod/pods/prod/x":                         false,
	} {
		if got := InNamespace(key, "prod"); got != want {
			t.Errorf("InNamespace(%q) = %v, want %v", key, got, want)
		}
	}
}
