//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// kubectl etcd ctl on the real control plane: etcdctl runs in an etcd
// container with the pod spec's endpoint and certificates, on every
// flavour (a shell image and a distroless one).
func TestCtl(t *testing.T) {
	scenario(t)
	t.Run("endpoint health", func(t *testing.T) {
		r := mustSucceed(t, kubectl(t, "etcd", "ctl", "--", "endpoint", "health"))
		if !strings.Contains(r.stdout+r.stderr, "is healthy") {
			t.Errorf("endpoint health printed %q %q", r.stdout, r.stderr)
		}
		r = mustSucceed(t, kubectl(t, "etcd", "ctl", "--", "endpoint", "health", "--cluster"))
		if n := strings.Count(r.stdout+r.stderr, "is healthy"); n != nodes {
			t.Errorf("endpoint health --cluster: %d healthy, want %d:\n%s%s", n, nodes, r.stdout, r.stderr)
		}
	})

	t.Run("member list -w json", func(t *testing.T) {
		r := mustSucceed(t, kubectl(t, "etcd", "ctl", "--", "member", "list", "-w", "json"))
		var etcdctl struct {
			Members []struct {
				ID   uint64 `json:"ID"`
				Name string `json:"name"`
			} `json:"members"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &etcdctl); err != nil {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		var plugin memberList
		r = mustSucceed(t, kubectl(t, "etcd", "members", "-o", "json"))
		if err := json.Unmarshal([]byte(r.stdout), &plugin); err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, m := range etcdctl.Members {
			got = append(got, fmt.Sprintf("%x %s", m.ID, m.Name))
		}
		for _, m := range plugin.Members {
			want = append(want, m.ID+" "+m.Name)
		}
		sort.Strings(got)
		sort.Strings(want)
		if len(got) != nodes || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("etcdctl lists %v, kubectl etcd members %v (want %d)", got, want, nodes)
		}
	})

	t.Run("--member and -v", func(t *testing.T) {
		names := nodeNames(t)
		last := names[len(names)-1]
		r := mustSucceed(t, kubectl(t, "etcd", "ctl", "-v", "--member", last, "--", "endpoint", "status", "-w", "json"))
		if !strings.Contains(r.stderr, "pod kube-system/etcd-"+last) || !strings.Contains(r.stderr, "etcdctl --endpoints=") || !strings.Contains(r.stderr, "--cacert=") {
			t.Errorf("-v printed %q", r.stderr)
		}
		var st []struct{ Endpoint string }
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st) != 1 {
			t.Errorf("endpoint status: %v %s", err, r.stdout)
		}
	})

	t.Run("stdin passes through", func(t *testing.T) {
		const key = "/kubectl-etcd-e2e/ctl"
		put := exec.Command("kubectl", "etcd", "ctl", "--", "put", key)
		put.Stdin = strings.NewReader("from stdin")
		var out bytes.Buffer
		put.Stdout, put.Stderr = &out, &out
		if err := put.Run(); err != nil {
			t.Fatalf("put from stdin: %v\n%s", err, &out)
		}
		defer func() { mustSucceed(t, kubectl(t, "etcd", "ctl", "--", "del", key)) }()
		r := mustSucceed(t, kubectl(t, "etcd", "ctl", "--", "get", key, "--print-value-only"))
		if r.stdout != "from stdin\n" {
			t.Errorf("value %q", r.stdout)
		}
	})

	t.Run("exit status passes through", func(t *testing.T) {
		// etcdctl exits 128 (bad arguments) for a get without a key.
		r := kubectl(t, "etcd", "ctl", "--", "get")
		if r.code != 128 || !strings.Contains(r.stderr, "Error:") || strings.Contains(r.stderr, "error: exit status") {
			t.Errorf("exit %d, stderr %q; want etcdctl's 128 and its message only", r.code, r.stderr)
		}
	})
	noHelperPods(t)
}
