package decode

import (
	"fmt"
	"strings"
)

// registryResource is where the API server keeps one resource.
type registryResource struct {
	path       string // under /registry/
	namespaced bool
}

// registry maps kubectl's resource names and short names to the key
// layout of the API server's storage, which differs from the names in
// places (nodes are minions, services specs, endpoints under services).
var registry = func() map[string]registryResource {
	m := map[string]registryResource{}
	add := func(path string, namespaced bool, names ...string) {
		for _, n := range names {
			m[n] = registryResource{path: path, namespaced: namespaced}
		}
	}
	for _, r := range []string{"pods", "configmaps", "secrets", "serviceaccounts", "events", "persistentvolumeclaims",
		"deployments", "replicasets", "statefulsets", "daemonsets", "controllerrevisions", "jobs", "cronjobs",
		"networkpolicies", "roles", "rolebindings", "leases", "endpointslices", "horizontalpodautoscalers",
		"poddisruptionbudgets", "resourcequotas", "limitranges", "podtemplates", "csistoragecapacities"} {
		add(r, true, r, strings.TrimSuffix(r, "s"))
	}
	for _, r := range []string{"persistentvolumes", "namespaces", "clusterroles", "clusterrolebindings", "storageclasses",
		"priorityclasses", "csidrivers", "csinodes", "volumeattachments", "runtimeclasses", "ingressclasses",
		"mutatingwebhookconfigurations", "validatingwebhookconfigurations", "validatingadmissionpolicies",
		"validatingadmissionpolicybindings", "flowschemas", "prioritylevelconfigurations",
		"certificatesigningrequests"} {
		add(r, false, r, strings.TrimSuffix(r, "s"))
	}
	add("services/specs", true, "services", "service", "svc")
	add("services/endpoints", true, "endpoints", "ep")
	add("minions", false, "nodes", "node", "no")
	add("controllers", true, "replicationcontrollers", "replicationcontroller", "rc")
	add("ingress", true, "ingresses", "ingress", "ing")
	add("apiextensions.k8s.io/customresourcedefinitions", false, "customresourcedefinitions", "customresourcedefinition", "crd", "crds")
	add("apiregistration.k8s.io/apiservices", false, "apiservices", "apiservice")
	for short, long := range map[string]string{"po": "pods", "cm": "configmaps", "sa": "serviceaccounts", "ev": "events",
		"pvc": "persistentvolumeclaims", "pv": "persistentvolumes", "ns": "namespaces", "deploy": "deployments",
		"rs": "replicasets", "sts": "statefulsets", "ds": "daemonsets", "cj": "cronjobs", "netpol": "networkpolicies",
		"hpa": "horizontalpodautoscalers", "pdb": "poddisruptionbudgets", "quota": "resourcequotas",
		"limits": "limitranges", "sc": "storageclasses", "pc": "priorityclasses"} {
		m[short] = m[long]
	}
	return m
}()

// RegistryKey turns a reference to objects into the etcd key (or, with
// prefix, the key prefix) where the API server stores them. A reference
// that starts with "/" is a key already. Otherwise it is RESOURCE[/NAMESPACE][/NAME],
// with kubectl's resource names and short names, or RESOURCE.GROUP for
// a custom resource:
//
//	pods/prod/web          /registry/pods/prod/web
//	pods/web               /registry/pods/default/web
//	nodes/cp1              /registry/minions/cp1
//	pods (prefix)          /registry/pods/
//	pods/prod (prefix)     /registry/pods/prod/
//	widgets.example.com/prod/w1    /registry/example.com/widgets/prod/w1
func RegistryKey(ref string, prefix bool) (string, error) {
	if ref == "" || strings.HasPrefix(ref, "/") {
		return ref, nil
	}
	parts := strings.Split(ref, "/")
	res, ok := registry[strings.ToLower(parts[0])]
	if !ok {
		r, group, dotted := strings.Cut(parts[0], ".")
		if !dotted {
			return "", fmt.Errorf("unknown resource %q in %q: name a key (/registry/...), a resource kubectl knows (pods/NAMESPACE/NAME, nodes/NAME) or a custom resource as RESOURCE.GROUP", parts[0], ref)
		}
		// A custom resource: namespaced when a namespace is given.
		res = registryResource{path: group + "/" + r, namespaced: len(parts) == 3 || (prefix && len(parts) == 2)}
	}
	base := "/registry/" + res.path + "/"
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
