// Package decodetest holds the objects the decoding tests store in
// etcd, as the API server would.
package decodetest

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"time"
)

var created = metav1.Date(2026, 11, 30, 22, 15, 0, 0, time.UTC)

// meta is what the API server sets on every object it stores.
func meta(ns, name, uid string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: ns, UID: types.UID(uid), ResourceVersion: "4242", Generation: 1,
		CreationTimestamp: created,
		Labels:            map[string]string{"app": "web"},
		ManagedFields: []metav1.ManagedFieldsEntry{{
			Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate,
			APIVersion: "v1", Time: &created, FieldsType: "FieldsV1",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}`)},
		}},
	}
}

// ConfigMap is a ConfigMap in namespace prod.
func ConfigMap() *corev1.ConfigMap {
	cm := &corev1.ConfigMap{ObjectMeta: meta("prod", "app-config", "0b7e9c3a-1111-4c4b-9a57-0d1c2f3e4a5b"),
		Data: map[string]string{"LOG_LEVEL": "debug", "app.properties": "a=1\nb=2\n"}}
	cm.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","kind":"ConfigMap"}` + "\n"}
	return cm
}

// Secret is an Opaque Secret in namespace prod.
func Secret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: meta("prod", "db", "0b7e9c3a-2222-4c4b-9a57-0d1c2f3e4a5b"),
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("hunter2")}}
}

// Pod is a pod of Deployment web, scheduled and running.
func Pod() *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: meta("prod", "web-7d4b9c6f5-abcde", "0b7e9c3a-3333-4c4b-9a57-0d1c2f3e4a5b"),
		Spec: corev1.PodSpec{
			NodeName: "hc-cp1", ServiceAccountName: "default",
			Containers: []corev1.Container{{
				Name: "web", Image: "nginx:1.27",
				Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
				VolumeMounts: []corev1.VolumeMount{{Name: "kube-api-access-x7k2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "kube-api-access-x7k2p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}}}}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.17", HostIP: "172.18.0.2"},
	}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9c6f5",
		UID: "0b7e9c3a-4444-4c4b-9a57-0d1c2f3e4a5b", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	return p
}

// Deployment is Deployment web, as the controllers left it.
func Deployment() *appsv1.Deployment {
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{ObjectMeta: meta("prod", "web", "0b7e9c3a-5555-4c4b-9a57-0d1c2f3e4a5b"),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}},
		},
		Status: appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, ObservedGeneration: 1},
	}
	d.Annotations = map[string]string{"deployment.kubernetes.io/revision": "1"}
	return d
}

// WidgetJSON is a custom resource as the API server stores it: JSON,
// with a final newline.
const WidgetJSON = `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"creationTimestamp":"2026-11-30T22:15:00Z","generation":1,"name":"w1","namespace":"prod","uid":"0b7e9c3a-6666-4c4b-9a57-0d1c2f3e4a5b"},"spec":{"size":3,"color":"blue"},"status":{"ready":true}}
`
