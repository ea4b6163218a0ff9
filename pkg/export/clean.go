package export

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// namespaceSet is what the rules need to know of the whole namespace.
type namespaceSet struct {
	byUID map[string]*object
	// servicesWithSelector are the Services whose endpoints a
	// controller keeps.
	servicesWithSelector map[string]bool
	// legacyTokens are the token Secrets a ServiceAccount lists: the
	// ones the token controller of old releases made for it.
	legacyTokens map[string]bool
}

func newNamespaceSet(objs []*object) *namespaceSet {
	s := &namespaceSet{byUID: map[string]*object{}, servicesWithSelector: map[string]bool{}, legacyTokens: map[string]bool{}}
	for _, o := range objs {
		if uid := string(o.u.GetUID()); uid != "" {
			s.byUID[uid] = o
		}
		switch o.u.GetKind() {
		case "Service":
			if sel, _, _ := unstructured.NestedMap(o.u.Object, "spec", "selector"); len(sel) > 0 {
				s.servicesWithSelector[o.u.GetName()] = true
			}
		case "ServiceAccount":
			refs, _, _ := unstructured.NestedSlice(o.u.Object, "secrets")
			for _, r := range refs {
				if m, ok := r.(map[string]any); ok {
					if name, ok := m["name"].(string); ok {
						s.legacyTokens[name] = true
					}
				}
			}
		}
	}
	return s
}

// Labels and names the rules know.
const (
	endpointSliceManagedBy = "endpointslice.kubernetes.io/managed-by"
	rootCAConfigMap        = "kube-root-ca.crt"
	tokenSecretType        = "kubernetes.io/service-account-token"
	saUIDAnnotation        = "kubernetes.io/service-account.uid"
)

// skipReason says why an object should not be applied again, or "".
func (s *namespaceSet) skipReason(o *object) string {
	u := o.u
	kind, name := u.GetKind(), u.GetName()
	for _, ref := range u.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller {
			if _, ok := s.byUID[string(ref.UID)]; ok {
				return fmt.Sprintf("owned by %s %s, which makes it again", ref.Kind, ref.Name)
			}
		}
	}
	switch {
	case kind == "Event":
		return "events are history, not configuration"
	case kind == "Lease":
		return "a lease is leader-election state its holder writes again"
	case kind == "ConfigMap" && name == rootCAConfigMap:
		return "kube-controller-manager publishes it in every namespace"
	case kind == "Secret" && stringField(u, "type") == tokenSecretType && s.legacyTokens[name]:
		return "a service account token the token controller made, and makes again"
	case kind == "EndpointSlice" && strings.HasSuffix(u.GetLabels()[endpointSliceManagedBy], ".k8s.io"):
		return "kept by the " + u.GetLabels()[endpointSliceManagedBy] + " controller"
	case kind == "Endpoints" && s.servicesWithSelector[name]:
		return "kept by the endpoints controller for Service " + name
	case kind == "ServiceAccount" && name == "default" && isPlainDefaultServiceAccount(u):
		return "made in every namespace; this one has nothing of its own"
	case kind == "Job" && jobFinished(u):
		return "it has finished: applying it again would run it again"
	case kind == "Pod" && (stringField(u, "status", "phase") == "Succeeded" || stringField(u, "status", "phase") == "Failed"):
		return "it has finished: applying it again would run it again"
	}
	return ""
}

func isPlainDefaultServiceAccount(u *unstructured.Unstructured) bool {
	_, pull := u.Object["imagePullSecrets"]
	_, automount := u.Object["automountServiceAccountToken"]
	return !pull && !automount && len(u.GetLabels()) == 0 && len(withoutServerAnnotations(u.GetAnnotations())) == 0
}

func jobFinished(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any) // a nil map reads as empty
		if (m["type"] == "Complete" || m["type"] == "Failed") && m["status"] == "True" {
			return true
		}
	}
	return false
}

// serverMetadata are the metadata fields the API server sets. Owner
// references go too: they name owners by UID, and the owners come back
// with new UIDs, so the garbage collector would delete what kept them.
var serverMetadata = []string{"uid", "resourceVersion", "creationTimestamp", "managedFields", "generation",
	"selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences", "finalizers", "generateName"}

// serverAnnotations are set by controllers, or by kubectl apply
// itself (the last applied configuration it writes again).
var serverAnnotations = []string{
	"kubectl.kubernetes.io/last-applied-configuration",
	"deployment.kubernetes.io/revision",
	"deprecated.daemonset.template.generation",
	"control-plane.alpha.kubernetes.io/leader",
	"endpoints.kubernetes.io/last-change-trigger-time",
	"pv.kubernetes.io/",
	"volume.kubernetes.io/",
	"volume.beta.kubernetes.io/storage-provisioner",
	saUIDAnnotation,
}

func withoutServerAnnotations(a map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		server := false
		for _, s := range serverAnnotations {
			if k == s || (strings.HasSuffix(s, "/") && strings.HasPrefix(k, s)) {
				server = true
			}
		}
		if !server {
			out[k] = v
		}
	}
	return out
}

// clean strips what the servers set, and returns what the operator
// should know about the object.
func clean(o *object) []string {
	u := o.u
	meta, _ := u.Object["metadata"].(map[string]any)
	for _, f := range serverMetadata {
		delete(meta, f)
	}
	if a := withoutServerAnnotations(u.GetAnnotations()); len(a) > 0 {
		u.SetAnnotations(a)
	} else {
		delete(meta, "annotations")
	}
	delete(u.Object, "status")
	var warnings []string
	if fix := kindRules[u.GetKind()]; fix != nil {
		if w := fix(u); w != "" {
			warnings = append(warnings, fmt.Sprintf("%s %s: %s", u.GetKind(), u.GetName(), w))
		}
	}
	dropNulls(u.Object)
	return warnings
}

// kindRules strip what is the servers' in some kinds' specs.
var kindRules = map[string]func(*unstructured.Unstructured) string{
	"Namespace": func(u *unstructured.Unstructured) string {
		delete(u.Object, "spec") // the kubernetes finalizer
		labels := u.GetLabels()
		delete(labels, "kubernetes.io/metadata.name")
		setLabels(u, labels)
		return ""
	},
	"Service": func(u *unstructured.Unstructured) string {
		// A cluster IP is allocated again; "None" makes a headless one.
		if ip := stringField(u, "spec", "clusterIP"); ip != "None" {
			unstructured.RemoveNestedField(u.Object, "spec", "clusterIP")
			unstructured.RemoveNestedField(u.Object, "spec", "clusterIPs")
		}
		return ""
	},
	"Pod": func(u *unstructured.Unstructured) string {
		unstructured.RemoveNestedField(u.Object, "spec", "nodeName")
		dropTokenVolume(u)
		return ""
	},
	"Job": func(u *unstructured.Unstructured) string {
		// The selector the API server generated names the old Job's UID.
		if manual, _, _ := unstructured.NestedBool(u.Object, "spec", "manualSelector"); !manual {
			unstructured.RemoveNestedField(u.Object, "spec", "selector")
			for _, l := range []string{"controller-uid", "batch.kubernetes.io/controller-uid"} {
				unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "labels", l)
			}
		}
		return ""
	},
	"Secret": func(u *unstructured.Unstructured) string {
		if stringField(u, "type") != tokenSecretType {
			return ""
		}
		delete(u.Object, "data")
		return "a service account token: exported without its data, which the token controller fills in for the new service account"
	},
	"ServiceAccount": func(u *unstructured.Unstructured) string {
		// Its list of token secrets names the ones the token controller
		// made, which are left out and made again.
		delete(u.Object, "secrets")
		return ""
	},
	"PersistentVolumeClaim": func(u *unstructured.Unstructured) string {
		if pv := stringField(u, "spec", "volumeName"); pv != "" {
			return fmt.Sprintf("bound to PersistentVolume %s: if that volume was deleted with the namespace, remove spec.volumeName to provision a new one; if it was retained, clear its spec.claimRef so that this claim can bind it again", pv)
		}
		return ""
	},
}

// dropTokenVolume removes the service account token volume that
// admission adds to every pod, and adds again.
func dropTokenVolume(u *unstructured.Unstructured) {
	vols, _, _ := unstructured.NestedSlice(u.Object, "spec", "volumes")
	var keep []any
	dropped := map[string]bool{}
	for _, v := range vols {
		if name := nameOf(v); strings.HasPrefix(name, "kube-api-access-") {
			dropped[name] = true
			continue
		}
		keep = append(keep, v)
	}
	if len(dropped) == 0 {
		return
	}
	setOrRemove(u.Object, keep, "spec", "volumes")
	for _, list := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", list)
		for _, c := range cs {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			mounts, _ := cm["volumeMounts"].([]any)
			var km []any
			for _, m := range mounts {
				if !dropped[nameOf(m)] {
					km = append(km, m)
				}
			}
			setOrRemove(cm, km, "volumeMounts")
		}
		if cs != nil {
			_ = unstructured.SetNestedSlice(u.Object, cs, "spec", list)
		}
	}
}

// nameOf is the name field of a list item (a volume, a mount).
func nameOf(item any) string {
	m, _ := item.(map[string]any)
	name, _ := m["name"].(string)
	return name
}

func setOrRemove(obj map[string]any, list []any, fields ...string) {
	if len(list) == 0 {
		unstructured.RemoveNestedField(obj, fields...)
		return
	}
	_ = unstructured.SetNestedSlice(obj, list, fields...)
}

func setLabels(u *unstructured.Unstructured, labels map[string]string) {
	if len(labels) == 0 {
		unstructured.RemoveNestedField(u.Object, "metadata", "labels")
		return
	}
	u.SetLabels(labels)
}

func stringField(u *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	return s
}

// dropNulls removes the null fields typed objects leave in their JSON
// (creationTimestamp: null in pod templates): noise in a manifest.
func dropNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if e == nil {
				delete(t, k)
				continue
			}
			dropNulls(e)
		}
	case []any:
		for _, e := range t {
			dropNulls(e)
		}
	}
}
