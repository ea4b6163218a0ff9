//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testNamespace makes a namespace for one test and deletes it after.
func testNamespace(t *testing.T, name string) {
	t.Helper()
	runQuiet(t, "kubectl", "delete", "namespace", name, "--ignore-not-found", "--wait=true", "--timeout=2m")
	mustSucceed(t, kubectl(t, "create", "namespace", name))
	t.Cleanup(func() { runQuiet(t, "kubectl", "delete", "namespace", name, "--ignore-not-found", "--wait=false") })
}

// TestGetDecodes reads a real ConfigMap, Pod and Secret key from the
// cluster's etcd and decodes them.
func TestGetDecodes(t *testing.T) {
	scenario(t)
	ns := "e2e-decode-get"
	testNamespace(t, ns)
	mustSucceed(t, kubectl(t, "create", "configmap", "app-config", "-n", ns, "--from-literal=LOG_LEVEL=debug"))
	mustSucceed(t, kubectl(t, "create", "secret", "generic", "db", "-n", ns, "--from-literal=password=hunter2"))

	r := mustSucceed(t, kubectl(t, "etcd", "get", "configmaps/"+ns+"/app-config"))
	if !strings.Contains(r.stdout, "# /registry/configmaps/"+ns+"/app-config (protobuf, revision ") ||
		!strings.Contains(r.stdout, "kind: ConfigMap") || !strings.Contains(r.stdout, "LOG_LEVEL: debug") ||
		strings.Contains(r.stdout, "does not know") {
		t.Errorf("configmap:\n%s", r.stdout)
	}

	// The etcd pod itself: a real Pod key the API server wrote.
	pod := strings.TrimPrefix(strings.Fields(mustSucceed(t, kubectl(t, "get", "pods", "-n", "kube-system", "-l", "component=etcd", "-o", "name")).stdout)[0], "pod/")
	r = mustSucceed(t, kubectl(t, "etcd", "get", "/registry/pods/kube-system/"+pod, "-o", "json"))
	var p struct {
		Kind     string
		Metadata struct{ Name, Namespace string }
		Spec     struct{ NodeName string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.Kind != "Pod" || p.Metadata.Name != pod || p.Spec.NodeName == "" {
		t.Errorf("pod: %v %+v\n%s", err, p, r.stdout)
	}

	// Secrets are not encrypted at rest in the local cluster, so this
	// one decodes; an encrypted one would be reported instead.
	r = mustSucceed(t, kubectl(t, "etcd", "get", "secrets/"+ns+"/db", "-o", "json"))
	var s struct {
		Kind string
		Data map[string]string
	}
	if strings.Contains(r.stderr, "encrypted at rest") {
		t.Logf("the secret is encrypted at rest: reported, not printed")
	} else if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Kind != "Secret" || s.Data["password"] != base64.StdEncoding.EncodeToString([]byte("hunter2")) {
		t.Errorf("secret: %v %+v\n%s", err, s, r.stdout)
	}

	r = mustSucceed(t, kubectl(t, "etcd", "get", "--prefix", "configmaps/"+ns, "--keys-only"))
	for _, k := range []string{"/registry/configmaps/" + ns + "/app-config", "/registry/configmaps/" + ns + "/kube-root-ca.crt"} {
		if !strings.Contains(r.stdout, k+"\n") {
			t.Errorf("--keys-only lacks %s:\n%s", k, r.stdout)
		}
	}
}

// TestSnapshotExportBringsBackNamespace deletes a namespace after a
// backup and brings its ConfigMap and Deployment back from the backup
// with snapshot export and kubectl apply.
func TestSnapshotExportBringsBackNamespace(t *testing.T) {
	scenario(t)
	ns := "e2e-decode-export"
	testNamespace(t, ns)
	mustSucceed(t, kubectl(t, "create", "configmap", "app-config", "-n", ns, "--from-literal=LOG_LEVEL=debug"))
	mustSucceed(t, kubectl(t, "create", "deployment", "web", "-n", ns, "--image="+env["HC_TOOLBOX_IMAGE"], "--", "sleep", "3600"))

	dir := t.TempDir()
	file := filepath.Join(dir, "etcd.db")
	mustSucceed(t, kubectl(t, "etcd", "backup", file))
	mustSucceed(t, kubectl(t, "delete", "namespace", ns, "--wait=true", "--timeout=3m"))

	manifests := filepath.Join(dir, "prod.yaml")
	r := mustSucceed(t, kubectl(t, "etcd", "snapshot", "export", file, "--namespace", ns, "-o", manifests))
	b, err := os.ReadFile(manifests)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{"kind: Namespace", "kind: ConfigMap", "kind: Deployment"} {
		if !strings.Contains(out, want) {
			t.Errorf("manifests lack %q:\n%s", want, out)
		}
	}
	for _, stripped := range []string{"uid:", "resourceVersion:", "managedFields:", "kind: ReplicaSet", "kube-root-ca.crt"} {
		if strings.Contains(out, stripped) {
			t.Errorf("manifests hold %q:\n%s", stripped, out)
		}
	}
	if !strings.Contains(r.stderr, "Left out Pod web-") {
		t.Errorf("the deployment's pod is not reported as left out:\n%s", r.stderr)
	}

	mustSucceed(t, kubectl(t, "apply", "-f", manifests))
	r = mustSucceed(t, kubectl(t, "get", "configmap", "app-config", "-n", ns, "-o", "jsonpath={.data.LOG_LEVEL}"))
	if r.stdout != "debug" {
		t.Errorf("configmap back with LOG_LEVEL %q", r.stdout)
	}
	r = mustSucceed(t, kubectl(t, "get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}"))
	if r.stdout != env["HC_TOOLBOX_IMAGE"] {
		t.Errorf("deployment back with image %q", r.stdout)
	}
	// The controller takes it up again: a new ReplicaSet. (Its pods need
	// not run: the control-plane nodes are tainted.)
	waitFor(t, 2*time.Minute, func() bool {
		r := runQuiet(t, "kubectl", "get", "replicasets", "-n", ns, "-l", "app=web", "-o", "name")
		return r.code == 0 && strings.TrimSpace(r.stdout) != ""
	})
}
