package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// Defaults match kubeadm's static etcd pods.
const (
	DefaultNamespace = "kube-system"
	DefaultSelector  = "component=etcd"
)

// MirrorAnnotation marks the kubelet's mirror pod of a static pod; the
// API server does not let a client create a pod carrying it.
const MirrorAnnotation = "kubernetes.io/config.mirror"

// ErrNoMembers is returned (wrapped) when no etcd pod matches.
var ErrNoMembers = errors.New("no etcd pods found")

// Options select the etcd pods.
type Options struct {
	Namespace string
	Selector  string
	// Warn takes one line per selected pod that is ignored; nil drops
	// them.
	Warn func(msg string)
}

// Discover lists the etcd pods and parses each. Members come back sorted by
// node name so output is stable. Node readiness is filled in when nodes can
// be read; a denial there is not an error.
func Discover(ctx context.Context, cs kubernetes.Interface, o Options) ([]Member, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Selector == "" {
		o.Selector = DefaultSelector
	}
	// The nodes are read beside the pods: one round trip, not two.
	readiness := make(chan map[string]bool, 1)
	go func() { readiness <- nodeReadiness(ctx, cs) }()
	pods, err := cs.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: o.Selector})
	ready := <-readiness
	if err != nil {
		return nil, ExplainAPIError(err, "list", "pods", o.Namespace)
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("%w in namespace %q with selector %q.\n"+
			"This usually means one of:\n"+
			"  - the cluster uses external etcd (not a static pod), or a distribution that does not run etcd as a pod (k3s, EKS, GKE, AKS);\n"+
			"  - the current context points at another cluster (check: kubectl config current-context);\n"+
			"  - etcd runs under other labels or in another namespace.\n"+
			"Try: kubectl get pods -A -l component=etcd, then pass -n/--namespace and -l/--selector", ErrNoMembers, o.Namespace, o.Selector)
	}
	mirrors, err := mirrorPods(pods.Items, o)
	if err != nil {
		return nil, err
	}
	members := make([]Member, 0, len(mirrors))
	for i := range mirrors {
		m := ParsePod(&mirrors[i])
		if r, ok := ready[m.Node]; ok {
			r := r
			m.NodeReady = &r
		}
		members = append(members, m)
	}
	sort.Slice(members, func(i, j int) bool {
		if members[i].Node != members[j].Node {
			return members[i].Node < members[j].Node
		}
		return members[i].Pod < members[j].Pod
	})
	return members, nil
}

// mirrorPods keeps the kubelet's mirror pods of static etcd pods. Any
// other pod that matches the selector could be created by whoever may
// create pods in the namespace, and its spec would choose the host files
// the helper pods read and what a restore plans: it is warned about and
// ignored, and it is an error when no mirror pod is left.
func mirrorPods(pods []corev1.Pod, o Options) ([]corev1.Pod, error) {
	var out []corev1.Pod
	var last error
	for _, p := range pods {
		if _, ok := p.Annotations[MirrorAnnotation]; ok {
			out = append(out, p)
			continue
		}
		last = fmt.Errorf("pod %s/%s has label %s but is not a static pod's mirror pod (no %s annotation); kubectl etcd only trusts the kubelet's static pods",
			p.Namespace, p.Name, o.Selector, MirrorAnnotation)
		if o.Warn != nil {
			o.Warn(last.Error() + ", so it is ignored")
		}
	}
	if len(out) == 0 {
		return nil, hint.Permanent(last, "Check the pods with: kubectl -n %s get pods -l %s -o yaml; if etcd runs as static pods under other labels or in another namespace, pass -l/--selector and -n/--namespace", o.Namespace, o.Selector)
	}
	return out, nil
}

func nodeReadiness(ctx context.Context, cs kubernetes.Interface) map[string]bool {
	out := map[string]bool{}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return out
	}
	for _, n := range nodes.Items {
		out[n.Name] = NodeIsReady(&n)
	}
	return out
}

// NodeIsReady reports whether the node's Ready condition is True.
func NodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ExplainAPIError adds what to do to the API errors users meet most.
// Denials are permanent: retrying them only repeats them. ns "" is every
// namespace, or a resource outside namespaces (nodes).
func ExplainAPIError(err error, verb, resource, ns string) error {
	switch {
	case apierrors.IsForbidden(err) && ns == "":
		return hint.Permanent(fmt.Errorf("RBAC denied: you cannot %s %s across the cluster (%w)", verb, resource, err),
			"Ask a cluster admin for a ClusterRole that allows verb %q on %q, or use a context with more rights (check: kubectl auth can-i %s %s --all-namespaces)",
			verb, resource, verb, resource)
	case apierrors.IsForbidden(err):
		return hint.Permanent(fmt.Errorf("RBAC denied: you cannot %s %s in namespace %q (%w)", verb, resource, ns, err),
			"Ask a cluster admin for a Role in %s that allows verb %q on %q, or use a context with more rights (check: kubectl auth can-i %s %s -n %s)",
			ns, verb, resource, verb, resource, ns)
	case isUnreachable(err):
		return hint.With(fmt.Errorf("cannot reach the Kubernetes API server: %w", err),
			"Check that the kubeconfig points at the right cluster (kubectl config current-context; --kubeconfig, --context)")
	case apierrors.IsUnauthorized(err):
		return hint.Permanent(fmt.Errorf("the API server rejected your credentials (%w)", err), "refresh them or pick another --context")
	case ns == "":
		return fmt.Errorf("cannot %s %s across the cluster: %w", verb, resource, err)
	default:
		return fmt.Errorf("cannot %s %s in namespace %q: %w", verb, resource, ns, err)
	}
}

func isUnreachable(err error) bool {
	var nerr net.Error
	var uerr *url.Error
	return errors.As(err, &nerr) || errors.As(err, &uerr)
}
