//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const apiServerManifest = "/etc/kubernetes/manifests/kube-apiserver.yaml"

// encryptionConfig is an EncryptionConfiguration for secrets: the
// providers in order, each "aescbc:name=secret" or "identity".
func encryptionConfig(providers ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n")
	for _, p := range providers {
		if p == "identity" {
			b.WriteString("      - identity: {}\n")
			continue
		}
		typ, key, _ := strings.Cut(p, ":")
		name, secret, _ := strings.Cut(key, "=")
		fmt.Fprintf(&b, "      - %s:\n          keys:\n            - name: %s\n              secret: %s\n", typ, name, secret)
	}
	return b.String()
}

func newKey(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// writeNodeFile writes content to path on node, 0600.
func writeNodeFile(t *testing.T, node, path, content string) {
	t.Helper()
	mustSucceed(t, nodeExec(t, node, "sh", "-c", fmt.Sprintf("umask 077; cat > %s <<'EOF'\n%sEOF", path, content)))
}

// pointAPIServers makes every node's kube-apiserver read its encryption
// config from path ("": none), written in place so that the kubelet never
// sees a second manifest, and waits until each runs so and the control
// plane has settled.
func pointAPIServers(t *testing.T, nodes []string, path string) {
	t.Helper()
	pointAPIServersOnly(t, nodes, path)
	settled(t, 4*time.Minute)
	helperPodsStart(t)
}

// pointAPIServersOnly is pointAPIServers without waiting for the control
// plane to settle: an API server that cannot decrypt the Secrets it
// stores never reports ready.
func pointAPIServersOnly(t *testing.T, nodes []string, path string) {
	t.Helper()
	for _, n := range nodes {
		script := `/--encryption-provider-config=/d`
		if path != "" {
			script += `; s#^\(\s*\)- kube-apiserver$#&\n\1- --encryption-provider-config=` + path + `#`
		}
		tmp := "/etc/kubernetes/kube-apiserver.yaml.e2e" // outside the static pod dir
		mustSucceed(t, nodeExec(t, n, "sh", "-c", fmt.Sprintf("sed '%s' %s > %s && cat %s > %s && rm %s", script, apiServerManifest, tmp, tmp, apiServerManifest, tmp)))
	}
	for _, n := range nodes {
		waitFor(t, 4*time.Minute, func() bool {
			r := runQuiet(t, "kubectl", "-n", "kube-system", "get", "pod", "kube-apiserver-"+n, "-o", "jsonpath={.spec.containers[0].command}", "--request-timeout=5s")
			has := strings.Contains(r.stdout, "--encryption-provider-config="+path)
			return r.code == 0 && (path == "" && !strings.Contains(r.stdout, "--encryption-provider-config") || path != "" && has)
		})
	}
}

// helperPodsStart waits until a node pod starts again: after its API
// server restarts, a local-mode kubelet can take a while to start new
// pods, past the helper pods' 30 s.
func helperPodsStart(t *testing.T) {
	t.Helper()
	// Every node's kubelet, since a bundle reads every node; a backup
	// starts a pod on one.
	for _, n := range nodeNames(t) {
		name := "e2e-probe-" + n
		waitFor(t, 3*time.Minute, func() bool {
			runQuiet(t, "kubectl", "-n", "kube-system", "delete", "pod", name, "--ignore-not-found", "--wait=false")
			if runQuiet(t, "kubectl", "-n", "kube-system", "run", name, "--image", env["HC_TOOLBOX_IMAGE"], "--image-pull-policy", "Never",
				"--restart", "Never", "--labels", "app.kubernetes.io/managed-by=kubectl-etcd",
				"--overrides", `{"spec":{"nodeName":"`+n+`","tolerations":[{"operator":"Exists"}]}}`, "--", "true").code != 0 {
				return false
			}
			ok := runQuiet(t, "kubectl", "-n", "kube-system", "wait", "pod/"+name, "--for=jsonpath={.status.phase}=Succeeded", "--timeout=20s").code == 0
			runQuiet(t, "kubectl", "-n", "kube-system", "delete", "pod", name, "--ignore-not-found", "--wait=false")
			return ok
		})
	}
	noHelperPods(t)
}

// TestCheckEncryptionAtRest turns encryption at rest on in every API
// server (aescbc, a key made here): check names the key the values use,
// the Secrets still in plain text, and, once a node's config loses the
// key, that node as one whose API server cannot read them. The cluster is
// left decrypted, as it was.
func TestCheckEncryptionAtRest(t *testing.T) {
	scenario(t)
	all := nodeNames(t)
	key1 := newKey(t)
	kubectl(t, "delete", "secret", "e2e-enc-plain", "e2e-enc-sealed", "--ignore-not-found")
	mustSucceed(t, kubectl(t, "create", "secret", "generic", "e2e-enc-plain", "--from-literal=k=v"))
	defer kubectl(t, "delete", "secret", "e2e-enc-plain", "e2e-enc-sealed", "--ignore-not-found")

	on, off := "/etc/kubernetes/pki/e2e-encryption.yaml", "/etc/kubernetes/pki/e2e-decryption.yaml"
	for _, n := range all {
		writeNodeFile(t, n, on, encryptionConfig("aescbc:key1="+key1, "identity"))
		writeNodeFile(t, n, off, encryptionConfig("identity", "aescbc:key1="+key1))
	}
	t.Cleanup(func() {
		// Decrypt what was written encrypted, then take the config away.
		pointAPIServers(t, all, off)
		mustSucceed(t, runFor(t, 2*time.Minute, "sh", "-c", "kubectl get secrets -A -o json | kubectl replace -f - >/dev/null"))
		pointAPIServers(t, all, "")
		for _, n := range all {
			nodeExec(t, n, "rm", "-f", on, off)
		}
	})
	pointAPIServers(t, all, on)
	mustSucceed(t, kubectl(t, "create", "secret", "generic", "e2e-enc-sealed", "--from-literal=k=v"))

	found := func(want ...string) string {
		t.Helper()
		r := kubectl(t, "etcd", "check", "--only", "security.encryption", "-o", "json")
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("check lacks %q:\n%s%s", w, r.stdout, r.stderr)
			}
		}
		if strings.Contains(r.stdout, key1) {
			t.Errorf("check printed the key:\n%s", r.stdout)
		}
		return r.stdout
	}
	found(`"severity": "warn"`, "aescbc:key1", "still stored in plain text", "e2e-enc-plain")

	// A backup says that its values need the API servers' keys.
	file := filepath.Join(t.TempDir(), "enc.db")
	b := mustSucceed(t, kubectl(t, "etcd", "backup", file))
	if !strings.Contains(b.stderr, "encrypt at rest ("+all[0]+":"+on) {
		t.Errorf("backup does not warn that the snapshot needs the keys:\n%s", b.stderr)
	}
	if meta, err := os.ReadFile(file + ".json"); err != nil || !strings.Contains(string(meta), `"encryptionAtRest"`) {
		t.Errorf("FILE.json does not record the encryption at rest: %v\n%s", err, meta)
	}
	// A bundle records the key names it holds.
	_, recipient := ageKey(t, t.TempDir())
	bundle := filepath.Join(t.TempDir(), "enc.bundle.age")
	mustSucceed(t, kubectl(t, "etcd", "backup", bundle, "--bundle", "--recipient", recipient, "-q"))
	if meta, err := os.ReadFile(bundle + ".json"); err != nil || !strings.Contains(string(meta), `"aescbc:key1"`) {
		t.Errorf("the bundle's FILE.json does not name the key it holds: %v\n%s", err, meta)
	}

	mustSucceed(t, runFor(t, 2*time.Minute, "sh", "-c", "kubectl get secrets -A -o json | kubectl replace -f - >/dev/null"))
	found(`"severity": "ok"`, "every key they use is in every node's encryption config")

	// The key rotated away on one node (its file only: the check reads
	// what the API server would read at its next start).
	far := all[len(all)-1]
	writeNodeFile(t, far, on, encryptionConfig("aescbc:key2="+newKey(t), "identity"))
	found(`"severity": "fail"`, "which node "+far+"'s encryption config lacks")
	writeNodeFile(t, far, on, encryptionConfig("aescbc:key1="+key1, "identity"))
	noHelperPods(t)
}

// TestRestoreBundleBringsBackKeys: with encryption at rest on, a Secret
// written and a bundle taken, the key is rotated away (a new config
// without it, the API server restarted on it): the Secret cannot be read.
// A restore from the bundle puts the bundle's config back where the API
// server reads it, and the Secret reads again.
func TestRestoreBundleBringsBackKeys(t *testing.T) {
	scenario(t)
	all := nodeNames(t)
	dir := t.TempDir()
	key, recipient := ageKey(t, dir)
	key1 := newKey(t)
	kubectl(t, "delete", "secret", "e2e-enc-bundle", "--ignore-not-found")
	on, rotated, off := "/etc/kubernetes/pki/e2e-encryption.yaml", "/etc/kubernetes/pki/e2e-rotated.yaml", "/etc/kubernetes/pki/e2e-decryption.yaml"
	for _, n := range all {
		writeNodeFile(t, n, on, encryptionConfig("aescbc:key1="+key1, "identity"))
		writeNodeFile(t, n, rotated, encryptionConfig("aescbc:key2="+newKey(t), "identity"))
		writeNodeFile(t, n, off, encryptionConfig("identity", "aescbc:key1="+key1))
	}
	t.Cleanup(func() {
		for _, n := range all { // the restore put key1 where the API server reads
			writeNodeFile(t, n, rotated, encryptionConfig("identity", "aescbc:key1="+key1))
		}
		pointAPIServers(t, all, off)
		mustSucceed(t, runFor(t, 2*time.Minute, "sh", "-c", "kubectl get secrets -A -o json | kubectl replace -f - >/dev/null"))
		pointAPIServers(t, all, "")
		kubectl(t, "delete", "secret", "e2e-enc-bundle", "--ignore-not-found")
		for _, n := range all {
			nodeExec(t, n, "rm", "-f", on, rotated, off)
		}
	})
	pointAPIServers(t, all, on)
	mustSucceed(t, kubectl(t, "create", "secret", "generic", "e2e-enc-bundle", "--from-literal=k=v"))
	bundle := filepath.Join(dir, "etcd.bundle.age")
	mustSucceed(t, kubectl(t, "etcd", "backup", bundle, "--bundle", "--recipient", recipient))

	pointAPIServersOnly(t, all, rotated)
	waitFor(t, 2*time.Minute, func() bool {
		r := runQuiet(t, "kubectl", "get", "secret", "e2e-enc-bundle", "--request-timeout=10s")
		return r.code != 0 && (strings.Contains(r.stderr, "transform") || strings.Contains(r.stderr, "decrypt") || strings.Contains(r.stderr, "Internal error"))
	})
	r := mustSucceed(t, kubectl(t, restoreCmd(bundle, "--identity", key, "--yes")...))
	if !strings.Contains(r.stdout+r.stderr, "put the bundle's encryption config back") {
		t.Errorf("the plan does not put the bundle's encryption config back:\n%s%s", r.stdout, r.stderr)
	}
	restartKubelets(t, r.stdout)
	helperPodsStart(t)
	mustSucceed(t, kubectl(t, "get", "secret", "e2e-enc-bundle"))
	noHelperPods(t)
}
