package decode_test

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode"
)

func TestRegistryKey(t *testing.T) {
	for _, tc := range []struct {
		ref    string
		prefix bool
		want   string
		err    string
	}{
		{ref: "/registry/pods/prod/web", want: "/registry/pods/prod/web"},
		{ref: "/registry/pods", prefix: true, want: "/registry/pods"},
		{ref: "", prefix: true, want: ""},
		{ref: "pods/prod/web", want: "/registry/pods/prod/web"},
		{ref: "po/web", want: "/registry/pods/default/web"},
		{ref: "pod", prefix: true, want: "/registry/pods/"},
		{ref: "pods/prod", prefix: true, want: "/registry/pods/prod/"},
		{ref: "svc/kube-system/kube-dns", want: "/registry/services/specs/kube-system/kube-dns"},
		{ref: "endpoints/default/kubernetes", want: "/registry/services/endpoints/default/kubernetes"},
		{ref: "nodes/cp1", want: "/registry/minions/cp1"},
		{ref: "ns/prod", want: "/registry/namespaces/prod"},
		{ref: "Deployments/prod/web", want: "/registry/deployments/prod/web"},
		// Built-in groups are not in the key (issue #21).
		{ref: "rolebindings.rbac.authorization.k8s.io/kube-system/kubeadm:nodes-kubeadm-config", want: "/registry/rolebindings/kube-system/kubeadm:nodes-kubeadm-config"},
		{ref: "leases.coordination.k8s.io/kube-system/kube-scheduler", want: "/registry/leases/kube-system/kube-scheduler"},
		{ref: "deployments.apps/kube-system/coredns", want: "/registry/deployments/kube-system/coredns"},
		{ref: "deployment.apps/kube-system/coredns", want: "/registry/deployments/kube-system/coredns"},
		{ref: "deployments.v1.apps/kube-system/coredns", want: "/registry/deployments/kube-system/coredns"},
		{ref: "pods.v1./kube-system/etcd-cp1", want: "/registry/pods/kube-system/etcd-cp1"},
		{ref: "ingresses.networking.k8s.io/prod/web", want: "/registry/ingress/prod/web"},
		{ref: "events.events.k8s.io/prod", prefix: true, want: "/registry/events/prod/"},
		{ref: "networkpolicy/prod/deny", want: "/registry/networkpolicies/prod/deny"},
		{ref: "clusterroles.rbac.authorization.k8s.io/admin", want: "/registry/clusterroles/admin"},
		{ref: "csr/node-csr-1", want: "/registry/certificatesigningrequests/node-csr-1"},
		// A resource of a built-in group that this build has no kind of.
		{ref: "gizmos.apps/prod/g1", want: "/registry/gizmos/prod/g1"},
		// The embedded servers' resources, and custom resources, under their group.
		{ref: "crd/widgets.example.com", want: "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com"},
		{ref: "apiservices.apiregistration.k8s.io/v1.apps", want: "/registry/apiregistration.k8s.io/apiservices/v1.apps"},
		{ref: "widgets.example.com/prod/w1", want: "/registry/example.com/widgets/prod/w1"},
		{ref: "widgets.v1beta1.example.com/prod/w1", want: "/registry/example.com/widgets/prod/w1"},
		{ref: "widgets.example.com/w1", want: "/registry/example.com/widgets/w1"},
		{ref: "widgets.example.com/prod", prefix: true, want: "/registry/example.com/widgets/prod/"},
		{ref: "pods", err: "names a resource, not an object"},
		{ref: "nodes/a/b", err: "too many parts"},
		{ref: "pods/a/b/c", err: "too many parts"},
		{ref: "gizmos/x", err: `unknown resource "gizmos"`},
		{ref: "componentstatuses/etcd-0", err: "not stored in etcd"},
	} {
		got, err := decode.RegistryKey(tc.ref, tc.prefix)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("RegistryKey(%q, %v) = %q, %v; want %q, error %q", tc.ref, tc.prefix, got, err, tc.want, tc.err)
		}
	}
}

// apiServerPrefixes are SpecialDefaultResourcePrefixes of
// k8s.io/kubernetes pkg/kubeapiserver/default_storage_factory_builder.go:
// every other resource of kube-apiserver's groups is /registry/<resource>/.
var apiServerPrefixes = map[string]string{
	"replicationcontrollers": "controllers",
	"endpoints":              "services/endpoints",
	"nodes":                  "minions",
	"services":               "services/specs",
	"ingresses":              "ingress",
}

// typedScopes reads, from client-go's typed clients, every resource's
// scope: a namespaced one's getter takes the namespace
// (Pods(namespace string)), a cluster-wide one's takes nothing.
func typedScopes(t *testing.T) map[string]bool {
	t.Helper()
	scopes := map[string]bool{}
	cs := reflect.TypeFor[kubernetes.Interface]()
	for i := range cs.NumMethod() {
		gv := cs.Method(i).Type.Out(0)
		if gv.Kind() != reflect.Interface {
			continue
		}
		for j := range gv.NumMethod() {
			m := gv.Method(j)
			if m.Name == "RESTClient" || m.Type.NumOut() != 1 || m.Type.NumIn() > 1 {
				continue
			}
			r, namespaced := strings.ToLower(m.Name), m.Type.NumIn() == 1
			if was, ok := scopes[r]; ok && was != namespaced {
				t.Fatalf("%s is namespaced in one group and not in another", r)
			}
			scopes[r] = namespaced
		}
	}
	return scopes
}

// builtIn is one resource of client-go's scheme.
type builtIn struct {
	gvr        schema.GroupVersionResource
	singular   string
	namespaced bool
}

// schemeResources are the resources of client-go's scheme: its kinds
// that have a list, named and scoped as the typed clients name them.
func schemeResources(t *testing.T) []builtIn {
	t.Helper()
	scopes := typedScopes(t)
	metaPkg := reflect.TypeFor[metav1.Status]().PkgPath()
	seen := map[schema.GroupResource]bool{}
	var out []builtIn
	all := scheme.Scheme.AllKnownTypes()
	for gvk, typ := range all {
		if _, listed := all[gvk.GroupVersion().WithKind(gvk.Kind+"List")]; !listed || gvk.Version == runtime.APIVersionInternal || typ.PkgPath() == metaPkg {
			continue
		}
		plural, singular := meta.UnsafeGuessKindToResource(gvk)
		namespaced, ok := scopes[plural.Resource]
		if !ok {
			t.Errorf("%s: no typed client has %s (a kind whose resource is not its lowercase plural?)", gvk, plural.Resource)
			continue
		}
		if !seen[plural.GroupResource()] {
			seen[plural.GroupResource()] = true
			out = append(out, builtIn{gvr: plural, singular: singular.Resource, namespaced: namespaced})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].gvr.GroupResource().String() < out[j].gvr.GroupResource().String() })
	return out
}

// TestBuiltInResourceKeys maps every built-in resource of client-go's
// scheme, by each of its names, to where kube-apiserver stores it.
func TestBuiltInResourceKeys(t *testing.T) {
	resources := schemeResources(t)
	if len(resources) < 60 {
		t.Fatalf("only %d resources in client-go's scheme", len(resources))
	}
	for _, r := range resources {
		gr := r.gvr.GroupResource()
		t.Run(gr.String(), func(t *testing.T) {
			if gr.Resource == "componentstatuses" {
				if _, err := decode.RegistryKey(gr.Resource, true); err == nil || !strings.Contains(err.Error(), "not stored") {
					t.Errorf("componentstatuses, computed on each read, have a key: %v", err)
				}
				return
			}
			path := gr.Resource
			if p, ok := apiServerPrefixes[gr.Resource]; ok {
				path = p
			}
			want := "/registry/" + path + "/"
			names := []string{gr.Resource + "." + gr.Group, r.singular + "." + gr.Group, r.gvr.Resource + "." + r.gvr.Version + "." + gr.Group}
			if gr.Group == "" {
				names = []string{gr.Resource, r.singular, gr.Resource + "." + r.gvr.Version + "."}
			}
			for _, n := range names {
				assertKey(t, n, true, want)
				if r.namespaced {
					assertKey(t, n+"/ns1/obj1", false, want+"ns1/obj1")
					assertKey(t, n+"/obj1", false, want+"default/obj1")
				} else {
					assertKey(t, n+"/obj1", false, want+"obj1")
					if k, err := decode.RegistryKey(n+"/ns1/obj1", false); err == nil {
						t.Errorf("%s is cluster-scoped, but %s/ns1/obj1 is key %s", gr, n, k)
					}
				}
			}
			if p := decode.ResourcePrefix(want + "ns1/obj1"); p != want || decode.ResourceName(p) != gr.Resource {
				t.Errorf("a key under %s has prefix %s, named %s", want, p, decode.ResourceName(p))
			}
		})
	}
}

func assertKey(t *testing.T, ref string, prefix bool, want string) {
	t.Helper()
	if got, err := decode.RegistryKey(ref, prefix); got != want || err != nil {
		t.Errorf("RegistryKey(%q, %v) = %q, %v; want %q", ref, prefix, got, err, want)
	}
}

func TestResourcePrefixAndName(t *testing.T) {
	for _, c := range []struct{ key, prefix, name string }{
		{"/registry/pods/default/web-1", "/registry/pods/", "pods"},
		{"/registry/namespaces/default", "/registry/namespaces/", "namespaces"},
		{"/registry/apiregistration.k8s.io/apiservices/v1.apps", "/registry/apiregistration.k8s.io/apiservices/", "apiservices.apiregistration.k8s.io"},
		{"/registry/cert-manager.io/certificates/prod/tls", "/registry/cert-manager.io/certificates/", "certificates.cert-manager.io"},
		{"/registry/minions/n1", "/registry/minions/", "nodes"},
		{"/registry/controllers/prod/rc1", "/registry/controllers/", "replicationcontrollers"},
		{"/registry/ingress/prod/web", "/registry/ingress/", "ingresses"},
		{"/registry/services/specs/default/kubernetes", "/registry/services/specs/", "services"},
		{"/registry/services/endpoints/default/kubernetes", "/registry/services/endpoints/", "endpoints"},
		{"/registry/ranges/serviceips", "/registry/ranges/", "ranges"},
		{"/other/key", "/other/", "/other/"},
		{"compact_rev_key", "compact_rev_key", "compact_rev_key"},
		{"", "", ""},
	} {
		if p := decode.ResourcePrefix(c.key); p != c.prefix || decode.ResourceName(p) != c.name {
			t.Errorf("%q: prefix %q, name %q; want %q, %q", c.key, p, decode.ResourceName(p), c.prefix, c.name)
		}
	}
}
