package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	osexec "os/exec"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
)

// TestIntegrationCtl runs kubectl etcd ctl against a real 3-member TLS
// cluster, with the pinned etcdctl standing in for the container's: the
// command line built from the pod specs must reach the members.
func TestIntegrationCtl(t *testing.T) {
	c, pods := startCluster(t)
	bins, err := etcdtest.Etcdctls(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ex := &etcdtest.LocalExecutor{Binaries: map[string]string{"etcdctl": bins["pinned"]}}
	run := func(t *testing.T, stdin string, args ...string) (string, string, error) {
		t.Helper()
		streams, in, out, errOut := genericiooptions.NewTestIOStreams()
		in.WriteString(stdin)
		g := NewGlobalOptions(streams)
		g.Client = fake.NewClientset(pods...)
		g.Executor = ex
		cmd := NewCmdEtcdWithOptions(g)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), errOut.String(), err
	}
	must := func(t *testing.T, stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := run(t, stdin, args...)
		if err != nil {
			t.Fatalf("kubectl etcd %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}

	t.Run("endpoint health", func(t *testing.T) {
		out := must(t, "", "ctl", "--", "endpoint", "health")
		if !strings.Contains(out, "is healthy") {
			t.Errorf("output %q", out)
		}
	})

	var list struct {
		Header struct {
			MemberID uint64 `json:"member_id"`
		} `json:"header"`
		Members []struct {
			ID   uint64 `json:"ID"`
			Name string `json:"name"`
		} `json:"members"`
	}
	t.Run("member list -w json", func(t *testing.T) {
		out := must(t, "", "ctl", "--", "member", "list", "-w", "json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var members struct{ Members []json.RawMessage }
		if err := json.Unmarshal([]byte(must(t, "", "members", "-o", "json", "--transport", "exec")), &members); err != nil {
			t.Fatal(err)
		}
		if len(list.Members) != 3 || len(members.Members) != 3 {
			t.Errorf("etcdctl lists %d members, kubectl etcd members %d, want 3", len(list.Members), len(members.Members))
		}
	})

	t.Run("member by hex ID", func(t *testing.T) {
		if len(list.Members) != 3 {
			t.Skip("no member list")
		}
		want := list.Members[2]
		out := must(t, "", "ctl", "--member", fmt.Sprintf("%x", want.ID), "--", "endpoint", "status", "-w", "json")
		var st []struct {
			Status struct {
				Header struct {
					MemberID uint64 `json:"member_id"`
				} `json:"header"`
			}
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 || st[0].Status.Header.MemberID != want.ID {
			t.Errorf("status of member %x (%s): %s (%v)", want.ID, want.Name, out, err)
		}
	})

	t.Run("stdin passes through", func(t *testing.T) {
		must(t, "from stdin", "ctl", "--", "put", "/ctl/key")
		if out := must(t, "", "ctl", "--", "get", "/ctl/key", "--print-value-only"); out != "from stdin\n" {
			t.Errorf("value %q", out)
		}
	})

	t.Run("exit status passes through", func(t *testing.T) {
		// etcdctl's own status for a bad command line.
		var want *osexec.ExitError
		if err := osexec.Command(bins["pinned"], "get").Run(); !errors.As(err, &want) {
			t.Fatalf("etcdctl get without a key: %v", err)
		}
		_, errOut, err := run(t, "", "ctl", "--", "get")
		var st *ExitStatus
		if !errors.As(err, &st) || st.Code != want.ExitCode() {
			t.Fatalf("err = %v, want exit status %d", err, want.ExitCode())
		}
		if !strings.Contains(errOut, "Error:") {
			t.Errorf("etcdctl's stderr did not pass through: %q", errOut)
		}
	})

	t.Run("a stopped member is skipped", func(t *testing.T) {
		c.StopMember(0)
		out := must(t, "", "--command-timeout", "2s", "ctl", "-v", "--", "endpoint", "status", "-w", "json")
		var st []struct {
			Endpoint string
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 || st[0].Endpoint != c.Members[1].ClientURL {
			t.Errorf("status: %s (%v), want member 1's (%s)", out, err, c.Members[1].ClientURL)
		}
	})
}

// startCluster starts a real 3-member TLS cluster and returns it with its
// members' static pods, for a fake API to list.
func startCluster(t *testing.T) (*etcdtest.Cluster, []runtime.Object) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts a real 3-member etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	var pods []runtime.Object
	for i := range c.Members {
		pods = append(pods, c.Pod(i, etcdtest.Image))
	}
	return c, pods
}
