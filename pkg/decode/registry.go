package decode

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// The API server's key layout, as its storage factories make it:
//
//   - kube-apiserver keeps each resource of its own groups under
//     /registry/<resource>/, whatever the group (DefaultStorageFactory's
//     ResourcePrefix in k8s.io/apiserver pkg/server/storage): core and
//     events.k8s.io events share /registry/events/, rbac's rolebindings
//     are /registry/rolebindings/;
//   - a few keep older names: SpecialDefaultResourcePrefixes in
//     k8s.io/kubernetes pkg/kubeapiserver/default_storage_factory_builder.go;
//   - its embedded apiextensions and aggregator servers, and custom
//     resources, go through a SimpleStorageFactory (k8s.io/apiserver
//     pkg/server/options/etcd.go): /registry/<group>/<resource>/.
//
// An object is <prefix><namespace>/<name>, or <prefix><name> when its
// resource is cluster-scoped (the generic registry's key functions).
// kube-apiserver's own groups are those of client-go's scheme.

// specialPrefixes are SpecialDefaultResourcePrefixes by resource: each
// holds in every group of kube-apiserver's that has the resource
// (ingresses of extensions and networking.k8s.io).
var specialPrefixes = map[string]string{
	"endpoints":              "services/endpoints",
	"ingresses":              "ingress",
	"nodes":                  "minions",
	"replicationcontrollers": "controllers",
	"services":               "services/specs",
}

// clusterScoped are the built-in resources without a namespace
// (+genclient:nonNamespaced in k8s.io/api). TestBuiltInResourceKeys
// checks the list against client-go's typed clients, so a resource a
// newer client-go brings fails it until it is placed.
var clusterScoped = setOf("apiservices", "certificatesigningrequests", "clusterrolebindings", "clusterroles",
	"clustertrustbundles", "csidrivers", "csinodes", "customresourcedefinitions", "deviceclasses", "devicetaintrules",
	"flowschemas", "ingressclasses", "ipaddresses", "mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
	"mutatingwebhookconfigurations", "namespaces", "nodes", "persistentvolumes", "priorityclasses",
	"prioritylevelconfigurations", "resourcepoolstatusrequests", "resourceslices", "runtimeclasses", "servicecidrs",
	"storageclasses", "storageversionmigrations", "storageversions", "validatingadmissionpolicies",
	"validatingadmissionpolicybindings", "validatingwebhookconfigurations", "volumeattachments", "volumeattributesclasses")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// notStored are the resources the API server serves without a key.
var notStored = map[string]string{"componentstatuses": "the API server probes the components on each read"}

// shortNames are kubectl's short names of built-in resources.
var shortNames = map[string]string{"po": "pods", "svc": "services", "ep": "endpoints", "no": "nodes", "ns": "namespaces",
	"cm": "configmaps", "sa": "serviceaccounts", "ev": "events", "pvc": "persistentvolumeclaims", "pv": "persistentvolumes",
	"rc": "replicationcontrollers", "quota": "resourcequotas", "limits": "limitranges", "deploy": "deployments",
	"rs": "replicasets", "sts": "statefulsets", "ds": "daemonsets", "cj": "cronjobs", "hpa": "horizontalpodautoscalers",
	"pdb": "poddisruptionbudgets", "netpol": "networkpolicies", "ing": "ingresses", "sc": "storageclasses",
	"pc": "priorityclasses", "csr": "certificatesigningrequests", "crd": "customresourcedefinitions", "crds": "customresourcedefinitions"}

// resource is a resource as RegistryKey maps it.
type resource struct {
	schema.GroupResource
	namespaced bool
}

// path is where the resource's keys are, under /registry/.
func (r resource) path() string {
	if r.Group != "" && !scheme.Scheme.IsGroupRegistered(r.Group) {
		return r.Group + "/" + r.Resource
	}
	if p, ok := specialPrefixes[r.Resource]; ok {
		return p
	}
	return r.Resource
}

// builtins maps every name kubectl gives a built-in resource to it: the
// plural and the singular, bare and followed by the group. The resources
// are the kinds of client-go's scheme that have a list, plus the two of
// the embedded servers.
var builtins = func() map[string]resource {
	m := map[string]resource{}
	add := func(gvk schema.GroupVersionKind) {
		plural, singular := meta.UnsafeGuessKindToResource(gvk)
		if _, ok := notStored[plural.Resource]; ok {
			return
		}
		r := resource{GroupResource: plural.GroupResource(), namespaced: !clusterScoped[plural.Resource]}
		for _, n := range []string{plural.Resource, singular.Resource} {
			m[n] = r
			if r.Group != "" {
				m[n+"."+r.Group] = r
			}
		}
	}
	metaPkg := reflect.TypeFor[metav1.Status]().PkgPath()
	all := scheme.Scheme.AllKnownTypes()
	for gvk, t := range all {
		_, listed := all[gvk.GroupVersion().WithKind(gvk.Kind+"List")]
		if listed && gvk.Version != runtime.APIVersionInternal && t.PkgPath() != metaPkg {
			add(gvk)
		}
	}
	add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	add(schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"})
	for short, long := range shortNames {
		m[short] = m[long]
	}
	return m
}()

// apiVersion is a version's name, as in kubectl's RESOURCE.VERSION.GROUP.
var apiVersion = regexp.MustCompile(`^v[0-9]+((alpha|beta)[0-9]+)?$`)

// lookup finds what a reference's first part names: a built-in resource
// by any of its names, else RESOURCE.GROUP, guessed to be namespaced when
// the reference names a namespace.
func lookup(name string, guessNamespaced bool) (resource, error) {
	n := strings.ToLower(name)
	res, group, dotted := strings.Cut(n, ".")
	if v, g, ok := strings.Cut(group, "."); ok && apiVersion.MatchString(v) {
		n, group = strings.TrimSuffix(res+"."+g, "."), g
	}
	if why, ok := notStored[res]; ok && group == "" {
		return resource{}, fmt.Errorf("%s are not stored in etcd (%s): read them with kubectl get %s", res, why, res)
	}
	if r, ok := builtins[n]; ok {
		return r, nil
	}
	if !dotted || group == "" {
		return resource{}, fmt.Errorf("unknown resource %q: name a key (/registry/...), a resource kubectl knows (pods/NAMESPACE/NAME, nodes/NAME) or one of an API group as RESOURCE.GROUP", name)
	}
	return resource{GroupResource: schema.GroupResource{Group: group, Resource: res}, namespaced: guessNamespaced}, nil
}

// RegistryKey turns a reference to objects into the etcd key (or, with
// prefix, the key prefix) where the API server stores them. A reference
// that starts with "/" is a key already. Otherwise it is
// RESOURCE[/NAMESPACE][/NAME], with kubectl's resource names and short
// names; RESOURCE.GROUP or RESOURCE.VERSION.GROUP names the group:
//
//	pods/prod/web          /registry/pods/prod/web
//	pods/web               /registry/pods/default/web
//	nodes/cp1              /registry/minions/cp1
//	pods (prefix)          /registry/pods/
//	pods/prod (prefix)     /registry/pods/prod/
//	leases.coordination.k8s.io/kube-system/kcm    /registry/leases/kube-system/kcm
//	widgets.example.com/prod/w1                   /registry/example.com/widgets/prod/w1
func RegistryKey(ref string, prefix bool) (string, error) {
	if ref == "" || strings.HasPrefix(ref, "/") {
		return ref, nil
	}
	parts := strings.Split(ref, "/")
	res, err := lookup(parts[0], len(parts) == 3 || (prefix && len(parts) == 2))
	if err != nil {
		return "", fmt.Errorf("%w (in %q)", err, ref)
	}
	base := "/registry/" + res.path() + "/"
	rest := parts[1:]
	switch {
	case len(rest) == 0 && prefix:
		return base, nil
	case len(rest) == 0:
		return "", fmt.Errorf("%q names a resource, not an object: add --prefix to read them all, or name one (%s/NAME)", ref, parts[0])
	case !res.namespaced && len(rest) == 1:
		return base + rest[0], nil
	case res.namespaced && len(rest) == 1 && prefix:
		return base + rest[0] + "/", nil
	case res.namespaced && len(rest) == 1:
		return base + "default/" + rest[0], nil
	case res.namespaced && len(rest) == 2:
		return base + rest[0] + "/" + rest[1], nil
	}
	return "", fmt.Errorf("%q has too many parts: use RESOURCE/NAMESPACE/NAME for a namespaced resource, RESOURCE/NAME for a cluster-wide one", ref)
}

// deeperPrefixes are the special prefixes two levels deep, and
// prefixNames the resources of the special prefixes.
var deeperPrefixes, prefixNames = func() (map[string]bool, map[string]string) {
	deeper, names := map[string]bool{}, map[string]string{}
	for r, p := range specialPrefixes {
		names[p] = r
		if strings.Contains(p, "/") {
			deeper[p] = true
		}
	}
	return deeper, names
}()

// ResourcePrefix is the prefix of the resource whose key this is, by
// the layout above: /registry/pods/ for /registry/pods/prod/web,
// /registry/services/specs/ for a service, /registry/<group>/<resource>/
// under a group (only a group's name has a dot). Another key keeps its
// first segment (/other/key: /other/); a key without one is its own
// prefix.
func ResourcePrefix(key string) string {
	parts := strings.SplitN(strings.TrimPrefix(key, "/"), "/", 4)
	switch {
	case len(parts) >= 3 && parts[0] == "registry" && (strings.Contains(parts[1], ".") || deeperPrefixes[parts[1]+"/"+parts[2]]):
		return "/registry/" + parts[1] + "/" + parts[2] + "/"
	case len(parts) >= 2 && parts[0] == "registry":
		return "/registry/" + parts[1] + "/"
	case len(parts) >= 2:
		return "/" + parts[0] + "/"
	}
	return key
}

// ResourceName names the resource of a ResourcePrefix as kubectl does:
// /registry/pods/ is pods, /registry/minions/ nodes,
// /registry/apiregistration.k8s.io/apiservices/ is
// apiservices.apiregistration.k8s.io. Other prefixes keep their name.
func ResourceName(prefix string) string {
	p, ok := strings.CutPrefix(prefix, "/registry/")
	if !ok || !strings.HasSuffix(p, "/") {
		return prefix
	}
	p = strings.TrimSuffix(p, "/")
	if r, ok := prefixNames[p]; ok {
		return r
	}
	group, res, grouped := strings.Cut(p, "/")
	switch {
	case !grouped:
		return p
	case strings.Contains(group, ".") && !strings.Contains(res, "/"):
		return res + "." + group
	}
	return prefix
}
