// Package export turns the objects of one namespace, as etcd stores
// them, into manifests an operator can `kubectl apply` to bring the
// namespace back: the fields the servers set are stripped, the objects
// that controllers recreate are left out, and the rest is ordered so
// that each object finds what it needs already there.
package export

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode"
)

// Config selects what to export.
type Config struct {
	Namespace string
	// Kinds keeps only these kinds (ConfigMap, configmap, configmaps, or
	// a resource of a group: widgets.example.com); empty keeps all.
	Kinds []string
}

// Walk calls fn with every key and value to consider, in key order.
type Walk func(fn func(key string, value []byte) error) error

// Result is what Build found.
type Result struct {
	// Objects are the manifests, in the order to apply them.
	Objects []*unstructured.Unstructured
	// Skipped are the namespace's objects left out, and why.
	Skipped []Skipped
	// Warnings are what an operator must know before applying.
	Warnings []string
}

// Skipped is an object left out. Kind is the key's resource when the
// value tells no kind.
type Skipped struct {
	Key    string `json:"key"`
	Kind   string `json:"kind,omitempty"`
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason"`
}

// Build reads the namespace's objects from walk and makes the manifests.
func Build(cfg Config, walk Walk) (*Result, error) {
	if cfg.Namespace == "" {
		return nil, fmt.Errorf("no namespace to export")
	}
	res := &Result{}
	var objs []*object
	err := walk(func(key string, value []byte) error {
		if !InNamespace(key, cfg.Namespace) {
			return nil
		}
		o, skip := read(key, value, cfg.Namespace)
		if skip != nil && matchKind(cfg.Kinds, skip.Kind, resourceOf(key)) {
			res.Skipped = append(res.Skipped, *skip)
		}
		if o != nil {
			objs = append(objs, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	set := newNamespaceSet(objs)
	for _, o := range objs {
		kind, name := o.u.GetKind(), o.u.GetName()
		if !matchKind(cfg.Kinds, kind, o.resource) {
			continue
		}
		if reason := set.skipReason(o); reason != "" {
			res.Skipped = append(res.Skipped, Skipped{Key: o.key, Kind: kind, Name: name, Reason: reason})
			continue
		}
		if o.note != "" {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s %s: %s", kind, name, o.note))
		}
		res.Warnings = append(res.Warnings, clean(o)...)
		res.Objects = append(res.Objects, o.u)
	}
	sortForApply(res.Objects)
	return res, nil
}

// object is one stored object of the namespace.
type object struct {
	key      string
	resource string // the resource of its key, with its group: widgets.example.com
	u        *unstructured.Unstructured
	note     string
}

// read decodes one value of the namespace, or says why it cannot be
// exported. An object of another namespace is neither.
func read(key string, value []byte, ns string) (*object, *Skipped) {
	v := decode.Decode(value)
	skip := func(reason string) (*object, *Skipped) {
		kind := v.GVK.Kind
		if kind == "" {
			kind = resourceOf(key) // an encrypted value tells no kind
		}
		return nil, &Skipped{Key: key, Kind: kind, Name: key[strings.LastIndexByte(key, '/')+1:], Reason: reason}
	}
	switch {
	case v.Encryption != nil:
		return skip("encrypted at rest by the API server, which alone holds the key: take it from the live cluster (kubectl get -o yaml) or from a backup of its objects")
	case !v.IsObject():
		return skip("not a Kubernetes object: " + v.Note)
	}
	if _, partial := v.Object.(*metav1.PartialObjectMetadata); partial {
		return skip(fmt.Sprintf("stored in protobuf as %s %s, a kind this build of kubectl-etcd cannot decode: take it from the live cluster", v.GVK.Kind, v.GVK.GroupVersion()))
	}
	j, err := v.IndentedJSON()
	if err != nil {
		return skip(err.Error())
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		return skip(err.Error())
	}
	isNS := u.GetKind() == "Namespace" && u.GetAPIVersion() == "v1"
	if u.GetNamespace() != ns && !(isNS && u.GetName() == ns) {
		return nil, nil
	}
	return &object{key: key, resource: resourceOf(key), u: u, note: v.Note}, nil
}

// InNamespace tells whether key can hold an object of namespace ns:
// the namespace itself, or a key with ns among the segments between
// the resource and the name (/registry/pods/ns/name,
// /registry/example.com/widgets/ns/name, /registry/services/specs/ns/name).
// Decoding the value says for sure.
func InNamespace(key, ns string) bool {
	rest, ok := strings.CutPrefix(key, "/registry/")
	if !ok {
		return false
	}
	if rest == "namespaces/"+ns {
		return true
	}
	segs := strings.Split(rest, "/")
	for i := 1; i < len(segs)-1; i++ {
		if segs[i] == ns {
			return true
		}
	}
	return false
}

// resourceOf is a key's resource, as --kind names it: configmaps, or
// widgets.example.com for /registry/example.com/widgets/...
func resourceOf(key string) string {
	segs := strings.Split(strings.TrimPrefix(key, "/registry/"), "/")
	switch {
	case len(segs) > 2 && strings.Contains(segs[0], "."):
		return segs[1] + "." + segs[0]
	case len(segs) > 2 && segs[0] == "services" && segs[1] == "endpoints":
		return "endpoints"
	}
	return segs[0]
}

// matchKind tells whether kinds (empty: all) name an object of kind,
// stored under resource: ConfigMap, configmap, configmaps, or
// widgets.example.com and widgets for a group's.
func matchKind(kinds []string, kind, resource string) bool {
	if len(kinds) == 0 {
		return true
	}
	kind = strings.ToLower(kind)
	for _, k := range kinds {
		k = strings.ToLower(k)
		if k == kind || k == kind+"s" || k == resource || k+"s" == resource || k == strings.SplitN(resource, ".", 2)[0] {
			return true
		}
	}
	return false
}

// applyOrder ranks kinds so that what an object refers to comes first:
// the namespace, its quotas and policies, the identities, secrets and
// config, the storage claims and services, then the workloads and what
// points at them. Kinds not listed (custom resources) come last.
var applyOrder = map[string]int{
	"Namespace": 1, "ResourceQuota": 2, "LimitRange": 3, "NetworkPolicy": 4,
	"ServiceAccount": 5, "Secret": 6, "ConfigMap": 7, "Role": 8, "RoleBinding": 9,
	"PersistentVolumeClaim": 10, "Service": 11, "Endpoints": 12, "EndpointSlice": 13,
	"PodDisruptionBudget": 14, "PodTemplate": 15,
	"DaemonSet": 20, "Deployment": 21, "StatefulSet": 22, "ReplicaSet": 23, "ReplicationController": 24,
	"ControllerRevision": 25, "Pod": 26, "Job": 27, "CronJob": 28,
	"HorizontalPodAutoscaler": 30, "Ingress": 31,
}

func rank(u *unstructured.Unstructured) int {
	if r, ok := applyOrder[u.GetKind()]; ok {
		return r
	}
	return 100
}

func sortForApply(objs []*unstructured.Unstructured) {
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i], objs[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if a.GetAPIVersion() != b.GetAPIVersion() {
			return a.GetAPIVersion() < b.GetAPIVersion()
		}
		if a.GetKind() != b.GetKind() {
			return a.GetKind() < b.GetKind()
		}
		return a.GetName() < b.GetName()
	})
}

// YAML is one manifest as a YAML document, fields sorted as kubectl
// prints them: what sigs.k8s.io/yaml prints, without its round trip
// through JSON.
func YAML(u *unstructured.Unstructured) ([]byte, error) {
	return yaml.Marshal(u.Object)
}
