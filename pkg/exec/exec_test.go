package exec

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

func TestClassify(t *testing.T) {
	pod := PodRef{Namespace: "kube-system", Name: "etcd-a", Container: "etcd"}
	tests := []struct {
		name   string
		err    error
		is     error
		exit   int
		substr string
	}{
		{name: "nil", err: nil},
		{name: "exit code", err: utilexec.CodeExitError{Err: errors.New("command terminated with exit code 2"), Code: 2}, exit: 2},
		{name: "no etcdctl", err: errors.New(`OCI runtime exec failed: exec failed: unable to start container process: exec: "etcdctl": executable file not found in $PATH`), is: ErrNotFound},
		{name: "rbac", err: errors.New(`pods "etcd-a" is forbidden: User "x" cannot create resource "pods/exec"`), is: ErrForbidden, substr: "kubectl auth can-i create pods/exec -n kube-system"},
		{name: "not running", err: errors.New(`container not found ("etcd")`), substr: "kubectl -n kube-system describe pod etcd-a"},
		{name: "other", err: errors.New("EOF"), substr: "create pods/exec on kube-system/etcd-a: EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err, pod, "create", "pods/exec")
			if tc.err == nil {
				if got != nil {
					t.Fatalf("classify(nil) = %v", got)
				}
				return
			}
			if tc.is != nil && !errors.Is(got, tc.is) {
				t.Errorf("%v is not %v", got, tc.is)
			}
			var ee *ExitError
			if tc.exit != 0 && (!errors.As(got, &ee) || ee.Code != tc.exit) {
				t.Errorf("%v: want exit code %d", got, tc.exit)
			}
			if tc.substr != "" && !strings.Contains(got.Error(), tc.substr) {
				t.Errorf("%v lacks %q", got, tc.substr)
			}
		})
	}
}

func TestWebsocketsEnabled(t *testing.T) {
	for v, want := range map[string]bool{"": true, "true": true, "false": false, "0": true} {
		t.Run(fmt.Sprintf("%q", v), func(t *testing.T) {
			t.Setenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", v)
			if got := websocketsEnabled("KUBECTL_REMOTE_COMMAND_WEBSOCKETS"); got != want {
				t.Errorf("got %v", got)
			}
		})
	}
}

func TestShouldFallback(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil},
		{name: "refused upgrade", err: &httpstream.UpgradeFailureError{Cause: errors.New("websocket: bad handshake")}, want: true},
		{name: "wrapped refused upgrade", err: fmt.Errorf("dial: %w", &httpstream.UpgradeFailureError{Cause: errors.New("403")}), want: true},
		{name: "https proxy", err: errors.New("proxy: unknown scheme: https"), want: true},
		{name: "other", err: errors.New("connection refused")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := shouldFallback(tc.err); got != tc.want {
				t.Errorf("shouldFallback(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
