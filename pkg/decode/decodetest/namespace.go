package decodetest

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode"
)

// KeyValue is one key as the API server stores it.
type KeyValue struct {
	Key    string
	Object runtime.Object // stored in protobuf
	Raw    []byte         // stored as is, when Object is nil
}

// Namespace is namespace prod as a live cluster holds it: what an
// operator made (config, a Deployment, a Service, a claim, a custom
// resource), what the controllers made from it, and the namespace's
// usual furniture. Another namespace's objects are there too.
func Namespace() []KeyValue {
	ns := &corev1.Namespace{ObjectMeta: meta("", "prod", "0b7e9c3a-0000-4c4b-9a57-0d1c2f3e4a5b"),
		Spec:   corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	ns.Labels = map[string]string{"kubernetes.io/metadata.name": "prod", "team": "web"}

	rootCA := &corev1.ConfigMap{ObjectMeta: meta("prod", "kube-root-ca.crt", "u-rootca"), Data: map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----"}}
	defaultSA := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "prod", UID: "u-sa-default", ResourceVersion: "1"}}
	builder := &corev1.ServiceAccount{ObjectMeta: meta("prod", "builder", "u-sa-builder"),
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
		Secrets:          []corev1.ObjectReference{{Name: "builder-token-x1y2z"}}}
	legacyToken := tokenSecret("builder-token-x1y2z", "builder", "u-tok-legacy")
	manualToken := tokenSecret("builder-long-lived", "builder", "u-tok-manual")

	deploy := Deployment()
	rs := &appsv1.ReplicaSet{ObjectMeta: meta("prod", "web-7d4b9c6f5", "0b7e9c3a-4444-4c4b-9a57-0d1c2f3e4a5b"),
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: deploy.Spec.Selector, Template: deploy.Spec.Template}}
	rs.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: deploy.UID, Controller: ptr.To(true)}}

	debug := Pod()
	debug.Name, debug.UID, debug.OwnerReferences = "debug", "u-pod-debug", nil

	svc := &corev1.Service{ObjectMeta: meta("prod", "web", "u-svc-web"), Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"}, ClusterIP: "10.96.12.34", ClusterIPs: []string{"10.96.12.34"},
		Type:  corev1.ServiceTypeClusterIP,
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}}}}
	headless := &corev1.Service{ObjectMeta: meta("prod", "db", "u-svc-db"), Spec: corev1.ServiceSpec{ClusterIP: "None", ClusterIPs: []string{"None"},
		Ports: []corev1.ServicePort{{Port: 5432, TargetPort: intstr.FromInt32(5432), Protocol: corev1.ProtocolTCP}}}}
	eps := &corev1.Endpoints{ObjectMeta: meta("prod", "web", "u-ep-web")}
	slice := &discoveryv1.EndpointSlice{ObjectMeta: meta("prod", "web-abcde", "u-eps-web"), AddressType: discoveryv1.AddressTypeIPv4}
	slice.Labels = map[string]string{"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io", "kubernetes.io/service-name": "web"}

	done := &batchv1.Job{ObjectMeta: meta("prod", "migrate", "u-job-migrate"),
		Spec:   batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "m", Image: "migrate:1"}}}}},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}
	nightly := &batchv1.Job{ObjectMeta: meta("prod", "report", "u-job-report"), Spec: batchv1.JobSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "u-job-report"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"batch.kubernetes.io/controller-uid": "u-job-report", "batch.kubernetes.io/job-name": "report", "controller-uid": "u-job-report"}},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "r", Image: "report:1"}}}}}}

	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: meta("prod", "data", "u-pvc-data"), Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeName: "pvc-0b7e9c3a",
		Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	pvc.Annotations = map[string]string{"pv.kubernetes.io/bind-completed": "yes", "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path"}
	pvc.Finalizers = []string{"kubernetes.io/pvc-protection"}

	lease := &coordinationv1.Lease{ObjectMeta: meta("prod", "web-leader", "u-lease"), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("web-1")}}
	event := &corev1.Event{ObjectMeta: meta("prod", "web.17f3", "u-event"), Reason: "Scheduled", InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "debug"}}

	other := ConfigMap()
	other.Namespace, other.Name, other.UID = "staging", "prod", "u-other"

	return []KeyValue{
		{Key: "/registry/configmaps/prod/app-config", Object: ConfigMap()},
		{Key: "/registry/configmaps/prod/kube-root-ca.crt", Object: rootCA},
		{Key: "/registry/configmaps/staging/prod", Object: other},
		{Key: "/registry/leases/prod/web-leader", Object: lease},
		{Key: "/registry/deployments/prod/web", Object: deploy},
		{Key: "/registry/endpointslices/prod/web-abcde", Object: slice},
		{Key: "/registry/events/prod/web.17f3", Object: event},
		{Key: "/registry/example.com/widgets/prod/w1", Raw: []byte(WidgetJSON)},
		{Key: "/registry/example.com/gadgets/prod/g1", Raw: UnknownProtobuf("Gadget")},
		{Key: "/registry/jobs/prod/migrate", Object: done},
		{Key: "/registry/jobs/prod/report", Object: nightly},
		{Key: "/registry/namespaces/prod", Object: ns},
		{Key: "/registry/persistentvolumeclaims/prod/data", Object: pvc},
		{Key: "/registry/pods/prod/debug", Object: debug},
		{Key: "/registry/pods/prod/web-7d4b9c6f5-abcde", Object: Pod()},
		{Key: "/registry/replicasets/prod/web-7d4b9c6f5", Object: rs},
		{Key: "/registry/secrets/prod/builder-long-lived", Object: manualToken},
		{Key: "/registry/secrets/prod/builder-token-x1y2z", Object: legacyToken},
		{Key: "/registry/secrets/prod/db", Object: Secret()},
		{Key: "/registry/secrets/prod/tls", Raw: []byte("k8s:enc:aescbc:v1:key1:\x01\x02\x03")},
		{Key: "/registry/serviceaccounts/prod/builder", Object: builder},
		{Key: "/registry/serviceaccounts/prod/default", Object: defaultSA},
		{Key: "/registry/services/endpoints/prod/web", Object: eps},
		{Key: "/registry/services/specs/prod/db", Object: headless},
		{Key: "/registry/services/specs/prod/web", Object: svc},
	}
}

func tokenSecret(name, sa, uid string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: meta("prod", name, uid), Type: corev1.SecretTypeServiceAccountToken,
		Data: map[string][]byte{"token": []byte("eyJhbGciOi"), "ca.crt": []byte("-----BEGIN"), "namespace": []byte("prod")}}
	s.Annotations = map[string]string{"kubernetes.io/service-account.name": sa, "kubernetes.io/service-account.uid": "u-sa-" + sa}
	return s
}

// UnknownProtobuf is a protobuf value of a kind of example.com/v1 no
// scheme knows, with a ConfigMap's body: field 1 is real ObjectMeta.
func UnknownProtobuf(kind string) []byte {
	raw, err := ConfigMap().Marshal()
	if err != nil {
		panic(err)
	}
	unk := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: "example.com/v1", Kind: kind}, Raw: raw}
	b, err := unk.Marshal()
	if err != nil {
		panic(err)
	}
	return append([]byte("k8s\x00"), b...)
}

// Encode is kv's value as etcd holds it.
func (kv KeyValue) Encode() ([]byte, error) {
	if kv.Object == nil {
		return kv.Raw, nil
	}
	return decode.EncodeProtobuf(kv.Object)
}
