package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// FindPod is the member a --member flag names (see etcd.Names): want
// matched against the members' names, nodes and pods, then against the
// hex IDs of the member list, read through t only then.
func FindPod(ctx context.Context, t etcd.Transport, pods []discovery.Member, want string) (discovery.Member, error) {
	for _, m := range pods {
		if etcd.Names(want, m.Name, m.Node, m.Pod, 0) {
			return m, nil
		}
	}
	notFound := etcd.NoSuchMember(want)
	id := strings.TrimPrefix(strings.ToLower(want), "0x")
	if !isHex(id) {
		return discovery.Member{}, notFound
	}
	list, err := Members(ctx, t, pods)
	if err != nil {
		return discovery.Member{}, fmt.Errorf("%q is no member's name, and the IDs could not be read: %w", want, err)
	}
	for _, row := range list.Members {
		if row.ID != id {
			continue
		}
		for _, m := range pods {
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

// Pick is the member to run etcdctl in: want, by name or hex ID, when
// given (healthy or not: it may be the one to look at); otherwise the
// first member, in discovery order, that answers a health check.
func Pick(ctx context.Context, t etcd.Transport, pods []discovery.Member, want string) (discovery.Member, error) {
	if want != "" {
		m, err := FindPod(ctx, t, pods, want)
		if err != nil {
			return discovery.Member{}, err
		}
		return m, etcd.CheckRunning(m)
	}
	var why []string
	for _, m := range pods {
		err := healthy(ctx, t, m)
		if err == nil {
			return m, nil
		}
		why = append(why, fmt.Sprintf("  %s: %v", m.Name, etcd.WithHint(m, err)))
	}
	if len(pods) == 0 {
		return discovery.Member{}, errors.New("no etcd members found")
	}
	return discovery.Member{}, hint.Errorf("to run etcdctl in one of them anyway, name it with --member (kubectl etcd members lists them)",
		"no healthy member to run etcdctl in:\n%s", strings.Join(why, "\n"))
}

func healthy(ctx context.Context, t etcd.Transport, m discovery.Member) error {
	c, err := t.Client(ctx, m)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Health(ctx)
	return err
}
