package discovery

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// APIServer is a kube-apiserver static pod as its spec shows it.
type APIServer struct {
	Node, Pod string
	// EncryptionConfig is --encryption-provider-config ("": none).
	EncryptionConfig string
}

// ParseAPIServer reads a kube-apiserver pod's spec.
func ParseAPIServer(pod *corev1.Pod) APIServer {
	s := APIServer{Node: pod.Spec.NodeName, Pod: pod.Name}
	for _, c := range pod.Spec.Containers {
		if c.Name != "kube-apiserver" {
			continue
		}
		flags := parseArgs(append(append([]string{}, c.Command...), c.Args...))
		s.EncryptionConfig = flags["encryption-provider-config"]
	}
	return s
}

// APIServers lists the kube-apiserver static pods in ns (kubeadm labels
// them component=kube-apiserver).
func APIServers(ctx context.Context, cs kubernetes.Interface, ns string) ([]APIServer, error) {
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "component=kube-apiserver"})
	if err != nil {
		return nil, ExplainAPIError(err, "list", "pods", ns)
	}
	out := make([]APIServer, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, ParseAPIServer(&list.Items[i]))
	}
	return out, nil
}
