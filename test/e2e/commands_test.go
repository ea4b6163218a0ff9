//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var hexID = regexp.MustCompile(`^[0-9a-f]{1,16}$`)

var transports = []string{"exec", "port-forward", "auto"}

func TestPluginIsDiscoveredByKubectl(t *testing.T) {
	scenario(t)
	r := mustSucceed(t, kubectl(t, "plugin", "list"))
	if !strings.Contains(r.stdout, "kubectl-etcd") {
		t.Fatalf("kubectl plugin list does not show kubectl-etcd")
	}
	r = mustSucceed(t, kubectl(t, "etcd", "version"))
	if !strings.HasPrefix(r.stdout, "kubectl-etcd ") {
		t.Errorf("version output %q", r.stdout)
	}
}

type memberList struct {
	ClusterID string `json:"clusterID"`
	Members   []struct {
		ID, Name, Node, Pod, Status string
		IsLearner                   bool
		PeerURLs                    []string
	} `json:"members"`
}

func TestMembers(t *testing.T) {
	scenario(t)
	names := nodeNames(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			table := mustSucceed(t, kubectl(t, "etcd", "members", "--transport", tr))
			for _, n := range names {
				if !strings.Contains(table.stdout, n) {
					t.Errorf("table lacks node %s", n)
				}
			}
			var v memberList
			r := mustSucceed(t, kubectl(t, "etcd", "members", "--transport", tr, "-o", "json"))
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
				t.Fatal(err)
			}
			if len(v.Members) != nodes || !hexID.MatchString(v.ClusterID) {
				t.Fatalf("%d members, cluster ID %q", len(v.Members), v.ClusterID)
			}
			for _, m := range v.Members {
				if !hexID.MatchString(m.ID) || m.Status != "started" || m.IsLearner || m.Pod != "etcd-"+m.Node || m.Name != m.Node || len(m.PeerURLs) != 1 {
					t.Errorf("member %+v", m)
				}
			}
		})
	}
	noHelperPods(t)
}

type health []struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	Took    string `json:"took"`
	Error   string `json:"error"`
}

func TestHealth(t *testing.T) {
	scenario(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			r := mustSucceed(t, kubectl(t, "etcd", "health", "--transport", tr, "-o", "json"))
			var v health
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
				t.Fatal(err)
			}
			if len(v) != nodes {
				t.Fatalf("%d results, want %d", len(v), nodes)
			}
			for _, h := range v {
				if !h.Healthy || h.Error != "" || h.Took == "0s" {
					t.Errorf("%+v", h)
				}
			}
			mustSucceed(t, kubectl(t, "etcd", "health", "--transport", tr))
		})
	}
	noHelperPods(t)
}

type status struct {
	ClusterID string `json:"clusterID"`
	Members   []struct {
		Name, Node, ID, Version, Leader, Error string
		DBSize, DBSizeInUse, Quota             int64
		IsLeader, IsLearner                    bool
		RaftIndex                              uint64
		Revision                               int64
	} `json:"members"`
}

func getStatus(t *testing.T, args ...string) (status, result) {
	t.Helper()
	r := kubectl(t, append([]string{"etcd", "status", "-o", "json"}, args...)...)
	var v status
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r.stdout)
	}
	return v, r
}

func TestStatus(t *testing.T) {
	scenario(t)
	want := strings.TrimPrefix(env["ETCD_VERSION"], "v")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			v, r := getStatus(t, "--transport", tr)
			mustSucceed(t, r)
			leaders := 0
			for _, m := range v.Members {
				if m.Error != "" || m.Version != want || !hexID.MatchString(m.ID) || m.DBSize <= 0 || m.DBSizeInUse <= 0 || m.Quota <= 0 || m.RaftIndex == 0 || m.Revision <= 0 {
					t.Errorf("member %+v (want version %s)", m, want)
				}
				if m.IsLeader {
					leaders++
				}
			}
			if len(v.Members) != nodes || leaders != 1 {
				t.Errorf("%d members, %d leaders", len(v.Members), leaders)
			}
			for _, o := range []string{"table", "wide", "yaml"} {
				r := mustSucceed(t, kubectl(t, "etcd", "status", "--transport", tr, "-o", o))
				if !strings.Contains(r.stdout, want) {
					t.Errorf("-o %s lacks the version %s", o, want)
				}
			}
		})
	}
	noHelperPods(t)
}

func TestClearErrors(t *testing.T) {
	scenario(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no etcd pods", []string{"etcd", "members", "-l", "component=nothing"}, []string{"no etcd pods found", "external etcd", "--selector"}},
		{"unknown output", []string{"etcd", "status", "-o", "xml"}, []string{"unknown output format", "json"}},
		{"unpullable helper image", []string{"etcd", "health", "--transport", "port-forward", "--image", "registry.invalid/nothing:1"}, []string{"cannot be pulled", "--image"}},
		{"corrupt snapshot", []string{"etcd", "snapshot", "verify", "/etc/hostname"}, []string{"FAILED"}},
		{"wrong cluster", []string{"etcd", "members", "--server", "https://127.0.0.1:1", "--request-timeout", "5s"}, []string{"127.0.0.1:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := kubectl(t, tc.args...)
			if r.code == 0 {
				t.Fatalf("exit 0, want a failure")
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout+r.stderr, w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
	noHelperPods(t)
}

// TestRBACDenied runs the plugin as a service account that may list pods
// but not exec into them.
func TestRBACDenied(t *testing.T) {
	scenario(t)
	ns := "kube-system"
	sa := "kubectl-etcd-e2e-reader"
	apply := `apiVersion: v1
kind: ServiceAccount
metadata: {name: ` + sa + `, namespace: ` + ns + `}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: ` + sa + `, namespace: ` + ns + `}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ` + sa + `, namespace: ` + ns + `}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ` + sa + `}
subjects: [{kind: ServiceAccount, name: ` + sa + `, namespace: ` + ns + `}]
`
	f := filepath.Join(t.TempDir(), "rbac.yaml")
	os.WriteFile(f, []byte(apply), 0o600)
	mustSucceed(t, kubectl(t, "apply", "-f", f))
	defer kubectl(t, "delete", "-f", f, "--wait=false")
	token := strings.TrimSpace(mustSucceed(t, kubectl(t, "-n", ns, "create", "token", sa)).stdout)
	// A kubeconfig with only the token: the admin one's client certificate
	// would win over --token.
	server := mustSucceed(t, kubectl(t, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")).stdout
	ca := mustSucceed(t, kubectl(t, "config", "view", "--minify", "--raw", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}")).stdout
	kc := filepath.Join(t.TempDir(), "reader.conf")
	os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+server+`", certificate-authority-data: "`+ca+`"}}]
users: [{name: u, user: {token: "`+token+`"}}]
contexts: [{name: reader, context: {cluster: c, user: u}}]
current-context: reader
`), 0o600)
	mustSucceed(t, kubectl(t, "--kubeconfig", kc, "get", "pods", "-n", ns, "-l", "component=etcd"))
	r := kubectl(t, "etcd", "health", "--transport", "exec", "--kubeconfig", kc)
	if r.code == 0 || !strings.Contains(r.stderr, "pods/exec") || !strings.Contains(r.stderr, "RBAC") {
		t.Errorf("exit %d; want an RBAC error naming pods/exec", r.code)
	}
}
