package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// Install creates or updates what Render made, ConfigMap first and
// CronJob last, so that no run starts before what it needs is there.
// An object of that name that is not this schedule's is refused, not
// overwritten; the Lease, once there, is left as it is: it holds the
// record of the runs.
func Install(ctx context.Context, cs kubernetes.Interface, objs []runtime.Object) ([]Applied, error) {
	var done []Applied
	for _, obj := range objs {
		a, err := install(ctx, cs, obj)
		if err != nil {
			return done, err
		}
		done = append(done, a)
	}
	return done, nil
}

// Applied is an object as Install left it: Ref as kubectl names it
// (cronjob.batch/NAME), Action created, configured or unchanged.
type Applied struct{ Ref, Action string }

func (a Applied) String() string { return a.Ref + " " + a.Action }

// Ref is obj as kubectl names it: kind.group/name.
func Ref(obj runtime.Object) string {
	gvk := obj.GetObjectKind().GroupVersionKind()
	m, _ := meta.Accessor(obj)
	return kindRef(gvk.GroupKind()) + "/" + m.GetName()
}

func kindRef(gk schema.GroupKind) string {
	if gk.Group == "" {
		return strings.ToLower(gk.Kind)
	}
	return strings.ToLower(gk.Kind) + "." + gk.Group
}

func install(ctx context.Context, cs kubernetes.Interface, obj runtime.Object) (Applied, error) {
	m, _ := meta.Accessor(obj)
	ns := m.GetNamespace()
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return apply(ctx, cs.CoreV1().ConfigMaps(ns), o, "configmaps", true)
	case *corev1.ServiceAccount:
		return apply(ctx, cs.CoreV1().ServiceAccounts(ns), o, "serviceaccounts", true)
	case *rbacv1.Role:
		return apply(ctx, cs.RbacV1().Roles(ns), o, "roles", true)
	case *rbacv1.RoleBinding:
		return apply(ctx, cs.RbacV1().RoleBindings(ns), o, "rolebindings", true)
	case *coordinationv1.Lease:
		return apply(ctx, cs.CoordinationV1().Leases(ns), o, "leases", false)
	case *batchv1.CronJob:
		return apply(ctx, cs.BatchV1().CronJobs(ns), o, "cronjobs", true)
	}
	return Applied{}, fmt.Errorf("install: no client for %T", obj)
}

// typedClient is what the typed clients of the schedule's kinds share.
type typedClient[T metav1.Object] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// apply creates obj, or replaces the schedule's own object of its name
// when update is set.
func apply[T interface {
	metav1.Object
	runtime.Object
}](ctx context.Context, c typedClient[T], obj T, resource string, update bool) (Applied, error) {
	ref, ns := Ref(obj), obj.GetNamespace()
	have, err := c.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := c.Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return Applied{}, fmt.Errorf("%s: %w", ref, discovery.ExplainAPIError(err, "create", resource, ns))
		}
		return Applied{ref, "created"}, nil
	}
	if err != nil {
		return Applied{}, fmt.Errorf("%s: %w", ref, discovery.ExplainAPIError(err, "get", resource, ns))
	}
	if want := obj.GetLabels()[ScheduleLabel]; have.GetLabels()[ScheduleLabel] != want || have.GetLabels()[agentapi.ManagedByLabel] != agentapi.ManagedByValue {
		return Applied{}, hint.Permanent(fmt.Errorf("%s in namespace %s exists and is not schedule %s's (it has no label %s=%s)", ref, ns, want, ScheduleLabel, want),
			"it was not made by kubectl etcd schedule: remove it, or name the schedule otherwise")
	}
	if !update {
		return Applied{ref, "unchanged"}, nil
	}
	obj.SetResourceVersion(have.GetResourceVersion())
	if _, err := c.Update(ctx, obj, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return Applied{}, fmt.Errorf("%s: %w", ref, discovery.ExplainAPIError(err, "update", resource, ns))
	}
	return Applied{ref, "configured"}, nil
}

// Removed is what Uninstall deleted (or, dry, would delete), and the
// schedule's Config when its ConfigMap could be read: it names where
// the backups are, which stay.
type Removed struct {
	Refs   []string
	Config *Config
}

// Uninstall deletes the objects labelled as schedule name's in ns,
// CronJob first (and with it its Jobs and their pods), so that no run
// starts while the rest goes. It removes no backup.
func Uninstall(ctx context.Context, cs kubernetes.Interface, ns, name string, dry bool) (Removed, error) {
	var r Removed
	sel := metav1.ListOptions{LabelSelector: Selector(name)}
	if cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, (Config{Name: name}).ObjectName(), metav1.GetOptions{}); err == nil {
		if c, err := ParseConfig([]byte(cm.Data[path.Base(ConfigFile)])); err == nil {
			r.Config = &c
		}
	}
	kinds := []labelled{
		in(cs.BatchV1().CronJobs(ns), "cronjobs"), in(cs.CoordinationV1().Leases(ns), "leases"),
		in(cs.RbacV1().RoleBindings(ns), "rolebindings"), in(cs.RbacV1().Roles(ns), "roles"),
		in(cs.CoreV1().ServiceAccounts(ns), "serviceaccounts"), in(cs.CoreV1().ConfigMaps(ns), "configmaps"),
	}
	for _, k := range kinds {
		refs, err := k.deleteLabelled(ctx, ns, sel, dry)
		r.Refs = append(r.Refs, refs...)
		if err != nil {
			return r, err
		}
	}
	if len(r.Refs) == 0 {
		return r, hint.Permanent(fmt.Errorf("no schedule %s in namespace %s", name, ns),
			"see the schedules installed with kubectl etcd schedule list")
	}
	return r, nil
}

// collection is what the typed clients of the schedule's kinds share
// for listing and deleting.
type collection[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// labelled is one kind of the schedule's objects in a namespace.
type labelled interface {
	deleteLabelled(ctx context.Context, ns string, sel metav1.ListOptions, dry bool) ([]string, error)
}

func in[L runtime.Object](c collection[L], resource string) labelled {
	return labelledIn[L]{c, resource}
}

type labelledIn[L runtime.Object] struct {
	c        collection[L]
	resource string
}

// deleteLabelled deletes what sel selects, a CronJob's Jobs and their
// pods with it.
func (l labelledIn[L]) deleteLabelled(ctx context.Context, ns string, sel metav1.ListOptions, dry bool) ([]string, error) {
	list, err := l.c.List(ctx, sel)
	if err != nil {
		return nil, discovery.ExplainAPIError(err, "list", l.resource, ns)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, it := range items {
		m, err := meta.Accessor(it)
		if err != nil {
			return refs, err
		}
		ref := kindRef(resourceKinds[l.resource]) + "/" + m.GetName()
		if !dry {
			err := l.c.Delete(ctx, m.GetName(), metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
			if err != nil && !apierrors.IsNotFound(err) {
				return refs, fmt.Errorf("%s: %w", ref, discovery.ExplainAPIError(err, "delete", l.resource, ns))
			}
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// resourceKinds are the schedule's kinds by resource: a typed list's
// items carry no kind.
var resourceKinds = map[string]schema.GroupKind{
	"cronjobs":        {Group: batchv1.GroupName, Kind: "CronJob"},
	"leases":          {Group: coordinationv1.GroupName, Kind: "Lease"},
	"rolebindings":    {Group: rbacv1.GroupName, Kind: "RoleBinding"},
	"roles":           {Group: rbacv1.GroupName, Kind: "Role"},
	"serviceaccounts": {Kind: "ServiceAccount"},
	"configmaps":      {Kind: "ConfigMap"},
}

// ParseConfig reads a schedule's config, as its ConfigMap holds it, and
// checks it.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("the schedule's config: %w", err)
	}
	return c, c.Validate()
}
