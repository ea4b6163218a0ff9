package etcd

import (
	"context"
	"errors"
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
