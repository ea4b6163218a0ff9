package decode

import "testing"

func TestRegistryKey(t *testing.T) {
	for _, tc := range []struct {
		ref    string
		prefix bool
		want   string
		err    bool
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
		{ref: "crd/widgets.example.com", want: "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com"},
		{ref: "widgets.example.com/prod/w1", want: "/registry/example.com/widgets/prod/w1"},
		{ref: "widgets.example.com/w1", want: "/registry/example.com/widgets/w1"},
		{ref: "widgets.example.com/prod", prefix: true, want: "/registry/example.com/widgets/prod/"},
		{ref: "pods", err: true},
		{ref: "nodes/a/b", err: true},
		{ref: "pods/a/b/c", err: true},
		{ref: "gizmos/x", err: true},
	} {
		got, err := RegistryKey(tc.ref, tc.prefix)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("RegistryKey(%q, %v) = %q, %v; want %q, error %v", tc.ref, tc.prefix, got, err, tc.want, tc.err)
		}
	}
}
