package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// CtlCommand is the etcdctl command line that runs args in member m's
// container: the endpoint and TLS flags of its pod spec, then args, so
// that a flag the user repeats wins. --endpoints is the exception:
// etcdctl appends repeated endpoints, so the user's replaces the pod
// spec's. A zero timeout keeps etcdctl's own --command-timeout.
func CtlCommand(m discovery.Member, timeout time.Duration, args []string) []string {
	cmd := Args(m, timeout)
	if hasFlag(args, "endpoints") {
		cmd = append(cmd[:1:1], cmd[2:]...)
	}
	return append(cmd, args...)
}

// hasFlag reports whether args set --name, before a "--" that ends the
// flags.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

// PickMember is the member to run etcdctl in: want, by name or hex ID,
// when given (healthy or not: it may be the one to look at); otherwise
// the first member, in discovery order, that answers a health check.
func PickMember(ctx context.Context, t Transport, members []discovery.Member, want string) (discovery.Member, error) {
	if want != "" {
		m, err := FindMember(ctx, t, members, want)
		if err != nil {
			return discovery.Member{}, err
		}
		return m, checkRunning(m)
	}
	var why []string
	for _, m := range members {
		err := healthy(ctx, t, m)
		if err == nil {
			return m, nil
		}
		why = append(why, fmt.Sprintf("  %s: %v", m.Name, withHint(m, err)))
	}
	if len(members) == 0 {
		return discovery.Member{}, errors.New("no etcd members found")
	}
	return discovery.Member{}, hint.Errorf("to run etcdctl in one of them anyway, name it with --member (kubectl etcd members lists them)",
		"no healthy member to run etcdctl in:\n%s", strings.Join(why, "\n"))
}

func healthy(ctx context.Context, t Transport, m discovery.Member) error {
	c, err := t.Client(ctx, m)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Health(ctx)
	return err
}

// FindMember is the member a --member flag names (see Names): want
// matched against the members' names, nodes and pods, then against the
// hex IDs of the member list, read through t only then.
func FindMember(ctx context.Context, t Transport, members []discovery.Member, want string) (discovery.Member, error) {
	for _, m := range members {
		if Names(want, m.Name, m.Node, m.Pod, 0) {
			return m, nil
		}
	}
	notFound := NoSuchMember(want)
	id := strings.TrimPrefix(strings.ToLower(want), "0x")
	if !isHex(id) {
		return discovery.Member{}, notFound
	}
	list, err := ListMembers(ctx, t, members)
	if err != nil {
		return discovery.Member{}, fmt.Errorf("%q is no member's name, and the IDs could not be read: %w", want, err)
	}
	for _, row := range list.Members {
		if row.ID != id {
			continue
		}
		for _, m := range members {
			if row.Pod != "" && m.Pod == row.Pod {
				return m, nil
			}
		}
		name := row.Name
		if name == "" {
			name = "unstarted"
		}
		return discovery.Member{}, fmt.Errorf("member %s (%s) has no etcd pod; see: kubectl etcd members", id, name)
	}
	return discovery.Member{}, notFound
}

func isHex(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// Ctl runs cmd, an etcdctl command line from CtlCommand, in member m's
// container with s attached. An etcdctl that exits non-zero returns an
// *exec.ExitError with its status.
func Ctl(ctx context.Context, ex exec.StreamExecutor, m discovery.Member, cmd []string, s exec.Streams) error {
	ref := exec.PodRef{Namespace: m.Namespace, Name: m.Pod, Container: m.Container}
	err := ex.Stream(ctx, ref, cmd, s)
	if errors.Is(err, exec.ErrNotFound) {
		return hint.Permanent(err, "image %s has no etcdctl; kubectl etcd ctl needs it in the etcd container", m.Image)
	}
	return err
}
