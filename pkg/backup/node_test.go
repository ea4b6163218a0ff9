package backup

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// The pod of a node-side snapshot reads etcd's client certificate, key
// and CA, each alone and read-only, and the installed agents, in the
// host's network; it is not privileged and carries the managed-by label.
// The agent asks the member's loopback listener with those files.
func TestNodeSnapshotPod(t *testing.T) {
	m := &cluster.Member{Pod: discovery.Member{Pod: "etcd-cp1", Node: "cp1", Name: "cp1",
		ListenClientURLs: []string{"https://127.0.0.1:2379", "https://10.0.0.1:2379"},
		Client:           discovery.TLSFiles{CertFile: "/etc/kubernetes/pki/etcd/server.crt", KeyFile: "/etc/kubernetes/pki/etcd/server.key", TrustedCAFile: "/etc/kubernetes/pki/etcd/ca.crt"}}}
	pod := nodepod.Build(nodePodSpec(NodeSource{Namespace: "kube-system", Image: "toolbox:1"}, m))
	b, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "node-snapshot-pod", []byte(strings.ReplaceAll(string(b), pod.Name, "NAME")))
	c := pod.Spec.Containers[0]
	if !pod.Spec.HostNetwork || *c.SecurityContext.Privileged || !*c.SecurityContext.ReadOnlyRootFilesystem || pod.Labels[nodepod.ManagedByLabel] != nodepod.ManagedByValue {
		t.Errorf("the pod is not the least it needs: %+v", pod.Spec)
	}
	for _, vm := range c.VolumeMounts {
		if vm.Name != "scratch" && !vm.ReadOnly {
			t.Errorf("%s is mounted writable", vm.MountPath)
		}
	}
	args := strings.Join(snapshotArgs("/scratch/agent", m, "zstd"), " ")
	if want := "/scratch/agent snapshot --endpoint https://127.0.0.1:2379 --cert /host/etc/kubernetes/pki/etcd/server.crt --key /host/etc/kubernetes/pki/etcd/server.key --cacert /host/etc/kubernetes/pki/etcd/ca.crt --compress zstd"; args != want {
		t.Errorf("agent args\n%s\nwant\n%s", args, want)
	}
}
