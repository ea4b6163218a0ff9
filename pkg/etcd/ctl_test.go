package etcd

import (
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

func TestCtlCommand(t *testing.T) {
	m := discovery.Member{
		ListenClientURLs: []string{"https://127.0.0.1:2379", "https://10.0.0.1:2379"},
		Client:           discovery.TLSFiles{TrustedCAFile: "/pki/ca.crt", CertFile: "/pki/server.crt", KeyFile: "/pki/server.key"},
	}
	base := "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/pki/ca.crt --cert=/pki/server.crt --key=/pki/server.key"
	tests := []struct {
		name    string
		timeout time.Duration
		args    []string
		want    string
	}{
		{name: "plain", args: []string{"endpoint", "health"}, want: base + " endpoint health"},
		{name: "timeout given", timeout: 30 * time.Second, args: []string{"defrag"},
			want: "etcdctl --endpoints=https://127.0.0.1:2379 --command-timeout=30s --cacert=/pki/ca.crt --cert=/pki/server.crt --key=/pki/server.key defrag"},
		{name: "user flags follow, so they win", args: []string{"--cacert=/other/ca.crt", "get", "k"}, want: base + " --cacert=/other/ca.crt get k"},
		{name: "user endpoints replace the pod spec's", args: []string{"--endpoints=https://10.0.0.2:2379", "endpoint", "status"},
			want: "etcdctl --cacert=/pki/ca.crt --cert=/pki/server.crt --key=/pki/server.key --endpoints=https://10.0.0.2:2379 endpoint status"},
		{name: "user endpoints, spaced", args: []string{"--endpoints", "https://10.0.0.2:2379", "endpoint", "status"},
			want: "etcdctl --cacert=/pki/ca.crt --cert=/pki/server.crt --key=/pki/server.key --endpoints https://10.0.0.2:2379 endpoint status"},
		{name: "an endpoints key after -- is data", args: []string{"put", "--", "--endpoints", "v"}, want: base + " put -- --endpoints v"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(CtlCommand(m, tc.timeout, tc.args), " ")
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCtlCommandKeepsArgs(t *testing.T) {
	// The member's own flags must not be shared between calls.
	m := discovery.Member{ListenClientURLs: []string{"https://127.0.0.1:2379"}}
	a := CtlCommand(m, 0, []string{"--endpoints=x", "get", "a"})
	b := CtlCommand(m, 0, []string{"get", "b"})
	if strings.Join(a, " ") != "etcdctl --endpoints=x get a" || strings.Join(b, " ") != "etcdctl --endpoints=https://127.0.0.1:2379 get b" {
		t.Errorf("a = %v, b = %v", a, b)
	}
}
